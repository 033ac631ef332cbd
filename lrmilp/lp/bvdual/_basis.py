"""The basis of :mod:`lrmilp.lp.bvdual`: rows, the explicit inverse and its updates, primal values and
reduced costs, cost perturbation, cold starts."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._state import (AT_LOWER, AT_UPPER, BASIC, FASTMATH, FLIP_TOL, I_CLEANUP, I_M, I_PERTURBED, I_PERTURBS,
                     I_PIVOTS, I_REFACTORS, I_RESTARTS, I_SINCE, PERTURB, PIVOT_ABS, PIVOT_AGREE,
                     SINGULAR_TOL, SLACK_DUAL_BAD, State)

_GOLDEN = 0.6180339887498949


# ---------------------------------------------------------------------------------------------------
# Small helpers.  Array fields are bound to locals before loops: a structref field read is a call.

@njit(cache=True, fastmath=FASTMATH)
def store_row(S: State, i: int, g: np.ndarray, rhs: float, wt: float) -> None:
    """Row i := (g, rhs, wt); plain rows (wt == 0) are scaled to unit norm (zero rows are kept)."""
    G = S.G
    d = G.shape[1]
    sc = 1.0
    if wt == 0.0:
        nrm = 0.0
        for k in range(d):
            nrm += g[k] * g[k]
        nrm = np.sqrt(nrm)
        if nrm > 0.0:
            sc = 1.0 / nrm
    for k in range(d):
        G[i, k] = g[k] * sc
    S.r[i] = rhs * sc
    S.w[i] = wt
    S.rowscale[i] = sc


@njit(cache=True, fastmath=FASTMATH)
def fill_structural(S: State, basic_zero: bool) -> None:
    """S.xs := the values of u and t (basic ones from xB, or 0 when ``basic_zero``)."""
    xs, lb, ub, status, basis, xB = S.xs, S.lb, S.ub, S.status, S.basis, S.xB
    d = xs.size - 1
    m = S.ipar[I_M]
    for k in range(d + 1):
        xs[k] = lb[k] if status[k] == AT_LOWER else ub[k]
    for i in range(m):
        j = basis[i]
        if j <= d:
            xs[j] = 0.0 if basic_zero else xB[i]


@njit(cache=True, fastmath=FASTMATH)
def recompute_primal(S: State) -> None:
    """xB := B^-1 (r - A_N x_N) from the current inverse and nonbasic positions."""
    fill_structural(S, True)
    G, r, w, Binv, xB, xs, v = S.G, S.r, S.w, S.Binv, S.xB, S.xs, S.vec
    d = G.shape[1]
    m = S.ipar[I_M]
    for i in range(m):
        acc = r[i] - w[i] * xs[d]
        for k in range(d):
            acc -= G[i, k] * xs[k]
        v[i] = acc
    for i in range(m):
        acc = 0.0
        for k in range(m):
            acc += Binv[i, k] * v[k]
        xB[i] = acc


@njit(cache=True, fastmath=FASTMATH)
def t_position(S: State) -> int:
    basis = S.basis
    d = S.G.shape[1]
    for i in range(S.ipar[I_M]):
        if basis[i] == d:
            return i
    return -1


@njit(cache=True, fastmath=FASTMATH)
def recompute_duals(S: State) -> float:
    """dj := cost - y A with y = c_B B^-1 (O(m d)).  Returns the most negative reduced cost of a
    nonbasic slack (0 if none)."""
    G, w, Binv, cost, dj, status, basis = S.G, S.w, S.Binv, S.cost, S.dj, S.status, S.basis
    y, a = S.vec, S.alpha
    d = G.shape[1]
    m = S.ipar[I_M]
    for k in range(m):
        y[k] = 0.0
    for i in range(m):
        c = cost[basis[i]]
        if c != 0.0:
            for k in range(m):
                y[k] += c * Binv[i, k]
    for k in range(d):
        a[k] = 0.0
    yw = 0.0
    for i in range(m):
        yi = y[i]
        if yi != 0.0:
            for k in range(d):
                a[k] += yi * G[i, k]
            yw += yi * w[i]
    for k in range(d):
        dj[k] = 0.0 if status[k] == BASIC else cost[k] - a[k]
    dj[d] = 0.0 if status[d] == BASIC else cost[d] - yw
    worst = 0.0
    for i in range(m):
        j = d + 1 + i
        if status[j] == BASIC:
            dj[j] = 0.0
        else:
            dj[j] = cost[j] - y[i]
            worst = min(worst, dj[j])
    return worst


@njit(cache=True, fastmath=FASTMATH)
def flip_wrong_signs(S: State) -> int:
    """Put every nonbasic boxed variable at the bound its reduced cost asks for (no xB update)."""
    status, dj = S.status, S.dj
    d = S.G.shape[1]
    n = 0
    for j in range(d + 1):
        st = status[j]
        if st == AT_LOWER and dj[j] < -FLIP_TOL:
            status[j] = AT_UPPER
            n += 1
        elif st == AT_UPPER and dj[j] > FLIP_TOL:
            status[j] = AT_LOWER
            n += 1
    return n


@njit(cache=True, fastmath=FASTMATH)
def _invert(S: State) -> bool:
    """Binv := inverse of the basis columns, by Gauss-Jordan with partial pivoting.  False (Binv
    garbage) when the basis is numerically singular."""
    G, w, basis, W, Bi, cmax = S.G, S.w, S.basis, S.work, S.Binv, S.vec
    d = G.shape[1]
    m = S.ipar[I_M]
    for c in range(m):
        j = basis[c]
        mx = 0.0
        for i in range(m):
            if j < d:
                v = G[i, j]
            elif j == d:
                v = w[i]
            else:
                v = 1.0 if i == j - d - 1 else 0.0
            W[i, c] = v
            mx = max(mx, abs(v))
            Bi[i, c] = 1.0 if i == c else 0.0
        cmax[c] = mx
    for c in range(m):
        pr = c
        best = abs(W[c, c])
        for i in range(c + 1, m):
            if abs(W[i, c]) > best:
                best = abs(W[i, c])
                pr = i
        if not best > SINGULAR_TOL * cmax[c]:  # also catches a zero column (cmax 0) and NaN
            return False
        if pr != c:
            for k in range(m):
                tmp = W[c, k]
                W[c, k] = W[pr, k]
                W[pr, k] = tmp
                tmp = Bi[c, k]
                Bi[c, k] = Bi[pr, k]
                Bi[pr, k] = tmp
        piv = 1.0 / W[c, c]
        for k in range(m):
            W[c, k] *= piv
            Bi[c, k] *= piv
        for i in range(m):
            if i != c:
                f = W[i, c]
                if f != 0.0:
                    for k in range(c, m):
                        W[i, k] -= f * W[c, k]
                    for k in range(m):
                        Bi[i, k] -= f * Bi[c, k]
    return True


@njit(cache=True, fastmath=FASTMATH)
def refactor(S: State, dual_phase: bool) -> bool:
    """Recompute the inverse, the reduced costs and the primal values from scratch; in the dual phase
    also flip boxed variables to match their reduced costs.  False when the basis is singular, or (dual
    phase) a slack has drifted dual infeasible."""
    ipar = S.ipar
    ipar[I_REFACTORS] += 1
    ipar[I_SINCE] = 0
    if not _invert(S):
        return False
    worst = recompute_duals(S)
    if dual_phase:
        if worst < -SLACK_DUAL_BAD:
            return False
        flip_wrong_signs(S)
    recompute_primal(S)
    return True


@njit(cache=True, fastmath=FASTMATH)
def true_costs(S: State) -> None:
    cost = S.cost
    cost[:] = 0.0
    cost[S.G.shape[1]] = -1.0


@njit(cache=True, fastmath=FASTMATH)
def perturb(S: State) -> None:
    """Move the cost (and reduced cost) of every nonbasic variable away from zero, in the direction
    that keeps it dual feasible, by a distinct pseudo-random amount (breaks dual degeneracy)."""
    status, cost, dj, ipar = S.status, S.cost, S.dj, S.ipar
    nv = S.G.shape[1] + 1 + ipar[I_M]
    salt = ipar[I_PERTURBS]
    for j in range(nv):
        st = status[j]
        if st == BASIC:
            continue
        h = ((j + 1 + 7919 * salt) * _GOLDEN) % 1.0
        delta = PERTURB * (1.0 + h) * (1.0 + abs(cost[j]))
        if st == AT_UPPER:
            delta = -delta
        cost[j] += delta
        dj[j] += delta
    ipar[I_PERTURBED] = 1
    ipar[I_PERTURBS] += 1


@njit(cache=True, fastmath=FASTMATH)
def cold_start(S: State, hint: np.ndarray) -> None:
    """The slack basis: t at t_cap, u_k at the bound nearest hint[k] (at lo_k without a hint);
    costs perturbed (every u is dual degenerate at this basis)."""
    status, dj, basis, Binv, lo, hi, ipar = S.status, S.dj, S.basis, S.Binv, S.lo, S.hi, S.ipar
    d = lo.size
    m = ipar[I_M]
    use_hint = hint.size == d
    true_costs(S)
    for k in range(d):
        if use_hint and abs(hi[k] - hint[k]) < abs(hint[k] - lo[k]):
            status[k] = AT_UPPER
        else:
            status[k] = AT_LOWER
        dj[k] = 0.0
    status[d] = AT_UPPER
    dj[d] = -1.0
    for i in range(m):
        basis[i] = d + 1 + i
        status[d + 1 + i] = BASIC
        dj[d + 1 + i] = 0.0
        for k in range(m):
            Binv[i, k] = 1.0 if i == k else 0.0
    ipar[I_SINCE] = 0
    ipar[I_CLEANUP] = 0
    ipar[I_PERTURBED] = 0
    if m > 0:
        perturb(S)
    recompute_primal(S)


@njit(cache=True, fastmath=FASTMATH)
def restart(S: State) -> None:
    """Cold start from the current point (its u as the hint)."""
    fill_structural(S, False)
    hint = S.xs[:-1].copy()
    S.ipar[I_RESTARTS] += 1
    cold_start(S, hint)


@njit(cache=True, fastmath=FASTMATH)
def pivot_row(S: State, p: int) -> float:
    """S.alpha := e_p' B^-1 A over the nonbasic variables, 0 at the basic ones (O(m d)); returns its
    largest |entry|."""
    G, w, Binv, basis, alpha = S.G, S.w, S.Binv, S.basis, S.alpha
    d = G.shape[1]
    m = S.ipar[I_M]
    for k in range(d):
        alpha[k] = 0.0
    at = 0.0
    for i in range(m):
        ri = Binv[p, i]
        if ri != 0.0:
            for k in range(d):
                alpha[k] += ri * G[i, k]
            at += ri * w[i]
        alpha[d + 1 + i] = ri
    alpha[d] = at
    for i in range(m):  # exactly 0 at basic variables, so loops over all variables need no status test
        alpha[basis[i]] = 0.0
    amax = 0.0
    for j in range(d + 1 + m):
        amax = max(amax, abs(alpha[j]))
    return amax


@njit(cache=True, fastmath=FASTMATH)
def column(S: State, q: int) -> None:
    """S.col := B^-1 A_q (O(m^2))."""
    G, w, Binv, col = S.G, S.w, S.Binv, S.col
    d = G.shape[1]
    m = S.ipar[I_M]
    if q < d:
        for i in range(m):
            acc = 0.0
            for k in range(m):
                acc += Binv[i, k] * G[k, q]
            col[i] = acc
    elif q == d:
        for i in range(m):
            acc = 0.0
            for k in range(m):
                acc += Binv[i, k] * w[k]
            col[i] = acc
    else:
        for i in range(m):
            col[i] = Binv[i, q - d - 1]


@njit(cache=True, fastmath=FASTMATH)
def update_inverse(S: State, p: int) -> None:
    """Rank-one update of B^-1 when the variable with column S.col (B^-1 A_q) replaces position p."""
    Binv, col, ipar = S.Binv, S.col, S.ipar
    m = ipar[I_M]
    inv = 1.0 / col[p]
    for k in range(m):
        Binv[p, k] *= inv
    for i in range(m):
        f = col[i]
        if i != p and f != 0.0:
            for k in range(m):
                Binv[i, k] -= f * Binv[p, k]
    ipar[I_SINCE] += 1
    ipar[I_PIVOTS] += 1


@njit(cache=True, fastmath=FASTMATH)
def pivot_mismatch(S: State, p: int, q: int) -> bool:
    """The pivot element from the row and from the column disagree, or is tiny."""
    a = S.col[p]
    b = S.alpha[q]
    return abs(a - b) > PIVOT_AGREE * max(abs(a), abs(b)) or abs(a) <= PIVOT_ABS


@njit(cache=True, fastmath=FASTMATH)
def primal_infeasibility(S: State) -> float:
    """Largest bound violation of a basic variable."""
    lb, ub, xB, basis = S.lb, S.ub, S.xB, S.basis
    worst = 0.0
    for i in range(S.ipar[I_M]):
        j = basis[i]
        worst = max(worst, lb[j] - xB[i], xB[i] - ub[j])
    return worst
