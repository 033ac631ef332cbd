"""The ``batch`` geometry: a layer at a time inside one node, vectorised over the node's sub-cells.

The tree is the one of :mod:`lrmilp.enumeration` — depth first from layer to layer — but inside a node
(a cell P entering ReLU layer k) the layer's neurons are decided for the whole *frontier* of P's
sub-cells at once: one neuron, every sub-cell, a handful of numpy operations and one batch of
Chebyshev LPs (:func:`lrmilp.chebyshev.solve_batch`), instead of one Python call chain and one HiGHS
solve per sub-cell.  The decisions per sub-cell are the LP geometry's, in the same order of tests
(module docstring of :mod:`lrmilp.enumeration`): fixed sign, ball split (no LP), else one LP for the
far side, and one more only when the near side's ball falls to tol.  Each sub-cell carries the
dual-feasible basis of its latest LP (or its parent's), which warm-starts its next LP.

Bounded domains only (the dense LP starts from the box's rows) and no XOR constraints; the enumerator
uses the ``lp`` geometry otherwise.  Frontiers whose basis inverses exceed ``CHUNK_BYTES`` are split and walked one part
after the other, so memory stays bounded whatever the layer width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import enumeration  # at call time only: enumeration imports this module
from .lp.chebyshev import SharedRows, solve_batch

if TYPE_CHECKING:
    from .enumeration import TreeEnumerator

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


def root_node(enum: "TreeEnumerator", hyper: list[tuple[np.ndarray, float, bool]]) -> Node | None:
    """The node of the domain cut by ``hyper`` (unit normal, offset, state) rows, with its exact ball (one
    LP), or None when it holds no ball of radius > tol."""
    shared = SharedRows.of_domain(enum.rows, enum.rhs, enum.cap)
    if hyper:
        rows, rhs = zip(*(enumeration.TreeEnumerator._row(u, c, 1.0, st) for u, c, st in hyper))
        shared = shared.extend(np.array(rows), np.array(rhs))
    B, Binv = shared.first_basis()
    d = enum.domain.dim
    # No layer rows: one absent dummy row (sig 0) keeps the batch's arrays non-empty.
    res = solve_batch(shared, np.zeros((1, d)), np.zeros(1), np.zeros((1, 1), dtype=np.int8), B[None], Binv[None])
    enum.stats.lps += 1
    if res.t[0] <= enum.tol:
        return None
    return Node(shared, res.U[0], float(res.t[0]), res.B[0], res.Binv[0])


class _Layer:
    """What every sub-cell of one node shares for one layer: the node, the layer's unit hyperplanes."""

    def __init__(self, enum: "TreeEnumerator", k: int, M: np.ndarray, m: np.ndarray, node: Node) -> None:
        self.enum, self.k, self.node = enum, k, node
        self.setup = A, c, _, safe, _ = enum._layer_setup(k, M, m)
        self.A, self.c = A, c
        self.Ahat, self.chat = A / safe[:, None], c / safe
        self.bounds = enum._node_bounds(k, A, c)
        self.S = len(node.shared.h)
        self.off = enum.offsets[k]

    def lp(self, sig: np.ndarray, B: np.ndarray, Binv: np.ndarray):
        res = solve_batch(self.node.shared, self.Ahat, self.chat, sig, B, Binv)
        self.enum.stats.lps += len(B)
        self.enum.stats.lp_fallbacks += res.fallbacks
        return res


def explore(enum: "TreeEnumerator", k: int, M: np.ndarray, m: np.ndarray, node: Node) -> None:
    """Enumerate ReLU layer k and everything below inside ``node`` (input to layer k is M u + m)."""
    lay = _Layer(enum, k, M, m, node)
    fixed, keep_row = _plan(lay)
    sig0 = np.where(keep_row, np.where(fixed == 1, 1, -1), 0).astype(np.int8)
    frontier = Frontier(node.center[None, :].copy(), np.array([node.radius]), sig0[None, :],
                        (fixed == 1)[None, :].copy(), node.B[None, :].copy(), node.Binv[None].copy())
    live = np.flatnonzero(fixed < 0)
    # Peripheral hyperplanes first: one far from the cell's centre cuts few sub-cells (as in lp geometry).
    dist0 = np.abs(lay.Ahat[live] @ node.center + lay.chat[live])
    order = live[np.argsort(-dist0, kind="stable")]
    chunk = max(8, int(CHUNK_BYTES // node.Binv.nbytes))
    _walk(lay, order, 0, frontier, chunk)


def _plan(lay: _Layer) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron: 1/0 when its sign is settled on the whole node (bounds, constancy, or an LP proving
    the far side holds no ball > tol), -1 when sub-cells must decide; and whether a settled neuron keeps
    its row (a sliver of the other side exists).  As ``TreeEnumerator._plan_layer``."""
    enum, node = lay.enum, lay.node
    tol = enum.tol
    n = lay.Ahat.shape[0]
    fixed, row, thin = enumeration.settled_by_bounds(lay.setup, lay.bounds, tol, enum.noise)
    enum.stats.thin_dropped += thin
    enum.stats.bound_skips += int(np.sum(fixed >= 0))
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
        enum.stats.lps_empty += int(empty.sum())
        enum.stats.thin_dropped += int(np.sum(empty & (res.t > enum.noise)))
        fixed[test[empty]] = np.where(s_center[empty], 1, 0)
        row[test[empty]] = res.t[empty] > 0
    return fixed, row


def _walk(lay: _Layer, order: np.ndarray, pos: int, F: Frontier, chunk: int) -> None:
    """Decide neurons order[pos:] for every sub-cell of F, then go below each sub-cell."""
    enum = lay.enum
    while pos < len(order):
        enum._check()
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
    enum = lay.enum
    tol = enum.tol
    st = enum.stats
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
        st.thin_dropped += int(np.sum((far == 0) & (t > enum.noise)))
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
                st.thin_dropped += int(np.sum(~ok & (rt.t > enum.noise)))
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
    enum, k = lay.enum, lay.k
    off, n = lay.off, lay.A.shape[0]
    last = k + 1 == len(enum.layers)
    pattern = enum.pattern
    if last and enum.on_region is None and enum.max_regions is None:
        enum.stats.regions += len(F)
        enum.stats.min_margin = min(enum.stats.min_margin, float(F.radii.min(initial=np.inf)))
        return
    S = lay.S
    for l in range(len(F)):
        st = F.states[l]
        pattern[off:off + n] = st
        if last:
            enum._emit(F.centers[l], float(F.radii[l]))
            continue
        sig = F.sig[l]
        pres = np.flatnonzero(sig)
        shared = lay.node.shared.extend(-sig[pres, None] * lay.Ahat[pres], sig[pres] * lay.chat[pres])
        rank = np.full(n, -1)
        rank[pres] = np.arange(pres.size)
        B = F.B[l]
        B = np.where(B < S, B, S + rank[np.maximum(B - S, 0)])
        node = Node(shared, F.centers[l], float(F.radii[l]), B, F.Binv[l])
        enum._layer_batch(k + 1, lay.A * st[:, None], lay.c * st, node)
