"""XOR propagation of :mod:`lrmilp.cells.dualsplit` (the compiled twin of
:class:`lrmilp.parity.ParityState`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._workspace import Workspace


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
def xor_decide(ws: Workspace, f: int, j: int, s: int) -> bool:
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
def xor_want(ws: Workspace, f: int, j: int) -> int:
    """The state the XORs force on neuron j in frame f, or -1."""
    k = ws.pk[f]
    if k <= 0:
        return -1
    return par_forced(ws.prow[f], ws.ppar[f], k, ws.poff[0] + j)
