"""The batched dense Chebyshev LP (lrmilp.lp.chebyshev.solve_batch) against scipy's HiGHS, which shares no
code with it, including warm starts, the HiGHS fallback and corrupted bases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

import lrmilp.lp.chebyshev as ch
from lrmilp.lp.chebyshev import RADIUS_CAP, SharedRows, solve_batch
from lrmilp.domains import Box
from lrmilp.domains import domain_rows


def _reference(shared: SharedRows, A: np.ndarray, c: np.ndarray, sig: np.ndarray) -> float:
    """max min(t, cap) s.t. rows u + t <= rhs, by scipy.optimize.linprog."""
    d = A.shape[1]
    pres = np.flatnonzero(sig)
    rows = np.vstack([shared.G[1:, :d], -sig[pres, None] * A[pres]])
    rhs = np.r_[shared.h[1:], sig[pres] * c[pres]]
    res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.c_[rows, np.ones(len(rows))], b_ub=rhs,
                  bounds=[(None, None)] * d + [(None, RADIUS_CAP)], method="highs")
    assert res.status == 0
    return -res.fun


def _problem(seed: int, d: int = 9, n: int = 10, L: int = 60):
    rng = np.random.default_rng(seed)
    shared = SharedRows.of_domain(*domain_rows(Box(-rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d), d)))
    extra = rng.normal(size=(3, d))
    shared = shared.extend(extra / np.linalg.norm(extra, axis=1, keepdims=True), rng.uniform(0.0, 0.5, 3))
    A = rng.normal(size=(n, d))
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    c = rng.normal(size=n) * 1.2
    sig = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(L, n))
    return shared, A, c, sig


def _check(shared, A, c, sig, res):
    d = A.shape[1]
    for l in range(len(sig)):
        assert res.t[l] == pytest.approx(_reference(shared, A, c, sig[l]), abs=1e-8)
        # the radius is certified at the returned point: every row keeps at least that distance
        pres = np.flatnonzero(sig[l])
        rows = np.vstack([shared.G[1:, :d], -sig[l, pres, None] * A[pres]])
        rhs = np.r_[shared.h[1:], sig[l, pres] * c[pres]]
        assert np.all(rhs - rows @ res.U[l] >= min(res.t[l], RADIUS_CAP) - 1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_cold_and_warm_starts_match_highs(seed):
    shared, A, c, sig = _problem(seed)
    B, Binv = shared.first_basis()
    L = len(sig)
    cold = solve_batch(shared, A, c, sig, np.repeat(B[None], L, 0), np.repeat(Binv[None], L, 0))
    _check(shared, A, c, sig, cold)
    assert (cold.t > 0).any() and (cold.t <= 0).any()  # both outcomes occur
    # Children: one more row each, warm-started from the parent's optimal basis.
    rng = np.random.default_rng(seed)
    child = sig.copy()
    free = [np.flatnonzero(s == 0) for s in sig]
    for l, f in enumerate(free):
        if f.size:
            child[l, rng.choice(f)] = rng.choice([-1, 1])
    warm = solve_batch(shared, A, c, child, cold.B, cold.Binv)
    _check(shared, A, c, child, warm)
    assert warm.pivots < cold.pivots  # the warm start is worth something


def test_fallback_to_highs_when_out_of_pivots(monkeypatch):
    shared, A, c, sig = _problem(7, L=20)
    B, Binv = shared.first_basis()
    monkeypatch.setattr(ch, "MAX_PIVOTS", 1)
    res = solve_batch(shared, A, c, sig, np.repeat(B[None], 20, 0), np.repeat(Binv[None], 20, 0))
    assert res.fallbacks > 0
    _check(shared, A, c, sig, res)


def test_corrupted_basis_is_caught():
    """A wrong basis inverse must never yield a wrong radius: the certificate check sends it to HiGHS."""
    shared, A, c, sig = _problem(11, L=30)
    B, Binv = shared.first_basis()
    good = solve_batch(shared, A, c, sig, np.repeat(B[None], 30, 0), np.repeat(Binv[None], 30, 0))
    noisy = good.Binv + np.random.default_rng(0).normal(scale=1e-3, size=good.Binv.shape)
    res = solve_batch(shared, A, c, sig, good.B, noisy)
    assert res.fallbacks > 0
    _check(shared, A, c, sig, res)

