#!/usr/bin/env python3
"""Warm re-solves of the margin LP: the numba kernel ``lrmilp.lp.bvdual`` against a warm highspy model.

    python benchmarks/lp_kernel.py [--dims 16,64,784] [--rows 5,11,22] [--reps 2000] [--highs-reps 300]
                                   [--t-cap 1.0]

For each (d, m): a parent LP over the box [-1, 1]^d with t in [-d, t_cap] and m - 1 hyperplane rows
g_i u + t <= r_i (unit g_i ~ N(0, I), r_i ~ U(0.2, 1), so the parent's margin is positive) is solved
once.  Then, --reps times: restore the parent, add one random unit row g u + t <= g u* + c with
c ~ U(-0.9, 0.9) t* (it cuts the parent's optimum (u*, t*): the new row passes through its ball) and
re-solve.  Timed: add row + solve, i.e. what a depth-first search pays per child LP; the restore is
timed apart (kernel: ``copy_into`` of the parent's m - 1 row state without its rows; HiGHS:
``deleteRows`` + ``setBasis(parent)``, so each child starts from the parent's optimal basis as in the
kernel).  The kernel's loop runs inside numba, as its intended caller is compiled code (a call from
Python adds about 2 us); HiGHS is driven from Python through highspy, as lrmilp does.  Both get the
same rows; their optima are compared (max |difference| column).

With the default t_cap = 1 (lrmilp.chebyshev.RADIUS_CAP) most parents reach the cap (in high
dimension a few rows leave a lot of room), so the children are feasibility LPs, totally dual
degenerate; with --t-cap 1000 the rows bind instead (cells; more pivots per child).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE)]  # this checkout's lrmilp

import highspy  # noqa: E402
from numba import njit  # noqa: E402

from lrmilp.formulations.highs import new_highs  # noqa: E402
from lrmilp.lp import bvdual as bv  # noqa: E402

INF = highspy.kHighsInf


def parent_lp(d: int, m: int, rng: np.random.Generator):
    G = rng.normal(size=(m - 1, d))
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    r = rng.uniform(0.2, 1.0, m - 1)
    return G, r


@njit(cache=True)
def kernel_children(S, parent, rows, rhs, out_t):
    """Per child: restore the parent, add the child's row, solve; its t into out_t.  Returns (pivots,
    non-optimal statuses) summed over the children."""
    m0 = bv.num_rows(parent)
    pivots = 0
    bad = 0
    u = np.empty(S.lo.size)
    for c in range(rows.shape[0]):
        bv.copy_into(S, parent, m0)
        bv.add_row(S, rows[c], rhs[c], 1.0)
        st = bv.solve(S, bv.MAX_PIVOTS)
        pivots += bv.last_pivots(S)
        bad += st != bv.OPTIMAL
        out_t[c] = bv.solution(S, u)
    return pivots, bad


@njit(cache=True)
def kernel_restores(S, parent, n):
    m0 = bv.num_rows(parent)
    for _ in range(n):
        bv.copy_into(S, parent, m0)


def run_kernel(G, r, d, rows, rhs, t_cap):
    m0 = len(r)
    cap = m0 + 1
    parent = bv.new_state(cap, d)
    bv.load_problem(parent, G, r, np.ones(m0), -np.ones(d), np.ones(d), -float(d), t_cap)
    assert bv.solve(parent, bv.MAX_PIVOTS) == bv.OPTIMAL
    S = bv.new_state(cap, d)
    bv.copy_into(S, parent, 0)
    out_t = np.empty(len(rhs))
    kernel_children(S, parent, rows[:2], rhs[:2], out_t[:2])  # compile / warm caches
    kernel_restores(S, parent, 2)
    bv.copy_into(S, parent, 0)
    t0 = time.perf_counter()
    kernel_restores(S, parent, len(rhs))
    t1 = time.perf_counter()
    pivots, bad = kernel_children(S, parent, rows, rhs, out_t)
    t2 = time.perf_counter()
    n = len(rhs)
    total, restore = (t2 - t1) / n, (t1 - t0) / n
    return (total - restore) * 1e6, restore * 1e6, pivots / n, bad, out_t


def run_highs(G, r, d, rows, rhs, t_cap):
    h = new_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("presolve", "off")
    h.setOptionValue("threads", 1)
    h.addVars(d + 1, np.r_[-np.ones(d), -float(d)], np.r_[np.ones(d), t_cap])
    h.changeColCost(d, 1.0)
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    idx = np.arange(d + 1, dtype=np.int32)
    buf = np.ones(d + 1)
    for g, rr in zip(G, r):
        buf[:d] = g
        h.addRow(-INF, float(rr), d + 1, idx, buf)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    parent_basis = h.getBasis()
    last = np.array([len(r)], dtype=np.int32)
    n = len(rhs)
    out_t = np.empty(n)
    iters = 0
    bad = 0
    solve_s = restore_s = 0.0
    for c in range(n):
        before = h.getInfo().simplex_iteration_count
        t0 = time.perf_counter()
        buf[:d] = rows[c]
        h.addRow(-INF, float(rhs[c]), d + 1, idx, buf)
        h.run()
        t1 = time.perf_counter()
        bad += h.getModelStatus() != highspy.HighsModelStatus.kOptimal
        iters += h.getInfo().simplex_iteration_count - before
        out_t[c] = h.getSolution().col_value[d]
        t2 = time.perf_counter()
        h.deleteRows(1, last)
        h.setBasis(parent_basis)
        t3 = time.perf_counter()
        solve_s += t1 - t0
        restore_s += t3 - t2
    return solve_s / n * 1e6, restore_s / n * 1e6, iters / n, bad, out_t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", default="16,64,784")
    ap.add_argument("--rows", default="5,11,22")
    ap.add_argument("--reps", type=int, default=2000, help="children per (d, m) for the kernel")
    ap.add_argument("--highs-reps", type=int, default=300, help="children per (d, m) for HiGHS (the first ones)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--t-cap", type=float, default=1.0)
    args = ap.parse_args()
    print(f"t_cap = {args.t_cap:g}; kernel: {args.reps} children per row, HiGHS: the first {args.highs_reps}")
    print(f"{'d':>4} {'m':>3} | {'kernel us':>9} {'pivots':>6} {'restore us':>10} | {'HiGHS us':>9} {'iters':>6}"
          f" {'restore us':>10} | {'ratio':>6} | max |t diff|")
    for d in map(int, args.dims.split(",")):
        for m in map(int, args.rows.split(",")):
            rng = np.random.default_rng([args.seed, d, m])
            G, r = parent_lp(d, m, rng)
            # the parent's optimum, for cutting rows
            t_star, u_star, _, st = bv.solve_margin_lp(G, r, np.ones(m - 1), -np.ones(d), np.ones(d), -float(d),
                                                       args.t_cap)
            assert st == bv.OPTIMAL
            rows = rng.normal(size=(args.reps, d))
            rows /= np.linalg.norm(rows, axis=1, keepdims=True)
            rhs = rows @ u_star + rng.uniform(-0.9, 0.9, args.reps) * t_star
            k_us, k_rest, k_piv, k_bad, k_t = run_kernel(G, r, d, rows, rhs, args.t_cap)
            nh = min(args.highs_reps, args.reps)
            h_us, h_rest, h_it, h_bad, h_t = run_highs(G, r, d, rows[:nh], rhs[:nh], args.t_cap)
            diff = np.abs(k_t[:nh] - h_t).max()
            note = "" if k_bad == h_bad == 0 else f"  (non-optimal: kernel {k_bad}, HiGHS {h_bad})"
            print(f"{d:>4} {m:>3} | {k_us:>9.2f} {k_piv:>6.2f} {k_rest:>10.2f} | {h_us:>9.1f} {h_it:>6.2f}"
                  f" {h_rest:>10.1f} | {h_us / k_us:>6.1f} | {diff:.1e}{note}", flush=True)


if __name__ == "__main__":
    main()
