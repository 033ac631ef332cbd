"""The steps of :mod:`lrmilp.cells.dualsplit`'s search: a node's start, the witness bank, rows, the
certified LP and the output of a child."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ...lp import bvdual as lp
from ._workspace import BANK_SIZE, S_LPS, S_PIVOTS, S_RETRY, Workspace


@njit(cache=True)
def plane_dist(A: np.ndarray, c: np.ndarray, j: int, u: np.ndarray) -> float:
    acc = c[j]
    for k in range(u.size):
        acc += A[j, k] * u[k]
    return acc


@njit(cache=True)
def load_node(frames, S) -> None:
    """Copy a node's LP state into the first frame (compiled: a typed list indexed from Python would
    compile its accessors in every process)."""
    lp.copy_into(frames[0], S, 0)


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
def bank_add(ws: Workspace, A: np.ndarray, c: np.ndarray, frames, m0: int, u: np.ndarray) -> None:
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
        ws.bank_D[b, j] = plane_dist(A, c, j, u)


@njit(cache=True)
def bank_find(ws: Workspace, f: int, j: int, side: int, tol: float) -> int:
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
def add_row(S, A: np.ndarray, c: np.ndarray, j: int, side: int, row: np.ndarray) -> None:
    """Add neuron j's row for ``side`` to S: active (1) a_j u + c_j >= t, i.e. -a_j u + t <= c_j;
    inactive (0) -(a_j u + c_j) >= t, i.e. a_j u + t <= -c_j."""
    sg = 1.0 if side == 1 else -1.0
    for k in range(A.shape[1]):
        row[k] = -sg * A[j, k]
    lp.add_row(S, row, sg * c[j], 1.0)


@njit(cache=True)
def note_row(ws: Workspace, f: int, j: int, side: int) -> None:
    ws.sig[f, j] = 1 if side == 1 else -1
    ws.rows[f, ws.nrow[f]] = j
    ws.nrow[f] += 1


@njit(cache=True)
def certified_lp(ws: Workspace, S, tol: float, hint: np.ndarray, u: np.ndarray, y: np.ndarray) -> tuple[bool, float, float]:
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
def margin_at(S, u: np.ndarray) -> float:
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
def emit(ws: Workspace, S, f: int, last: bool, lo: np.ndarray, hi: np.ndarray, tol: float, hw: float) -> None:
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
