"""The bound-flipping ratio test's breakpoint selection of :mod:`lrmilp.lp.bvdual` (weighted
quickselect)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._state import FASTMATH


@njit(cache=True, fastmath=FASTMATH)
def bfrt_select(crat: np.ndarray, cdec: np.ndarray, perm: np.ndarray, buf: np.ndarray, nc: int,
                 target: float, first: float) -> int:
    """The bound-flipping breakpoint.  In increasing ratio order, breakpoints are passed while the sum
    of their ``cdec`` stays below ``target``; returns the position b in ``perm`` (rearranged) of the
    first breakpoint that reaches it: perm[:b] are passed, all with ratios <= the rest's.  -1 when even
    all of them stay below (the row cannot be satisfied).

    Weighted quickselect, expected O(nc) instead of a sort.  Partitions are branch-free (each element
    is written to both ends of ``buf`` and one end advances): ratios are in random order, and a
    branching partition mispredicts about every other element.  Ties (many ratios are 0) are split off
    by a second pass, which also guarantees progress.  ``first`` (if not NaN) is the first partition
    value: a good guess of the answer leaves a small range after one pass over all."""
    lo = 0
    hi = nc
    acc = 0.0
    pv = first
    while hi - lo > 16:
        if not pv == pv:  # NaN: median of three
            a = crat[perm[lo]]
            b = crat[perm[(lo + hi) // 2]]
            c = crat[perm[hi - 1]]
            pv = max(min(a, b), min(max(a, b), c))
        lt = lo
        ge = hi - 1
        sl = 0.0
        se = 0.0
        for i in range(lo, hi):
            k = perm[i]
            v = crat[k]
            less = v < pv
            buf[lt] = k
            buf[ge] = k
            lt += 1 if less else 0
            ge -= 0 if less else 1
            sl += cdec[k] if less else 0.0
            se += cdec[k] if v == pv else 0.0
        for i in range(lo, hi):  # [lo, lt) < pv <= [lt, hi)
            perm[i] = buf[i]
        if acc + sl >= target:
            hi = lt
            pv = np.nan
            continue
        acc += sl
        eq = lt
        gt = hi - 1
        for i in range(lt, hi):
            k = perm[i]
            same = crat[k] == pv
            buf[eq] = k
            buf[gt] = k
            eq += 1 if same else 0
            gt -= 0 if same else 1
        for i in range(lt, hi):  # [lt, eq) == pv < [eq, hi)
            perm[i] = buf[i]
        if acc + se >= target:
            for pos in range(lt, eq):  # ties: pass them in any order
                acc += cdec[perm[pos]]
                if acc >= target:
                    return pos
            return eq - 1  # only by rounding of the sums
        acc += se
        lo = eq
        pv = np.nan
    for i in range(lo + 1, hi):  # insertion sort of the small rest
        k = perm[i]
        v = crat[k]
        j = i - 1
        while j >= lo and crat[perm[j]] > v:
            perm[j + 1] = perm[j]
            j -= 1
        perm[j + 1] = k
    for pos in range(lo, hi):
        acc += cdec[perm[pos]]
        if acc >= target:
            return pos
    return -1
