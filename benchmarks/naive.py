#!/usr/bin/env python3
"""Naive reference enumerator of the linear regions of a ReLU network over a box.

    python benchmarks/naive.py MODEL.npz [--box LO HI] [--time-limit 60] [--tol 1e-9] [--json]
    python benchmarks/naive.py --random 64-11-11 [--seed 0] [--box LO HI] ...

The yardstick lrmilp's enumerator is measured against: a depth-first search over activation
patterns with one warm-started HiGHS LP per undecided split and nothing else (no bound
propagation, no ball tricks, no banks, no ordering heuristics).  It shares no code with
lrmilp's enumerator; from lrmilp it uses only the network loaders and ``random_mlp``.

The rule, in the parameter space u of the box [lo, hi]^n0:

* One HiGHS model over the variables (u_1..u_n0, t) maximises t.  The box is the variables'
  bounds; t <= T_CAP = T_CAP_FACTOR * (the box's largest half-width) keeps the LP bounded at
  shallow nodes, and t has no lower bound, so every LP is feasible and its optimum is the node's
  signed margin.  The cap never changes a count as long as it exceeds the tolerance (checked).
* A node is a partial activation pattern.  Each decided non-constant neuron i with state s_i
  (+1 active, -1 inactive) contributes the row s_i (a_i u + c_i) / ||a_i|| >= t, where
  a_i u + c_i is its pre-activation as an affine function of u given the decided earlier layers.
  The box faces are not part of the margin.  A neuron with ||a_i|| <= 1e-12 * sum_j |W_ij| ||M_j||
  (zero up to cancellation; M is the affine map feeding its layer) is constant: its state is
  c_i > 0 and it adds no row.
* Neurons are decided depth first, layer by layer, in network order.  At a neuron, the node's
  witness (u*, t*) decides one side for free when u* lies more than ``tol`` from the hyperplane:
  that child keeps u* with margin min(t*, distance) (a lower bound on its LP optimum, so > tol;
  the margin is carried for the record, decisions only need u*).  Every other side (one, or both when u* is
  within ``tol`` of the hyperplane) pushes its row, solves one LP warm-started from the basis of
  the nearest ancestor that solved one, and exists iff the optimal t > tol.  Rows are a stack:
  added on the way down, deleted on the way up, each popped with the basis saved when it was
  pushed (HiGHS alone would drop the basis whenever the deleted row is nonbasic).
* A node with every ReLU neuron decided is a region.  A child's optimal margin never exceeds its
  parent's, so the search finds exactly the full patterns whose margin LP has optimum > tol.

``tol`` (default 1e-9, absolute, in the units of u) is the margin a region must exceed: a region
counts iff it holds a point of the box at distance > tol from each of its own hyperplanes, on
their sides.  lrmilp's tree
currently uses 1e-6 with a ball rule, so its counts can differ by a few slivers.

Output: regions, complete, seconds, LPs, LPs/region and regions/s (``--json``: one JSON object).
A run stopped by ``--time-limit`` reports complete=false and a count that is a lower bound.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np

DEFAULT_TOL = 1e-9  # absolute margin a region must exceed
T_CAP_FACTOR = 1.0  # cap on t, in units of the box's largest half-width
ZERO_ROW_RTOL = 1e-12  # a_i with ||a_i|| below this times its cancellation-free size is zero
WEIGHT_STD, BIAS_STD = 1.0, 0.5  # random nets as benchmarks/count.py builds them

INF = highspy.kHighsInf


@dataclass
class NaiveResult:
    regions: int
    complete: bool
    seconds: float
    lps: int
    tol: float
    t_cap: float

    @property
    def lps_per_region(self) -> float:
        return self.lps / self.regions if self.regions else float("nan")

    @property
    def regions_per_second(self) -> float:
        return self.regions / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"regions": self.regions, "complete": self.complete, "seconds": self.seconds, "lps": self.lps,
                "lps_per_region": self.lps_per_region, "regions_per_second": self.regions_per_second,
                "tol": self.tol, "t_cap": self.t_cap}


class _TimeUp(Exception):
    """Unwinds the search when the time limit has passed."""


class NaiveEnumerator:
    """Depth-first enumeration of one network's regions over one box (use :meth:`run` once)."""

    def __init__(self, net: Any, lo: np.ndarray, hi: np.ndarray, *, tol: float = DEFAULT_TOL,
                 time_limit: float | None = None) -> None:
        self.n0 = int(net.input_dim)
        self.lo = np.broadcast_to(np.asarray(lo, dtype=float), (self.n0,)).copy()
        self.hi = np.broadcast_to(np.asarray(hi, dtype=float), (self.n0,)).copy()
        if not (np.all(np.isfinite(self.lo)) and np.all(np.isfinite(self.hi)) and np.all(self.lo < self.hi)):
            raise ValueError("the box must be finite with lo < hi in every coordinate")
        self.layers = [(layer.matrix, np.asarray(layer.bias, dtype=float), bool(layer.relu)) for layer in net.layers]
        # Layers after the last ReLU cut nothing: a node past it is a region.
        self.end = 1 + max((k for k, (_, _, relu) in enumerate(self.layers) if relu), default=-1)
        self.tol, self.time_limit = float(tol), time_limit
        self.t_cap = T_CAP_FACTOR * 0.5 * float(np.max(self.hi - self.lo))
        if not 0 <= self.tol < self.t_cap:
            raise ValueError(f"tol must be in [0, {self.t_cap:g}) (the cap on t), got {self.tol:g}")
        self.regions = self.lps = self.rows = 0
        self.bases: list[highspy.HighsBasis] = []  # the basis before each pushed row
        self.deadline = INF
        h = _new_highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)  # one thread: HiGHS's scheduler otherwise doubles the cost of a tiny LP
        h.setOptionValue("presolve", "off")  # warm-started tiny LPs: presolve would only discard the basis
        h.addVars(self.n0 + 1, np.r_[self.lo, -INF], np.r_[self.hi, self.t_cap])
        h.changeColCost(self.n0, 1.0)
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        self.h = h

    def run(self) -> NaiveResult:
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * sum(len(b) for _, b, _ in self.layers) + 1000))
        start = time.perf_counter()
        if self.time_limit is not None:
            self.deadline = start + self.time_limit
        complete = True
        try:
            # The root needs no LP: with no rows the box centre attains the cap.
            self._enter_layer(0, np.eye(self.n0), np.zeros(self.n0), 0.5 * (self.lo + self.hi), self.t_cap)
        except _TimeUp:
            complete = False
        return NaiveResult(self.regions, complete, time.perf_counter() - start, self.lps, self.tol, self.t_cap)

    # --- the search -------------------------------------------------------------------------------

    def _enter_layer(self, k: int, M: np.ndarray, m: np.ndarray, u: np.ndarray, t: float) -> None:
        """Layer k's input is M u + m; fold affine-only layers, then decide layer k's neurons."""
        while k < self.end and not self.layers[k][2]:
            W, b, _ = self.layers[k]
            M, m, k = np.asarray(W @ M), np.asarray(W @ m) + b, k + 1
        if k == self.end:
            if time.perf_counter() > self.deadline:
                raise _TimeUp
            self.regions += 1
            return
        W, b, _ = self.layers[k]
        A, c = np.asarray(W @ M), np.asarray(W @ m) + b
        # What ||a_i|| would be without cancellation: the yardstick for "a_i is zero".
        size = np.asarray(abs(W) @ np.linalg.norm(M, axis=1)).reshape(-1)
        self._decide(k, 0, A, c, size, np.zeros(len(c), dtype=bool), u, t)

    def _decide(self, k: int, j: int, A: np.ndarray, c: np.ndarray, size: np.ndarray, active: np.ndarray,
                u: np.ndarray, t: float) -> None:
        """Decide neuron j of layer k (pre-activations A u + c) at a node with witness (u, t)."""
        if j == len(c):
            self._enter_layer(k + 1, A * active[:, None], c * active, u, t)
            return
        a = A[j]
        norm = float(np.linalg.norm(a))
        if norm <= ZERO_ROW_RTOL * size[j]:
            active[j] = c[j] > 0  # constant neuron: no hyperplane, no row
            self._decide(k, j + 1, A, c, size, active, u, t)
            return
        dist = (float(a @ u) + c[j]) / norm  # signed distance of the witness, positive on the active side
        free = (1 if dist > 0 else -1) if abs(dist) > self.tol else 0
        for s in (-free,) if free else (1, -1):
            self._push(s, a, c[j], norm)
            t_s, u_s = self._solve()
            if t_s > self.tol:
                active[j] = s > 0
                self._decide(k, j + 1, A, c, size, active, u_s, t_s)
            self._pop()
        if free:
            self._push(free, a, c[j], norm)
            active[j] = free > 0
            self._decide(k, j + 1, A, c, size, active, u, min(t, abs(dist)))
            self._pop()

    # --- the LP stack -----------------------------------------------------------------------------

    def _push(self, s: int, a: np.ndarray, c: float, norm: float) -> None:
        """Add the row s (a u + c) / ||a|| >= t, i.e. -s a/||a|| u + t <= s c/||a|| (its slack enters the basis)."""
        self.bases.append(self.h.getBasis())
        nz = np.flatnonzero(a)
        idx = np.append(nz, self.n0).astype(np.int32)
        val = np.append(-s * a[nz] / norm, 1.0)
        self.h.addRow(-INF, s * c / norm, len(idx), idx, val)
        self.rows += 1

    def _pop(self) -> None:
        """Delete the last row and restore the basis the node had before it was pushed.

        Deleting a row whose slack is nonbasic leaves HiGHS without a valid basis, and the next LP
        would start cold (about 2/3 of the LPs on random 16-11-11 and 64-11-11 nets).  With the
        restore, every LP starts from the optimal basis of its nearest ancestor that solved one.
        """
        self.rows -= 1
        self.h.deleteRows(1, np.array([self.rows], dtype=np.int32))
        self.h.setBasis(self.bases.pop())

    def _solve(self) -> tuple[float, np.ndarray]:
        """Solve the margin LP of the current rows: (optimal t, its u)."""
        if time.perf_counter() > self.deadline:
            raise _TimeUp
        self.lps += 1
        self.h.run()
        if self.h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            # A warm start gone numerically bad: retry once from scratch before giving up.
            self.h.clearSolver()
            self.lps += 1
            self.h.run()
            status = self.h.getModelStatus()
            if status != highspy.HighsModelStatus.kOptimal:
                raise RuntimeError(f"HiGHS could not solve a margin LP ({status})")
        x = self.h.getSolution().col_value
        return float(x[self.n0]), np.array(x[:self.n0])


def _new_highs() -> highspy.Highs:
    """A Highs instance; HiGHS prints a banner straight to file descriptor 1 on the first one, which
    would spoil --json, so stdout is pointed at /dev/null while it is made."""
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        return highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def count_naive(net: Any, lo: np.ndarray | float, hi: np.ndarray | float, *, tol: float = DEFAULT_TOL,
                time_limit: float | None = None) -> NaiveResult:
    """Count the regions of ``net`` over the box [lo, hi]^n0 with the naive reference rule."""
    return NaiveEnumerator(net, np.asarray(lo, dtype=float), np.asarray(hi, dtype=float), tol=tol,
                           time_limit=time_limit).run()


def random_net(name: str, seed: int = 0) -> Any:
    """The random MLP n0-n1-...-nL of benchmarks/count.py: N(0, 1) weights, N(0, 0.25) biases, ReLU everywhere."""
    from lrmilp import random_mlp
    try:
        widths = [int(w) for w in name.split("-")]
    except ValueError:
        raise SystemExit(f"bad net name '{name}': expected widths like 64-11-11") from None
    if len(widths) < 2 or min(widths) < 1:
        raise SystemExit(f"bad net name '{name}': expected at least two positive widths")
    return random_mlp(widths, seed=seed, weight_std=WEIGHT_STD, bias_std=BIAS_STD)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="network file (.npz, .onnx, .pt); its stored lo/hi is the default box")
    p.add_argument("--random", metavar="WIDTHS",
                   help="a random MLP such as 64-11-11 instead of a file (box [-1, 1]^n0)")
    p.add_argument("--seed", type=int, default=0, help="seed of --random (default 0)")
    p.add_argument("--box", nargs=2, type=float, metavar=("LO", "HI"), help="the box [LO, HI]^n0")
    p.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help="stop after S seconds (the count is then a lower bound)")
    p.add_argument("--tol", type=float, default=DEFAULT_TOL,
                   help=f"margin a region must exceed (default {DEFAULT_TOL:g}, absolute)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if (args.model is None) == (args.random is None):
        p.error("give either MODEL or --random WIDTHS")
    if args.time_limit is not None and args.time_limit <= 0:
        p.error("--time-limit must be positive")
    if args.random is not None:
        net, lo, hi = random_net(args.random, args.seed), -1.0, 1.0
    else:
        from lrmilp import load_network
        net = load_network(args.model)
        lo, hi = net.lo, net.hi
    if args.box is not None:
        lo, hi = args.box
    if lo is None or hi is None:
        p.error(f"{args.model} stores no input box: give --box LO HI")
    try:
        res = count_naive(net, lo, hi, tol=args.tol, time_limit=args.time_limit)
    except ValueError as e:
        p.error(str(e))
    if args.json:
        print(json.dumps({"net": args.random or args.model, **res.to_dict()}))
    else:
        bound = "" if res.complete else " (stopped: a lower bound)"
        print(f"regions          {res.regions}{bound}\ncomplete         {res.complete}\n"
              f"seconds          {res.seconds:.3f}\nLPs              {res.lps}\n"
              f"LPs/region       {res.lps_per_region:.3f}\nregions/s        {res.regions_per_second:.1f}\n"
              f"tol              {res.tol:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
