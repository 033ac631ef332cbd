"""Two layers in one call (:mod:`lrmilp.cells.dualsplit`): an inner layer's children split by the last
layer, counted in bulk."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ...lp import bvdual as lp
from ._workspace import DONE, FAILED, PAUSED, S_LPS, Workspace
from ._node import start
from ._search import split


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
