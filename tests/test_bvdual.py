"""The numba bounded-variable dual simplex (lrmilp.lp.bvdual) against scipy's HiGHS (linprog), which
shares no code with it: cold solves, warm add-row sequences, copy/restore backtracking, degenerate
and infeasible LPs, the independent certificates, and the kernel called from compiled code."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

numba = pytest.importorskip("numba")

from lrmilp.lp import bvdual as bv  # noqa: E402

TOL = 1e-9
"""Accuracy demanded, relative to the problem's length scale (the box's largest |coordinate|)."""


def reference(G, r, w, lo, hi, t_lo, t_cap):
    """(t*, status) of max t s.t. G u + w t <= r, lo <= u <= hi, t_lo <= t <= t_cap, by linprog with its
    tightest tolerances.  status 0 optimal, 2 infeasible."""
    m, d = G.shape
    opts = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
    res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.c_[G, w] if m else None, b_ub=r if m else None,
                  bounds=list(zip(lo, hi)) + [(t_lo, t_cap)], method="highs", options=opts)
    assert res.status in (0, 2), res.message
    return (-res.fun if res.status == 0 else None), res.status


def xscale(lo, hi):
    return max(np.abs(lo).max(), np.abs(hi).max(), 1e-300)


def check_solution(G, r, w, lo, hi, t_lo, t_cap, t, u, y, status, oracle_exact=True):
    """The kernel's answer agrees with linprog, and both certificates bracket it.  With ``oracle_exact``
    False (ill-conditioned LPs, where HiGHS itself stops 1e-7 short), linprog's optimum only has to lie
    below our certified upper bound, and our certified bracket decides."""
    t_ref, st_ref = reference(G, r, w, lo, hi, t_lo, t_cap)
    if st_ref == 2:
        assert status == bv.INFEASIBLE
        return None
    assert status == bv.OPTIMAL
    sc = xscale(lo, hi)
    m = len(r)
    uc = u.copy()
    margin, viol = bv.certify_point(G, r, w, m, lo, hi, uc)
    assert np.array_equal(uc, np.clip(u, lo, hi))
    assert viol <= TOL * sc * max(1.0, np.abs(G).max(initial=0.0))  # plain rows hold at the point
    lower = min(margin, t_cap)  # a feasible point's value
    ub = bv.certify_bound(G, r, w, m, lo, hi, t_cap, y)  # from the duals: an upper bound
    assert (y >= -1e-9).all()
    assert abs(t - lower) <= TOL * sc and abs(t - ub) <= TOL * sc, (lower, t, ub)
    if oracle_exact:
        assert abs(t - t_ref) <= TOL * sc, (t, t_ref)
    else:
        assert t_ref <= ub + TOL * sc
    return t


def instance(rng, d, m, *, scale=1.0, offset=0.0, frac_plain=0.2, conflict=False, plain_infeasible=False):
    """A random margin LP whose box has length scale ``scale`` around ``offset``: unit hyperplane rows,
    plain rows of random norms (1e-2..1e2), rhs around a random box point; ``conflict`` adds an opposed
    pair of hyperplanes forcing t* < 0; ``plain_infeasible`` an opposed pair of plain rows."""
    G = rng.normal(size=(m, d))
    w = (rng.random(m) >= frac_plain).astype(float)
    norms = np.linalg.norm(G, axis=1, keepdims=True)
    G = G / norms * np.where(w[:, None] > 0, 1.0, 10.0 ** rng.uniform(-2, 2, (m, 1)))
    lo = offset - scale * rng.uniform(0.1, 1.0, d)
    hi = offset + scale * rng.uniform(0.1, 1.0, d)
    x0 = rng.uniform(lo, hi)
    gn = np.linalg.norm(G, axis=1)
    r = G @ x0 + gn * scale * np.where(w > 0, rng.normal(size=m) * 0.3, rng.uniform(0.0, 0.3, m))
    if conflict and m >= 2:
        g = rng.normal(size=d)
        g /= np.linalg.norm(g)
        G[0], G[1], w[0], w[1] = g, -g, 1.0, 1.0
        c = g @ x0
        r[0], r[1] = c, -c - 0.4 * scale  # t <= -0.2 scale
    if plain_infeasible and m >= 2:
        g = rng.normal(size=d)
        G[0], G[1], w[0], w[1] = g, -g, 0.0, 0.0
        r[0], r[1] = g @ x0, -(g @ x0) - 0.1 * scale * np.linalg.norm(g)
    t_cap = scale * rng.choice([0.01, 1.0, 100.0])
    t_lo = -10.0 * scale * (1.0 + np.sqrt(d))
    return G, r, w, lo, hi, t_lo, t_cap


# ---------------------------------------------------------------------------------------------------
# Cold solves

@pytest.mark.parametrize("d", [1, 2, 5, 64, 300])
@pytest.mark.parametrize("m", [0, 1, 5, 20, 40])
def test_random_instances_match_linprog(d, m):
    rng = np.random.default_rng([d, m])
    variants = [dict(), dict(scale=1e-3, frac_plain=0.5), dict(scale=1e3, offset=2e3, frac_plain=0.0),
                dict(scale=1.0, conflict=True), dict(scale=10.0, offset=-5.0, plain_infeasible=True)]
    solved = 0
    for kw in variants:
        G, r, w, lo, hi, t_lo, t_cap = instance(rng, d, m, **kw)
        t, u, y, status = bv.solve_margin_lp(G, r, w, lo, hi, t_lo, t_cap)
        if check_solution(G, r, w, lo, hi, t_lo, t_cap, t, u, y, status) is not None:
            solved += 1
    assert solved >= 3


def test_margin_can_be_negative_and_is_certified():
    rng = np.random.default_rng(7)
    G, r, w, lo, hi, t_lo, t_cap = instance(rng, 20, 12, conflict=True, frac_plain=0.0)
    t, u, y, status = bv.solve_margin_lp(G, r, w, lo, hi, t_lo, t_cap)
    assert check_solution(G, r, w, lo, hi, t_lo, t_cap, t, u, y, status) <= -0.2 + 1e-9


def test_hint_and_no_hint_agree():
    rng = np.random.default_rng(3)
    G, r, w, lo, hi, t_lo, t_cap = instance(rng, 30, 15)
    t0, *_ = bv.solve_margin_lp(G, r, w, lo, hi, t_lo, t_cap)
    t1, u1, y1, st = bv.solve_margin_lp(G, r, w, lo, hi, t_lo, t_cap, hint=rng.uniform(lo, hi))
    assert st == bv.OPTIMAL and t1 == pytest.approx(t0, abs=1e-12)


# ---------------------------------------------------------------------------------------------------
# Warm starts and backtracking

def _state(G, r, w, lo, hi, t_lo, t_cap, capacity):
    S = bv.new_state(capacity, len(lo))
    bv.load_problem(S, G, r, w, lo, hi, t_lo, t_cap)
    return S


def _answer(S, d):
    u = np.empty(d)
    t = bv.solution(S, u)
    y = np.zeros(bv.num_rows(S))
    bv.duals(S, y)
    return t, u, y


@pytest.mark.parametrize("d", [2, 64, 300])
def test_warm_add_row_sequence(d):
    rng = np.random.default_rng(d)
    lo, hi = -rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
    t_lo, t_cap = -50.0, 1.0
    S = _state(np.zeros((0, d)), np.zeros(0), np.zeros(0), lo, hi, t_lo, t_cap, 30)
    G, r, w = np.zeros((0, d)), np.zeros(0), np.zeros(0)
    assert bv.solve(S, bv.MAX_PIVOTS) == bv.OPTIMAL
    for k in range(30):
        t, u, _ = _answer(S, d)
        g = rng.normal(size=d)
        plain = k % 7 == 3
        if plain:
            g *= rng.uniform(0.1, 10)
            rhs = g @ rng.uniform(lo, hi) + 0.1 * np.linalg.norm(g)
        else:
            g /= np.linalg.norm(g)
            rhs = g @ u + rng.uniform(-0.9, 0.9) * abs(t)  # cuts the current optimum's ball
        wt = 0.0 if plain else 1.0
        bv.add_row(S, g, rhs, wt)
        G, r, w = np.vstack([G, g]), np.r_[r, rhs], np.r_[w, wt]
        status = bv.solve(S, bv.MAX_PIVOTS)
        t, u, y = _answer(S, d)
        if check_solution(G, r, w, lo, hi, t_lo, t_cap, t, u, y, status) is None:
            break  # infeasible: nothing to extend


@pytest.mark.parametrize("d", [5, 64])
def test_copy_restore_backtracking(d):
    rng = np.random.default_rng(100 + d)
    G, r, w, lo, hi, t_lo, t_cap = instance(rng, d, 8, frac_plain=0.25)
    cap = 12
    S = _state(G, r, w, lo, hi, t_lo, t_cap, cap)
    assert bv.solve(S, bv.MAX_PIVOTS) == bv.OPTIMAL
    t_par, u_par, y_par = _answer(S, d)
    parent = bv.new_state(cap, d)
    bv.copy_into(parent, S, 0)
    for child in range(6):
        g = rng.normal(size=d)
        g /= np.linalg.norm(g)
        rhs = g @ u_par + rng.uniform(-0.9, 0.9) * abs(t_par)
        bv.add_row(S, g, rhs, 1.0)
        status = bv.solve(S, bv.MAX_PIVOTS)
        t, u, y = _answer(S, d)
        check_solution(np.vstack([G, g]), np.r_[r, rhs], np.r_[w, 1.0], lo, hi, t_lo, t_cap, t, u, y, status)
        if child % 2 == 0:  # a grandchild on top, then back up two levels at once
            g2 = -g
            bv.add_row(S, g2, -rhs + 0.05, 1.0)
            status = bv.solve(S, bv.MAX_PIVOTS)
            t2, u2, y2 = _answer(S, d)
            check_solution(np.vstack([G, g, g2]), np.r_[r, rhs, -rhs + 0.05], np.r_[w, 1.0, 1.0], lo, hi, t_lo,
                           t_cap, t2, u2, y2, status)
        bv.copy_into(S, parent, len(r) if child % 3 else 0)  # restore (with or without the shared rows)
        assert bv.num_rows(S) == len(r)
        t_back, u_back, _ = _answer(S, d)
        assert t_back == t_par and np.array_equal(u_back, u_par)
        assert bv.solve(S, bv.MAX_PIVOTS) == bv.OPTIMAL and bv.last_pivots(S) == 0


def test_add_row_beyond_capacity_raises():
    S = bv.new_state(1, 2)
    bv.load_problem(S, np.ones((1, 2)) / np.sqrt(2), np.ones(1), np.ones(1), -np.ones(2), np.ones(2), -5.0, 1.0)
    with pytest.raises(ValueError):
        bv.add_row(S, np.ones(2), 1.0, 1.0)


def test_iteration_limit_then_resume():
    rng = np.random.default_rng(11)
    G, r, w, lo, hi, t_lo, t_cap = instance(rng, 64, 30, frac_plain=0.0)
    S = _state(G, r, w, lo, hi, t_lo, t_cap, 30)
    assert bv.solve(S, 2) == bv.ITERATION_LIMIT
    status = bv.solve(S, bv.MAX_PIVOTS)
    check_solution(G, r, w, lo, hi, t_lo, t_cap, *_answer(S, 64), status)


# ---------------------------------------------------------------------------------------------------
# Edge cases and degeneracy

def test_no_rows_gives_t_cap():
    lo, hi = -np.ones(3), np.ones(3)
    t, u, y, status = bv.solve_margin_lp(np.zeros((0, 3)), np.zeros(0), np.zeros(0), lo, hi, -4.0, 0.7)
    assert status == bv.OPTIMAL and t == 0.7 and ((lo <= u) & (u <= hi)).all() and y.size == 0
    assert bv.certify_bound(np.zeros((0, 3)), np.zeros(0), np.zeros(0), 0, lo, hi, 0.7, y) == 0.7
    assert bv.certify_point(np.zeros((0, 3)), np.zeros(0), np.zeros(0), 0, lo, hi, u) == (np.inf, -np.inf)


def test_only_plain_rows_t_is_t_cap():
    rng = np.random.default_rng(5)
    d, m = 40, 25
    G, r, w, lo, hi, t_lo, t_cap = instance(rng, d, m, frac_plain=1.0)
    t, u, y, status = bv.solve_margin_lp(G, r, w, lo, hi, t_lo, t_cap)
    assert t == t_cap and not y.any()
    check_solution(G, r, w, lo, hi, t_lo, t_cap, t, u, y, status)


def test_degenerate_rows():
    rng = np.random.default_rng(21)
    d = 6
    lo, hi = -np.ones(d), np.ones(d)
    base = rng.normal(size=(4, d))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    corner = hi.copy()
    corner[::2] = -1.0
    gc = rng.normal(size=d)
    gc /= np.linalg.norm(gc)
    rows = [base[0], base[0], base[1], base[1], base[2], gc, np.zeros(d), np.zeros(d), base[3], 2.0 * base[3]]
    rhs = [0.3, 0.3, 0.2, 0.5, 0.4, gc @ corner, 0.25, 3.0, 0.1, 0.2 + 1e-3]
    wts = [1, 1, 1, 1, 1, 1, 1, 0, 0, 0]
    # duplicated rows, parallel rows, a row through a box corner, a zero row bounding t (t <= 0.25), a
    # zero plain row (0 <= 3), a plain row and its scaled near-copy
    G, r, w = np.array(rows), np.array(rhs, float), np.array(wts, float)
    for t_cap in (0.1, 1.0):
        t, u, y, status = bv.solve_margin_lp(G, r, w, lo, hi, -10.0, t_cap)
        assert check_solution(G, r, w, lo, hi, -10.0, t_cap, t, u, y, status) <= 0.25
    # a zero plain row with a negative right-hand side is infeasible
    t, u, y, status = bv.solve_margin_lp(np.zeros((1, d)), -np.ones(1), np.zeros(1), lo, hi, -10.0, 1.0)
    assert status == bv.INFEASIBLE


def test_many_rows_tight_at_the_optimum():
    """Rows tangent to one ball (all tight at its centre, m > d + 1: primal degenerate), and the same
    with t_cap = the radius (dual degenerate too)."""
    rng = np.random.default_rng(8)
    d, m, rho = 5, 30, 0.3
    c = rng.uniform(-0.3, 0.3, d)
    G = rng.normal(size=(m, d))
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    r = G @ c + rho
    lo, hi = -np.ones(d), np.ones(d)
    for t_cap in (1.0, rho):
        t, u, y, status = bv.solve_margin_lp(G, r, np.ones(m), lo, hi, -10.0, t_cap)
        assert check_solution(G, r, np.ones(m), lo, hi, -10.0, t_cap, t, u, y, status) == pytest.approx(rho)


def test_nearly_parallel_rows_tiny_pivots():
    rng = np.random.default_rng(9)
    d = 8
    g = rng.normal(size=d)
    g /= np.linalg.norm(g)
    G = [g]
    for eps in (1e-12, 1e-10, 1e-8):
        h = g + eps * rng.normal(size=d)
        G.append(h / np.linalg.norm(h))
    G = np.array(G + [-gg for gg in G[:2]])
    r = np.array([0.5, 0.5 + 1e-11, 0.5, 0.5 - 1e-9, 0.1, 0.1])
    lo, hi = -np.ones(d), np.ones(d)
    t, u, y, status = bv.solve_margin_lp(G, r, np.ones(len(r)), lo, hi, -10.0, 5.0)
    check_solution(G, r, np.ones(len(r)), lo, hi, -10.0, 5.0, t, u, y, status, oracle_exact=False)


def test_refactorisation_and_singular_basis_recovery():
    rng = np.random.default_rng(12)
    d, m = 30, 20
    G, r, w, lo, hi, t_lo, t_cap = instance(rng, d, m, frac_plain=0.1)
    S = _state(G, r, w, lo, hi, t_lo, t_cap, m)
    assert bv.solve(S, bv.MAX_PIVOTS) == bv.OPTIMAL
    t0, _, _ = _answer(S, d)
    # forced refactorisation of an optimal basis: same optimum, no pivots
    S.ipar[bv.I_SINCE] = bv.REFACTOR_EVERY
    assert bv.solve(S, bv.MAX_PIVOTS) == bv.OPTIMAL
    assert _answer(S, d)[0] == pytest.approx(t0, abs=1e-12)
    # a corrupted (singular) basis: two positions hold the same variable -> cold restart, same optimum
    structural = np.flatnonzero(S.basis[:m] <= d)
    i, j = (structural[:2] if structural.size >= 2 else (0, 1))
    S.basis[j] = S.basis[i]
    S.ipar[bv.I_SINCE] = bv.REFACTOR_EVERY
    restarts = S.ipar[bv.I_RESTARTS]
    status = bv.solve(S, bv.MAX_PIVOTS)
    assert S.ipar[bv.I_RESTARTS] == restarts + 1
    check_solution(G, r, w, lo, hi, t_lo, t_cap, *_answer(S, d), status)


def test_long_cold_solve_with_refactorisations():
    rng = np.random.default_rng(13)
    d, m = 300, 40
    G, r, w, lo, hi, t_lo, t_cap = instance(rng, d, m, frac_plain=0.1)
    S = _state(G, r, w, lo, hi, t_lo, t_cap, m)
    status = bv.solve(S, bv.MAX_PIVOTS)
    assert S.ipar[bv.I_PIVOTS] > bv.REFACTOR_EVERY and S.ipar[bv.I_REFACTORS] >= 1
    check_solution(G, r, w, lo, hi, t_lo, t_cap, *_answer(S, d), status)


# ---------------------------------------------------------------------------------------------------
# Certificates

def test_certify_bound_from_any_multipliers():
    rng = np.random.default_rng(14)
    for trial in range(20):
        d, m = int(rng.integers(1, 8)), int(rng.integers(1, 10))
        G, r, w, lo, hi, t_lo, t_cap = instance(rng, d, m, frac_plain=0.3)
        t_ref, st = reference(G, r, w, lo, hi, t_lo, t_cap)
        if st != 0:
            continue
        for _ in range(5):
            y = rng.exponential(size=m) * (rng.random(m) < 0.7) - 0.1 * (rng.random(m) < 0.2)
            assert bv.certify_bound(G, r, w, m, lo, hi, t_cap, y) >= t_ref - 1e-12


def test_property_bound_and_optimum():
    hyp = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    @hyp.settings(max_examples=50, deadline=None, derandomize=True)
    @hyp.given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 6), m=st.integers(0, 9),
               scale=st.sampled_from([1e-3, 1.0, 1e3]), frac_plain=st.sampled_from([0.0, 0.3, 1.0]))
    def prop(seed, d, m, scale, frac_plain):
        rng = np.random.default_rng(seed)
        G, r, w, lo, hi, t_lo, t_cap = instance(rng, d, m, scale=scale, frac_plain=frac_plain)
        t, u, y, status = bv.solve_margin_lp(G, r, w, lo, hi, t_lo, t_cap)
        t_ref = check_solution(G, r, w, lo, hi, t_lo, t_cap, t, u, y, status)
        if t_ref is not None:
            ys = rng.exponential(size=m) * (rng.random(m) < 0.6)
            assert bv.certify_bound(G, r, w, m, lo, hi, t_cap, ys) >= t_ref - TOL * xscale(lo, hi) * 1e-3

    prop()


# ---------------------------------------------------------------------------------------------------
# Called from compiled code

@numba.njit
def _jit_search(G0, r0, lo, hi, rows, rhs):
    """Root LP, then each of ``rows`` as a child of the root (restore in between); the children's t."""
    d = lo.size
    cap = r0.size + 1
    S = bv.new_state(cap, d)
    root = bv.new_state(cap, d)
    bv.load_problem(S, G0, r0, np.ones(r0.size), lo, hi, -100.0, 1.0)
    bv.init(S, 0.5 * (lo + hi))
    if bv.solve(S, bv.MAX_PIVOTS) != bv.OPTIMAL:
        return np.full(rows.shape[0], np.nan)
    bv.copy_into(root, S, 0)
    out = np.empty(rows.shape[0])
    u = np.empty(d)
    for c in range(rows.shape[0]):
        bv.add_row(S, rows[c], rhs[c], 1.0)
        st = bv.solve(S, bv.MAX_PIVOTS)
        out[c] = bv.solution(S, u) if st == bv.OPTIMAL else np.nan
        bv.copy_into(S, root, r0.size)
    return out


def test_callable_from_njit():
    rng = np.random.default_rng(15)
    d, m = 10, 6
    G = rng.normal(size=(m, d))
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    r = rng.uniform(0.1, 0.5, m)
    lo, hi = -np.ones(d), np.ones(d)
    rows = rng.normal(size=(5, d))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    rhs = rng.uniform(-0.2, 0.2, 5)
    got = _jit_search(G, r, lo, hi, rows, rhs)
    for c in range(5):
        t_ref, _ = reference(np.vstack([G, rows[c]]), np.r_[r, rhs[c]], np.ones(m + 1), lo, hi, -100.0, 1.0)
        assert got[c] == pytest.approx(t_ref, abs=1e-9)


def test_bad_input_raises():
    S = bv.new_state(2, 2)
    G, r, w = np.eye(2), np.ones(2), np.ones(2)
    with pytest.raises(ValueError):
        bv.load_problem(S, G, r, w, np.ones(2), -np.ones(2), -1.0, 1.0)  # lo > hi
    with pytest.raises(ValueError):
        bv.load_problem(S, G, r, w, -np.ones(2), np.ones(2), 2.0, 1.0)  # t_lo > t_cap
    with pytest.raises(ValueError):
        bv.load_problem(S, G, np.array([1.0, np.nan]), w, -np.ones(2), np.ones(2), -1.0, 1.0)
    bv.load_problem(S, G[:1], r[:1], w[:1], -np.ones(2), np.ones(2), -1.0, 1.0)
    with pytest.raises(ValueError):
        bv.add_row(S, np.array([np.inf, 0.0]), 1.0, 1.0)
