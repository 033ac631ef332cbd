"""Pre-activation bounds of every layer over a domain: interval arithmetic, LP and MILP tightening.

LP and MILP bounds are computed layer by layer on the big-M model of the layers before (with the
bounds already tightened), only for neurons that the cheaper bound leaves unstable.  One persistent
highspy model per layer; only the objective changes between neurons, so every solve warm-starts
from the previous basis.  Every LP/MILP value is widened by ``slack`` (absolute + relative) so that
solver tolerances never make a bound invalid.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor
from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp

from .domains import Domain
from .errors import InputError
from .formulations.bigm import LinearModel, build_bigm
from .formulations.highs import to_highspy
from .network import Network
from .pool import fork_pool, kill_pool
from .progress import Progress
from .validation import int_at_least, nonnegative_finite, one_of, optional_positive_finite, positive_finite

METHODS = ("interval", "lp", "milp")
DEFAULT_SLACK = 1e-7
DEFAULT_MILP_TOTAL_SECONDS = 60.0
"""The command line's default ``--time-limit`` of ``tighten --method milp`` (the whole command): without
one, a MILP pass over many unstable neurons runs for hours."""
MILP_PARTS_PER_JOB = 8
"""With progress shown, a layer's neuron MILPs go out in this many parts per job (each part builds its
model once and warm-starts its neurons one after the other)."""


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
    milps: int = 0  # MILP solves (two per neuron: min and max)
    work: dict = field(default_factory=dict)  # per pass: neurons solved, tightened, skipped; mean widths
    stopped: str | None = None  # "time_limit": the total limit left neurons at their cheaper bounds

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
                "seconds": self.seconds, "lps": self.lps, "milps": self.milps, "slack": self.slack,
                "timed_out": self.timed_out, "complete": self.stopped is None, "stopped": self.stopped, **self.work}


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
    """Interval arithmetic through every layer, starting from the domain's input box.

    Parameters
    ----------
    net : Network
        The network.
    domain : Domain
        The domain (its input box bounds layer 0).

    Returns
    -------
    Bounds
        Valid for every input of the domain; infinite where the domain is unbounded.

    Examples
    --------
    >>> import numpy as np
    >>> from lrmilp.network import Dense, Network
    >>> from lrmilp.domains import Box
    >>> b = interval_bounds(Network([Dense(np.array([[1.0, -2.0]]), np.zeros(1))], (2,)), Box(-1, 1, 2))
    >>> b.lower[0].tolist(), b.upper[0].tolist()
    ([-3.0], [3.0])
    """
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
            slack: float = DEFAULT_SLACK, executor: Executor | None = None, progress: bool | None = None,
            total_time_limit: float | None = None) -> Bounds:
    """Pre-activation bounds of every layer by ``method``; never looser than interval bounds.

    ``lp``: per-neuron LPs on the big-M LP relaxation, layer by layer, only for neurons the interval
    bound (recomputed from the tightened earlier layers) leaves unstable.  ``milp``: the LP pass, then
    per-neuron MILPs (``time_limit`` seconds each, keeping the solver's dual bound when stopped) for
    neurons the LP leaves unstable.  The bounds do not depend on how the neurons are spread over
    workers.  ``total_time_limit`` bounds the whole call: neurons not reached by then keep the bound of
    the cheaper pass (still valid), and the result says ``stopped: "time_limit"`` and how many were left
    (``work``: per pass, neurons solved, tightened and skipped, and the mean bound widths).

    Parameters
    ----------
    net : Network
        The network.
    domain : Domain
        The input domain.
    method : {"lp", "interval", "milp"}
        How to tighten.
    jobs : int
        Spread a layer's neurons over this many parts: on ``executor``, or on as many forked processes.
    time_limit : float
        Seconds per neuron MILP (``milp``).
    total_time_limit : float, optional
        Seconds for the whole call (both passes); None: no limit.
    slack : float
        Every LP/MILP value is widened by ``slack * (1 + |value|)`` so that solver tolerances never make a
        bound invalid.
    executor : concurrent.futures.Executor, optional
        Where the parts run (a local pool, or a Dask cluster's ``Client.get_executor()``).
    progress : bool or None
        A progress line on stderr for the ``milp`` pass (None: when stderr is a terminal).

    Returns
    -------
    Bounds

    Raises
    ------
    InputError
        A bad option, or an empty domain.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> b = tighten(random_mlp([2, 4, 4], seed=0), Box(-1, 1, 2), method="lp")
    >>> b.method, len(b.lower)
    ('lp', 2)
    """
    one_of("method", method, METHODS, what="bound method")
    jobs = int_at_least("jobs", jobs, 1)
    time_limit = positive_finite("time_limit", time_limit)
    total_time_limit = optional_positive_finite("total_time_limit", total_time_limit)
    slack = nonnegative_finite("slack", slack)
    t0 = time.perf_counter()
    deadline = None if total_time_limit is None else time.time() + total_time_limit  # wall clock: workers too
    ib = interval_bounds(net, domain)
    if method == "interval":
        return ib
    if not domain.bounded and domain.A_ub.shape[0] == 0:
        ib.method, ib.seconds = method, time.perf_counter() - t0
        return ib  # nothing an LP can add on an unbounded, unconstrained domain: every LP is unbounded
    own = executor is None and jobs > 1
    if own:
        executor = fork_pool(jobs, ignore_stop=False)
    bar = Progress(f"tighten ({method})", progress=progress if method == "milp" else False)
    try:
        lower, upper, tally, unstable_before = _tighten_layers(
            net, domain, ib, method, jobs, time_limit, slack, executor, bar, deadline)
    finally:
        bar.close()
        if own:
            kill_pool(executor)
    work = {"passes": {which: {k: tally[which][k] for k in ("neurons", "tightened", "skipped")}
                       for which in tally},
            "mean_width": {"interval": _mean_width(net, ib.lower, ib.upper),
                           **{which: _mean_width(net, *tally[which]["after"]) for which in tally}},
            "time_limit": total_time_limit, "milp_time_limit": time_limit if method == "milp" else None}
    skipped = sum(tally[w]["skipped"] for w in tally)
    return Bounds(lower, upper, net.relu_layers, method, time.perf_counter() - t0,
                  tally["lp"]["solves"], slack, sum(tally[w]["timed_out"] for w in tally), unstable_before,
                  tally["milp"]["solves"] if "milp" in tally else 0, work, "time_limit" if skipped else None)


def _mean_width(net: Network, lower: list, upper: list) -> float | None:
    """Mean upper - lower over the ReLU neurons with finite bounds (None if there are none)."""
    w = np.concatenate([np.asarray(upper[k]) - np.asarray(lower[k]) for k in net.relu_layers] or [np.zeros(0)])
    w = w[np.isfinite(w)]
    return float(w.mean()) if w.size else None


def bigm_model(net: Network, domain: Domain, *, bounds: "str | Bounds" = "lp", margin: str | None = None,
               fmax: float = 1.0, layers: int | None = None) -> LinearModel:
    """The big-M model of ``net`` over ``domain`` with bounds tightened by ``bounds``.

    Parameters
    ----------
    net : Network
        The network.
    domain : Domain
        A domain with a finite box (big-M needs finite pre-activation bounds).
    bounds : str or Bounds
        A method of :func:`tighten` ("interval", "lp", "milp") or ready bounds.
    margin, fmax, layers
        As for :func:`lrmilp.formulations.bigm.build_bigm`.

    Returns
    -------
    LinearModel
        Every input of the domain, with its exact activations, is feasible.

    Raises
    ------
    InputError
        The domain is unbounded.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> bigm_model(random_mlp([2, 3, 1], seed=0, last_relu=False), Box(-1, 1, 2)).num_vars > 0
    True
    """
    if not domain.bounded:
        raise InputError("big-M needs a bounded domain (a box, or a polytope within one)")
    b = tighten(net, domain, method=bounds) if isinstance(bounds, str) else bounds
    return build_bigm(net, domain, b.lower, b.upper, layers=layers, margin=margin, fmax=fmax)


def _tighten_layers(net, domain, ib, method, jobs, time_limit, slack, executor, bar, deadline):
    """The LP (and MILP) passes of :func:`tighten`, layer by layer; the bounds, a tally per pass
    (solves, timed-out solves, neurons solved, tightened and skipped, the bounds after it) and the
    unstable neurons per ReLU layer before the passes."""
    xlo, xhi = domain.input_box()
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    passes = ["lp"] + (["milp"] if method == "milp" else [])
    tally = {w: {"solves": 0, "timed_out": 0, "neurons": 0, "tightened": 0, "skipped": 0, "after": ([], [])}
             for w in passes}
    unstable_before = []
    for k, layer in enumerate(net.layers):
        lo_in, hi_in = _layer_input_box(net, k, lower, upper, xlo, xhi)
        glo, ghi = _interval_affine(layer.matrix, layer.bias, lo_in, hi_in)
        glo, ghi = np.maximum(glo, ib.lower[k]), np.minimum(ghi, ib.upper[k])
        exact = k == 0 and domain.basis is None and domain.A_ub.shape[0] == 0  # over a box: interval is exact
        # Neurons whose bound decides nothing downstream need no LP: stable ones (for ReLU layers).
        todo = np.flatnonzero((glo <= 0) & (ghi > 0)) if layer.relu else np.arange(layer.out_size)
        if layer.relu:
            unstable_before.append(int(todo.size))
        for which in passes:
            if which == "milp":
                todo = todo[(glo[todo] <= 0) & (ghi[todo] > 0)] if layer.relu else todo
            if todo.size and not exact:
                _pass(net, domain, lower, upper, k, which, todo, glo, ghi, time_limit, slack, deadline, executor,
                      jobs, bar, tally[which])
            tally[which]["after"][0].append(glo.copy())
            tally[which]["after"][1].append(ghi.copy())
        lower.append(glo)
        upper.append(ghi)
    return lower, upper, tally, unstable_before


def _pass(net, domain, lower, upper, k, which, todo, glo, ghi, time_limit, slack, deadline, executor, jobs, bar,
          t) -> None:
    """One pass (``lp`` or ``milp``) over layer k's neurons ``todo``: narrows glo/ghi in place, adds to
    the tally ``t``."""
    args = (net, domain, lower, upper, k, which, time_limit, slack, deadline)
    # MILPs take seconds each: smaller parts, so the progress line moves between them.
    parts = jobs * (MILP_PARTS_PER_JOB if which == "milp" and bar.enabled else 1)
    chunks = [c for c in np.array_split(todo, min(parts, todo.size)) if c.size]
    tasks = [args + (c,) for c in chunks]
    results = executor.map(_solve_neurons, tasks) if executor is not None else map(_solve_neurons, tasks)
    for done, (c, (lo_c, hi_c, n_solves, n_to, n_skipped)) in enumerate(zip(chunks, results), 1):
        t["tightened"] += int(np.count_nonzero((lo_c > glo[c]) | (hi_c < ghi[c])))
        glo[c] = np.maximum(glo[c], lo_c)
        ghi[c] = np.minimum(ghi[c], hi_c)
        t["solves"] += n_solves
        t["timed_out"] += n_to
        t["skipped"] += n_skipped
        t["neurons"] += c.size - n_skipped
        if which == "milp" and bar.due():
            bar.show(f"layer {k + 1}/{len(net.layers)}: {sum(map(len, chunks[:done])):,}/{todo.size:,} "
                     f"neuron MILPs, {t['timed_out']:,} timed out, {t['skipped']:,} skipped (time limit)")


def _solve_neurons(args) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """Min and max of layer k's pre-activation for the given neurons, over the model of layers < k;
    neurons not started before ``deadline`` (wall clock) are skipped (infinite bounds, counted)."""
    net, domain, lower, upper, k, which, time_limit, slack, deadline, neurons = args
    lo_out = np.full(neurons.size, -np.inf)
    hi_out = np.full(neurons.size, np.inf)
    if deadline is not None and time.time() >= deadline:
        return lo_out, hi_out, 0, 0, int(neurons.size)  # not even the model is built
    model = build_bigm(net, domain, lower, upper, layers=k)
    layer = net.layers[k]
    prev = model.groups["x"] if k == 0 else model.groups[f"h{k - 1}" if net.layers[k - 1].relu else f"g{k - 1}"]
    W = sp.csr_matrix(layer.matrix)
    h = to_highspy(model, relax=(which == "lp"), presolve=(which == "milp"))
    if which == "milp":
        h.setOptionValue("mip_rel_gap", 0.0)
    n = model.num_vars
    all_cols = np.arange(n, dtype=np.int32)
    solves = timed_out = 0
    for j, i in enumerate(neurons):
        if deadline is not None and time.time() >= deadline:
            return lo_out, hi_out, solves, timed_out, int(neurons.size - j)
        cost = np.zeros(n)
        row = W.getrow(int(i))
        cost[prev[row.indices]] = row.data
        h.changeColsCost(n, all_cols, cost)
        for sense in (highspy.ObjSense.kMinimize, highspy.ObjSense.kMaximize):
            if which == "milp":  # a MILP stopped by the total limit keeps its dual bound, as by its own
                left = time_limit if deadline is None else min(time_limit, max(deadline - time.time(), 1e-3))
                h.setOptionValue("time_limit", float(left))
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
    return lo_out, hi_out, solves, timed_out, 0


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
