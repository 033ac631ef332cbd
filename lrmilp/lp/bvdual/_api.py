"""The public kernel of :mod:`lrmilp.lp.bvdual`: load, warm start, copy, solve, read; certification
independent of the pivoting; a Python convenience."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._state import (BASIC, FASTMATH, F_PTOL, I_CLEANUP, I_LAST, I_M, I_PERTURBED, I_PIVOTS, I_PRIMAL,
                     MAX_PIVOTS, MAX_RESTARTS, NUMERICAL_TROUBLE, OPTIMAL, PRIMAL_FEAS, State, new_state)
from ._basis import (cold_start, fill_structural, flip_wrong_signs, primal_infeasibility, recompute_duals,
                     recompute_primal, refactor, store_row, t_position, true_costs)
from ._phases import dual_phase, primal_phase


# ---------------------------------------------------------------------------------------------------
# Public kernel

@njit(cache=True, fastmath=FASTMATH)
def load_problem(S: State, G: np.ndarray, r: np.ndarray, w: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 t_lo: float, t_cap: float) -> None:
    """Store an LP with m0 = len(r) rows (G (m0, d), r, w (m0,)) and its bounds, reset the counters
    and cold start (every u_k at lo_k; :func:`init` restarts with a hint)."""
    Slo, Shi, lb, ub, ipar = S.lo, S.hi, S.lb, S.ub, S.ipar
    d = Slo.size
    m0 = r.size
    if m0 > S.G.shape[0]:
        raise ValueError("load_problem: more rows than the state's capacity")
    if lo.size != d or hi.size != d or (m0 > 0 and G.shape[1] != d) or w.size != m0:
        raise ValueError("load_problem: dimension mismatch")
    if not (np.isfinite(t_lo) and np.isfinite(t_cap) and t_lo <= t_cap):
        raise ValueError("load_problem: t_lo <= t_cap, both finite, is required")
    for k in range(d):
        if not (np.isfinite(lo[k]) and np.isfinite(hi[k]) and lo[k] <= hi[k]):
            raise ValueError("load_problem: lo <= hi, all finite, is required")
    for i in range(m0):
        if not (np.isfinite(r[i]) and np.isfinite(w[i]) and np.all(np.isfinite(G[i]))):
            raise ValueError("load_problem: rows must be finite")
    xscale = 0.0
    for k in range(d):
        Slo[k] = lo[k]
        Shi[k] = hi[k]
        xscale = max(xscale, abs(lo[k]), abs(hi[k]))
    if not xscale > 0.0:
        xscale = 1.0
    lb[d] = t_lo
    ub[d] = t_cap
    S.fpar[F_PTOL] = PRIMAL_FEAS * xscale
    for i in range(m0):
        store_row(S, i, G[i], r[i], w[i])
    ipar[:] = 0
    ipar[I_M] = m0
    cold_start(S, np.empty(0))


@njit(cache=True, fastmath=FASTMATH)
def init(S: State, hint: np.ndarray) -> None:
    """Cold start on the stored rows: all slacks basic, t at t_cap, u_k at the bound nearest hint[k]
    (``hint`` of size d; any other size, e.g. ``np.empty(0)``: every u_k at lo_k)."""
    cold_start(S, hint)


@njit(cache=True, fastmath=FASTMATH)
def add_row(S: State, g: np.ndarray, rhs: float, wt: float) -> None:
    """Append the row g . u + wt * t <= rhs; its slack enters the basis (O(m^2 + d)).  Reduced costs
    are unchanged (the new multiplier is 0), so a dual feasible basis stays dual feasible."""
    G, Bi, basis, ipar = S.G, S.Binv, S.basis, S.ipar
    d = G.shape[1]
    m = ipar[I_M]
    if m >= G.shape[0]:
        raise ValueError("add_row: state is full")
    if g.size != d or not (np.isfinite(rhs) and np.isfinite(wt) and np.all(np.isfinite(g))):
        raise ValueError("add_row: a finite row of size d is required")
    fill_structural(S, False)  # current u, t (before the new row exists)
    store_row(S, m, g, rhs, wt)
    wm = S.w[m]
    for k in range(m + 1):
        Bi[m, k] = 0.0
        Bi[k, m] = 0.0
    Bi[m, m] = 1.0
    # B_new = [[B, 0], [a_B, 1]]  ->  inverse [[B^-1, 0], [-a_B B^-1, 1]]
    for i in range(m):
        j = basis[i]
        if j < d:
            coef = G[m, j]
        elif j == d:
            coef = wm
        else:
            coef = 0.0
        if coef != 0.0:
            for k in range(m):
                Bi[m, k] -= coef * Bi[i, k]
    xs = S.xs
    acc = S.r[m] - wm * xs[d]
    for k in range(d):
        acc -= G[m, k] * xs[k]
    S.xB[m] = acc
    basis[m] = d + 1 + m
    S.status[d + 1 + m] = BASIC
    S.cost[d + 1 + m] = 0.0
    S.dj[d + 1 + m] = 0.0
    ipar[I_M] = m + 1


@njit(cache=True, fastmath=FASTMATH)
def copy_into(dst: State, src: State, first_row: int) -> None:
    """dst := src (the m-row part only; dst's statistics counters ``I_PIVOTS``... are kept).  Rows
    ``[:first_row]`` of G, r, w are not copied: 0 for a full copy, the parent's row count when restoring
    a parent into a state that descends from it (same rows).  O(m^2 + (m - first_row) d + d)."""
    sG, dG, sipar, dipar = src.G, dst.G, src.ipar, dst.ipar
    d = sG.shape[1]
    m = sipar[I_M]
    if m > dG.shape[0] or dG.shape[1] != d:
        raise ValueError("copy_into: destination too small or of another dimension")
    sr, sw, ss, dr, dw, ds = src.r, src.w, src.rowscale, dst.r, dst.w, dst.rowscale
    for i in range(first_row, m):
        for k in range(d):
            dG[i, k] = sG[i, k]
        dr[i] = sr[i]
        dw[i] = sw[i]
        ds[i] = ss[i]
    slb, sub, dlb, dub = src.lb, src.ub, dst.lb, dst.ub
    for k in range(d + 1):
        dlb[k] = slb[k]
        dub[k] = sub[k]
    dst.fpar[:] = src.fpar
    for k in range(I_PIVOTS):  # the basis-defining entries; dst's statistics keep accumulating
        dipar[k] = sipar[k]
    sB, dB, sbas, dbas, sx, dx = src.Binv, dst.Binv, src.basis, dst.basis, src.xB, dst.xB
    for i in range(m):
        dbas[i] = sbas[i]
        dx[i] = sx[i]
        for k in range(m):
            dB[i, k] = sB[i, k]
    sst, dst_, sc, dc, sd, dd = src.status, dst.status, src.cost, dst.cost, src.dj, dst.dj
    for j in range(d + 1 + m):
        dst_[j] = sst[j]
        dc[j] = sc[j]
        dd[j] = sd[j]


@njit(cache=True, fastmath=FASTMATH)
def solve(S: State, max_pivots: int) -> int:
    """Re-optimise from the state's basis (dual feasible, or pending clean-up) with at most
    ``max_pivots`` pivots (e.g. MAX_PIVOTS); returns OPTIMAL, ITERATION_LIMIT, INFEASIBLE or
    NUMERICAL_TROUBLE.  Each pivot costs O(m d + m^2)."""
    ipar = S.ipar
    ptol = S.fpar[F_PTOL]
    pivots = 0
    restarts = 0
    result = NUMERICAL_TROUBLE
    for _ in range(4):  # dual phase, clean-up; again only if the clean-up lost primal feasibility
        result, pv, rs = dual_phase(S, max_pivots - pivots, MAX_RESTARTS - restarts)
        pivots += pv
        restarts += rs
        if result != OPTIMAL:
            break
        if ipar[I_PERTURBED] == 1:
            true_costs(S)
            recompute_duals(S)
            ipar[I_PERTURBED] = 0
            ipar[I_CLEANUP] = 1
        if ipar[I_CLEANUP] == 0:
            break
        result, pv = primal_phase(S, max_pivots - pivots)
        pivots += pv
        ipar[I_PRIMAL] += pv
        if result != OPTIMAL:
            break
        ipar[I_CLEANUP] = 0
        if primal_infeasibility(S) <= ptol:
            break
        # rounding pushed a basic variable out of bounds during the clean-up: back to the dual phase
        if flip_wrong_signs(S) > 0:
            recompute_primal(S)
        result = NUMERICAL_TROUBLE
    ipar[I_LAST] = pivots
    return result


@njit(cache=True, fastmath=FASTMATH)
def solution(S: State, u_out: np.ndarray) -> float:
    """u_out[:d] := the basic solution's u; returns its t (nonbasic at bounds, basic from xB)."""
    fill_structural(S, False)
    xs = S.xs
    d = xs.size - 1
    for k in range(d):
        u_out[k] = xs[k]
    return xs[d]


@njit(cache=True, fastmath=FASTMATH)
def duals(S: State, y_out: np.ndarray) -> None:
    """y_out[:m] := the basis's row multipliers y = c_B B^-1 of max t (true costs) for the caller's
    (unscaled) rows: row ``t`` of B^-1, or 0 while t is nonbasic.  y >= 0 (up to the dual tolerances)
    at an optimal basis."""
    Binv, rowscale = S.Binv, S.rowscale
    m = S.ipar[I_M]
    pt = t_position(S)
    for i in range(m):
        y_out[i] = Binv[pt, i] * rowscale[i] if pt >= 0 else 0.0


@njit(cache=True)
def num_rows(S: State) -> int:
    """Rows in use."""
    return S.ipar[I_M]


@njit(cache=True)
def last_pivots(S: State) -> int:
    """Pivots of the last :func:`solve`."""
    return S.ipar[I_LAST]


# ---------------------------------------------------------------------------------------------------
# Certification, independent of the pivoting

@njit(cache=True)
def certify_point(G: np.ndarray, r: np.ndarray, w: np.ndarray, m: int, lo: np.ndarray, hi: np.ndarray,
                  u: np.ndarray) -> tuple[float, float]:
    """Clip u into [lo, hi] (in place); return (margin, plain_violation): margin = min over rows with
    w_i > 0 of (r_i - G_i u) / w_i (+inf if none), plain_violation = max over rows with w_i == 0 of
    G_i u - r_i (-inf if none; <= 0 when u satisfies them).  (u, min(margin, t_cap)) is feasible for
    the margin LP when plain_violation <= 0 and that value is >= t_lo."""
    d = lo.size
    for k in range(d):
        u[k] = min(max(u[k], lo[k]), hi[k])
    margin = np.inf
    viol = -np.inf
    for i in range(m):
        a = 0.0
        for k in range(d):
            a += G[i, k] * u[k]
        if w[i] > 0.0:
            margin = min(margin, (r[i] - a) / w[i])
        elif w[i] == 0.0:
            viol = max(viol, a - r[i])
    return margin, viol


@njit(cache=True)
def certify_bound(G: np.ndarray, r: np.ndarray, w: np.ndarray, m: int, lo: np.ndarray, hi: np.ndarray,
                  t_cap: float, y: np.ndarray) -> float:
    """An upper bound on the margin LP's optimum from any multipliers y (m,): with y+ = max(y, 0) and
    s = y+ . w, every feasible (u, t) has s t <= y+ . r - (y+' G) u, so for s > 0
    t <= (y+ . r + sum_k max(-(y+' G)_k lo_k, -(y+' G)_k hi_k)) / s; the bound is min(t_cap, that),
    or t_cap when s <= 0.  ``y`` is not modified.  Valid up to the rounding of these sums."""
    d = lo.size
    s = 0.0
    yr = 0.0
    for i in range(m):
        yi = max(y[i], 0.0)
        s += yi * w[i]
        yr += yi * r[i]
    if not s > 0.0:
        return t_cap
    box = 0.0
    for k in range(d):
        c = 0.0
        for i in range(m):
            yi = y[i]
            if yi > 0.0:
                c += yi * G[i, k]
        box += max(-c * lo[k], -c * hi[k])
    return min(t_cap, (yr + box) / s)


# ---------------------------------------------------------------------------------------------------
# Python convenience (not for the hot path)

def solve_margin_lp(G: np.ndarray, r: np.ndarray, w: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    t_lo: float, t_cap: float, hint: np.ndarray | None = None,
                    max_pivots: int = MAX_PIVOTS) -> tuple[float, np.ndarray, np.ndarray, int]:
    """Solve one margin LP from a cold start: (t, u, y, status), y the multipliers of the rows as
    given (see :func:`duals`).  ``t``/``u`` are the final basis's values whatever the status."""
    lo = np.ascontiguousarray(lo, dtype=np.float64)
    hi = np.ascontiguousarray(hi, dtype=np.float64)
    d = lo.size
    r = np.ascontiguousarray(r, dtype=np.float64).reshape(-1)
    m = r.size
    G = np.ascontiguousarray(G, dtype=np.float64).reshape(m, d)
    w = np.ascontiguousarray(w, dtype=np.float64).reshape(-1)
    S = new_state(m, d)
    load_problem(S, G, r, w, lo, hi, float(t_lo), float(t_cap))
    if hint is not None:
        init(S, np.ascontiguousarray(hint, dtype=np.float64))
    status = solve(S, max_pivots)
    u = np.empty(d)
    t = solution(S, u)
    y = np.zeros(m)
    duals(S, y)
    return t, u, y, int(status)


@njit(cache=True)
def install_basis(S: State, basis: np.ndarray, status: np.ndarray) -> bool:
    """Make ``basis`` (length m, the variable basic in each row position) with nonbasic positions
    ``status`` (length d + 1 + m) the state's basis: true costs, inverse, reduced costs and primal values
    recomputed from scratch, boxed variables moved to their dual feasible bounds.  False when that basis
    is singular or a slack is dual infeasible (the caller then cold starts with :func:`init`)."""
    d = S.lo.size
    m = S.ipar[I_M]
    bas, stat = S.basis, S.status
    for i in range(m):
        bas[i] = basis[i]
    for j in range(d + 1 + m):
        stat[j] = status[j]
    true_costs(S)
    S.ipar[I_PERTURBED] = 0
    S.ipar[I_CLEANUP] = 0
    return refactor(S, True)
