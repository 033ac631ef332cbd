"""The two phases of :mod:`lrmilp.lp.bvdual`: dual simplex pivots until primal feasible, primal simplex
pivots to clean up the dual infeasibilities left by removing perturbations."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._state import (AT_LOWER, AT_UPPER, BASIC, CLEAN_DUAL_TOL, DEGENERATE_LIMIT, DEGENERATE_STEP, FASTMATH,
                     FLIP_TOL, F_PTOL, HARRIS_TOL, INFEASIBLE, ITERATION_LIMIT, I_FLIPS, I_M, I_PERTURBED,
                     I_SINCE, NUMERICAL_TROUBLE, OPTIMAL, PERTURB_AFTER, PIVOT_ABS, PIVOT_TOL, RATIO_TIE,
                     REFACTOR_EVERY, SELECT_SAMPLE, State)
from ._basis import column, perturb, pivot_mismatch, pivot_row, refactor, restart, update_inverse
from ._ratio import bfrt_select


# ---------------------------------------------------------------------------------------------------
# The two phases

@njit(cache=True, fastmath=FASTMATH)
def dual_phase(S: State, budget: int, restarts_left: int) -> tuple[int, int, int]:
    """Dual simplex pivots until primal feasible.  Returns (status, pivots, cold restarts used)."""
    G, w, Binv, xB, dj, cost = S.G, S.w, S.Binv, S.xB, S.dj, S.cost
    basis, status, lb, ub, ipar = S.basis, S.status, S.lb, S.ub, S.ipar
    alpha, col, v = S.alpha, S.col, S.vec
    cidx, cabs, crat, chb, cdec, perm, pbuf, smp = S.cidx, S.cabs, S.crat, S.chb, S.cdec, S.perm, S.pbuf, S.samp
    d = G.shape[1]
    m = ipar[I_M]
    nv = d + 1 + m
    ptol = S.fpar[F_PTOL]
    pivots = 0
    restarts = 0
    degen = 0
    perturbed = False  # in this call (cost shifts also set I_PERTURBED, but break no ties)
    while True:
        if ipar[I_SINCE] >= REFACTOR_EVERY:
            if not refactor(S, True):
                if restarts >= restarts_left:
                    return NUMERICAL_TROUBLE, pivots, restarts
                restarts += 1
                degen = 0
                restart(S)
        if degen >= PERTURB_AFTER and not perturbed:
            perturb(S)
            perturbed = True
            degen = 0
        bland = degen >= DEGENERATE_LIMIT

        # ---- pricing: the leaving row (dual steepest edge, or Bland's smallest index)
        p = -1
        best = 0.0
        bestj = nv
        for i in range(m):
            j = basis[i]
            x = xB[i]
            if x < lb[j] - ptol:
                inf = lb[j] - x
            elif x > ub[j] + ptol:
                inf = x - ub[j]
            else:
                continue
            if bland:
                if j < bestj:
                    bestj = j
                    p = i
            else:
                beta = 0.0
                for k in range(m):
                    beta += Binv[i, k] * Binv[i, k]
                score = inf * inf / max(beta, 1e-300)
                if score > best:
                    best = score
                    p = i
        if p < 0:
            return OPTIMAL, pivots, restarts
        if pivots >= budget:
            return ITERATION_LIMIT, pivots, restarts
        jp = basis[p]
        lbp = lb[jp]
        ubp = ub[jp]
        if xB[p] < lbp:
            sgn = 1.0  # leaves at its lower bound
            delta = lbp - xB[p]
        else:
            sgn = -1.0  # leaves at its upper bound
            delta = xB[p] - ubp
        amax = pivot_row(S, p)
        tolpiv = max(PIVOT_TOL * amax, PIVOT_ABS)

        # ---- ratio-test candidates.  With s >= 0 the dual step, reduced costs move as
        # dj += s * sgn * alpha; a candidate's "dual slack" sig * dj (sig = +1 at lower, -1 at upper)
        # shrinks at rate |alpha| and reaches 0 at its ratio.  Basic entries of alpha are 0.  The
        # compaction is branch-free (every variable is written at slot nc, candidates advance it).
        nc = 0
        for j in range(nv):
            sig = 1.0 - 2.0 * status[j]
            a = sgn * sig * alpha[j]
            cidx[nc] = j
            cabs[nc] = -a
            chb[nc] = sig * dj[j]  # the dual slack, for now
            cdec[nc] = -a * (ub[j] - lb[j])  # +inf for slacks: they cannot be passed
            nc += 1 if a < -tolpiv else 0
        tmax = np.inf
        for c in range(nc):
            ds = chb[c]
            inv = 1.0 / cabs[c]
            crat[c] = max(ds, 0.0) * inv
            chb[c] = (ds + HARRIS_TOL) * inv
            tmax = min(tmax, chb[c])
        tmax = max(tmax, 0.0)

        cq = -1
        npass = 0  # candidates perm[:npass] are the passed breakpoints, flipped below
        if bland:
            rmin = np.inf
            for c in range(nc):
                rmin = min(rmin, crat[c])
            bq = nv
            for c in range(nc):
                if crat[c] <= rmin + RATIO_TIE and cidx[c] < bq:
                    bq = cidx[c]
                    cq = c
        elif nc > 0:
            # Bound-flipping ratio test with Harris ties.  Breakpoints are passed (their variables
            # flipped) while the leaving row stays infeasible by more than ptol; each reduces its
            # infeasibility by |alpha_j| width_j.  Then, among the rest, every ratio up to the
            # smallest Harris bound is a tie, and the largest pivot among the ties enters.
            target = delta - ptol
            wgroup = 0.0
            for c in range(nc):
                wgroup += cdec[c] if crat[c] <= tmax else 0.0
            if wgroup < target:
                # The first tie group is passed: select the breakpoint.  First partition value: the
                # sampled ratio quantile at about twice the rank target / mean(cdec) (finite ones).
                sdec = 0.0
                for c in range(nc):
                    sdec += cdec[c] if cdec[c] < np.inf else 0.0
                    perm[c] = c
                first = np.nan
                if nc > 4 * SELECT_SAMPLE and sdec > 0.0:
                    rank = 2.0 * target / (sdec / nc) + 2.0
                    pos = int(rank * SELECT_SAMPLE / nc) if rank < nc else SELECT_SAMPLE
                    if pos < SELECT_SAMPLE:
                        for i in range(SELECT_SAMPLE):
                            smp[i] = crat[(i * nc) // SELECT_SAMPLE + (nc // (2 * SELECT_SAMPLE))]
                        smp.sort()
                        first = smp[pos]
                npass = bfrt_select(crat, cdec, perm, pbuf, nc, target, first)
                if npass < 0:
                    nc = 0  # every breakpoint passed, the row still violated: no entering variable
                    npass = 0
                else:
                    for c in range(npass):  # passed: out of the entering choice
                        crat[perm[c]] = np.inf
                        chb[perm[c]] = np.inf
                    tmax = np.inf
                    for c in range(nc):
                        tmax = min(tmax, chb[c])
                    tmax = max(tmax, 0.0)
            babs = 0.0
            for c in range(nc):
                if crat[c] <= tmax and cabs[c] > babs:
                    babs = cabs[c]
                    cq = c
        if cq < 0:
            # Dual unbounded: the row cannot be satisfied.  Trust that only on a fresh inverse.
            if ipar[I_SINCE] > 0:
                ipar[I_SINCE] = REFACTOR_EVERY
                continue
            return INFEASIBLE, pivots, restarts
        q = cidx[cq]
        s = crat[cq]

        # ---- entering column; the pivot element computed both ways must agree
        column(S, q)
        if pivot_mismatch(S, p, q):
            if ipar[I_SINCE] > 0:
                ipar[I_SINCE] = REFACTOR_EVERY
                continue
            if abs(col[p]) <= PIVOT_ABS:  # fresh inverse and still no usable pivot
                return NUMERICAL_TROUBLE, pivots, restarts
        piv = col[p]

        # ---- dual step.  The passed breakpoints are flipped to their other bound; any other reduced
        # cost left with the wrong sign (a Harris tie, or rounding) has its cost shifted to make it 0,
        # which keeps the dual objective monotone; shifts are removed with the perturbation when the LP
        # is optimal.
        xq = lb[q] if status[q] == AT_LOWER else ub[q]
        step = s * sgn
        if npass > 0:
            for i in range(m):
                v[i] = 0.0
            for c in range(npass):
                j = cidx[perm[c]]
                if status[j] == AT_LOWER:
                    status[j] = AT_UPPER
                    dx = ub[j] - lb[j]
                else:
                    status[j] = AT_LOWER
                    dx = lb[j] - ub[j]
                if j < d:
                    for i in range(m):
                        v[i] += G[i, j] * dx
                else:
                    for i in range(m):
                        v[i] += w[i] * dx
            ipar[I_FLIPS] += npass
            for i in range(m):  # xB -= B^-1 (A_F dx_F)
                acc = 0.0
                for k in range(m):
                    acc += Binv[i, k] * v[k]
                xB[i] -= acc
        worst = 0.0
        for j in range(nv):
            dj[j] += step * alpha[j]  # alpha is 0 at basic variables (their dj stays 0)
            worst = min(worst, (1.0 - 2.0 * status[j]) * dj[j])
        dj[q] = 0.0
        if worst < -FLIP_TOL:
            for j in range(nv):
                if j != q and (1.0 - 2.0 * status[j]) * dj[j] < -FLIP_TOL:
                    cost[j] -= dj[j]
                    dj[j] = 0.0
                    ipar[I_PERTURBED] = 1

        # ---- primal step: x_p goes to its bound, x_q enters
        bnd = lbp if sgn > 0.0 else ubp
        theta = (xB[p] - bnd) / piv
        for i in range(m):
            xB[i] -= theta * col[i]
        xB[p] = xq + theta
        basis[p] = q
        status[q] = BASIC
        status[jp] = AT_LOWER if sgn > 0.0 else AT_UPPER
        dj[jp] = step  # s >= 0 at lower, -s at upper: dual feasible
        update_inverse(S, p)
        pivots += 1
        if s <= DEGENERATE_STEP:
            degen += 1
        else:
            degen = 0


@njit(cache=True, fastmath=FASTMATH)
def primal_phase(S: State, budget: int) -> tuple[int, int]:
    """Primal simplex pivots from a primal feasible basis until no reduced cost has the wrong sign by
    more than CLEAN_DUAL_TOL (Dantzig pricing, Harris ratio test, bound flips of the entering
    variable).  Returns (status, pivots)."""
    xB, dj, basis, status, col, alpha, lb, ub, ipar = S.xB, S.dj, S.basis, S.status, S.col, S.alpha, S.lb, S.ub, S.ipar
    d = S.G.shape[1]
    m = ipar[I_M]
    nv = d + 1 + m
    ptol = S.fpar[F_PTOL]
    pivots = 0
    degen = 0
    while True:
        if ipar[I_SINCE] >= REFACTOR_EVERY:
            if not refactor(S, False):
                return NUMERICAL_TROUBLE, pivots
        bland = degen >= DEGENERATE_LIMIT
        q = -1
        best = CLEAN_DUAL_TOL
        for j in range(nv):
            st = status[j]
            if st == BASIC:
                continue
            viol = -dj[j] if st == AT_LOWER else dj[j]
            if viol > best:
                q = j
                if bland:
                    break
                best = viol
        if q < 0:
            return OPTIMAL, pivots
        if pivots >= budget:
            return ITERATION_LIMIT, pivots
        dirq = 1.0 if status[q] == AT_LOWER else -1.0
        column(S, q)
        cmax = 0.0
        for i in range(m):
            cmax = max(cmax, abs(col[i]))
        tolpiv = max(PIVOT_TOL * cmax, PIVOT_ABS)
        # Harris pass 1: the longest step keeping every basic variable within its bounds + ptol.
        # x_B(theta) = x_B + theta * rate with rate = -dirq * col.
        hmax = np.inf
        for i in range(m):
            rate = -dirq * col[i]
            j = basis[i]
            if rate < -tolpiv:
                hmax = min(hmax, (xB[i] - lb[j] + ptol) / -rate)
            elif rate > tolpiv and ub[j] < np.inf:
                hmax = min(hmax, (ub[j] - xB[i] + ptol) / rate)
        # pass 2: among the rows blocking within hmax, the largest |rate| leaves.
        p = -1
        theta = np.inf
        babs = 0.0
        to_lower = True
        for i in range(m):
            rate = -dirq * col[i]
            j = basis[i]
            if rate < -tolpiv:
                ti = max(xB[i] - lb[j], 0.0) / -rate
                low = True
            elif rate > tolpiv and ub[j] < np.inf:
                ti = max(ub[j] - xB[i], 0.0) / rate
                low = False
            else:
                continue
            if bland:
                if ti < theta - RATIO_TIE or (ti <= theta + RATIO_TIE and (p < 0 or j < basis[p])):
                    p, theta, to_lower = i, ti, low
            elif ti <= hmax and abs(rate) > babs:
                p, theta, babs, to_lower = i, ti, abs(rate), low
        width = ub[q] - lb[q]
        xq = lb[q] if status[q] == AT_LOWER else ub[q]
        if width <= theta:
            # the entering variable reaches its other bound first: flip it, no basis change
            if not width < np.inf:
                return NUMERICAL_TROUBLE, pivots  # unbounded ray: impossible for a bounded LP
            for i in range(m):
                xB[i] -= width * dirq * col[i]
            status[q] = AT_UPPER if status[q] == AT_LOWER else AT_LOWER
            pivots += 1
            degen = 0
            continue
        pivot_row(S, p)
        if pivot_mismatch(S, p, q):
            if ipar[I_SINCE] > 0:
                ipar[I_SINCE] = REFACTOR_EVERY
                continue
            if abs(col[p]) <= PIVOT_ABS:
                return NUMERICAL_TROUBLE, pivots
        mu = dj[q] / col[p]
        for j in range(nv):
            dj[j] -= mu * alpha[j]  # alpha is 0 at basic variables
        jp = basis[p]
        dj[jp] = -mu
        dj[q] = 0.0
        for i in range(m):
            xB[i] -= theta * dirq * col[i]
        xB[p] = xq + dirq * theta
        status[jp] = AT_LOWER if to_lower else AT_UPPER
        status[q] = BASIC
        basis[p] = q
        update_inverse(S, p)
        pivots += 1
        if theta * cmax <= ptol:
            degen += 1
        else:
            degen = 0
