"""The depth-first search of :mod:`lrmilp.cells.dualsplit`: one node split by one layer's hyperplanes."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ...lp import bvdual as lp
from ._workspace import DONE, FAILED, PAUSED, S_BANK, S_EMPTY, S_IMPLY, S_LPS, S_STEP, S_THIN, Workspace
from ._parity import xor_decide, xor_want
from ._node import add_row, bank_add, bank_find, certified_lp, emit, margin_at, note_row, plane_dist
from ._plan import imply, plan


@njit(cache=True)
def rewitness(ws: Workspace, f: int, Sf, tol: float, noise: float, wf: np.ndarray, u: np.ndarray,
              y: np.ndarray) -> bool:
    """Frame f's witness after a row was added: kept while its margin is above tol, else one certified
    LP finds a new one (into ``u``) or shows the sub-cell holds none (it dies; thin if it exists at all).
    False when the LP cannot be certified (the node fails)."""
    if ws.t[f] > tol:
        return True
    ok, margin, bound = certified_lp(ws, Sf, tol, wf, u, y)
    if not ok:
        return False
    if margin > tol:
        ws.w[f, :] = u
        ws.t[f] = margin
    else:
        ws.stats[S_EMPTY] += 1
        if margin > noise:
            ws.stats[S_THIN] += 1
        ws.alive[f] = False
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
        if not plan(ws, frames, A, c, m0, tol, noise, row, u, y, ws.top[0] == -2):
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
            emit(ws, Sf, f, last, lo, hi, tol, hw)
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
                    dd = abs(plane_dist(A, c, jj, wf))
                    if dd > best:
                        best = dd
                        j = jj
        ws.pos[f] = p + 1
        if ws.fixed[j] >= 0:
            s = int(ws.fixed[j])
            ws.st[f, j] = s
            if not xor_decide(ws, f, j, s):
                ws.alive[f] = False  # the XORs rule this sub-cell out
                continue
            if ws.keep[j]:
                add_row(Sf, A, c, j, s, row)
                note_row(ws, f, j, s)
                sd = plane_dist(A, c, j, wf) * (1.0 if s == 1 else -1.0)
                if sd < ws.t[f]:
                    ws.t[f] = sd
                if not rewitness(ws, f, Sf, tol, noise, wf, u, y):  # the witness is too close to the row
                    return FAILED
            imply(ws, f, j, s)
            continue
        if ws.forced[f, j] >= 0:
            # A neuron decided above forces this one in the whole box: its other side is empty here.
            s = int(ws.forced[f, j])
            ws.st[f, j] = s
            ws.stats[S_IMPLY] += 1
            if not xor_decide(ws, f, j, s):
                ws.alive[f] = False
                continue
            imply(ws, f, j, s)
            continue
        delta = plane_dist(A, c, j, wf)
        near = 1 if delta > 0 else 0
        far = 1 - near
        sfar = 1.0 if far == 1 else -1.0
        dist = abs(delta)
        g = f + 1
        # The XORs may force this neuron (one side only) or rule a side out once decided.
        want = xor_want(ws, f, j)
        far_allowed = want < 0 or want == far
        near_allowed = want < 0 or want == near
        if far_allowed and ws.pk[f] >= 0:
            pk = ws.pk[f]
            ws.pk[g] = pk
            ws.prow[g, :pk] = ws.prow[f, :pk]
            ws.ppar[g, :pk] = ws.ppar[f, :pk]
            far_allowed = xor_decide(ws, g, j, far)
        elif ws.pk[f] < 0:
            ws.pk[g] = -1
        # --- the far side: a banked witness, a step across the hyperplane, or one LP (into u) ---
        far_ok = False
        far_margin = 0.0
        far_bound = np.inf
        if far_allowed:
            b = bank_find(ws, f, j, far, tol)
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
                        mf = min(margin_at(Sf, u), sfar * plane_dist(A, c, j, u))
                        if mf > tol:
                            ws.stats[S_STEP] += 1
                            far_ok = True
                            far_margin = mf
            lp.copy_into(frames[g], Sf, m0)
            add_row(frames[g], A, c, j, far, row)
            ws.st[g, :] = ws.st[f]
            ws.sig[g, :] = ws.sig[f]
            ws.rows[g, :] = ws.rows[f]
            ws.nrow[g] = ws.nrow[f]
            note_row(ws, g, j, far)
            ws.st[g, j] = far
            ws.forced[g, :] = ws.forced[f]
            imply(ws, g, j, far)
            if not far_ok:
                ok, margin, bound = certified_lp(ws, frames[g], tol, wf, u, y)
                if not ok:
                    return FAILED
                if margin > tol:
                    far_ok = True
                    far_margin = margin
                    bank_add(ws, A, c, frames, m0, u)
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
                add_row(Sf, A, c, j, near, row)
                note_row(ws, f, j, near)
            ws.st[f, j] = near
            xor_decide(ws, f, j, near)  # not forced the other way, so consistent
            imply(ws, f, j, near)
            if dist < ws.t[f]:
                ws.t[f] = dist
            if not rewitness(ws, f, Sf, tol, noise, wf, v, y):
                return FAILED
        if far_ok:
            ws.w[g, :] = u
            ws.t[g] = far_margin
            ws.pos[g] = p + 1
            ws.alive[g] = True
            ws.top[0] = g
    return DONE
