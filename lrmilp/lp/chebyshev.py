"""Chebyshev-ball LPs: max t s.t. a_i u + t <= h_i, the enumerator's one kind of LP.

Every row a_i has unit norm, so t is the radius of a ball around u inside {u : a_i u <= h_i}, and the
optimum is the largest such radius, capped at ``RADIUS_CAP`` so the LP stays bounded.  The LP is always
feasible (t may be negative: then no point satisfies the rows, and -t measures by how much).

Two solvers:

* :func:`solve_batch` — many such LPs at once, by a dense dual simplex on the *row* basis (the active
  set of d + 1 rows), vectorised over the LPs with numpy, for bounded domains.  The LPs of one batch
  share a block of rows (the domain and an enclosing cell) and differ in which of a layer's hyperplanes
  they hold, and with which sign.  A basis is dual feasible whatever the right-hand sides and whatever
  other rows exist, so a parent cell's basis warm-starts every descendant's LP: a child typically needs
  a pivot or two.  Every answer is certified independently of the pivots: the radius returned is
  recomputed from the point as min_i (h_i - a_i u) over all rows, and the optimum is accepted only when
  the dual multipliers are non-negative and combine the basis rows into the objective (up to
  ``DUAL_RESIDUAL``).  An LP the simplex cannot certify (cycling, a tiny pivot) is re-solved by HiGHS.
* :class:`HighsChebyshevLP` — one warm-started highspy model whose rows follow a depth-first search
  (``push``/``pop``); any domain, one LP at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np

from ..formulations.highs import new_highs

RADIUS_CAP = 1.0
"""Default cap: Chebyshev LPs maximise min(margin, cap), so they stay bounded on unbounded domains (the
enumerator passes a cap relative to the domain's scale, :attr:`lrmilp.tolerance.Tolerance.cap`)."""
PRIMAL_FEAS = 1e-10
"""The dual simplex stops when no row is violated by more than this (rows have unit normals, so it is a
distance in parameter space).  The radius returned is recomputed from the point and already accounts for
any violation left, so this only decides when to stop pivoting."""
PIVOT_TOL = 1e-9
"""Basis coefficients below this are never pivoted on (numerical stability)."""
DUAL_RESIDUAL = 1e-9
"""An optimum is accepted only if its dual multipliers are >= -DUAL_RESIDUAL and reproduce the
objective (max t) from the basis rows up to DUAL_RESIDUAL (max-norm); else HiGHS re-solves the LP."""
MAX_PIVOTS = 300
"""Pivots per LP before the dense simplex gives up (degenerate cycling) and HiGHS re-solves it."""
REFACTOR_EVERY = 48
"""Pivot rounds of one batch after which every basis inverse is recomputed from its rows (rank-one
updates accumulate rounding)."""
RATIO_TIE = 1e-12
"""Ratio-test values within this of the minimum count as ties; among ties the largest pivot leaves."""
OPTIMALITY_GAP = 1e-7
"""A basis whose vertex's t exceeds the radius certified at its point by more than this is not trusted
(its vertex is infeasible, so the dual bound t is not attained): HiGHS re-solves that LP."""

INF = highspy.kHighsInf


@dataclass
class SharedRows:
    """The rows every LP of a batch holds: ``G`` (S, d+1) with unit u-part and t coefficient 1, except
    row 0, the cap t <= cap; right-hand sides ``h``."""

    G: np.ndarray
    h: np.ndarray

    @classmethod
    def of_domain(cls, rows: np.ndarray, rhs: np.ndarray, cap: float = RADIUS_CAP) -> "SharedRows":
        d = rows.shape[1]
        G = np.zeros((len(rows) + 1, d + 1))
        G[0, d] = 1.0
        G[1:, :d], G[1:, d] = rows, 1.0
        return cls(G, np.r_[cap, rhs])

    def extend(self, rows: np.ndarray, rhs: np.ndarray) -> "SharedRows":
        """These rows plus ``rows`` (unit u-parts) with right-hand sides ``rhs``."""
        return SharedRows(np.vstack([self.G, np.c_[rows, np.ones(len(rows))]]), np.r_[self.h, rhs])

    def first_basis(self) -> tuple[np.ndarray, np.ndarray]:
        """A dual-feasible basis: the cap row and u_i <= hi_i for every i (the cap alone carries the
        objective).  Needs those box rows, i.e. a bounded domain."""
        d = self.G.shape[1] - 1
        basis = [0]
        U = self.G[:, :d]
        for i in range(d):
            hit = np.flatnonzero((U[:, i] == 1.0) & (np.abs(U).sum(axis=1) == 1.0))
            if hit.size == 0:
                raise ValueError(f"the batched Chebyshev LP needs an upper bound on coordinate {i}")
            basis.append(int(hit[0]))
        B = np.array(basis)
        return B, np.linalg.inv(self.G[B])


@dataclass
class BatchResult:
    """Per LP: certified radius ``t``, point ``U``, optimal basis ``B`` / ``Binv``; ``fallbacks`` LPs
    were re-solved by HiGHS (their basis is the one they started from), ``pivots`` in total."""

    t: np.ndarray
    U: np.ndarray
    B: np.ndarray
    Binv: np.ndarray
    fallbacks: int
    pivots: int


def _basis_rows(WT: np.ndarray, SG: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The rows G_B (L, d+1, d+1) of bases B (L, d+1): u-part -SG[l, r] WT[r], t coefficient 1."""
    coef = -np.take_along_axis(SG, B, axis=1)
    return np.concatenate([coef[:, :, None] * WT[B], np.ones(B.shape + (1,))], axis=2)


def solve_batch(shared: SharedRows, Ahat: np.ndarray, chat: np.ndarray, sig: np.ndarray,
                B: np.ndarray, Binv: np.ndarray) -> BatchResult:
    """Solve L Chebyshev LPs at once.

    LP l holds the shared rows and, for each layer hyperplane j with sig[l, j] != 0, the row
    sig (a_j u + c_j) >= t, i.e. (-sig a_j) u + t <= sig c_j.  Row ids index the shared rows, then the
    layer's (S + j).  The radius returned is certified at the point (see the module docstring).

    Parameters
    ----------
    shared : SharedRows
        The rows every LP holds (the domain and an enclosing cell).
    Ahat, chat : numpy.ndarray
        (n, d) unit normals and (n,) offsets of the layer's hyperplanes.
    sig : numpy.ndarray
        (L, n) int8: +1 / -1 the row of that side, 0 no row.
    B, Binv : numpy.ndarray
        (L, d+1) dual-feasible bases of rows each LP holds and (L, d+1, d+1) their inverses (not modified).

    Returns
    -------
    BatchResult
        Per LP the certified radius, point and optimal basis; how many LPs HiGHS re-solved.

    Examples
    --------
    >>> import numpy as np
    >>> from lrmilp.domains import Box, domain_rows
    >>> shared = SharedRows.of_domain(*domain_rows(Box(-1, 1, 2)))
    >>> B, Binv = shared.first_basis()
    >>> res = solve_batch(shared, np.array([[1.0, 0.0]]), np.zeros(1), np.array([[1]], dtype=np.int8), B[None], Binv[None])
    >>> round(float(res.t[0]), 9)
    0.5
    """
    L, n = B.shape
    d = n - 1
    # Every row of LP l as rhs - (SG * (W u)) ... : slack_r = H[l, r] + SG[l, r] * (u @ W)[r] - t, with
    # W = [shared u-parts | layer normals]; shared rows have SG = -1, layer rows SG = sig, absent rows
    # H = inf (never violated, never entering).
    WT = np.concatenate([shared.G[:, :d], Ahat])  # (R, d): u-parts (shared) or normals (layer)
    W = WT.T
    S = len(shared.h)
    sgf = sig.astype(float)
    H = np.concatenate([np.broadcast_to(shared.h, (L, S)), np.where(sig != 0, sgf * chat, np.inf)], axis=1)
    SG = np.concatenate([np.full((L, S), -1.0), sgf], axis=1)
    B_out, Binv_out = B.copy(), Binv.copy()
    pivots = 0
    # The active LPs, compacted as they finish: global index, basis, inverse, rows, vertex.
    idx, Ba, Bi, Ha, SGa = np.arange(L), B.copy(), Binv.copy(), H, SG
    y = np.matmul(Bi, np.take_along_axis(H, Ba, axis=1)[:, :, None])[:, :, 0]
    WTd = WT[:, None, :]
    tmp = np.empty_like(Bi)
    for it in range(MAX_PIVOTS + 1):
        s = Ha + SGa * np.einsum("ld,dr->lr", y[:, :d], W)
        s -= y[:, d:]
        r = s.argmin(axis=1)
        ar = np.arange(idx.size)
        sr = s[ar, r]
        done = sr >= -PRIMAL_FEAS
        if done.any():
            fin = np.flatnonzero(done)
            B_out[idx[fin]], Binv_out[idx[fin]] = Ba[fin], Bi[fin]
            keep = ~done
            idx, Ba, Bi, Ha, SGa, y, r, sr = idx[keep], Ba[keep], Bi[keep], Ha[keep], SGa[keep], y[keep], r[keep], sr[keep]
            if idx.size == 0:
                break
            ar = np.arange(idx.size)
        k = idx.size
        # One dual simplex pivot in every active LP: row r enters, the ratio test picks who leaves.
        # w = g Binv for the entering row g = (-SG[r] W[r], 1).
        gu = -SGa[ar, r, None, None] * WTd[r]
        w = np.matmul(gu, Bi[:, :d, :])[:, 0, :] + Bi[:, d, :]
        okw = w > PIVOT_TOL
        ratio = np.full(w.shape, np.inf)
        np.divide(np.maximum(Bi[:, d, :], 0.0), w, out=ratio, where=okw)
        rmin = ratio.min(axis=1)
        i = np.where(ratio <= rmin[:, None] + RATIO_TIE, w, -np.inf).argmax(axis=1)  # largest pivot among ties
        if np.isinf(rmin).any():
            # No pivot keeps the duals feasible: impossible for these LPs, so numerics failed.  Their
            # bases go to the certification below, which fails them over to HiGHS.
            none = np.isinf(rmin)
            B_out[idx[none]], Binv_out[idx[none]] = Ba[none], Bi[none]
            keep = ~none
            idx, Ba, Bi, Ha, SGa, y, r, sr, w, i = (idx[keep], Ba[keep], Bi[keep], Ha[keep], SGa[keep], y[keep],
                                                    r[keep], sr[keep], w[keep], i[keep])
            k = idx.size
            if k == 0:
                break
            ar = np.arange(k)
        col = Bi[ar, :, i] / w[ar, i, None]
        np.einsum("li,lj->lij", col, w, out=tmp[:k])
        Bi -= tmp[:k]
        Bi[ar, :, i] = col
        Ba[ar, i] = r
        y += sr[:, None] * col  # the new vertex: the other basis rows stay tight, row r becomes tight
        pivots += k
        if it % REFACTOR_EVERY == REFACTOR_EVERY - 1:  # rank-one updates drift: recompute from the rows
            Bi = np.linalg.inv(_basis_rows(WT, SGa, Ba))
            y = np.matmul(Bi, np.take_along_axis(Ha, Ba, axis=1)[:, :, None])[:, :, 0]
    unfinished = idx  # out of pivots
    # Certify every basis: multipliers lam (row d of the inverse) >= 0 and lam @ G_B = e_d (dual feasible,
    # hence optimal once its vertex is feasible); the vertex y = G_B^-1 h_B; the radius is measured at y.
    GB = _basis_rows(WT, SG, B_out)
    lam = Binv_out[:, d, :]
    res = np.abs(np.matmul(lam[:, None, :], GB)[:, 0, :] - shared.G[0]).max(axis=1)
    ok = (lam.min(axis=1) >= -DUAL_RESIDUAL) & (res <= DUAL_RESIDUAL)
    ok[unfinished] = False
    y = np.matmul(Binv_out, np.take_along_axis(H, B_out, axis=1)[:, :, None])[:, :, 0]
    U_out = y[:, :d].copy()
    near = (H[:, 1:] + SG[:, 1:] * (U_out @ W[:, 1:])).min(axis=1)  # distance to the nearest non-cap row
    t_out = np.minimum(near, shared.h[0])
    bad = np.flatnonzero(~ok | (t_out < y[:, d] - OPTIMALITY_GAP))
    for l in bad:
        t_out[l], U_out[l] = _fallback(shared, Ahat, chat, sig[l])
        B_out[l], Binv_out[l] = B[l], Binv[l]
    return BatchResult(t_out, U_out, B_out, Binv_out, len(bad), pivots)


def _fallback(shared: SharedRows, Ahat: np.ndarray, chat: np.ndarray, sig_l: np.ndarray) -> tuple[float, np.ndarray]:
    """One LP of a batch by HiGHS (:func:`chebyshev_ball`), radius certified at the point as in
    :func:`solve_batch`."""
    d = Ahat.shape[1]
    pres = np.flatnonzero(sig_l)
    rows = np.vstack([shared.G[1:, :d], -sig_l[pres, None] * Ahat[pres]])
    rhs = np.r_[shared.h[1:], sig_l[pres] * chat[pres]]
    cap = float(shared.h[0])
    _, u = chebyshev_ball(rows, rhs, cap)
    return min(float((rhs - rows @ u).min()), cap), u


def chebyshev_ball(rows: np.ndarray, rhs: np.ndarray, cap: float = RADIUS_CAP) -> tuple[float, np.ndarray]:
    """The largest ball in {u : rows u <= rhs} (unit rows), radius capped at ``cap`` (scipy's HiGHS).

    Parameters
    ----------
    rows : numpy.ndarray
        (m, d) unit normals.
    rhs : numpy.ndarray
        (m,) offsets.
    cap : float
        The radius cap (keeps the LP bounded).

    Returns
    -------
    tuple
        (radius, centre); radius -inf when the rows admit no point.

    Raises
    ------
    RuntimeError
        The LP failed (never read as an empty cell).

    Examples
    --------
    >>> import numpy as np
    >>> t, u = chebyshev_ball(np.array([[1.0], [-1.0]]), np.array([1.0, 1.0]), cap=5.0)
    >>> round(t, 9), abs(round(float(u[0]), 9))
    (1.0, 0.0)
    """
    from scipy.optimize import linprog
    d = rows.shape[1]
    res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.c_[rows, np.ones(len(rows))], b_ub=rhs,
                  bounds=[(None, None)] * d + [(None, cap)], method="highs")
    if res.status == 2:  # infeasible: the rows admit no point at all
        return -np.inf, np.zeros(d)
    if res.status != 0:
        raise RuntimeError(f"region LP failed: {res.message}")  # never read a failure as an empty cell
    return float(-res.fun), res.x[:d]


class HighsChebyshevLP:
    """The Chebyshev LP on one warm highspy model (any domain)."""

    def __init__(self, dim: int, base_rows: np.ndarray, base_rhs: np.ndarray, cap: float = RADIUS_CAP) -> None:
        h = new_highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("presolve", "off")
        h.setOptionValue("threads", 1)
        self.h, self.d = h, dim
        h.addVars(dim + 1, np.full(dim + 1, -INF), np.r_[np.full(dim, INF), cap])
        h.changeColCost(dim, 1.0)
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        self.idx = np.arange(dim + 1, dtype=np.int32)
        self.buf = np.ones(dim + 1)  # row coefficients (a/|a|, 1); the last entry is t's
        self.last = np.array([0], dtype=np.int32)
        self.retries = 0  # LPs re-solved from a cold start after a non-optimal status
        self.fallbacks = 0
        self.stack: list[tuple[np.ndarray, float]] = []  # rows pushed, in order (the search path)
        for a, r in zip(base_rows, base_rhs):
            self.push(a, r)
        self.stack.clear()  # domain rows are not part of any path

    def push(self, a_unit: np.ndarray, rhs: float) -> None:
        self.buf[:-1] = a_unit
        self.h.addRow(-INF, float(rhs), self.d + 1, self.idx, self.buf)
        self.stack.append((a_unit, rhs))

    def pop(self) -> None:
        self.last[0] = self.h.getNumRow() - 1
        self.h.deleteRows(1, self.last)
        self.stack.pop()

    def solve(self) -> tuple[float, np.ndarray]:
        """The optimal (t, u).  The LP is always feasible and bounded, so any status but optimal is a
        numerical failure: retry from a cold start, then with presolve, and raise rather than ever read a
        failure as an empty cell."""
        h = self.h
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            self.retries += 1
            h.clearSolver()
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                h.setOptionValue("presolve", "on")
                h.clearSolver()
                h.run()
                h.setOptionValue("presolve", "off")
                if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                    raise RuntimeError(f"HiGHS failed on a region LP: {h.modelStatusToString(h.getModelStatus())}")
        x = np.asarray(h.getSolution().col_value)
        return float(x[-1]), x[:-1]


