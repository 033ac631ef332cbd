"""The compiled inner loop of the ``dual`` geometry: one cell split by one layer's hyperplanes.

A *node* is a cell P of the domain box (the rows of the ReLU neurons decided above it) entering a
ReLU layer with n hyperplanes a_j u + c_j = 0 (unit normals).  :func:`split` enumerates the
sub-cells of P cut by those hyperplanes — every assignment of the layer's neurons whose region within
P holds a point of margin > tol — by a depth-first search over the neurons, all in numba, with the
margin LPs of :mod:`lrmilp.lp.bvdual` (the box is the LP's variable bounds, the basis is the path's
hyperplane rows, so an LP costs O(m d) per pivot however large d is).

Per neuron j of a sub-cell Q with witness w (a point of Q, margin t to Q's rows):

1. settled for all of P (global and box bounds, or the node's plan below): one child, no LP;
2. the side of w is certified by w itself when w is more than tol from the hyperplane;
3. the far side: a banked witness of this node inside Q and beyond the hyperplane; else a step from w
   straight across the hyperplane (clipped to the box), whose margins are measured exactly; else one
   warm-started LP (Q's basis plus the far row).  Certified independently of the pivoting: the margin
   is recomputed at the returned point (``certify_point``); a "not above tol" answer must be confirmed
   by the Lagrangian bound of the LP's multipliers (``certify_bound``).  An LP the simplex cannot
   solve, or whose certificates disagree, is retried from a cold start; if that fails too the node
   ends with ``FAILED`` and the caller redoes it with HiGHS (counted as a fallback).
4. A row is added to a child only when the other side is not empty (bound >= -noise); a side that
   exists but holds no point of margin > tol is *thin* (counted in ``thin_dropped``).

Before the search, the node's *plan* tests each unsettled neuron once against the whole of P, so a
hyperplane that misses P costs one LP, not one per sub-cell.

The rule is the tree's (:mod:`lrmilp.tolerance`): a region counts iff it holds a ball of radius > tol.
A point w of the box with margin t to every row gives the ball centred at clip(w, lo + rho, hi - rho),
rho = min(t / (1 + sqrt(d)), half the box's narrowest side): each coordinate moves at most rho, so the
centre's margin is at least t - rho sqrt(d) >= rho.  So margin > tol is necessary (a ball's centre has
margin >= its radius) and margin > (1 + sqrt(d)) tol sufficient; a leaf whose ball is not above tol
is flagged (``out_check``) and decided by the caller with the exact Chebyshev LP.

The search pauses (status ``PAUSED``) when its output buffer is full or after ``max_lps`` LPs, so the
caller can check time limits, emit regions and resume; the whole state lives in the workspace.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit
from numba.typed import List

from ..lp import bvdual as lp

DONE, PAUSED, FAILED = 0, 1, 2
"""Statuses of :func:`split`: the node is finished; the output is full or the LP budget spent (call
again); an LP failed twice (the caller redoes the node with another geometry, skipping the children
already emitted)."""

# stats indices
S_LPS, S_EMPTY, S_THIN, S_BANK, S_STEP, S_SKIP, S_FALLBACK, S_PIVOTS, S_RETRY, S_IMPLY = range(10)
N_STATS = 10
IMPLY_MIN_COS = 0.5
"""Implications between two of a layer's hyperplanes are looked for only when their unit normals'
|cosine| exceeds this (nearly parallel hyperplanes, as trained nets have; others rarely imply)."""
IMPLY_STEPS = 24
"""Golden-section steps of the search for an implication's multiplier."""
BANK_SIZE = 64
"""Witnesses kept per node (a ring): checking one against a sub-cell costs O(n)."""
T_LO_FACTOR = 1e3
"""The LPs' t is bounded below by -T_LO_FACTOR * (box diameter + largest |offset|): never binding."""


class Workspace(NamedTuple):
    """The search state of one node (frames on the stack, the plan, the bank, the output)."""

    pos: np.ndarray  # (F,) int64: next position in ``order`` of each frame
    alive: np.ndarray  # (F,) bool
    nrow: np.ndarray  # (F,) int64: layer rows in the frame's LP
    w: np.ndarray  # (F, d) witnesses
    t: np.ndarray  # (F,) certified margins of the witnesses to every row of their frame
    st: np.ndarray  # (F, n) int8 states decided
    sig: np.ndarray  # (F, n) int8: +1 active row, -1 inactive row, 0 no row
    rows: np.ndarray  # (F, n) int64: the layer rows of the frame's LP, in the order added
    top: np.ndarray  # (1,) int64: index of the top frame; -1 when the node is done; -2 before the plan
    fixed: np.ndarray  # (n,) int8: 1/0 settled for the whole node, -1 not
    keep: np.ndarray  # (n,) bool: a settled neuron whose other side may hold a sliver keeps its row
    order: np.ndarray  # (n,) int64
    bank_u: np.ndarray  # (BANK_SIZE, d)
    bank_tn: np.ndarray  # (BANK_SIZE,) margins to the node's own rows
    bank_D: np.ndarray  # (BANK_SIZE, n) signed distances to the layer's hyperplanes
    bank_n: np.ndarray  # (1,) int64: entries written so far (ring)
    out_st: np.ndarray  # (C, n) int8
    out_sig: np.ndarray  # (C, n) int8
    out_rows: np.ndarray  # (C, n) int64
    out_nrow: np.ndarray  # (C,) int64
    out_w: np.ndarray  # (C, d) certified ball centres (last layer) or witnesses
    out_t: np.ndarray  # (C,) ball radii (last layer) or margins
    out_check: np.ndarray  # (C,) bool: the ball is not above tol: the caller decides exactly
    out_basis: np.ndarray  # (C, M) int64 (not last layer)
    out_status: np.ndarray  # (C, d + 1 + M) int8 (not last layer)
    out_n: np.ndarray  # (1,) int64
    out_frame: np.ndarray  # (C,) int64: the frame each child came from (its LP state is still there)
    stats: np.ndarray  # (N_STATS,) int64
    imp: np.ndarray  # (n, 2, n) int8: imp[j, s, k] = the state neuron k must take when j takes s, or -1
    forced: np.ndarray  # (F, n) int8: states implied in each frame by the neurons decided there, or -1
    # XOR constraints on the pattern (lrmilp.parity), per frame: rows of a fully reduced GF(2) system
    # over all neurons (bit i of prow[f, r] = neuron i; each row's pivot, its highest bit, occurs in
    # no other row), their parities, and how many rows are in use.  pk[f] = -1: no XORs.
    prow: np.ndarray  # (F, K, W) uint64
    ppar: np.ndarray  # (F, K) uint8
    pk: np.ndarray  # (F,) int64
    poff: np.ndarray  # (1,) int64: pattern index of this layer's neuron 0
    out_prow: np.ndarray  # (C, K, W) uint64 (not last layer)
    out_ppar: np.ndarray  # (C, K) uint8
    out_pk: np.ndarray  # (C,) int64


def new_workspace(d: int, n: int, capacity_rows: int, out: int, xors: int = 0, neurons: int = 1
                  ) -> tuple[Workspace, List]:
    """A workspace for layers of n neurons in dimension d whose LPs hold at most ``capacity_rows`` rows,
    with room for ``out`` children per call and ``xors`` XOR rows over ``neurons`` neurons, and its
    frames (LP states)."""
    F = n + 2
    M = capacity_rows
    K, W = max(xors, 1), max(1, (neurons + 63) // 64)
    ws = Workspace(np.zeros(F, np.int64), np.zeros(F, np.bool_), np.zeros(F, np.int64), np.zeros((F, d)),
                   np.zeros(F), np.zeros((F, n), np.int8), np.zeros((F, n), np.int8), np.zeros((F, n), np.int64),
                   np.full(1, -1, np.int64), np.zeros(n, np.int8), np.zeros(n, np.bool_), np.arange(n),
                   np.zeros((BANK_SIZE, d)), np.zeros(BANK_SIZE), np.zeros((BANK_SIZE, n)), np.zeros(1, np.int64),
                   np.zeros((out, n), np.int8), np.zeros((out, n), np.int8), np.zeros((out, n), np.int64),
                   np.zeros(out, np.int64), np.zeros((out, d)), np.zeros(out), np.zeros(out, np.bool_),
                   np.zeros((out, M), np.int64), np.zeros((out, d + 1 + M), np.int8), np.zeros(1, np.int64),
                   np.zeros(out, np.int64), np.zeros(N_STATS, np.int64), np.full((n, 2, n), -1, np.int8), np.full((F, n), -1, np.int8),
                   np.zeros((F, K, W), np.uint64), np.zeros((F, K), np.uint8), np.full(F, -1, np.int64),
                   np.zeros(1, np.int64), np.zeros((out, K, W), np.uint64), np.zeros((out, K), np.uint8),
                   np.full(out, -1, np.int64))
    frames = List()
    for _ in range(F):
        frames.append(lp.new_state(M, d))
    return ws, frames


# --- XOR propagation (the compiled twin of lrmilp.parity.ParityState) -------------------------------

@njit(cache=True)
def _top_bit(row: np.ndarray) -> int:
    """The highest set bit of a multi-word mask (-1 if none)."""
    for wd in range(row.size - 1, -1, -1):
        x = row[wd]
        if x != 0:
            b = 63
            while not (x >> np.uint64(b)) & np.uint64(1):
                b -= 1
            return wd * 64 + b
    return -1


@njit(cache=True)
def _has(row: np.ndarray, v: int) -> bool:
    return bool((row[v // 64] >> np.uint64(v % 64)) & np.uint64(1))


@njit(cache=True)
def par_forced(prow: np.ndarray, ppar: np.ndarray, k: int, v: int) -> int:
    """The state the XORs imply for neuron v (0/1), or -1: v is forced iff it is the only neuron of a
    row (in reduced form it is then that row's pivot)."""
    for r in range(k):
        row = prow[r]
        if _has(row, v):
            if _top_bit(row) != v:
                return -1  # v is no pivot: every row holding it holds its pivot too
            for wd in range(row.size):
                if wd != v // 64 and row[wd] != 0:
                    return -1
            if row[v // 64] == np.uint64(1) << np.uint64(v % 64):
                return int(ppar[r])
            return -1
    return -1


@njit(cache=True)
def par_assign(prow: np.ndarray, ppar: np.ndarray, k: int, v: int, val: int) -> int:
    """Decide neuron v = val in the reduced system (rows [:k]); returns the new row count, or -1 when
    the decision contradicts the XORs.  Keeps the form fully reduced (as ParityState.assign)."""
    wd, bit = v // 64, np.uint64(1) << np.uint64(v % 64)
    piv = -1
    for r in range(k):
        if prow[r, wd] & bit:
            if _top_bit(prow[r]) == v:
                piv = r
            else:  # v is not this row's pivot: drop it, the parity absorbs its value
                prow[r, wd] ^= bit
                ppar[r] ^= np.uint8(val)
    if piv < 0:
        return k
    prow[piv, wd] ^= bit
    ppar[piv] ^= np.uint8(val)
    p = _top_bit(prow[piv])
    if p < 0:
        if ppar[piv]:
            return -1  # 0 = 1
        # the row is spent: move the last row into its place
        k -= 1
        prow[piv, :] = prow[k]
        ppar[piv] = ppar[k]
        return k
    # a new pivot p: clear it from every other row
    pw, pb = p // 64, np.uint64(1) << np.uint64(p % 64)
    for r in range(k):
        if r != piv and prow[r, pw] & pb:
            for q in range(prow.shape[1]):
                prow[r, q] ^= prow[piv, q]
            ppar[r] ^= ppar[piv]
    return k


@njit(cache=True)
def _decide(ws: Workspace, f: int, j: int, s: int) -> bool:
    """Record neuron j's state s in frame f's XOR system; False when the XORs forbid it."""
    k = ws.pk[f]
    if k < 0:
        return True
    k2 = par_assign(ws.prow[f], ws.ppar[f], k, ws.poff[0] + j, s)
    if k2 < 0:
        return False
    ws.pk[f] = k2
    return True


@njit(cache=True)
def _want(ws: Workspace, f: int, j: int) -> int:
    """The state the XORs force on neuron j in frame f, or -1."""
    k = ws.pk[f]
    if k <= 0:
        return -1
    return par_forced(ws.prow[f], ws.ppar[f], k, ws.poff[0] + j)


@njit(cache=True)
def _dist(A: np.ndarray, c: np.ndarray, j: int, u: np.ndarray) -> float:
    acc = c[j]
    for k in range(u.size):
        acc += A[j, k] * u[k]
    return acc


@njit(cache=True)
def start(ws: Workspace, frames, m0: int, w0: np.ndarray, t0: float, A: np.ndarray, c: np.ndarray,
          fixed: np.ndarray, keep: np.ndarray, prow: np.ndarray, ppar: np.ndarray, pk: int, poff: int) -> None:
    """Begin a node: ``frames[0]`` holds its LP (m0 rows, a dual feasible basis), (w0, t0) a witness of
    margin t0 > tol; ``fixed``/``keep`` the neurons settled by bounds; (prow, ppar, pk) the node's
    reduced XOR system (pk = -1: none) and ``poff`` the pattern index of the layer's neuron 0.  Every
    other frame gets the node's rows (the search later copies only the rows below them)."""
    n = A.shape[0]
    for i in range(1, len(frames)):
        lp.copy_into(frames[i], frames[0], 0)
    ws.pk[0] = pk
    ws.poff[0] = poff
    if pk > 0:
        ws.prow[0, :pk] = prow[:pk]
        ws.ppar[0, :pk] = ppar[:pk]
    for j in range(n):
        ws.fixed[j] = fixed[j]
        ws.keep[j] = keep[j]
    ws.w[0, :] = w0
    ws.t[0] = t0
    ws.pos[0] = 0
    ws.alive[0] = True
    ws.nrow[0] = 0
    ws.st[0, :] = -1  # undecided
    ws.sig[0, :] = 0
    ws.bank_n[0] = 0
    ws.top[0] = -2 if pk < 0 else -3  # the plan comes first
    ws.out_n[0] = 0
    ws.forced[0, :] = -1


@njit(cache=True)
def _bank_add(ws: Workspace, A: np.ndarray, c: np.ndarray, frames, m0: int, u: np.ndarray) -> None:
    """Keep a certified point of the node: its margin to the node's rows and distances to the layer."""
    b = ws.bank_n[0] % BANK_SIZE
    ws.bank_n[0] += 1
    S = frames[0]
    G, r = S.G, S.r  # structref fields: read once, not in the loop
    tn = np.inf
    for i in range(m0):
        a = 0.0
        for k in range(u.size):
            a += G[i, k] * u[k]
        tn = min(tn, r[i] - a)
    ws.bank_u[b, :] = u
    ws.bank_tn[b] = tn
    for j in range(A.shape[0]):
        ws.bank_D[b, j] = _dist(A, c, j, u)


@njit(cache=True)
def _bank_find(ws: Workspace, f: int, j: int, side: int, tol: float) -> int:
    """A banked point inside frame f's sub-cell with margin > tol and beyond hyperplane j on ``side``
    (1 active), or -1."""
    n = ws.fixed.size
    cnt = min(ws.bank_n[0], BANK_SIZE)
    sg = 1.0 if side == 1 else -1.0
    best, best_t = -1, tol
    for b in range(cnt):
        tb = min(ws.bank_tn[b], sg * ws.bank_D[b, j])
        if tb <= best_t:
            continue
        for i in range(n):
            s = ws.sig[f, i]
            if s != 0:
                tb = min(tb, s * ws.bank_D[b, i])
                if tb <= best_t:
                    break
        if tb > best_t:
            best, best_t = b, tb
    return best


@njit(cache=True)
def _add_row(S, A: np.ndarray, c: np.ndarray, j: int, side: int, row: np.ndarray) -> None:
    """Add neuron j's row for ``side`` to S: active (1) a_j u + c_j >= t, i.e. -a_j u + t <= c_j;
    inactive (0) -(a_j u + c_j) >= t, i.e. a_j u + t <= -c_j."""
    sg = 1.0 if side == 1 else -1.0
    for k in range(A.shape[1]):
        row[k] = -sg * A[j, k]
    lp.add_row(S, row, sg * c[j], 1.0)


@njit(cache=True)
def _note_row(ws: Workspace, f: int, j: int, side: int) -> None:
    ws.sig[f, j] = 1 if side == 1 else -1
    ws.rows[f, ws.nrow[f]] = j
    ws.nrow[f] += 1


@njit(cache=True)
def _lp(ws: Workspace, S, tol: float, hint: np.ndarray, u: np.ndarray, y: np.ndarray) -> tuple[bool, float, float]:
    """Solve the LP S (warm) and certify it: (ok, margin, bound) with margin <= optimum <= bound, margin
    measured at u (clipped into the box) and bound from the multipliers, both independent of the
    pivoting; ok False when the simplex failed or the two disagree about "> tol" twice (the second
    time from a cold start at ``hint``)."""
    m = lp.num_rows(S)
    cap = S.ub[S.lo.size]
    ws.stats[S_LPS] += 1
    for attempt in range(2):
        status = lp.solve(S, lp.MAX_PIVOTS)
        ws.stats[S_PIVOTS] += lp.last_pivots(S)
        if status == lp.OPTIMAL:
            lp.solution(S, u)
            margin, _ = lp.certify_point(S.G, S.r, S.w, m, S.lo, S.hi, u)
            margin = min(margin, cap)
            lp.duals(S, y)
            bound = lp.certify_bound(S.G, S.r, S.w, m, S.lo, S.hi, cap, y)
            if margin > tol or bound <= tol:
                return True, margin, bound
        ws.stats[S_RETRY] += 1
        lp.init(S, hint)  # a cold start from a point of the cell
    return False, 0.0, 0.0


@njit(cache=True)
def _margin_at(S, u: np.ndarray) -> float:
    """The margin of u (inside the box) to every row of S."""
    m = lp.num_rows(S)
    G, r = S.G, S.r  # structref fields: read once, not in the loop
    out = np.inf
    for i in range(m):
        a = r[i]
        for k in range(u.size):
            a -= G[i, k] * u[k]
        out = min(out, a)
    return out


@njit(cache=True)
def _emit(ws: Workspace, S, f: int, last: bool, lo: np.ndarray, hi: np.ndarray, tol: float, hw: float) -> None:
    k = ws.out_n[0]
    d = lo.size
    ws.out_frame[k] = f
    ws.out_st[k, :] = ws.st[f]
    ws.out_sig[k, :] = ws.sig[f]
    ws.out_rows[k, :] = ws.rows[f]
    ws.out_nrow[k] = ws.nrow[f]
    t = ws.t[f]
    if last:
        # The certified ball: centre clip(w, lo + rho, hi - rho), radius rho (module docstring).
        rho = min(t / (1.0 + math.sqrt(d)), hw)
        for i in range(d):
            ws.out_w[k, i] = min(max(ws.w[f, i], lo[i] + rho), hi[i] - rho)
        ws.out_t[k] = rho
        ws.out_check[k] = not rho > tol
    else:
        ws.out_w[k, :] = ws.w[f]
        ws.out_t[k] = t
        ws.out_check[k] = False
        m = lp.num_rows(S)
        basis, status = S.basis, S.status
        ws.out_basis[k, :m] = basis[:m]
        ws.out_status[k, :d + 1 + m] = status[:d + 1 + m]
        pk = ws.pk[f]
        ws.out_pk[k] = pk
        if pk > 0:
            ws.out_prow[k, :pk] = ws.prow[f, :pk]
            ws.out_ppar[k, :pk] = ws.ppar[f, :pk]
    ws.out_n[0] = k + 1


@njit(cache=True)
def _gap_at(A: np.ndarray, c: np.ndarray, j: int, sj: float, k: int, sk: float, alpha: float, lo: np.ndarray,
            hi: np.ndarray) -> float:
    """min over the box of sk h_k(u) - alpha sj h_j(u)."""
    val = sk * c[k] - alpha * sj * c[j]
    for q in range(lo.size):
        coef = sk * A[k, q] - alpha * sj * A[j, q]
        val += min(coef * lo[q], coef * hi[q])
    return val


@njit(cache=True)
def _implied_gap(A: np.ndarray, c: np.ndarray, j: int, sj: float, k: int, sk: float, lo: np.ndarray,
                 hi: np.ndarray) -> float:
    """max over alpha in [0, 4] of min over the box of sk h_k(u) - alpha sj h_j(u) (unit hyperplanes):
    when positive, sj h_j >= 0 implies sk h_k > 0 in the whole box.  Concave in alpha: golden section,
    stopping as soon as a positive value is seen."""
    g = 0.6180339887498949
    a, b = 0.0, 4.0
    x1, x2 = b - g * (b - a), a + g * (b - a)
    f1 = _gap_at(A, c, j, sj, k, sk, x1, lo, hi)
    f2 = _gap_at(A, c, j, sj, k, sk, x2, lo, hi)
    for _ in range(IMPLY_STEPS):
        if f1 > 0.0 or f2 > 0.0:
            return max(f1, f2)
        if f1 < f2:
            a, x1, f1 = x1, x2, f2
            x2 = a + g * (b - a)
            f2 = _gap_at(A, c, j, sj, k, sk, x2, lo, hi)
        else:
            b, x2, f2 = x2, x1, f1
            x1 = b - g * (b - a)
            f1 = _gap_at(A, c, j, sj, k, sk, x1, lo, hi)
    return max(f1, f2)


@njit(cache=True)
def _implications(ws: Workspace, A: np.ndarray, c: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """imp[j, s, k]: neuron j in state s forces neuron k's state in the whole box (so in every sub-cell),
    found for nearly parallel pairs by a one-multiplier bound over the box (O(d) per multiplier)."""
    n, d = A.shape
    ws.imp[:, :, :] = -1
    for j in range(n):
        if ws.fixed[j] >= 0:
            continue
        for k in range(n):
            if k == j or ws.fixed[k] >= 0:
                continue
            cos = 0.0
            for q in range(d):
                cos += A[j, q] * A[k, q]
            if abs(cos) < IMPLY_MIN_COS:
                continue
            for s in range(2):
                sj = 1.0 if s == 1 else -1.0
                sk = sj if cos > 0 else -sj
                if _implied_gap(A, c, j, sj, k, sk, lo, hi) > 0.0:
                    ws.imp[j, s, k] = 1 if sk > 0 else 0


@njit(cache=True)
def _imply(ws: Workspace, f: int, j: int, s: int) -> None:
    """Neuron j took state s in frame f: record the states it forces on the neurons still open."""
    n = ws.fixed.size
    for k in range(n):
        v = ws.imp[j, s, k]
        if v >= 0 and ws.forced[f, k] < 0:
            ws.forced[f, k] = v


@njit(cache=True)
def _plan(ws: Workspace, frames, A: np.ndarray, c: np.ndarray, m0: int, tol: float, noise: float,
          row: np.ndarray, u: np.ndarray, y: np.ndarray, test: bool) -> bool:
    """Test each unsettled neuron once against the whole node: a far side that holds no point of margin
    > tol settles the neuron for every sub-cell; far witnesses go to the bank.  Then order the neurons:
    settled first, then far from the node's witness first.  False if an LP failed."""
    n = A.shape[0]
    S0 = frames[0]
    scratch = frames[n + 1]
    w0 = ws.w[0]
    key = np.empty(n)  # how deep the smaller side of each hyperplane is (known lower bounds)
    for j in range(n):
        if ws.fixed[j] >= 0:
            ws.stats[S_SKIP] += 1
            key[j] = -np.inf
            continue
        delta = _dist(A, c, j, w0)
        near = 1 if delta > 0 else 0
        key[j] = -abs(delta)
        if not test:
            continue
        b = _bank_find(ws, 0, j, 1 - near, tol)
        if b >= 0:
            ws.stats[S_BANK] += 1
            continue
        lp.copy_into(scratch, S0, 0)
        _add_row(scratch, A, c, j, 1 - near, row)
        ok, margin, bound = _lp(ws, scratch, tol, w0, u, y)
        if not ok:
            return False
        if margin > tol:
            _bank_add(ws, A, c, frames, m0, u)
        else:
            ws.stats[S_EMPTY] += 1
            if margin > noise:
                ws.stats[S_THIN] += 1
            ws.fixed[j] = near
            ws.keep[j] = bound >= -noise
            key[j] = -np.inf
    _implications(ws, A, c, S0.lo, S0.hi)
    # Settled neurons first; then hyperplanes far from the node's witness first: a peripheral one cuts
    # few sub-cells, so deciding it while they are few tests it on few (measured: 1.57 LPs per region
    # on a random 64-11-11 net, against 1.72 for smallest-cap-first and 1.77 for largest-cap-first).
    ws.order[:] = np.argsort(key)
    return True


@njit(cache=True)
def split(ws: Workspace, frames, A: np.ndarray, c: np.ndarray, m0: int, tol: float, noise: float,
          last: bool, max_lps: int, max_out: int) -> int:
    """Run (or resume) the search of the node begun by :func:`start`; children go to the ``out_*``
    arrays (the caller reads ``out_n[0]`` of them and resets it to 0 between calls); the search pauses
    after ``max_out`` children or ``max_lps`` LPs.  Returns DONE, PAUSED or FAILED."""
    n, d = A.shape
    S0 = frames[0]
    lo, hi = S0.lo, S0.hi
    hw = np.inf
    for i in range(d):
        hw = min(hw, 0.5 * (hi[i] - lo[i]))
    cap_out = min(ws.out_st.shape[0], max_out)
    u = np.empty(d)
    v = np.empty(d)
    row = np.empty(d)
    y = np.empty(S0.G.shape[0])
    lps0 = ws.stats[S_LPS]
    if ws.top[0] <= -2:
        # -2: plan with one LP per neuron; -3: order only (a search for the first region under XORs
        # rarely meets most sub-cells, so testing every neuron against the whole node would not pay)
        if not _plan(ws, frames, A, c, m0, tol, noise, row, u, y, ws.top[0] == -2):
            return FAILED
        ws.top[0] = 0
    while ws.top[0] >= 0:
        if ws.out_n[0] >= cap_out or ws.stats[S_LPS] - lps0 >= max_lps:
            return PAUSED
        f = ws.top[0]
        if not ws.alive[f]:
            ws.top[0] -= 1
            continue
        Sf = frames[f]
        p = ws.pos[f]
        if p == n:
            _emit(ws, Sf, f, last, lo, hi, tol, hw)
            ws.alive[f] = False
            ws.top[0] -= 1
            continue
        wf = ws.w[f]
        # Next: a neuron settled for the node or forced here (free), else the hyperplane farthest from
        # this sub-cell's witness (a peripheral one cuts few of the sub-cells to come).
        j = -1
        for q in range(n):
            jj = ws.order[q]
            if ws.st[f, jj] < 0 and (ws.fixed[jj] >= 0 or ws.forced[f, jj] >= 0):
                j = jj
                break
        if j < 0:
            best = -1.0
            for jj in range(n):
                if ws.st[f, jj] < 0:
                    dd = abs(_dist(A, c, jj, wf))
                    if dd > best:
                        best = dd
                        j = jj
        ws.pos[f] = p + 1
        if ws.fixed[j] >= 0:
            s = int(ws.fixed[j])
            ws.st[f, j] = s
            if not _decide(ws, f, j, s):
                ws.alive[f] = False  # the XORs rule this sub-cell out
                continue
            if ws.keep[j]:
                _add_row(Sf, A, c, j, s, row)
                _note_row(ws, f, j, s)
                sd = _dist(A, c, j, wf) * (1.0 if s == 1 else -1.0)
                if sd < ws.t[f]:
                    ws.t[f] = sd
                if not ws.t[f] > tol:  # the witness is too close to the row: one LP finds another
                    ok, margin, bound = _lp(ws, Sf, tol, wf, u, y)
                    if not ok:
                        return FAILED
                    if margin > tol:
                        ws.w[f, :] = u
                        ws.t[f] = margin
                    else:
                        ws.stats[S_EMPTY] += 1
                        if margin > noise:
                            ws.stats[S_THIN] += 1
                        ws.alive[f] = False
            _imply(ws, f, j, s)
            continue
        if ws.forced[f, j] >= 0:
            # A neuron decided above forces this one in the whole box: its other side is empty here.
            s = int(ws.forced[f, j])
            ws.st[f, j] = s
            ws.stats[S_IMPLY] += 1
            if not _decide(ws, f, j, s):
                ws.alive[f] = False
                continue
            _imply(ws, f, j, s)
            continue
        delta = _dist(A, c, j, wf)
        near = 1 if delta > 0 else 0
        far = 1 - near
        sfar = 1.0 if far == 1 else -1.0
        dist = abs(delta)
        g = f + 1
        # The XORs may force this neuron (one side only) or rule a side out once decided.
        want = _want(ws, f, j)
        far_allowed = want < 0 or want == far
        near_allowed = want < 0 or want == near
        if far_allowed and ws.pk[f] >= 0:
            pk = ws.pk[f]
            ws.pk[g] = pk
            ws.prow[g, :pk] = ws.prow[f, :pk]
            ws.ppar[g, :pk] = ws.ppar[f, :pk]
            far_allowed = _decide(ws, g, j, far)
        elif ws.pk[f] < 0:
            ws.pk[g] = -1
        # --- the far side: a banked witness, a step across the hyperplane, or one LP (into u) ---
        far_ok = False
        far_margin = 0.0
        far_bound = np.inf
        if far_allowed:
            b = _bank_find(ws, f, j, far, tol)
            if b >= 0:
                ws.stats[S_BANK] += 1
                far_ok = True
                u[:] = ws.bank_u[b]
                far_margin = min(ws.bank_tn[b], sfar * ws.bank_D[b, j])
                for i in range(n):
                    if ws.sig[f, i] != 0:
                        far_margin = min(far_margin, ws.sig[f, i] * ws.bank_D[b, i])
            elif ws.t[f] > dist + 2 * tol:
                # Step from w across the hyperplane along the normal projected onto the box's tangent
                # cone at w (coordinates at a bound that the normal would push outwards stay put): a
                # unit of progress towards the far side costs 1/|v| of distance, so the margins to the
                # cell's rows fall by at most that; the step balances them against the far margin.
                # Every margin is then measured exactly at the point: the certificate does not rely
                # on this arithmetic.
                vv = 0.0
                for k in range(d):
                    ak = sfar * A[j, k]
                    if (ak < 0.0 and wf[k] <= lo[k]) or (ak > 0.0 and wf[k] >= hi[k]):
                        v[k] = 0.0
                    else:
                        v[k] = ak
                        vv += ak * ak
                vn = math.sqrt(vv)
                if vn > 0.0:
                    mu = (ws.t[f] * vn - dist) / (vn + 1.0)
                    if mu > tol:
                        alpha = (dist + mu) / vv
                        for k in range(d):
                            u[k] = min(max(wf[k] + alpha * v[k], lo[k]), hi[k])
                        mf = min(_margin_at(Sf, u), sfar * _dist(A, c, j, u))
                        if mf > tol:
                            ws.stats[S_STEP] += 1
                            far_ok = True
                            far_margin = mf
            lp.copy_into(frames[g], Sf, m0)
            _add_row(frames[g], A, c, j, far, row)
            ws.st[g, :] = ws.st[f]
            ws.sig[g, :] = ws.sig[f]
            ws.rows[g, :] = ws.rows[f]
            ws.nrow[g] = ws.nrow[f]
            _note_row(ws, g, j, far)
            ws.st[g, j] = far
            ws.forced[g, :] = ws.forced[f]
            _imply(ws, g, j, far)
            if not far_ok:
                ok, margin, bound = _lp(ws, frames[g], tol, wf, u, y)
                if not ok:
                    return FAILED
                if margin > tol:
                    far_ok = True
                    far_margin = margin
                    _bank_add(ws, A, c, frames, m0, u)
                else:
                    ws.stats[S_EMPTY] += 1
                    if margin > noise:
                        ws.stats[S_THIN] += 1
                    far_bound = bound
        # --- the near side stays in frame f: its row unless the far side is known to be empty ---
        if not near_allowed:
            ws.alive[f] = False
        else:
            if far_ok or far_bound >= -noise:
                _add_row(Sf, A, c, j, near, row)
                _note_row(ws, f, j, near)
            ws.st[f, j] = near
            _decide(ws, f, j, near)  # not forced the other way, so consistent
            _imply(ws, f, j, near)
            if dist < ws.t[f]:
                ws.t[f] = dist
            if not ws.t[f] > tol:
                ok, margin, bound = _lp(ws, Sf, tol, wf, v, y)
                if not ok:
                    return FAILED
                if margin > tol:
                    ws.w[f, :] = v
                    ws.t[f] = margin
                else:
                    ws.stats[S_EMPTY] += 1
                    if margin > noise:
                        ws.stats[S_THIN] += 1
                    ws.alive[f] = False
        if far_ok:
            ws.w[g, :] = u
            ws.t[g] = far_margin
            ws.pos[g] = p + 1
            ws.alive[g] = True
            ws.top[0] = g
    return DONE


# --- two layers in one call: an inner layer's children split by the last layer, counted in bulk ------

ZERO_TOL = 1e-10
"""As lrmilp.cells.base.ZERO_TOL: a pre-activation is constant on a node when its gradient's norm is
at most ZERO_TOL times the sum of |W_ji| times the norms of its inputs' gradients."""
CHILD, = (3,)
"""Status of :func:`split_count`: the child in ``out_*[0]`` must be handled by the caller (its last
layer needs an exact ball check or an LP failed there); call again after it."""


@njit(cache=True)
def _last_layer(W: np.ndarray, b: np.ndarray, st: np.ndarray, A1: np.ndarray, c1: np.ndarray,
                glo: np.ndarray, ghi: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float, noise: float,
                A2: np.ndarray, c2: np.ndarray, Ah: np.ndarray, ch: np.ndarray, fixed: np.ndarray,
                keep: np.ndarray) -> int:
    """The last layer's hyperplanes in a child of state ``st``: A2 u + c2 = W (st * (A1 u + c1)) + b,
    unit rows (Ah, ch), and the neurons settled on the box (as lrmilp.cells.base.settled_by_bounds:
    constant, or the other side thinner than tol by the global bounds met with the box's range).
    Returns the number of possibly thin slivers."""
    n2, n1 = W.shape
    d = A1.shape[1]
    rn = np.empty(n1)
    for i in range(n1):
        acc = 0.0
        if st[i]:
            for k in range(d):
                acc += A1[i, k] * A1[i, k]
        rn[i] = math.sqrt(acc)
    thin = 0
    for j in range(n2):
        cj = b[j]
        for k in range(d):
            A2[j, k] = 0.0
        scale = 0.0
        for i in range(n1):
            if st[i]:
                wji = W[j, i]
                if wji != 0.0:
                    cj += wji * c1[i]
                    for k in range(d):
                        A2[j, k] += wji * A1[i, k]
                    scale += abs(wji) * rn[i]
        c2[j] = cj
        nrm = 0.0
        blo = cj
        bhi = cj
        for k in range(d):
            a = A2[j, k]
            nrm += a * a
            if a > 0.0:
                blo += a * lo[k]
                bhi += a * hi[k]
            else:
                blo += a * hi[k]
                bhi += a * lo[k]
        nrm = math.sqrt(nrm)
        blo = max(blo, glo[j])
        bhi = min(bhi, ghi[j])
        keep[j] = False
        if nrm <= ZERO_TOL * max(scale, 1e-300):
            fixed[j] = 1 if cj > 0.0 else 0
            for k in range(d):
                Ah[j, k] = 0.0
            ch[j] = 0.0
            continue
        for k in range(d):
            Ah[j, k] = A2[j, k] / nrm
        ch[j] = cj / nrm
        if bhi <= tol * nrm:
            fixed[j] = 0
            keep[j] = bhi > 0.0
            thin += bhi > noise * nrm
        elif -blo <= tol * nrm:
            fixed[j] = 1
            keep[j] = blo < 0.0
            thin += -blo > noise * nrm
        else:
            fixed[j] = -1
    return thin


@njit(cache=True)
def split_count(ws: Workspace, frames, A: np.ndarray, c: np.ndarray, m0: int, A1: np.ndarray, c1: np.ndarray,
                ws2: Workspace, frames2, W: np.ndarray, b: np.ndarray, glo: np.ndarray, ghi: np.ndarray,
                tol: float, noise: float, max_lps: int, totals: np.ndarray, margin: np.ndarray,
                done: np.ndarray, ndone: np.ndarray) -> int:
    """Split the node of ``ws`` by its layer (unit rows A, c; the same layer unnormalised A1, c1) and
    every child at once by the last ReLU layer (W, b; global bounds glo, ghi), counting the regions:
    ``totals`` [regions, thin slivers] and ``margin[0]`` (smallest certified ball) grow, and each child
    counted here is recorded in ``done[:ndone[0]]`` (its states as bits) for a HiGHS redo of the node.
    A child whose last layer needs the caller (an uncertified ball, a failed LP) is left in
    ``out_*[0]``: status CHILD.  Returns DONE, PAUSED (after about ``max_lps`` LPs), FAILED (the node's
    own search) or CHILD."""
    n2 = W.shape[0]
    d = A.shape[1]
    A2 = np.empty((n2, d))
    c2 = np.empty(n2)
    Ah = np.empty((n2, d))
    ch = np.empty(n2)
    fixed = np.empty(n2, np.int8)
    keep = np.empty(n2, np.bool_)
    lps0 = ws.stats[S_LPS] + ws2.stats[S_LPS]
    S0 = frames[0]
    lo, hi = S0.lo, S0.hi
    noprow = np.zeros((1, 1), np.uint64)
    nopar = np.zeros(1, np.uint8)
    while True:
        if ws.stats[S_LPS] + ws2.stats[S_LPS] - lps0 >= max_lps:
            return PAUSED
        status = split(ws, frames, A, c, m0, tol, noise, False, max_lps, 1)
        if ws.out_n[0] == 0:
            return status
        f = ws.out_frame[0]
        st = ws.out_st[0]
        thin = _last_layer(W, b, st, A1, c1, glo, ghi, lo, hi, tol, noise, A2, c2, Ah, ch, fixed, keep)
        lp.copy_into(frames2[0], frames[f], 0)
        m2 = lp.num_rows(frames2[0])  # the child's own rows: fixed, while frame 0 grows in the search
        start(ws2, frames2, m2, ws.out_w[0], ws.out_t[0], Ah, ch, fixed, keep, noprow, nopar, -1, 0)
        count = 0
        best = np.inf
        handed = False
        while True:
            s2 = split(ws2, frames2, Ah, ch, m2, tol, noise, True, 1 << 30, ws2.out_st.shape[0])
            k = ws2.out_n[0]
            ws2.out_n[0] = 0
            for i in range(k):
                if ws2.out_check[i]:
                    handed = True
                best = min(best, ws2.out_t[i])
            count += k
            if s2 == FAILED or handed:
                handed = True
                break
            if s2 == DONE:
                break
        if handed:
            return CHILD  # the child stays in out_*[0]: the caller splits it (its counts here are dropped)
        ws.out_n[0] = 0
        key = 0
        for i in range(st.size):
            if st[i]:
                key |= 1 << i
        done[ndone[0]] = key
        ndone[0] += 1
        totals[0] += count
        totals[1] += thin
        margin[0] = min(margin[0], best)
        if status == DONE:
            return DONE
        if status == FAILED:
            return FAILED
