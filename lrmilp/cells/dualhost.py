"""The enumerator the ``dual`` geometry's driver (:mod:`lrmilp.cells.dualgeom`) talks to.

The driver predates the cell interface: it calls the enumerator's own methods (``_layer_setup``,
``_emit``, ``_layer_dual``, ...).  :class:`DualHost` provides them on the search core and the split in
progress, so the driver runs unchanged until it is ported to :class:`~lrmilp.cells.base.Cells`.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import numpy as np

from .base import LayerCut, Visit, Walk


class Core(Walk, Protocol):
    """The core as the dual driver needs it besides the :class:`Walk`: the pattern it writes, the
    network's layers, and the calls that go on below a child or emit a region."""

    pattern: np.ndarray
    net: Any
    bounds: Any
    parity: Any
    split_after: float | None
    layers: list
    offsets: dict[int, int]
    on_region: Any
    max_regions: int | None

    def enter(self, k: int, M: np.ndarray, m: np.ndarray, cell: Any) -> None: ...

    def emit(self, center: np.ndarray, radius: float) -> None: ...


class DualHost:
    """The enumerator :mod:`lrmilp.cells.dualgeom` was written for, on the core and the split in progress
    (its layer and visit; :class:`~lrmilp.cells.dual.DualCells` sets them).  Attribute names are the
    driver's; ``redo(node, layer, visit, emitted)`` redoes a node the compiled simplex failed on."""

    def __init__(self, core: Core, redo: Callable[[Any, LayerCut, Visit, set], None]) -> None:
        self.core, self.redo = core, redo
        self.domain, self.tol, self.noise, self.cap = core.domain, core.tol, core.noise, core.cap
        self.rows, self.rhs = core.rows, core.rhs
        self.layers, self.offsets, self.pattern = core.layers, core.offsets, core.pattern
        self.net, self.bounds = core.net, core.bounds
        self.layer: LayerCut | None = None
        self.visit: Visit | None = None

    @property
    def par(self):
        """The XOR constraints' state on the current path (a :class:`~lrmilp.parity.ParityState`), or
        None; the driver sets it around each child it enters."""
        path = self.core.parity
        return None if path is None else path.state

    @par.setter
    def par(self, state) -> None:
        if self.core.parity is not None:
            self.core.parity.state = state

    @property
    def split_after(self):
        return self.core.split_after

    @property
    def stats(self):
        return self.core.stats

    @property
    def on_region(self):
        return self.core.on_region

    @property
    def max_regions(self):
        return self.core.max_regions

    def _layer_setup(self, k: int, M, m):
        return self.layer.planes

    def _node_bounds(self, k: int, A: np.ndarray, c: np.ndarray):
        return self.layer.node_bounds()

    def _check(self) -> None:
        self.core.check()

    def _thin(self, radius: float) -> None:
        self.core.thin(radius)

    def _emit(self, center: np.ndarray, radius: float) -> None:
        self.core.emit(center, radius)

    def _layer_dual(self, k: int, M: np.ndarray, m: np.ndarray, node) -> None:
        self.core.enter(k, M, m, node)

    def _redo_with_highs(self, k: int, M, m, node, emitted: set) -> None:
        self.redo(node, self.layer, self.visit, emitted)
