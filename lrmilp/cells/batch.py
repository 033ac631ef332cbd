"""The ``batch`` geometry: a layer at a time inside one node, vectorised over the node's sub-cells.

Inside a node (a cell P entering ReLU layer k) the layer's neurons are decided for the whole
*frontier* of P's sub-cells at once: one neuron, every sub-cell, a handful of numpy operations and one
batch of Chebyshev LPs (:func:`lrmilp.lp.chebyshev.solve_batch`), instead of one Python call chain and
one HiGHS solve per sub-cell.  The decisions per sub-cell are the ``lp`` geometry's, in the same order
of tests (:mod:`lrmilp.cells.lp`): fixed sign, ball split (no LP), else one LP for the far side, and
one more only when the near side's ball falls to tol.  Each sub-cell carries the dual-feasible basis of
its latest LP (or its parent's), which warm-starts its next LP.

Bounded domains only (the dense LP starts from the box's rows) and no XOR constraints (the registry
uses the ``lp`` geometry for those).  Frontiers whose basis inverses exceed ``CHUNK_BYTES`` are split
and walked one part after the other, so memory stays bounded whatever the layer width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..domains import Domain
from ..lp.chebyshev import SharedRows, solve_batch
from .base import Cells, LayerCut, PrefixRow, Visit, chebyshev_row, settled_by_bounds

CHUNK_BYTES = 2 << 20
"""A frontier whose basis inverses would take more than this is split.  It bounds memory, and keeps a
batch's working set near the core's cache: on 64-11-11 (inverses of 34 KB a cell), two concurrent
counts made 934 regions/s together with 64 MB chunks (one alone: 866; memory-bound) and 1,351 with
2 MB chunks; 16-11-11 (2.3 KB a cell) ran at the same rate with 1 MB and 64 MB chunks."""


@dataclass
class Node:
    """A cell entering a layer: its rows (domain and earlier layers'), a ball inside it, and a
    dual-feasible LP basis of those rows."""

    shared: SharedRows
    center: np.ndarray
    radius: float
    B: np.ndarray
    Binv: np.ndarray


@dataclass
class Frontier:
    """Sub-cells of a node: balls, signs of the layer's rows (+1 active, -1 inactive, 0 no row), states,
    and LP bases (row ids index the node's rows, then the layer's: S + j)."""

    centers: np.ndarray
    radii: np.ndarray
    sig: np.ndarray
    states: np.ndarray
    B: np.ndarray
    Binv: np.ndarray

    def __len__(self) -> int:
        return len(self.radii)

    def take(self, sel) -> "Frontier":
        return Frontier(self.centers[sel], self.radii[sel], self.sig[sel], self.states[sel], self.B[sel],
                        self.Binv[sel])

    @staticmethod
    def concat(parts: list["Frontier"]) -> "Frontier":
        parts = [p for p in parts if len(p)]
        if len(parts) == 1:
            return parts[0]
        return Frontier(*(np.concatenate([getattr(p, f) for p in parts])
                          for f in ("centers", "radii", "sig", "states", "B", "Binv")))


class BatchCells(Cells):
    """Frontiers of sub-cells decided together by batched dense LPs; bounded domains, no XORs."""

    name = "batch"
    parity = False

    @classmethod
    def check(cls, domain: Domain) -> None:
        if not domain.bounded:
            raise cls.refuse(domain, "a bounded domain")

    def root(self, rows: list[PrefixRow]) -> Node | None:
        """The node of the domain cut by ``rows``, with its exact ball (one LP)."""
        walk = self.walk
        shared = SharedRows.of_domain(walk.rows, walk.rhs, walk.cap)
        if rows:
            G, h = zip(*(chebyshev_row(u, c, 1.0, st) for u, c, st in rows))
            shared = shared.extend(np.array(G), np.array(h))
        B, Binv = shared.first_basis()
        d = walk.domain.dim
        # No layer rows: one absent dummy row (sig 0) keeps the batch's arrays non-empty.
        res = solve_batch(shared, np.zeros((1, d)), np.zeros(1), np.zeros((1, 1), dtype=np.int8), B[None], Binv[None])
        walk.stats.lps += 1
        if res.t[0] <= walk.tol:
            return None
        return Node(shared, res.U[0], float(res.t[0]), res.B[0], res.Binv[0])

    def witness(self, cell: Node) -> tuple[np.ndarray, float]:
        return cell.center, cell.radius

    def split(self, cell: Node, layer: LayerCut, visit: Visit) -> None:
        """Enumerate ReLU layer ``layer`` inside the node ``cell``."""
        lay = _Layer(self.walk, layer, visit, cell)
        fixed, keep_row = _plan(lay)
        sig0 = np.where(keep_row, np.where(fixed == 1, 1, -1), 0).astype(np.int8)
        frontier = Frontier(cell.center[None, :].copy(), np.array([cell.radius]), sig0[None, :],
                            (fixed == 1)[None, :].copy(), cell.B[None, :].copy(), cell.Binv[None].copy())
        live = np.flatnonzero(fixed < 0)
        # Peripheral hyperplanes first: one far from the cell's centre cuts few sub-cells (as in lp geometry).
        dist0 = np.abs(lay.Ahat[live] @ cell.center + lay.chat[live])
        order = live[np.argsort(-dist0, kind="stable")]
        chunk = max(8, int(CHUNK_BYTES // cell.Binv.nbytes))
        _walk(lay, order, 0, frontier, chunk)


class _Layer:
    """What every sub-cell of one node shares for one layer: the node, the layer's unit hyperplanes."""

    def __init__(self, walk, layer: LayerCut, visit: Visit, node: Node) -> None:
        self.walk, self.layer, self.visit, self.node = walk, layer, visit, node
        A, c, _, safe, _ = layer.planes
        self.Ahat, self.chat = A / safe[:, None], c / safe
        self.S = len(node.shared.h)

    def lp(self, sig: np.ndarray, B: np.ndarray, Binv: np.ndarray):
        res = solve_batch(self.node.shared, self.Ahat, self.chat, sig, B, Binv)
        self.walk.stats.lps += len(B)
        self.walk.stats.lp_fallbacks += res.fallbacks
        return res


def _plan(lay: _Layer) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron: 1/0 when its sign is settled on the whole node (bounds, constancy, or an LP proving
    the far side holds no ball > tol), -1 when sub-cells must decide; and whether a settled neuron keeps
    its row (a sliver of the other side exists).  As the ``lp`` geometry's plan."""
    walk, node = lay.walk, lay.node
    tol, stats = walk.tol, walk.stats
    n = lay.Ahat.shape[0]
    fixed, row, thin = settled_by_bounds(lay.layer.planes, lay.layer.node_bounds(), tol, walk.noise)
    stats.thin_dropped += thin
    stats.bound_skips += int(np.sum(fixed >= 0))
    live = np.flatnonzero(fixed < 0)
    delta = lay.Ahat[live] @ node.center + lay.chat[live]
    dist = np.abs(delta)
    split = (dist < node.radius) & ((node.radius - dist) / 2 > tol)
    test = live[~split]
    if test.size:
        s_center = delta[~split] > 0
        sig = np.zeros((test.size, n), dtype=np.int8)
        sig[np.arange(test.size), test] = np.where(s_center, -1, 1)  # the far side of each
        res = lay.lp(sig, np.repeat(node.B[None], test.size, 0), np.repeat(node.Binv[None], test.size, 0))
        empty = res.t <= tol
        stats.lps_empty += int(empty.sum())
        stats.thin_dropped += int(np.sum(empty & (res.t > walk.noise)))
        fixed[test[empty]] = np.where(s_center[empty], 1, 0)
        row[test[empty]] = res.t[empty] > 0
    return fixed, row


def _walk(lay: _Layer, order: np.ndarray, pos: int, F: Frontier, chunk: int) -> None:
    """Decide neurons order[pos:] for every sub-cell of F, then go below each sub-cell."""
    check = lay.walk.check
    while pos < len(order):
        check()
        F = _decide(lay, int(order[pos]), F)
        pos += 1
        if len(F) == 0:
            return
        if len(F) > chunk:
            half = len(F) // 2
            _walk(lay, order, pos, F.take(slice(0, half)), chunk)
            _walk(lay, order, pos, F.take(slice(half, None)), chunk)
            return
    _below(lay, F)


def _decide(lay: _Layer, j: int, F: Frontier) -> Frontier:
    """Split every sub-cell of F by neuron j's hyperplane: the children that hold a ball > tol."""
    walk = lay.walk
    tol, st = walk.tol, walk.stats
    a, cj = lay.Ahat[j], lay.chat[j]
    delta = F.centers @ a + cj  # signed distance of each ball's centre to the hyperplane
    dist = np.abs(delta)
    r = F.radii
    near_active = delta > 0
    split = (dist < r) & ((r - dist) / 2 > tol)
    parts = []
    if split.any():
        st.ball_splits += int(split.sum())
        S = F.take(split)
        parts.append(_child(S, j, near_active[split], a, dist[split]))  # the centre's side
        parts.append(_child(S, j, ~near_active[split], a, -dist[split]))  # the far side
    rest = np.flatnonzero(~split)
    if rest.size:
        R = F.take(rest)
        na = near_active[rest]
        dr = dist[rest]
        far_sig = R.sig.copy()
        far_sig[:, j] = np.where(na, -1, 1)
        res = lay.lp(far_sig, R.B, R.Binv)
        t = res.t
        far = np.where(t > tol, 1, np.where(t > 0, 0, -1))
        st.lps_empty += int(np.sum(far < 1))
        st.thin_dropped += int(np.sum((far == 0) & (t > walk.noise)))
        got = far == 1
        if got.any():
            parts.append(Frontier(res.U[got], t[got], far_sig[got], _set(R.states[got], j, ~na[got]),
                                  res.B[got], res.Binv[got]))
        # The centre's side: with its row unless the far side is empty and the hyperplane misses the ball.
        with_row = (far >= 0) | (dr < R.radii)
        if (~with_row).any():
            W = R.take(~with_row)
            parts.append(Frontier(W.centers, W.radii, W.sig, _set(W.states, j, na[~with_row]), W.B, W.Binv))
        if with_row.any():
            N = R.take(with_row)
            child = _child(N, j, na[with_row], a, dr[with_row])
            thin = child.radii <= tol
            if thin.any():
                # The largest ball left on the centre's side is too small: its own LP decides it.
                T = child.take(thin)
                rt = lay.lp(T.sig, T.B, T.Binv)
                ok = rt.t > tol
                st.lps_empty += int(np.sum(~ok))
                st.thin_dropped += int(np.sum(~ok & (rt.t > walk.noise)))
                parts.append(Frontier(rt.U[ok], rt.t[ok], T.sig[ok], T.states[ok], rt.B[ok], rt.Binv[ok]))
                child = child.take(~thin)
            parts.append(child)
    if not parts:
        return F.take(np.zeros(0, dtype=int))
    return Frontier.concat(parts)


def _set(states: np.ndarray, j: int, value: np.ndarray) -> np.ndarray:
    out = states.copy()
    out[:, j] = value
    return out


def _child(F: Frontier, j: int, active: np.ndarray, a: np.ndarray, depth: np.ndarray) -> Frontier:
    """The children of F's cells on side ``active`` of neuron j (unit normal ``a``), with the row, each
    with the largest ball inside its parent's ball on that side (``depth``: signed distance of the centre
    into that side; a ball already inside stays)."""
    r = F.radii
    cut = depth < r
    new_r = np.where(cut, (r + depth) / 2, r)
    shift = np.where(cut, new_r - depth, 0.0) * np.where(active, 1.0, -1.0)
    sig = F.sig.copy()
    sig[:, j] = np.where(active, 1, -1)
    return Frontier(F.centers + shift[:, None] * a, new_r, sig, _set(F.states, j, active), F.B, F.Binv)


def _below(lay: _Layer, F: Frontier) -> None:
    """Every sub-cell of F has all of layer k decided: go on to layer k+1 (or emit the region)."""
    visit = lay.visit
    if lay.layer.last:
        if visit.bulk:
            visit.regions(len(F), float(F.radii.min(initial=np.inf)))
            return
        for l in range(len(F)):
            visit.region(F.states[l], F.centers[l], float(F.radii[l]))
        return
    n, S = lay.layer.width, lay.S
    for l in range(len(F)):
        sig = F.sig[l]
        pres = np.flatnonzero(sig)
        shared = lay.node.shared.extend(-sig[pres, None] * lay.Ahat[pres], sig[pres] * lay.chat[pres])
        rank = np.full(n, -1)
        rank[pres] = np.arange(pres.size)
        B = F.B[l]
        B = np.where(B < S, B, S + rank[np.maximum(B - S, 0)])
        visit.child(F.states[l], Node(shared, F.centers[l], float(F.radii[l]), B, F.Binv[l]))
