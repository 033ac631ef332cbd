"""The ``dual`` geometry: the layer split compiled with numba (:mod:`lrmilp.cells.dualsplit`) on the
bounded-variable dual simplex of :mod:`lrmilp.lp.bvdual`.

A cell is a node of :mod:`lrmilp.cells.dualgeom`: the margin LP of its rows, with a dual feasible
basis, and a witness point of margin > tol.  Bounded box domains (a box, or a slice's parameter box).
XOR constraints are propagated inside the compiled search (a GF(2) system per frame).  A node the compiled simplex
cannot solve is redone by the ``lp`` geometry (HiGHS), skipping the children already found.

The driver (:func:`lrmilp.cells.dualgeom.explore`) speaks to the enumerator it was written for;
:class:`~lrmilp.cells.dualhost.DualHost` gives it that enumerator, built on the core's
:class:`~lrmilp.cells.base.Walk` and the split in progress.  The driver and numba are imported on first use.
"""

from __future__ import annotations


import numpy as np

from ..domains import Domain
from .base import Cells, LayerCut, PrefixRow, Visit
from .dualhost import Core, DualHost
from .lp import LpCells


class DualCells(Cells):
    """The compiled dual-simplex split of :mod:`lrmilp.cells.dualgeom`; bounded boxes."""

    name = "dual"

    def __init__(self, walk: Core) -> None:
        super().__init__(walk)
        self.host = DualHost(walk, self.redo)
        self.search = None  # dualgeom.DualSearch, built on first use (it imports numba)
        self.fallback: LpCells | None = None  # the lp geometry, for nodes the compiled simplex fails on

    @staticmethod
    def ready() -> bool:
        """Are the compiled kernels loaded or cached on this machine (no compile before the first split)?"""
        from .dualsplit import ready
        return ready()

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
            self.fallback.split(cell, layer, _Redo(self, layer, visit, emitted))
        for _ in range(node.m):  # not reached when the search stops: reset() clears the rows then
            lp.pop()

    def node_of_path(self):
        """The node of the cell the fallback's LP rows hold now (its search path), for the compiled
        search to go on with below; None if it holds no ball > tol."""
        # An lp row (g, h) keeps g u + t <= h: the row of hyperplane (-g) u + h = 0 on its active side.
        return self._search().root([(-g, float(h), True) for g, h in self.fallback.lp.stack])

    def reset(self) -> None:
        if self.fallback is not None:
            self.fallback.reset()


class _Redo:
    """The visit of a node redone by the ``lp`` geometry: skips the children whose states are in
    ``seen``, hands a last layer's children on as regions (an lp cell is its ball) and an inner layer's
    as new nodes of the compiled search."""

    __slots__ = ("cells", "layer", "visit", "seen", "parity", "bulk")

    def __init__(self, cells: DualCells, layer: LayerCut, visit: Visit, seen: set[bytes]) -> None:
        self.cells, self.layer, self.visit, self.seen = cells, layer, visit, seen
        self.parity, self.bulk = visit.parity, visit.bulk

    def child(self, states: np.ndarray, cell) -> None:
        if states.tobytes() in self.seen:
            return
        if self.layer.last:
            self.visit.region(states, *cell)
            return
        node = self.cells.node_of_path()
        if node is not None:
            self.visit.child(states, node)

    def region(self, states: np.ndarray, center: np.ndarray, radius: float) -> None:
        if states.tobytes() not in self.seen:
            self.visit.region(states, center, radius)

    def regions(self, count: int, min_radius: float) -> None:
        raise RuntimeError("a redone node emits its regions one by one")
