"""The ``dual`` geometry: the driver of the compiled layer split (:mod:`lrmilp.cells.dualsplit`).

A node is a cell of the domain box entering a ReLU layer: the margin LP of its rows (a
:class:`lrmilp.lp.bvdual.State` with a dual feasible basis) and a witness point of margin > tol.  The
compiled search splits it by the layer's hyperplanes; each child of an inner layer becomes a node of
the next ReLU layer (its LP rebuilt from the node's rows plus the layer rows the child's search added,
its optimal basis installed, so the next layer's LPs start warm); each child of the last ReLU layer is
a region, emitted with its certified ball.  Bounded box domains (a box, or a slice's parameter box).
XOR constraints (lower-bound trials) are propagated inside the compiled search
(:func:`lrmilp.cells.dualsplit.par_assign`, the twin of :class:`lrmilp.parity.ParityState`).

A node whose LP the simplex cannot solve even from a cold start is redone by the ``lp`` geometry
(HiGHS), skipping the children the compiled search had already emitted (``lp_fallbacks``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import dualsplit as ds
from ..lp import bvdual as lp

if TYPE_CHECKING:
    from .dualhost import DualHost as TreeEnumerator

_WORKSPACES: dict[tuple, tuple] = {}
"""Workspaces by shape, kept for the life of the process: a lower bound's XOR trials build a new search
each, and allocating a workspace costs more than a small trial."""
OUT_CHILDREN = 256
"""Children a call of the compiled search returns at most (then it pauses: limits are checked)."""
MAX_LPS_PER_CALL = 2000
FUSE_MAX_WIDTH = 22
"""An inner layer of at most this many neurons directly before the last ReLU layer has its children
split by the last layer in the same compiled call (their states are recorded as bits, 2^width at most,
for the rare HiGHS redo): no Python work per child, which dominates when the inner layer is wide and
each child holds few regions (a digits 64-18-4-10 net: 1.8 ms a child in Python)."""
"""LPs a call of the compiled search solves at most before it pauses (Ctrl-C and time limits)."""


@dataclass
class Node:
    """A cell entering a layer: its LP (m rows) and a witness of margin t > tol."""

    S: tuple
    m: int
    w: np.ndarray
    t: float


class DualSearch:
    """Per enumerator: workspaces per layer depth (a node's search may pause while its children's
    searches run) and the LP bounds."""

    def __init__(self, enum: "TreeEnumerator") -> None:
        self.enum = enum
        dom = enum.domain
        self.lo, self.hi = np.ascontiguousarray(dom.lo, float), np.ascontiguousarray(dom.hi, float)
        self.d = dom.dim
        widths = [layer.out_size for layer in enum.layers if layer.relu]
        self.rows = sum(widths) + 1  # an LP holds at most every neuron's row
        self.t_cap = enum.cap
        diam = float(np.linalg.norm(self.hi - self.lo))
        self.t_lo = -ds.T_LO_FACTOR * (diam + float(np.max(np.abs(np.r_[self.lo, self.hi]))) + 1.0)
        self.ws: dict[int, tuple] = {}
        self._done: dict[int, np.ndarray] = {}
        self._last: dict[int, tuple] = {}
        self.xors = len(enum.par.rows) if enum.par is not None else 0
        self.words = max(1, (enum.net.neurons + 63) // 64)

    def workspace(self, k: int, n: int) -> tuple:
        """The workspace of layer k's nodes (one per layer: a paused node's state stays while the nodes
        of its children's layers run); shared by searches of the same shapes in this process."""
        key = (k, n)
        if key not in self.ws:
            shape = (k, self.d, n, self.rows, max(self.xors, 1), self.words)
            if shape not in _WORKSPACES:
                _WORKSPACES[shape] = ds.new_workspace(self.d, n, self.rows, OUT_CHILDREN, xors=self.xors,
                                                      neurons=self.enum.net.neurons)
            self.ws[key] = _WORKSPACES[shape]
        return self.ws[key]

    def last_layer(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Layer k's weights, bias and global bounds as the fused compiled call takes them (contiguous,
        writable: one compiled signature), made once per search rather than once per node."""
        if k not in self._last:
            layer = self.enum.layers[k]
            W = layer.matrix
            self._last[k] = (np.array(W.toarray() if hasattr(W, "toarray") else W, dtype=float, order="C"),
                             np.array(layer.bias, dtype=float), np.array(self.enum.bounds.lower[k], dtype=float),
                             np.array(self.enum.bounds.upper[k], dtype=float))
        return self._last[k]

    def done_buffer(self, n: int) -> np.ndarray:
        """Room for the states (as bits) of every child of a node of an n-neuron layer (n <= 22)."""
        buf = self._done.get(n)
        if buf is None:
            buf = self._done[n] = np.zeros(1 << n, np.int64)
        return buf

    def parity_arrays(self, state) -> tuple[np.ndarray, np.ndarray, int]:
        """A :class:`~lrmilp.parity.ParityState` as the compiled search's arrays (rows, parities, count);
        count -1 for no XORs."""
        K, W = max(self.xors, 1), self.words
        prow, ppar = np.zeros((K, W), np.uint64), np.zeros(K, np.uint8)
        if state is None:
            return prow, ppar, -1
        for r, (mask, par) in enumerate(state.rows.values()):
            for wd in range(W):
                prow[r, wd] = (mask >> (64 * wd)) & 0xFFFFFFFFFFFFFFFF
            ppar[r] = par
        return prow, ppar, len(state.rows)

    @staticmethod
    def parity_state(prow: np.ndarray, ppar: np.ndarray, pk: int):
        """The compiled search's arrays back as a :class:`~lrmilp.parity.ParityState` (None for -1)."""
        if pk < 0:
            return None
        from ..parity import ParityState
        rows = {}
        for r in range(pk):
            mask = sum(int(w) << (64 * i) for i, w in enumerate(prow[r]))
            rows[mask.bit_length() - 1] = (mask, int(ppar[r]))
        return ParityState(rows)

    # --- nodes ---------------------------------------------------------------------------------
    def root(self, hyper: list[tuple[np.ndarray, float, bool]]) -> Node | None:
        """The node of the box cut by ``hyper`` (unit normal, offset, state) rows, with its LP solved."""
        d = self.d
        S = lp.new_state(self.rows, d)
        G = np.zeros((len(hyper), d))
        r = np.zeros(len(hyper))
        for i, (a, c, st) in enumerate(hyper):
            sg = 1.0 if st else -1.0
            G[i], r[i] = -sg * a, sg * c
        lp.load_problem(S, G, r, np.ones(len(hyper)), self.lo, self.hi, self.t_lo, self.t_cap)
        centre = (self.lo + self.hi) / 2
        lp.init(S, centre)
        enum = self.enum
        enum.stats.lps += 1
        status = lp.solve(S, lp.MAX_PIVOTS)
        u = np.empty(d)
        if status == lp.OPTIMAL:
            lp.solution(S, u)
            t = min(lp.certify_point(S.G, S.r, S.w, len(hyper), self.lo, self.hi, u)[0], self.t_cap)
        else:
            t = -np.inf
        if not t > enum.tol:
            # Decide by the rule with HiGHS (one LP): the box cut by the rows holds a ball > tol or not.
            from ..lp.chebyshev import chebyshev_ball
            rows = np.vstack([G, enum.rows]) if len(G) else enum.rows
            rhs = np.r_[r, enum.rhs]
            tb, ub = chebyshev_ball(rows, rhs, self.t_cap)
            enum.stats.lp_fallbacks += status != lp.OPTIMAL
            if not tb > enum.tol:
                return None
            lp.init(S, ub)
            u, t = ub, tb
        return Node(S, len(hyper), u, float(t))

    def child(self, node: Node, A: np.ndarray, c: np.ndarray, sig: np.ndarray, rows: np.ndarray, nrow: int,
              basis: np.ndarray, status: np.ndarray, w: np.ndarray, t: float) -> Node:
        """The node of an inner layer's child: the node's rows plus the child's layer rows, in the order
        its search added them, with the child's basis installed."""
        S = lp.new_state(self.rows, self.d)
        lp.copy_into(S, node.S, 0)
        row = np.empty(self.d)
        for j in rows[:nrow]:
            ds.add_row(S, A, c, int(j), 1 if sig[j] > 0 else 0, row)
        m = node.m + nrow
        if not lp.install_basis(S, basis[:m], status[:self.d + 1 + m]):
            lp.init(S, w)  # a singular basis after rounding: cold start at the witness
        return Node(S, m, w.copy(), float(t))


def explore(enum: "TreeEnumerator", search: DualSearch, k: int, M: np.ndarray, m: np.ndarray, node: Node) -> None:
    """Enumerate ReLU layer k and every layer below inside ``node`` (the input to layer k is M u + m)."""
    from .base import settled_by_bounds
    setup = enum._layer_setup(k, M, m)
    A, c, _, safe, const = setup
    Ahat = np.ascontiguousarray(A / safe[:, None])
    chat = np.ascontiguousarray(c / safe)
    Ahat[const] = 0.0
    fixed, keep, thin = settled_by_bounds(setup, enum._node_bounds(k, A, c), enum.tol, enum.noise)
    enum.stats.thin_dropped += thin
    n = A.shape[0]
    last = k + 1 == len(enum.layers)
    ws, frames = search.workspace(k, n)
    ds.load_node(frames, node.S)
    prow, ppar, pk = search.parity_arrays(enum.par)
    ds.start(ws, frames, node.m, node.w, node.t, Ahat, chat, fixed, keep, prow, ppar, pk, enum.offsets[k])
    stats0 = ws.stats.copy()
    off = enum.offsets[k]
    pattern = enum.pattern
    emitted: list[np.ndarray] = []  # states of the children handed out (a HiGHS redo must skip them)
    bulk = last and enum.on_region is None and enum.max_regions is None and enum.par is None
    # A search for the first few regions (XOR trials, max_regions) goes depth first across layers: one
    # child a call, so no sibling is split before it is needed.
    few = enum.max_regions is not None and enum.max_regions <= OUT_CHILDREN
    max_out = 1 if few else OUT_CHILDREN
    fuse = (not last and k + 2 == len(enum.layers) and enum.layers[k + 1].relu and n <= FUSE_MAX_WIDTH
            and enum.on_region is None and enum.max_regions is None and enum.par is None)
    if fuse:
        W, bias, glo, ghi = search.last_layer(k + 1)
        A1, c1 = np.array(A, dtype=float, order="C"), np.array(c, dtype=float)
        ws2, frames2 = search.workspace(k + 1, W.shape[0])
        done = search.done_buffer(n)
        ndone = np.zeros(1, np.int64)
        totals = np.zeros(2, np.int64)
        margin = np.full(1, np.inf)
        stats2 = ws2.stats.copy()
    while True:
        if fuse and (enum.split_after is None or time.perf_counter() < enum.split_after):
            # Parallel tasks hand out the next layer's nodes once their budget is spent: from then on
            # the children go through Python (below), where that happens.
            status = ds.split_count(ws, frames, Ahat, chat, node.m, A1, c1, ws2, frames2, W, bias, glo, ghi,
                                    enum.tol, enum.noise, MAX_LPS_PER_CALL, totals, margin, done, ndone)
            _add_stats(enum, ws.stats - stats0)
            _add_stats(enum, ws2.stats - stats2)
            stats0, stats2 = ws.stats.copy(), ws2.stats.copy()
            enum.stats.regions += int(totals[0])
            enum.stats.thin_dropped += int(totals[1])
            enum.stats.min_margin = min(enum.stats.min_margin, float(margin[0]))
            totals[:] = 0
            if status == ds.CHILD:
                status = ds.PAUSED  # the child left in out_*[0] goes the ordinary way below
            elif ws.out_n[0]:
                raise AssertionError("split_count left a child without saying so")
        else:
            status = ds.split(ws, frames, Ahat, chat, node.m, enum.tol, enum.noise, last, MAX_LPS_PER_CALL,
                              max_out)
        _add_stats(enum, ws.stats - stats0)
        stats0 = ws.stats.copy()
        cnt = int(ws.out_n[0])
        ws.out_n[0] = 0
        emitted.append(ws.out_st[:cnt].astype(bool))
        if bulk and cnt and not ws.out_check[:cnt].any():
            # A last layer's regions with nobody to see them: count them, no per-region work.
            enum.stats.regions += cnt
            enum.stats.min_margin = min(enum.stats.min_margin, float(ws.out_t[:cnt].min()))
            cnt = 0
        for i in range(cnt):
            st = ws.out_st[i].astype(bool)
            if last:
                if ws.out_check[i]:
                    ok, centre, radius = _exact_ball(enum, search, node, Ahat, chat, ws.out_sig[i])
                    if not ok:
                        enum._thin(radius)
                        continue
                else:
                    centre, radius = ws.out_w[i], float(ws.out_t[i])
                pattern[off:off + n] = st
                if bulk:
                    enum.stats.regions += 1
                    if radius < enum.stats.min_margin:
                        enum.stats.min_margin = radius
                else:
                    enum._emit(centre.copy(), radius)
                continue
            pattern[off:off + n] = st
            child = search.child(node, Ahat, chat, ws.out_sig[i], ws.out_rows[i], int(ws.out_nrow[i]),
                                 ws.out_basis[i], ws.out_status[i], ws.out_w[i], float(ws.out_t[i]))
            par0 = enum.par
            enum.par = search.parity_state(ws.out_prow[i], ws.out_ppar[i], int(ws.out_pk[i]))
            try:
                enum._layer_dual(k + 1, A * st[:, None], c * st, child)
            finally:
                enum.par = par0
        enum._check()
        if status == ds.DONE:
            return
        if status == ds.FAILED:
            enum.stats.lp_fallbacks += 1
            skip = {st.tobytes() for part in emitted for st in part}
            if fuse:
                bits = ((done[:ndone[0], None] >> np.arange(n)) & 1).astype(bool)
                skip |= {st.tobytes() for st in bits}
            enum._redo_with_highs(k, M, m, node, skip)
            return


def _add_stats(enum: "TreeEnumerator", delta: np.ndarray) -> None:
    s = enum.stats
    s.lps += int(delta[ds.S_LPS])
    s.lps_empty += int(delta[ds.S_EMPTY])
    s.thin_dropped += int(delta[ds.S_THIN])
    s.bank_hits += int(delta[ds.S_BANK])
    s.ball_splits += int(delta[ds.S_STEP])
    s.bound_skips += int(delta[ds.S_SKIP])


def _exact_ball(enum: "TreeEnumerator", search: DualSearch, node: Node, Ahat: np.ndarray, chat: np.ndarray,
                sig: np.ndarray) -> tuple[bool, np.ndarray, float]:
    """The largest ball of a leaf whose certified ball was not above tol: one HiGHS Chebyshev LP on its
    rows (the node's, the layer's, the box's).  Rare: the leaf's margin lies within a factor 1 + sqrt(d)
    of tol."""
    from ..lp.chebyshev import chebyshev_ball
    m = node.m
    pres = np.flatnonzero(sig)
    rows = np.vstack([node.S.G[:m], -sig[pres, None] * Ahat[pres], enum.rows])
    rhs = np.concatenate([node.S.r[:m], sig[pres] * chat[pres], enum.rhs])
    enum.stats.lps += 1
    t, u = chebyshev_ball(rows, rhs, search.t_cap)
    if not np.isfinite(t):
        return False, u, t
    t = min(float((rhs - rows @ u).min()), search.t_cap)
    return t > enum.tol, u, t


def ball_radius_factor(d: int) -> float:
    """A margin above this times tol certifies a ball above tol (module docstring of dualsplit)."""
    return 1.0 + math.sqrt(d)
