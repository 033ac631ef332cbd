"""The ``dual`` geometry: the layer split compiled with numba (:mod:`lrmilp.cells.dualsplit`) on the
bounded-variable dual simplex of :mod:`lrmilp.lp.bvdual`.

A cell is a node of :mod:`lrmilp.cells.dualgeom`: the margin LP of its rows, with a dual feasible
basis, and a witness point of margin > tol.  Bounded box domains (a box, or a slice's parameter box);
no XOR constraints (the registry uses the ``lp`` geometry for those).  A node the compiled simplex
cannot solve is redone by the ``lp`` geometry (HiGHS), skipping the children already found.

The driver (:func:`lrmilp.cells.dualgeom.explore`) speaks to the enumerator it was written for;
:class:`DualHost` gives it that enumerator, built on the core's :class:`~lrmilp.cells.base.Walk` and
the split in progress.  The driver and numba are imported on first use.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ..domains import Domain
from .base import Cells, LayerCut, PrefixRow, Visit, Walk
from .lp import LpCells


class Core(Walk, Protocol):
    """The core as the dual driver needs it besides the :class:`Walk`: the pattern it writes, the
    network's layers, and the calls that go on below a child or emit a region."""

    pattern: np.ndarray
    layers: list
    offsets: dict[int, int]
    on_region: Any
    max_regions: int | None

    def enter(self, k: int, M: np.ndarray, m: np.ndarray, cell: Any) -> None: ...

    def emit(self, center: np.ndarray, radius: float) -> None: ...


class DualCells(Cells):
    """The compiled dual-simplex split of :mod:`lrmilp.cells.dualgeom`; bounded boxes, no XORs."""

    name = "dual"
    parity = False

    def __init__(self, walk: Core) -> None:
        super().__init__(walk)
        self.host = DualHost(walk, self)
        self.search = None  # dualgeom.DualSearch, built on first use (it imports numba)
        self.fallback: LpCells | None = None  # the lp geometry, for nodes the compiled simplex fails on

    @classmethod
    def check(cls, domain: Domain) -> None:
        if not (domain.bounded and domain.A_ub.shape[0] == 0):
            raise cls.refuse(domain, "a bounded box (no polytope rows)")

    def _search(self):
        if self.search is None:
            from .dualgeom import DualSearch
            self.search = DualSearch(self.host)
        return self.search

    def root(self, rows: list[PrefixRow]):
        return self._search().root(rows)

    def witness(self, cell) -> tuple[np.ndarray, float]:
        return cell.w, cell.t

    def split(self, cell, layer: LayerCut, visit: Visit) -> None:
        from .dualgeom import explore
        host = self.host
        saved = host.layer, host.visit
        host.layer, host.visit = layer, visit
        try:
            explore(host, self._search(), layer.k, None, None, cell)
        finally:
            host.layer, host.visit = saved

    def redo(self, node, layer: LayerCut, visit: Visit, emitted: set[bytes]) -> None:
        """Redo ``node`` with the ``lp`` geometry (HiGHS), skipping the children whose layer states are in
        ``emitted`` (the compiled search found them, and everything below them, already)."""
        if self.fallback is None:
            self.fallback = LpCells(self.walk)
        lp = self.fallback.lp
        for i in range(node.m):
            lp.push(node.S.G[i].copy(), float(node.S.r[i]))
        cell = self.fallback.ball()
        if cell is not None:
            self.fallback.split(cell, layer, _Unseen(visit, emitted))
        for _ in range(node.m):  # not reached when the search stops: reset() clears the rows then
            lp.pop()

    def reset(self) -> None:
        if self.fallback is not None:
            self.fallback.reset()


class _Unseen:
    """A visit that skips the children whose states are in ``seen``."""

    __slots__ = ("visit", "seen", "parity", "bulk")

    def __init__(self, visit: Visit, seen: set[bytes]) -> None:
        self.visit, self.seen = visit, seen
        self.parity, self.bulk = visit.parity, visit.bulk

    def child(self, states: np.ndarray, cell) -> None:
        if states.tobytes() not in self.seen:
            self.visit.child(states, cell)

    def region(self, states: np.ndarray, center: np.ndarray, radius: float) -> None:
        if states.tobytes() not in self.seen:
            self.visit.region(states, center, radius)

    def regions(self, count: int, min_radius: float) -> None:
        raise RuntimeError("a redone node emits its regions one by one")


class DualHost:
    """The enumerator :mod:`lrmilp.cells.dualgeom` was written for, on the core and the split in progress
    (its layer and visit).  Attribute names are the driver's."""

    def __init__(self, core: Core, cells: DualCells) -> None:
        self.core, self.cells = core, cells
        self.domain, self.tol, self.noise, self.cap = core.domain, core.tol, core.noise, core.cap
        self.rows, self.rhs = core.rows, core.rhs
        self.layers, self.offsets, self.pattern = core.layers, core.offsets, core.pattern
        self.par = None  # no XOR constraints in this geometry
        self.layer: LayerCut | None = None
        self.visit: Visit | None = None

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
        self.cells.redo(node, self.layer, self.visit, emitted)
