"""Probabilistic lower bounds on the region count from random XOR constraints (MBound style).

Serra & Ramalingam (AAAI 2020), after Gomes, Sabharwal & Selman's MBound (2006).  A *trial at level
k* draws k random XORs over the neurons' activation bits (:class:`lrmilp.parity.XorSystem`: each
candidate neuron joins each XOR with probability ``density``, each parity is a fair coin) and asks
whether some full-dimensional region satisfies all of them.

**The rule.**  A fixed region satisfies k such XORs with probability exactly 2^-k (the parities are
fair coins, whatever the density), so if the network had fewer than 2^(k - alpha) regions, a trial
would succeed with probability below 2^-alpha (Markov), and r independent trials would all succeed
with probability below 2^(-alpha r).  Levels k = start, start + 1, ... are tested in that order,
r trials each, and the search stops at the first level where a trial fails (or the time budget
runs out).  If L is the last level where all r trials succeeded, then

    #regions >= floor(2^(L - alpha))   with confidence at least 1 - 2^(-alpha r),

because a wrong claim needs the lowest wrong level to have been tested and passed.  Given a target
confidence p, alpha = log2(1 / (1 - p)) / r.  The regions the trials found are real, so their
number of distinct patterns is a *certain* lower bound; the result reports the larger of the two
(with confidence 1 when the certain one wins).

Feasibility of a trial is decided by the one-tree enumerator with parity propagation
(``method="tree"``; it stops at the first region), or by MILP: HiGHS on the linear form of the
XORs (``"milp"``), SCIP with its native XOR constraints (``"scip"``).  Candidate neurons are the
unstable ones (bounds from :func:`lrmilp.counting.tree_bounds`): stable neurons take one state in
every region and would only flip parities.
"""

from __future__ import annotations

import math
import time
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
                         optional_positive_finite, positive_finite)

DEFAULT_TRIALS = 10
DEFAULT_CONFIDENCE = 0.99
DEFAULT_DENSITY = 0.5
RULE = ("levels k = start, start+1, ... are tested with r trials of k random XORs each (each candidate neuron in "
        "each XOR with probability density, parities fair coins) and the search stops at the first level with a "
        "failed trial; if every trial at level L found a region, #regions >= floor(2^(L - alpha)) with confidence "
        ">= 1 - 2^(-alpha r)")

__all__ = ["DEFAULT_WITNESS_SAMPLES", "FEASIBLE", "HighsOracle", "INFEASIBLE", "LowerBoundResult", "METHODS",
           "ScipOracle", "TreeOracle", "UNKNOWN", "Witnesses", "floor_pow2", "lower_bound", "make_oracle",
           "resolve_alpha"]


# --- running a level's trials: here, on local processes, or on Dask --------------------------------

def _trial(oracle, system: XorSystem, time_limit: float | None) -> tuple[str, np.ndarray | None, int]:
    """One trial; also the LPs it took (the oracle may live in another process)."""
    before = oracle.lps
    status, pattern = oracle(system, time_limit=time_limit)
    return status, pattern, oracle.lps - before


class _Trials:
    """Runs the r trials of a level: one by one (stopping at the first failure), or all at once on
    :class:`~lrmilp.parallel.Workers` (``jobs`` forked processes, or a Dask cluster with ``dask`` =
    "local" or a scheduler address), each holding the oracle.  The systems are drawn before they run,
    so every engine sees the same XORs and certifies the same level."""

    def __init__(self, oracle, *, jobs: int, dask: str | None) -> None:
        self.oracle = oracle
        self.workers = Workers(jobs, dask=dask, context=oracle) if jobs > 1 or dask is not None else None
        self.lps = 0

    def run(self, systems: list[XorSystem], deadline: float | None) -> list[tuple[str, np.ndarray | None]]:
        """The trials' (status, pattern), in order; ``deadline`` is a time.perf_counter() value."""
        def remaining() -> float | None:
            return None if deadline is None else max(deadline - time.perf_counter(), 1e-3)

        if self.workers is not None:
            time_limit = remaining()
            out = [f.result() for f in [self.workers.submit(_trial, sy, time_limit) for sy in systems]]
        else:
            out = []
            for sy in systems:
                out.append(_trial(self.oracle, sy, remaining()))
                if out[-1][0] != FEASIBLE:
                    break
        self.lps += sum(r[2] for r in out)
        return [(st, pat) for st, pat, _ in out]

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
    log2_bound: float | None  # level - alpha
    alpha: float
    trials: int
    density: float
    target_confidence: float
    certain_lower_bound: int  # distinct regions the trials found: certain
    candidates: int  # neurons the XORs are drawn over
    tol: float
    tol_meaning: str
    stopped: str | None  # why the search ended: "failed_trial", "max_level", "time_limit", "interrupted"
    levels: list[dict] = field(default_factory=list)
    lps: int = 0
    witnessed_trials: int = 0  # trials answered by a sampled witness, no search
    witness_patterns: int = 0  # distinct patterns of the witness samples

    def to_dict(self) -> dict:
        return {"lower_bound": int(self.lower_bound), "confidence": self.confidence, "seconds": round(self.seconds, 6),
                "method": self.method, "level": self.level,
                "log2_bound": None if self.log2_bound is None else round(self.log2_bound, 6),
                "alpha": self.alpha, "trials": self.trials, "density": self.density,
                "target_confidence": self.target_confidence, "certain_lower_bound": int(self.certain_lower_bound),
                "candidates": self.candidates, "tol": self.tol, "tol_meaning": self.tol_meaning,
                "stopped": self.stopped, "lps": int(self.lps), "levels": self.levels, "rule": RULE,
                "witnessed_trials": int(self.witnessed_trials), "witness_patterns": int(self.witness_patterns),
                "meaning": "a probabilistic lower bound on the number of full-dimensional regions, not a count"}


def floor_pow2(n: int, alpha: float) -> int:
    """floor(2^(n - alpha)) for an integer n >= 0, in exact integer arithmetic, never above the true value.

    Parameters
    ----------
    n : int
        The level.
    alpha : float
        The confidence parameter.

    Returns
    -------
    int

    Examples
    --------
    >>> floor_pow2(10, 1.0)
    511
    """
    # 2^-alpha as m / 2^60 rounded down; the float power is off by at most ~2^-52 relatively, i.e.
    # ~2^8 units of 2^-60, hence the margin.
    m = max(math.floor(math.ldexp(2.0 ** (-alpha), 60)) - 512, 0)
    return (m << n) >> 60


def resolve_alpha(*, trials: int, confidence: float | None, alpha: float | None) -> tuple[float, float]:
    """(alpha, confidence) from the one given (confidence defaults to DEFAULT_CONFIDENCE).

    Parameters
    ----------
    trials : int
        Trials per level r.
    confidence, alpha : float or None
        At most one of them.

    Returns
    -------
    tuple of float
        alpha and the confidence 1 - 2^(-alpha r).

    Raises
    ------
    InputError
        Both given, or a value out of range.

    Examples
    --------
    >>> round(resolve_alpha(trials=10, confidence=None, alpha=1.0)[1], 6)
    0.999023
    """
    trials = int_at_least("trials", trials, 1)
    if alpha is not None and confidence is not None:
        raise InputError("give alpha or confidence, not both", param=("alpha", "confidence"))
    if alpha is not None:
        alpha = positive_finite("alpha", alpha)
        return alpha, 1.0 - 2.0 ** (-alpha * trials)
    p = DEFAULT_CONFIDENCE if confidence is None else in_open_interval("confidence", confidence, 0.0, 1.0)
    return math.log2(1.0 / (1.0 - p)) / trials, p


def lower_bound(net: Network, domain: Domain, *, xors: int | None = None, start: int = 1, trials: int = DEFAULT_TRIALS,
                confidence: float | None = None, alpha: float | None = None, density: float = DEFAULT_DENSITY,
                method: str = "tree", time_limit: float | None = None, seed: int = 0, tol: float | None = None,
                progress: bool | None = None, jobs: int = 1, dask: str | None = None,
                geometry: str = "auto", witness_samples: int = DEFAULT_WITNESS_SAMPLES) -> LowerBoundResult:
    """A lower bound on the region count of ``net`` over ``domain`` with a stated confidence (module doc).

    ``xors=K`` tests level K only; otherwise levels ``start``, ``start + 1``, ... are searched upward
    until a trial fails, ``time_limit`` runs out or the level passes the number of candidate neurons.
    Guarantee: ``lower_bound`` is wrong with probability at most 1 - ``confidence`` over the draw of the
    XORs (``seed``).  SIGINT or SIGTERM ends the search with the levels certified so far.

    Parameters
    ----------
    net : Network
        The network.
    domain : Domain
        The domain.
    xors : int, optional
        Test this level only.
    start : int
        First level of the upward search.
    trials : int
        Trials r per level.
    confidence, alpha : float, optional
        The target confidence p (default 0.99; alpha = log2(1/(1-p))/r), or alpha itself.
    density : float
        Probability that a candidate neuron joins an XOR (the bound is valid for any density).
    method : {"tree", "milp", "scip"}
        The feasibility oracle (:func:`make_oracle`).
    time_limit : float, optional
        Seconds for the whole search.
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
    geometry_class(geometry, domain, parity=True)  # an unknown name, or a domain it cannot handle: InputError
    alpha, conf = resolve_alpha(trials=trials, confidence=confidence, alpha=alpha)
    net = balanced(net)  # exact power-of-two rescaling: the same regions, no overflow in norms
    if not net.relu_layers:
        # No ReLU: the whole domain is one region, certainly.
        tolerance = resolve_tolerance(net, domain, tol)
        return LowerBoundResult(1, 1.0, time.perf_counter() - t0, method, None, None, alpha, trials, density, conf,
                                1, 0, tolerance.tol, tolerance.meaning, None)
    bounds = tree_bounds(net, domain)
    lo, hi = bounds.flat()
    candidates = np.flatnonzero((lo < 0) & (hi > 0))
    oracle = make_oracle(net, domain, method=method, tol=tol, bounds=bounds, geometry=geometry)
    witnesses = (Witnesses(net, domain, oracle.tolerance, samples=witness_samples, seed=seed)
                 if witness_samples and domain.bounded else None)
    runner = _Trials(oracle, jobs=jobs, dask=dask)
    bar = Progress("lower-bound", progress=progress)
    rng = np.random.default_rng(seed)
    first, last = (xors, xors) if xors is not None else (start, candidates.size + math.ceil(alpha))
    found: dict[bytes, None] = {}
    levels: list[dict] = []
    level = None
    stopped = "max_level"
    # SIGTERM stops the search as Ctrl-C does (a trial's own enumerator turns either into a stop).
    try:
        with stop_signals(lambda signum: KeyboardInterrupt()):
            for k in range(first, last + 1):
                tk = time.perf_counter()
                passed = 0
                deadline = None if time_limit is None else t0 + time_limit
                systems = [XorSystem.draw(rng, candidates, k, density=density) for _ in range(trials)]
                in_time = deadline is None or tk < deadline
                results = _answers(systems, witnesses, runner, deadline) if in_time else [(UNKNOWN, None)]
                for system, (status, pattern) in zip(systems, results):
                    if status == FEASIBLE:
                        if not system.satisfied(pattern):  # a region outside the XORs would void the bound
                            raise RuntimeError("internal error: the oracle returned a region that violates "
                                               "the XORs")
                        found[pattern.tobytes()] = None
                        passed += 1
                statuses = [st for st, _ in results]
                outcome = (FEASIBLE if passed == trials else INFEASIBLE if INFEASIBLE in statuses else UNKNOWN)
                bar.show(f"level {k}: {passed}/{trials} trials found a region")
                levels.append({"xors": k, "trials_passed": passed, "certified": outcome == FEASIBLE,
                               "seconds": round(time.perf_counter() - tk, 6)})
                if outcome != FEASIBLE:
                    stopped = "time_limit" if outcome == UNKNOWN else "failed_trial"
                    break
                level = k
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        bar.close()
        runner.close()
    certain = len(found)
    witnessed = (0 if witnesses is None else witnesses.hits, 0 if witnesses is None else len(witnesses))
    xor_bound = floor_pow2(level, alpha) if level is not None else 0
    bound, conf_out = (xor_bound, conf) if xor_bound > certain else (certain, 1.0)
    return LowerBoundResult(bound, conf_out, time.perf_counter() - t0, method, level,
                            None if level is None else level - alpha, alpha, trials, density, conf, certain,
                            int(candidates.size), oracle.tol, oracle.tol_meaning, stopped, levels, runner.lps,
                            *witnessed)


def _answers(systems: list[XorSystem], witnesses: Witnesses | None, runner: "_Trials",
             deadline: float | None) -> list[tuple[str, np.ndarray | None]]:
    """Each trial's (status, pattern): from a sampled witness where one satisfies it, else its oracle."""
    hits = [None if witnesses is None else witnesses.find(s) for s in systems]
    rest = [i for i, hit in enumerate(hits) if hit is None]
    searched = iter(runner.run([systems[i] for i in rest], deadline) if rest else [])
    # The runner stops at a level's first failed trial: the trials after it stay unknown.
    return [(FEASIBLE, hit) if hit is not None else next(searched, (UNKNOWN, None)) for hit in hits]
