"""Pre-activation bounds of every layer over a domain: interval arithmetic, LP and MILP tightening.

LP and MILP bounds are computed layer by layer on the big-M model of the layers before (with the
bounds already tightened), only for neurons that the cheaper bound leaves unstable.  One persistent
highspy model per layer; only the objective changes between neurons, so every solve warm-starts
from the previous basis.  Every LP/MILP value is widened by ``slack`` (absolute + relative) so that
solver tolerances never make a bound invalid.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context

import highspy
import numpy as np
import scipy.sparse as sp

from .domains import Domain
from .errors import InputError
from .formulations.bigm import build_bigm
from .formulations.highs import to_highspy
from .interrupts import worker_init
from .network import Network
from .validation import dask_address, int_at_least, nonnegative_finite, positive_finite

METHODS = ("interval", "lp", "milp")
DEFAULT_SLACK = 1e-7


@dataclass(eq=False)
class Bounds:
    """Per-layer pre-activation bounds ``lower[k] <= g_k(x) <= upper[k]`` for every x in the domain."""

    lower: list[np.ndarray]
    upper: list[np.ndarray]
    relu_layers: list[int]
    method: str = "interval"
    seconds: float = 0.0
    lps: int = 0
    slack: float = DEFAULT_SLACK
    timed_out: int = 0  # MILP solves stopped by the time limit (their bound is the solver's dual bound)
    unstable_before: list[int] = field(default_factory=list)  # per ReLU layer, before this method's pass

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the ReLU neurons in pattern order."""
        if not self.relu_layers:
            return np.zeros(0), np.zeros(0)
        return (np.concatenate([self.lower[k] for k in self.relu_layers]),
                np.concatenate([self.upper[k] for k in self.relu_layers]))

    @property
    def stable_active(self) -> np.ndarray:
        lo, _ = self.flat()
        return np.flatnonzero(lo > 0)

    @property
    def stable_inactive(self) -> np.ndarray:
        _, hi = self.flat()
        return np.flatnonzero(hi <= 0)

    @property
    def unstable(self) -> int:
        lo, hi = self.flat()
        return int(np.sum((lo <= 0) & (hi > 0)))

    def unstable_per_layer(self) -> list[int]:
        return [int(np.sum((self.lower[k] <= 0) & (self.upper[k] > 0))) for k in self.relu_layers]

    def to_dict(self) -> dict:
        lo, hi = self.flat()
        return {"lower": lo.tolist(), "upper": hi.tolist(), "stable_active": self.stable_active.tolist(),
                "stable_inactive": self.stable_inactive.tolist(), "unstable": self.unstable,
                "unstable_per_layer": self.unstable_per_layer(), "method": self.method,
                "seconds": self.seconds, "lps": self.lps, "slack": self.slack, "timed_out": self.timed_out}


def _interval_affine(W, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact range of W h + b over the box lo <= h <= hi (infinite ends handled without NaN)."""
    if sp.issparse(W):
        Wp, Wn = W.maximum(0).tocsr(), W.minimum(0).tocsr()
    else:
        Wp, Wn = np.maximum(W, 0.0), np.minimum(W, 0.0)
    lo_f, hi_f = np.where(np.isfinite(lo), lo, 0.0), np.where(np.isfinite(hi), hi, 0.0)
    out_lo = Wp @ lo_f + Wn @ hi_f + b
    out_hi = Wp @ hi_f + Wn @ lo_f + b
    # A weight meeting an infinite end makes that side infinite.
    neg = (np.asarray(abs(Wp) @ np.isneginf(lo).astype(float)) + np.asarray(abs(Wn) @ np.isposinf(hi).astype(float))) > 0
    pos = (np.asarray(abs(Wp) @ np.isposinf(hi).astype(float)) + np.asarray(abs(Wn) @ np.isneginf(lo).astype(float))) > 0
    return np.where(neg, -np.inf, out_lo), np.where(pos, np.inf, out_hi)


def _layer_input_box(net: Network, k: int, lower, upper, xlo, xhi) -> tuple[np.ndarray, np.ndarray]:
    if k == 0:
        return xlo, xhi
    prev = net.layers[k - 1]
    lo, hi = lower[k - 1], upper[k - 1]
    if prev.relu:
        return np.maximum(lo, 0.0), np.maximum(hi, 0.0)
    return lo, hi


def interval_bounds(net: Network, domain: Domain) -> Bounds:
    """Interval arithmetic through every layer, starting from the domain's input box."""
    t0 = time.perf_counter()
    xlo, xhi = domain.input_box()
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    for k, layer in enumerate(net.layers):
        lo, hi = _layer_input_box(net, k, lower, upper, xlo, xhi)
        glo, ghi = _interval_affine(layer.matrix, layer.bias, lo, hi)
        lower.append(glo)
        upper.append(ghi)
    return Bounds(lower, upper, net.relu_layers, "interval", time.perf_counter() - t0)


def tighten(net: Network, domain: Domain, *, method: str = "lp", jobs: int = 1, time_limit: float = 10.0,
            slack: float = DEFAULT_SLACK, dask: str | None = None) -> Bounds:
    """Bounds by ``method`` ("interval", "lp" or "milp"); never looser than interval bounds.

    ``lp``: per-neuron LPs on the big-M LP relaxation, layer by layer, only for neurons the interval
    bound (recomputed from the tightened earlier layers) leaves unstable.  ``milp``: the LP pass, then
    per-neuron MILPs (``time_limit`` seconds each, keeping the solver's dual bound when stopped) for
    neurons the LP leaves unstable.  ``jobs`` spreads a layer's neurons over processes, or over the
    workers of a Dask cluster (``dask`` = "local" for a LocalCluster of ``jobs`` workers, or a
    scheduler address); the bounds do not depend on how the neurons are spread.
    """
    if method not in METHODS:
        raise InputError(f"unknown bound method '{method}' (expected one of {', '.join(METHODS)})", param="method")
    jobs = int_at_least("jobs", jobs, 1)
    time_limit = positive_finite("time_limit", time_limit)
    slack = nonnegative_finite("slack", slack)
    dask = dask_address("dask", dask)
    t0 = time.perf_counter()
    ib = interval_bounds(net, domain)
    if method == "interval":
        return ib
    if not domain.bounded and domain.A_ub.shape[0] == 0:
        ib.method, ib.seconds = method, time.perf_counter() - t0
        return ib  # nothing an LP can add on an unbounded, unconstrained domain: every LP is unbounded
    client = cluster = None
    if dask is not None:
        from .parallel import connect_dask
        client, cluster = connect_dask(dask, jobs=jobs)
        if dask != "local":
            jobs = max(jobs, len(client.scheduler_info()["workers"]))
    try:
        lower, upper, lps, timed_out, unstable_before = _tighten_layers(
            net, domain, ib, method, jobs, time_limit, slack, client)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return Bounds(lower, upper, net.relu_layers, method, time.perf_counter() - t0, lps, slack, timed_out,
                  unstable_before)


def _tighten_layers(net, domain, ib, method, jobs, time_limit, slack, client):
    """The LP (and MILP) passes of :func:`tighten`, layer by layer."""
    xlo, xhi = domain.input_box()
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    lps = timed_out = 0
    unstable_before = []
    for k, layer in enumerate(net.layers):
        lo_in, hi_in = _layer_input_box(net, k, lower, upper, xlo, xhi)
        glo, ghi = _interval_affine(layer.matrix, layer.bias, lo_in, hi_in)
        glo, ghi = np.maximum(glo, ib.lower[k]), np.minimum(ghi, ib.upper[k])
        if k == 0 and domain.basis is None and domain.A_ub.shape[0] == 0:
            lower.append(glo)  # over a box the first layer's interval bound is exact
            upper.append(ghi)
            if layer.relu:
                unstable_before.append(int(np.sum((glo <= 0) & (ghi > 0))))
            continue
        # Neurons whose bound decides nothing downstream need no LP: stable ones (for ReLU layers).
        todo = np.flatnonzero((glo <= 0) & (ghi > 0)) if layer.relu else np.arange(layer.out_size)
        if layer.relu:
            unstable_before.append(int(todo.size))
        if todo.size:
            passes = ["lp"] + (["milp"] if method == "milp" else [])
            for which in passes:
                if which == "milp":
                    todo = todo[(glo[todo] <= 0) & (ghi[todo] > 0)] if layer.relu else todo
                    if not todo.size:
                        break
                args = (net, domain, lower, upper, k, which, time_limit, slack)
                chunks = [c for c in np.array_split(todo, min(jobs, todo.size)) if c.size]
                if client is not None:
                    results = client.gather(client.map(_solve_neurons, [args + (c,) for c in chunks], pure=False))
                elif len(chunks) > 1:
                    with ProcessPoolExecutor(len(chunks), mp_context=get_context("fork"), initializer=worker_init,
                                             initargs=(os.getpid(), False)) as pool:
                        results = list(pool.map(_solve_neurons, [args + (c,) for c in chunks]))
                else:
                    results = [_solve_neurons(args + (todo,))]
                for c, (lo_c, hi_c, n_solves, n_to) in zip(chunks, results):
                    glo[c] = np.maximum(glo[c], lo_c)
                    ghi[c] = np.minimum(ghi[c], hi_c)
                    lps += n_solves
                    timed_out += n_to
        lower.append(glo)
        upper.append(ghi)
    return lower, upper, lps, timed_out, unstable_before


def _solve_neurons(args) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Min and max of layer k's pre-activation for the given neurons, over the model of layers < k."""
    net, domain, lower, upper, k, which, time_limit, slack, neurons = args
    model = build_bigm(net, domain, lower, upper, layers=k)
    layer = net.layers[k]
    prev = model.groups["x"] if k == 0 else model.groups[f"h{k - 1}" if net.layers[k - 1].relu else f"g{k - 1}"]
    W = sp.csr_matrix(layer.matrix)
    h = to_highspy(model, relax=(which == "lp"), presolve=(which == "milp"))
    if which == "milp":
        h.setOptionValue("time_limit", float(time_limit))
        h.setOptionValue("mip_rel_gap", 0.0)
    n = model.num_vars
    all_cols = np.arange(n, dtype=np.int32)
    lo_out = np.full(neurons.size, -np.inf)
    hi_out = np.full(neurons.size, np.inf)
    solves = timed_out = 0
    for j, i in enumerate(neurons):
        cost = np.zeros(n)
        row = W.getrow(int(i))
        cost[prev[row.indices]] = row.data
        h.changeColsCost(n, all_cols, cost)
        for sense in (highspy.ObjSense.kMinimize, highspy.ObjSense.kMaximize):
            h.changeObjectiveSense(sense)
            h.run()
            solves += 1
            value, stopped = _valid_bound(h, sense, which)
            timed_out += stopped
            if value is None:
                continue
            value += float(layer.bias[i])
            pad = slack * (1.0 + abs(value))
            if sense == highspy.ObjSense.kMinimize:
                lo_out[j] = value - pad
            else:
                hi_out[j] = value + pad
    return lo_out, hi_out, solves, timed_out


def _valid_bound(h: highspy.Highs, sense, which: str) -> tuple[float | None, int]:
    """The bound a solve proves on the objective: the optimum, or a stopped MILP's dual bound."""
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kOptimal:
        info = h.getInfo()
        if which == "milp":
            return float(info.mip_dual_bound), 0
        return float(info.objective_function_value), 0
    if which == "milp" and status == highspy.HighsModelStatus.kTimeLimit:
        bound = float(h.getInfo().mip_dual_bound)
        return (bound if np.isfinite(bound) else None), 1
    if status == highspy.HighsModelStatus.kInfeasible:
        raise InputError("the domain is empty (bound LP infeasible)")
    return None, 0


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
