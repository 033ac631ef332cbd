"""Probabilistic lower bounds on the region count from random XOR constraints (MBound style).

Serra & Ramalingam (AAAI 2020), after Gomes, Sabharwal & Selman's MBound (2006).  A *trial at level
k* draws k random XORs over the neurons' activation bits (:class:`lrmilp.parity.XorSystem`: each
candidate neuron joins each XOR with probability ``density``, each parity is a fair coin) and asks
whether some full-dimensional region satisfies all of them.  A level *passes* when all r of its trials
find a region.

**The rule.**  A fixed region satisfies k such XORs with probability exactly 2^-k (the parities are
fair coins, whatever the density), so if the network had N < 2^(k - alpha) regions, a trial would
succeed with probability at most N 2^-k < 2^-alpha (Markov), and r independent trials would all
succeed with probability below (N 2^-k)^r.  The search tests some levels (each with fresh XORs) and
claims the highest level L that passed:

    #regions >= floor(2^(L - alpha))   with confidence at least 1 - 2^(-alpha r) / (1 - 2^-r),

because a wrong claim needs some tested level k >= l* (the lowest wrong level) to pass, and these
probabilities sum to below 2^(-alpha r) (1 + 2^-r + 2^-2r + ...), whichever levels were tested and in
whatever order they were chosen.  Given a target confidence p, alpha solves that expression for p
(a single level, ``xors=K``, needs no sum: alpha = log2(1 / (1 - p)) / r).

**Cells of t regions; XORs over the first layers.**  A trial may ask for more than one region: that
the *cell* of its system (the regions satisfying it) holds at least t regions (``threshold``; the
idea of MBound's hybrid variant, which counts what the XORs leave).  The cell holds N 2^-k regions
on average (each region is in it with probability 2^-k), so it holds t or more with probability at
most N 2^-k / t (Markov), and the rule above holds with the claim floor(t 2^(L - alpha)) and the same
confidence.  Nor does the rule need every neuron in the XORs, only fair parities: ``xor_layers = p``
draws them over the unstable neurons of the first p ReLU layers.  Regions that agree on those layers
then share their cells, so a level claims less for the same trials, but a node whose decided layers
contradict the XORs is pruned as soon as those layers are decided instead of near the leaves; in
nets of three or more ReLU layers a trial then costs a small part of the tree, and the threshold
makes up for the coarser cells.

**Which levels** (``schedule``).  A trial's cost peaks at the levels near log2 N: far below, regions
that satisfy the XORs are everywhere and the first one is found at once; far above, the XORs prune
the tree early.  ``"search"`` (default) tests a probe level first (log2 of the number of
distinct sampled patterns over t, a level their witnesses mostly answer), then goes up in steps 2, 4,
8, ... while levels pass, then bisects between the highest passed level and the lowest failed level
above it, so few of the costly levels are tested; it never tests a level whose claim would not
exceed the certain bound below (the sampled patterns are certified first).  ``"upward"`` tests start,
start + 1, ... until a level fails (Serra & Ramalingam's schedule).  The regions the trials found are
real, and so are the sampled patterns the counting rule certifies (``Witnesses.certify_all``), so the
number of distinct patterns among them is a *certain* lower bound; the result reports the larger of
the two (with confidence 1 when the certain one wins).  A ``time_limit`` covers the whole call: the
level search stops :data:`FINISH_SHARE` of it early so that what follows still ends within it.

Feasibility of a trial is decided by the one-tree enumerator with parity propagation
(``method="tree"``; it stops at the first region), or by MILP: HiGHS on the linear form of the
XORs (``"milp"``), SCIP with its native XOR constraints (``"scip"``).  Candidate neurons are the
unstable ones (bounds from :func:`lrmilp.counting.tree_bounds`): stable neurons take one state in
every region and would only flip parities.
"""

from __future__ import annotations

import math
import time
from typing import Callable
from dataclasses import dataclass, field

import numpy as np

from .cells import geometry_class
from .counting import tree_bounds
from .domains import Domain
from .errors import InputError
from .interrupts import stop_signals
from .network import Network, balanced
from .oracles import (DEFAULT_WITNESS_SAMPLES, FEASIBLE, INFEASIBLE, METHODS, UNKNOWN, HighsOracle, ScipOracle,
                      TreeOracle, Witnesses, make_oracle)
from .parallel import Workers
from .parity import XorSystem
from .progress import Progress
from .tolerance import resolve_tolerance
from .validation import (dask_address, in_open_interval, int_at_least, one_of, optional_int_at_least,
                         optional_positive_finite)
from .xorlevels import floor_pow2, next_level, resolve_alpha

DEFAULT_TRIALS = 10
DEFAULT_DENSITY = 0.5
FINISH_SHARE = 0.05
"""Share of ``time_limit`` (at most :data:`FINISH_MAX` seconds) that the level search leaves unused, so
that what follows it (a trial's search noticing the deadline at its next node, the certain bound's
patterns, closing workers) still ends within the limit: ``seconds <= time_limit``."""
FINISH_MAX = 0.25
PREFIX_MIN_LAYERS = 3
"""From this many ReLU layers on, the XORs leave out the last layer by default (``xor_layers``)."""
PREFIX_THRESHOLD = 8
"""Regions a trial's cell must hold by default when the XORs leave out the last layer (``threshold``)."""
SCHEDULES = ("search", "upward")
RULE = ("levels k are tested with r trials of k random XORs each (each candidate neuron in each XOR with probability "
        "density, parities fair coins); if L is the highest level where every trial's cell (the regions satisfying "
        "its XORs) held at least t regions (t = threshold), #regions >= floor(t 2^(L - alpha)) with confidence "
        ">= 1 - 2^(-alpha r) / (1 - 2^-r) (a single level: >= 1 - 2^(-alpha r))")

__all__ = ["DEFAULT_WITNESS_SAMPLES", "FEASIBLE", "HighsOracle", "INFEASIBLE", "LowerBoundResult", "METHODS",
           "ScipOracle", "TreeOracle", "UNKNOWN", "Witnesses", "floor_pow2", "lower_bound", "make_oracle",
           "resolve_alpha"]


# --- running a level's trials: here, on local processes, or on Dask --------------------------------

def _trial(oracle, system: XorSystem, time_limit: float | None, at_least: int = 1
           ) -> tuple[str, list[np.ndarray], int]:
    """One trial: (status, the regions found, the LPs it took: the oracle may live in another process).
    FEASIBLE when the cell of ``system`` holds ``at_least`` regions (only the tree oracle counts more
    than one)."""
    before = oracle.lps
    if at_least == 1:
        status, pattern = oracle(system, time_limit=time_limit)
        found = [] if pattern is None else [pattern]
    else:
        status, found = oracle.cell(system, at_least=at_least, time_limit=time_limit)
    return status, found, oracle.lps - before


class _Trials:
    """Runs the r trials of a level: one by one (stopping at the first failure), or all at once on
    :class:`~lrmilp.parallel.Workers` (``jobs`` forked processes, or a Dask cluster with ``dask`` =
    "local" or a scheduler address), each holding the oracle.  The systems are drawn before they run,
    so every engine sees the same XORs and certifies the same level."""

    def __init__(self, oracle, *, jobs: int, dask: str | None, at_least: int = 1) -> None:
        self.oracle, self.at_least = oracle, at_least
        self.workers = Workers(jobs, dask=dask, context=oracle) if jobs > 1 or dask is not None else None
        self.lps = 0

    def run(self, systems: list[XorSystem], deadline: float | None,
            tick: Callable[[int], None] | None = None) -> list[tuple[str, list[np.ndarray]]]:
        """The trials' (status, regions found), in order; ``deadline`` is a time.perf_counter() value;
        ``tick(n)`` hears of each answer (n so far), for the progress line within a level."""
        def remaining() -> float | None:
            return None if deadline is None else max(deadline - time.perf_counter(), 1e-3)

        if self.workers is not None:
            out = []
            for f in [self.workers.submit(_trial, sy, remaining(), self.at_least) for sy in systems]:
                try:
                    # A trial that waited in the queue still has its whole limit: the deadline is kept here.
                    out.append(f.result(timeout=remaining()))
                except TimeoutError:
                    out.append((UNKNOWN, [], 0))  # the workers still running are killed by close()
                    break
                if tick is not None:
                    tick(len(out))
        else:
            out = []
            for sy in systems:
                out.append(_trial(self.oracle, sy, remaining(), self.at_least))
                if tick is not None:
                    tick(len(out))
                if out[-1][0] != FEASIBLE:
                    break
        self.lps += sum(r[2] for r in out)
        return [(st, found) for st, found, _ in out]

    def close(self) -> None:
        """An interrupted search does not wait for trials still running: the workers are killed."""
        if self.workers is not None:
            self.workers.close()


# --- the certified search --------------------------------------------------------------------------

@dataclass
class LowerBoundResult:
    """``lower_bound`` holds with probability >= ``confidence`` (exactly 1 when it is the certain bound)."""

    lower_bound: int
    confidence: float
    seconds: float
    method: str
    level: int | None  # the last level whose trials all succeeded (None: none did)
    log2_bound: float | None  # level - alpha + log2(threshold)
    alpha: float
    trials: int
    density: float
    target_confidence: float
    certain_lower_bound: int  # distinct regions the trials found or the samples certified: certain
    candidates: int  # neurons the XORs are drawn over
    tol: float
    tol_meaning: str
    # why the search ended: "failed_trial", "max_level", "time_limit", "interrupted", or "certain_bound" (no
    # level left whose claim would exceed the certain bound)
    stopped: str | None
    levels: list[dict] = field(default_factory=list)
    lps: int = 0
    witnessed_trials: int = 0  # trials answered by a sampled witness, no search
    witness_patterns: int = 0  # distinct patterns of the witness samples
    threshold: int = 1  # regions a trial's cell had to hold
    xor_layers: int | None = None  # the XORs' neurons: those of the first this many ReLU layers

    def to_dict(self) -> dict:
        return {"lower_bound": int(self.lower_bound), "confidence": self.confidence, "seconds": round(self.seconds, 6),
                "method": self.method, "level": self.level,
                "log2_bound": None if self.log2_bound is None else round(self.log2_bound, 6),
                "alpha": self.alpha, "trials": self.trials, "density": self.density,
                "target_confidence": self.target_confidence, "certain_lower_bound": int(self.certain_lower_bound),
                "candidates": self.candidates, "tol": self.tol, "tol_meaning": self.tol_meaning,
                # the level search ran to its end (a failed trial or the last level), not cut short
                "complete": self.stopped not in ("interrupted", "time_limit"),
                "stopped": self.stopped, "lps": int(self.lps), "levels": self.levels, "rule": RULE,
                "witnessed_trials": int(self.witnessed_trials), "witness_patterns": int(self.witness_patterns),
                "threshold": int(self.threshold), "xor_layers": self.xor_layers,
                "meaning": "a probabilistic lower bound on the number of full-dimensional regions, not a count"}


def lower_bound(net: Network, domain: Domain, *, xors: int | None = None, start: int = 1, trials: int = DEFAULT_TRIALS,
                confidence: float | None = None, alpha: float | None = None, density: float = DEFAULT_DENSITY,
                method: str = "tree", time_limit: float | None = None, seed: int = 0, tol: float | None = None,
                progress: bool | None = None, jobs: int = 1, dask: str | None = None,
                geometry: str = "auto", witness_samples: int = DEFAULT_WITNESS_SAMPLES,
                schedule: str = "search", threshold: int | None = None,
                xor_layers: int | None = None) -> LowerBoundResult:
    """A lower bound on the region count of ``net`` over ``domain`` with a stated confidence (module doc).

    ``xors=K`` tests level K only; otherwise levels from ``start`` up to the number of candidate
    neurons (+ alpha) are searched by ``schedule`` until the highest passing level is pinned down or
    ``time_limit`` runs out.  Guarantee: ``lower_bound`` is wrong with probability at most
    1 - ``confidence`` over the draw of the XORs (``seed``).  SIGINT or SIGTERM ends the search with the
    levels certified so far.

    Parameters
    ----------
    net : Network
        The network.
    domain : Domain
        The domain.
    xors : int, optional
        Test this level only.
    start : int
        The lowest level the search may test.
    trials : int
        Trials r per level.
    confidence, alpha : float, optional
        The target confidence p (default 0.99; alpha = log2(1/(1-p))/r), or alpha itself.
    density : float
        Probability that a candidate neuron joins an XOR (the bound is valid for any density).
    method : {"tree", "milp", "scip"}
        The feasibility oracle (:func:`make_oracle`).
    time_limit : float, optional
        Seconds for the whole call: the level search stops :data:`FINISH_SHARE` of it early; only the
        set-up (bounds, witness samples) is not cut short.
    seed : int
        Seed of the XORs.
    tol : float, optional
        The region tolerance.
    progress : bool or None
        A progress line on stderr (None: when stderr is a terminal).
    jobs : int
        Run each level's trials on this many processes (the same result as one by one).
    dask : str, optional
        Run the trials on Dask: ``"local"`` or a scheduler address.
    geometry : str
        The cell geometry of the tree oracle's searches (``"auto"``: as a count would choose).
    witness_samples : int
        Uniform samples drawn first over a bounded domain (0: none); a trial that one of their distinct
        patterns satisfies, certified by the counting rule, needs no search (:class:`Witnesses`).  The
        guarantee is unchanged: any trial's region may come from anywhere.
    schedule : {"search", "upward"}
        Which levels are tested, in which order (module doc; :func:`next_level`).  Any schedule gives
        the stated confidence.
    threshold : int, optional
        A trial passes when its cell holds at least this many regions t (counted by the tree oracle),
        and the claim is floor(t 2^(L - alpha)) (module doc).  Default: :data:`PREFIX_THRESHOLD` when
        the XORs leave out the last ReLU layer (``method="tree"`` only), else 1.
    xor_layers : int, optional
        Draw the XORs over the unstable neurons of the first this many ReLU layers only.  Default: all
        but the last in nets of :data:`PREFIX_MIN_LAYERS` or more ReLU layers with ``method="tree"``
        (unless those layers have no unstable neuron), else all (module doc).

    Returns
    -------
    LowerBoundResult
        ``lower_bound``, ``confidence``, ``level``, ``certain_lower_bound``, ``stopped``, ...

    Raises
    ------
    InputError
        A bad option, named as the library spells it.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> r = lower_bound(random_mlp([3, 8], seed=0), Box(-1, 1, 3), seed=1)
    >>> r.lower_bound >= r.certain_lower_bound > 0
    True
    """
    t0 = time.perf_counter()
    if domain.input_dim != net.input_dim:
        raise InputError(f"domain has {domain.input_dim} inputs, network has {net.input_dim}")
    density = in_open_interval("density", density, 0.0, 1.0, hi_closed=True)
    xors = optional_int_at_least("xors", xors, 1)
    start = int_at_least("start", start, 1)
    time_limit = optional_positive_finite("time_limit", time_limit)
    tol = optional_positive_finite("tol", tol)
    seed = int_at_least("seed", seed, 0)
    jobs = int_at_least("jobs", jobs, 1)
    witness_samples = int_at_least("witness_samples", witness_samples, 0)
    dask = dask_address("dask", dask)
    one_of("method", method, METHODS, what="lower-bound method")
    one_of("schedule", schedule, SCHEDULES, what="level schedule")
    relu_layers = len(net.relu_layers)
    if xor_layers is not None:
        xor_layers = int_at_least("xor_layers", xor_layers, min(1, relu_layers))
        if xor_layers > relu_layers:
            raise InputError(f"xor_layers must be at most the {relu_layers} ReLU layers, got {xor_layers}",
                             param="xor_layers")
    if threshold is not None:
        threshold = int_at_least("threshold", threshold, 1)
        if threshold > 1 and method != "tree":
            raise InputError(f"threshold {threshold} needs method 'tree' (the MILP oracles find one region a "
                             "trial)", param="threshold")
    geometry_class(geometry, domain, parity=True)  # an unknown name, or a domain it cannot handle: InputError
    alpha, conf = resolve_alpha(trials=trials, confidence=confidence, alpha=alpha, levels=xors is None)
    net = balanced(net)  # exact power-of-two rescaling: the same regions, no overflow in norms
    if not net.relu_layers:
        # No ReLU: the whole domain is one region, certainly.
        tolerance = resolve_tolerance(net, domain, tol)
        return LowerBoundResult(1, 1.0, time.perf_counter() - t0, method, None, None, alpha, trials, density, conf,
                                1, 0, tolerance.tol, tolerance.meaning, None, threshold=threshold or 1,
                                xor_layers=0)
    bounds = tree_bounds(net, domain)
    lo, hi = bounds.flat()
    unstable = np.flatnonzero((lo < 0) & (hi > 0))
    if xor_layers is None:  # all layers but the last from PREFIX_MIN_LAYERS on, if they have unstable neurons
        prefix = relu_layers - 1 if relu_layers >= PREFIX_MIN_LAYERS and method == "tree" else relu_layers
        xor_layers = prefix if (unstable < sum(net.widths[:prefix])).any() else relu_layers
    if threshold is None:
        threshold = PREFIX_THRESHOLD if xor_layers < relu_layers and method == "tree" else 1
    candidates = unstable[unstable < sum(net.widths[:xor_layers])]  # pattern order: the first layers' neurons
    oracle = make_oracle(net, domain, method=method, tol=tol, bounds=bounds, geometry=geometry)
    witnesses = (Witnesses(net, domain, oracle.tolerance, samples=witness_samples, seed=seed)
                 if witness_samples and domain.bounded else None)
    # The level search's deadline leaves time for what follows it (FINISH_SHARE).
    deadline = None if time_limit is None else t0 + time_limit - min(FINISH_SHARE * time_limit, FINISH_MAX)
    found: dict[bytes, None] = {}
    witnesses_done = True
    if witnesses is not None:  # cheap (vectorised margins), and the certain bound is never below sampling's
        witnesses.certify_all(deadline)
        witnesses_done = witnesses.undecided() == 0
        # every sampled pattern the counting rule certified is a region: collected now, not after the deadline
        found.update(dict.fromkeys(witnesses.certified_patterns()))
    runner = _Trials(oracle, jobs=jobs, dask=dask, at_least=threshold)
    bar = Progress("lower-bound", progress=progress)
    rng = np.random.default_rng(seed)
    first, last = (xors, xors) if xors is not None else (start, max(start, candidates.size + math.ceil(alpha)))

    def worth_testing(first: int) -> int:
        """The lowest level from ``first`` on whose claim exceeds the certain bound so far."""
        if xors is None and schedule == "search":
            while first <= last and floor_pow2(first, alpha, threshold) <= len(found):
                first += 1
        return first

    # The probe: a level that most sampled witnesses answer (their distinct patterns are almost all regions).
    # (With a threshold t, log2 t fewer XORs leave cells of t of them.)
    probe = max(1, len(witnesses).bit_length() - threshold.bit_length()) if witnesses is not None else first
    levels: list[dict] = []
    tested: dict[int, bool] = {}
    stopped = None
    # SIGTERM stops the search as Ctrl-C does (a trial's own enumerator turns either into a stop).
    try:
        with stop_signals(lambda signum: KeyboardInterrupt()):
            while (k := next_level(tested, first=(first := worth_testing(first)), last=last, probe=probe,
                                   schedule=schedule)) is not None:
                tk = time.perf_counter()
                if deadline is not None and tk >= deadline:
                    stopped = "time_limit"
                    break
                passed, certain_before = 0, len(found)
                systems = [XorSystem.draw(rng, candidates, k, density=density) for _ in range(trials)]
                results = _answers(systems, witnesses, runner, deadline, threshold,
                                   lambda n, what: _tick(bar, k, n, trials, what))
                for system, (status, regions) in zip(systems, results):
                    for pattern in regions:  # every region a trial found is real, whether the trial passed or not
                        if not system.satisfied(pattern):  # a region outside the XORs would void the bound
                            raise RuntimeError("internal error: the oracle returned a region that violates "
                                               "the XORs")
                        found[pattern.tobytes()] = None
                    passed += status == FEASIBLE
                statuses = [st for st, _ in results]
                outcome = (FEASIBLE if passed == trials else INFEASIBLE if INFEASIBLE in statuses else UNKNOWN)
                bar.show(f"level {k}: {passed}/{trials} trials passed")
                levels.append({"xors": k, "trials_passed": passed, "certified": outcome == FEASIBLE,
                               "certain_before": certain_before, "seconds": round(time.perf_counter() - tk, 6)})
                if outcome == UNKNOWN:
                    stopped = "time_limit"
                    break
                tested[k] = outcome == FEASIBLE
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        bar.close()
        runner.close()
    level = max((k for k, ok in tested.items() if ok), default=None)
    if stopped is None:
        stopped = "max_level" if level == last else "certain_bound" if not tested else "failed_trial"
    if not witnesses_done:  # trials' witness lookups certified more of the sampled patterns
        found.update(dict.fromkeys(witnesses.certified_patterns()))
    certain = len(found)
    witnessed = (0 if witnesses is None else witnesses.hits, 0 if witnesses is None else len(witnesses))
    xor_bound = floor_pow2(level, alpha, threshold) if level is not None else 0
    bound, conf_out = (xor_bound, conf) if xor_bound > certain else (certain, 1.0)
    return LowerBoundResult(bound, conf_out, time.perf_counter() - t0, method, level,
                            None if level is None else level - alpha + math.log2(threshold), alpha, trials, density,
                            conf, certain, int(candidates.size), oracle.tol, oracle.tol_meaning, stopped, levels,
                            runner.lps, *witnessed, threshold, xor_layers)


def _tick(bar: Progress, level: int, done: int, trials: int, what: str) -> None:
    """The progress line within a level (a level of many trials can take minutes)."""
    if bar.due():
        bar.show(f"level {level}: {done}/{trials} trials {what}")


def _answers(systems: list[XorSystem], witnesses: Witnesses | None, runner: "_Trials", deadline: float | None,
             at_least: int = 1, tick: Callable[[int, str], None] | None = None
             ) -> list[tuple[str, list[np.ndarray]]]:
    """Each trial's (status, regions found): from sampled witnesses where ``at_least`` satisfy it, else
    its oracle (``tick(n, what)``: n trials checked against the witnesses, or answered, so far)."""
    hits = []
    for s in systems:
        hits.append(None if witnesses is None else witnesses.find_many(s, at_least))
        if tick is not None:
            tick(len(hits), "checked against sampled witnesses")
    rest = [i for i, hit in enumerate(hits) if hit is None]
    witnessed = len(systems) - len(rest)
    searched = iter(runner.run([systems[i] for i in rest], deadline,
                               None if tick is None else (lambda n: tick(witnessed + n, "answered")))
                    if rest else [])
    # The runner stops at a level's first failed trial: the trials after it stay unknown.
    return [(FEASIBLE, hit) if hit is not None else next(searched, (UNKNOWN, [])) for hit in hits]
