"""An (epsilon, delta) estimate of the region count by hashing: ApproxMC2 over activation patterns.

Chakraborty, Meel & Vardi, "Algorithmic improvements in approximate counting for probabilistic
inference: from linear to logarithmic SAT calls", IJCAI 2016 (ApproxMC2, after ApproxMC, CP 2013).
The regions are identified by their activation patterns.  A stable neuron (bounds from
:func:`lrmilp.counting.tree_bounds` not straddling 0) takes the same state in every region, so two
regions differ in some *unstable* neuron: the map region -> bits of the n unstable neurons is
injective, and counting regions is counting those bit vectors.  Hashing is over these n bits.

**One iteration** draws a hash h from ApproxMC's family H_xor(n, n - 1): n - 1 XORs, each unstable
neuron in each XOR with probability 1/2 and each parity a fair coin (h(y) = A y + b with A, b uniform
over GF(2): a 3-wise independent family, which the guarantee needs; hence the density is fixed at
1/2, unlike the lower bound's).  The cell of the first m XORs (h^(m) = 0 after the parities) holds
c(m) regions, counted by the one-tree enumerator with parity propagation up to thresh + 1; since the
cells are nested, c(m) does not increase with m, and the iteration finds the smallest m with a
*small* cell, c(m) < thresh, by a galloping then binary search (LogSATSearch; any start gives the same
m).  Its estimate is c(m) 2^m.  If even m = n - 1 leaves the cell large, the iteration returns no
estimate (ApproxMC2Core's bottom) and is left out of the median.

**The guarantee** (the main theorem of the ApproxMC2 paper): with

    thresh = 1 + 9.84 (1 + eps / (1 + eps)) (1 + 1/eps)^2,   t = ceil(17 log2(3 / delta)),

if all regions are fewer than thresh they are counted exactly (the first, unhashed count); otherwise
the median M of the t iterations' estimates satisfies

    Pr[ #regions / (1 + eps) <= M <= (1 + eps) #regions ] >= 1 - delta,

over the draw of the hashes (``seed``), so #regions lies in [M / (1 + eps), (1 + eps) M] with
probability at least 1 - delta.  (Parameters as in the paper's Algorithm 1 and as in the authors'
code, meelgroup/approxmc: ``threshold = 1 + 9.84 (1 + 1/eps)^2 (1 + eps/(1 + eps))`` and
``measurements = ceil(17 log2(3/delta))``.)  "Regions" are those the tree counts under its
tolerance (``tol``): the guarantee is about that count.  A run cut short (time limit, SIGINT,
SIGTERM) reports the median of the iterations it finished, with no guarantee.
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
from .parallel import Workers
from .parity import ParityState, XorSystem
from .progress import Progress
from .search import TreeSearch
from .tolerance import Tolerance, resolve_tolerance
from .validation import dask_address, in_open_interval, int_at_least, optional_positive_finite, positive_finite

DEFAULT_EPSILON = 0.8
DEFAULT_DELTA = 0.2
HASH_DENSITY = 0.5
"""Probability that a neuron joins an XOR: 1/2 makes the XORs ApproxMC's family H_xor (not an option:
another density voids the guarantee)."""
RULE = ("t = ceil(17 log2(3/delta)) iterations, each drawing n-1 random XORs over the n unstable neurons "
        "(density 1/2, fair parities) and finding the smallest m whose cell holds fewer than "
        "thresh = 1 + 9.84 (1 + eps/(1+eps)) (1 + 1/eps)^2 regions; estimate = median of cell count * 2^m "
        "(ApproxMC2, Chakraborty, Meel & Vardi, IJCAI 2016)")

__all__ = ["CellCounter", "DEFAULT_DELTA", "DEFAULT_EPSILON", "EstimateResult", "HASH_DENSITY",
           "approxmc_parameters", "estimate"]


def approxmc_parameters(epsilon: float, delta: float) -> tuple[float, int, int]:
    """ApproxMC2's threshold and iteration count (IJCAI 2016, Algorithm 1).

    Parameters
    ----------
    epsilon : float
        Tolerance: the estimate is within a factor 1 + epsilon (> 0).
    delta : float
        Failure probability, in (0, 1).

    Returns
    -------
    tuple
        (thresh, cell_max, t): thresh = 1 + 9.84 (1 + eps/(1+eps)) (1 + 1/eps)^2; cell_max, the
        largest integer below thresh (a cell is small when it holds at most cell_max regions);
        t = ceil(17 log2(3/delta)).

    Raises
    ------
    InputError
        epsilon <= 0 or delta outside (0, 1), naming the parameter.

    Examples
    --------
    >>> thresh, cell_max, t = approxmc_parameters(0.8, 0.2)
    >>> round(thresh, 3), cell_max, t
    (72.955, 72, 67)
    """
    epsilon = positive_finite("epsilon", epsilon)
    delta = in_open_interval("delta", delta, 0.0, 1.0)
    thresh = 1.0 + 9.84 * (1.0 + epsilon / (1.0 + epsilon)) * (1.0 + 1.0 / epsilon) ** 2
    return thresh, math.ceil(thresh) - 1, math.ceil(17.0 * math.log2(3.0 / delta))


class CellCounter:
    """Counts the regions of a hash cell, up to a limit: the context every iteration shares (and that
    :class:`~lrmilp.parallel.Workers` hands each worker)."""

    def __init__(self, net: Network, domain: Domain, tolerance: Tolerance, bounds, *, geometry: str,
                 variables: np.ndarray, cell_max: int) -> None:
        self.net, self.domain, self.tolerance, self.bounds = net, domain, tolerance, bounds
        self.geometry, self.variables, self.cell_max = geometry, variables, cell_max

    def count(self, system: XorSystem, deadline: float | None) -> tuple[int | None, int]:
        """(regions in the cell of ``system``, capped at cell_max + 1, or None at the deadline; LPs).

        ``deadline`` is a time.time() value (wall clock: it means the same in a worker process)."""
        state = ParityState.of(system)
        if state is None:
            return 0, 0  # the XORs contradict each other: an empty cell
        time_limit = None if deadline is None else max(deadline - time.time(), 1e-3)
        # cell_max + 1 regions tell "large" from "small": the count need go no further.
        search = TreeSearch(self.net, self.domain, tol=self.tolerance, bounds=self.bounds, parity=state,
                            max_regions=self.cell_max + 1, time_limit=time_limit, geometry=self.geometry)
        stats = search.run()
        if search.stopped == "interrupted":  # not a count: the whole run is being stopped
            raise KeyboardInterrupt
        return (None if search.stopped == "time_limit" else stats.regions), stats.lps


def _iteration(counter: CellCounter, index: int, seed: np.random.SeedSequence, hint: int,
               deadline: float | None) -> dict:
    """One ApproxMC2Core: the smallest m in 1..n-1 whose cell is small (the empty hash, m = 0, is
    known to be large), found from ``hint``; returns m, the cell's count and every count made."""
    t0 = time.perf_counter()
    n_max = counter.variables.size - 1
    system = XorSystem.draw(np.random.default_rng(seed), counter.variables, n_max, density=HASH_DENSITY)
    counts: dict[int, int] = {0: counter.cell_max + 1}
    lps = 0

    def small(m: int) -> bool:
        nonlocal lps
        if m not in counts:
            c, used = counter.count(XorSystem(system.masks[:m], system.parities[:m]), deadline)
            lps += used
            if c is None:
                raise _OutOfTime
            counts[m] = c
        return counts[m] <= counter.cell_max

    def out(m: int | None, status: str) -> dict:
        return {"iteration": index, "m": m, "cell": None if m is None else counts[m],
                "estimate": None if m is None else counts[m] << m, "status": status,
                "counts": sorted((k, v) for k, v in counts.items() if k), "lps": lps,
                "seconds": round(time.perf_counter() - t0, 6)}

    try:
        m = _smallest_small(small, n_max, hint)
    except _OutOfTime:
        return out(None, "time_limit")
    return out(m, "ok" if m is not None else "no_small_cell")


class _OutOfTime(Exception):
    """A cell count reached the run's deadline."""


def _smallest_small(small, n_max: int, hint: int) -> int | None:
    """The smallest m in 1..n_max with small(m), given that small is monotone (false, then true) and
    small(0) is false; None when even small(n_max) is false.  Gallops from ``hint``: with the previous
    iteration's m as hint, usually two counts."""
    big, m = 0, min(max(hint, 1), n_max)
    if small(m):
        smallest, step = m, 1
        while smallest - big > 1:
            probe = max(smallest - step, big + 1)
            if not small(probe):
                big = probe
                break
            smallest, step = probe, 2 * step
    else:
        big, step = m, 1
        while True:
            if big == n_max:
                return None
            probe = min(big + step, n_max)
            if small(probe):
                smallest = probe
                break
            big, step = probe, 2 * step
    while smallest - big > 1:
        mid = (big + smallest) // 2
        if small(mid):
            smallest = mid
        else:
            big = mid
    return smallest


@dataclass
class EstimateResult:
    """``estimate`` is within a factor 1 + epsilon of the region count with probability >= ``confidence``
    (exactly the count, confidence 1, when ``exact``; no guarantee when ``stopped``)."""

    estimate: int | None
    epsilon: float
    delta: float
    confidence: float | None  # 1 - delta; 1.0 when exact; None when stopped early (no guarantee)
    interval: tuple[float, float] | None
    seconds: float
    exact: bool
    iterations: int  # t, as the guarantee needs
    thresh: float
    cell_max: int
    candidates: int  # unstable neurons: the hashed variables
    seed: int
    tol: float
    tol_meaning: str
    stopped: str | None  # None (finished), "time_limit", "interrupted"
    cells: list[dict] = field(default_factory=list)  # per finished iteration: m, cell count, ...
    lps: int = 0

    @property
    def guaranteed(self) -> bool:
        return self.stopped is None and self.estimate is not None

    def to_dict(self) -> dict:
        done = [c for c in self.cells if c["status"] != "time_limit"]
        return {"estimate": None if self.estimate is None else int(self.estimate),
                "log2_estimate": (None if not self.estimate else round(math.log2(self.estimate), 6)),
                "epsilon": self.epsilon, "delta": self.delta, "confidence": self.confidence,
                "interval": None if self.interval is None else list(self.interval),
                "guaranteed": self.guaranteed, "exact": self.exact, "seconds": round(self.seconds, 6),
                "iterations": self.iterations, "iterations_done": len(done), "thresh": self.thresh,
                "cell_max": self.cell_max, "candidates": self.candidates, "density": HASH_DENSITY, "seed": self.seed,
                "tol": self.tol, "tol_meaning": self.tol_meaning, "stopped": self.stopped, "lps": int(self.lps),
                "cells": [{"m": c["m"], "cell": c["cell"], "status": c["status"], "seconds": c["seconds"]}
                          for c in self.cells],
                "rule": RULE,
                "meaning": ("the region count, exactly" if self.exact else
                            "an estimate of the region count: the count is in interval with probability >= "
                            "confidence" if self.guaranteed else "an estimate with no guarantee (stopped early)")}


def _median(values: list[int]) -> int | None:
    """ApproxMC's FindMedian: the upper middle value (an observed estimate; the guarantee holds for it
    whenever more than half of the values are in the interval)."""
    return sorted(values)[len(values) // 2] if values else None


class _Runner:
    """Runs iterations here (one by one, each starting from the last m) or on Workers (``jobs`` forked
    processes or Dask), each holding the CellCounter.  The iterations' seeds are fixed up front and an
    iteration's m does not depend on where its search starts, so every engine returns the same result."""

    def __init__(self, counter: CellCounter, *, jobs: int, dask: str | None) -> None:
        self.counter = counter
        self.workers = Workers(jobs, dask=dask, context=counter) if jobs > 1 or dask is not None else None
        self.done: list[dict] = []

    def run(self, seeds: list[np.random.SeedSequence], deadline: float | None, on_done) -> None:
        """Fill :attr:`done` (in iteration order); stops at the first iteration out of time."""
        hint = 1
        first = 0
        if self.workers is not None and seeds:
            # The first iteration alone gives the others a good start (fewer counts each).
            self._add(_iteration(self.counter, 0, seeds[0], hint, deadline), on_done)
            hint, first = self.done[0]["m"] or 1, 1
            if self.done[0]["status"] == "time_limit":
                return
            futures = [self.workers.submit(_iteration, i, s, hint, deadline)
                       for i, s in enumerate(seeds[1:], start=1)]
            try:
                for f in futures:
                    self._add(f.result(), on_done)
            finally:
                # An interrupt: keep what already finished (in order) before the workers are killed.
                got = {c["iteration"] for c in self.done}
                for i, f in enumerate(futures, start=1):
                    if i not in got and f.done() and not f.cancelled() and f.exception() is None:
                        self._add(f.result(), on_done)
                self.done.sort(key=lambda c: c["iteration"])
            return
        for i, s in enumerate(seeds[first:], start=first):
            self._add(_iteration(self.counter, i, s, hint, deadline), on_done)
            if self.done[-1]["status"] == "time_limit":
                return
            hint = self.done[-1]["m"] or hint

    def _add(self, cell: dict, on_done) -> None:
        self.done.append(cell)
        on_done(cell)

    def close(self) -> None:
        if self.workers is not None:
            self.workers.close()


def estimate(net: Network, domain: Domain, *, epsilon: float = DEFAULT_EPSILON, delta: float = DEFAULT_DELTA,
             seed: int = 0, jobs: int = 1, dask: str | None = None, time_limit: float | None = None,
             tol: float | None = None, progress: bool | None = None, geometry: str = "auto") -> EstimateResult:
    """The region count of ``net`` over ``domain`` within a factor 1 + ``epsilon`` with probability at
    least 1 - ``delta`` (ApproxMC2; module doc).

    Guarantee: the true count lies in ``interval`` = [estimate / (1 + epsilon), estimate (1 + epsilon)]
    with probability >= 1 - delta over the hashes drawn from ``seed``; when fewer than thresh regions
    exist, ``exact`` is true and the estimate is the count.  A run stopped by ``time_limit``, SIGINT or
    SIGTERM returns the median of its finished iterations, flagged (``stopped``), with no guarantee.

    Parameters
    ----------
    net : Network
        The network.
    domain : Domain
        The domain.
    epsilon : float
        The factor's tolerance, > 0 (ApproxMC's default 0.8).
    delta : float
        The failure probability, in (0, 1) (default 0.2: confidence 0.8).
    seed : int
        Seed of the hashes; each iteration's stream is spawned from it up front.
    jobs : int
        Run the iterations on this many local processes (the same result as one by one).
    dask : str, optional
        Run the iterations on Dask: ``"local"`` or a scheduler address.
    time_limit : float, optional
        Seconds for the whole estimate.
    tol : float, optional
        The region tolerance (:mod:`lrmilp.tolerance`).
    progress : bool or None
        A progress line on stderr (None: when stderr is a terminal).
    geometry : str
        The cell geometry of the searches (``"auto"``: as a count with parity would choose).

    Returns
    -------
    EstimateResult
        ``estimate``, ``interval``, ``confidence``, ``exact``, ``stopped``, per-iteration ``cells``, ...

    Raises
    ------
    InputError
        A bad option, named as the library spells it.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> r = estimate(random_mlp([2, 5], seed=0), Box(-1, 1, 2))
    >>> r.exact, r.estimate, r.interval  # 7 regions: fewer than thresh, so counted exactly
    (True, 7, (7.0, 7.0))
    """
    t0 = time.perf_counter()
    if domain.input_dim != net.input_dim:
        raise InputError(f"domain has {domain.input_dim} inputs, network has {net.input_dim}")
    thresh, cell_max, t = approxmc_parameters(epsilon, delta)
    epsilon, delta = float(epsilon), float(delta)
    seed = int_at_least("seed", seed, 0)
    jobs = int_at_least("jobs", jobs, 1)
    dask = dask_address("dask", dask)
    time_limit = optional_positive_finite("time_limit", time_limit)
    tol = optional_positive_finite("tol", tol)
    geometry_class(geometry, domain, parity=True)  # an unknown name, or a domain it cannot handle: InputError
    deadline = None if time_limit is None else time.time() + time_limit
    net = balanced(net)  # exact power-of-two rescaling: the same regions, no overflow in norms
    tolerance = resolve_tolerance(net, domain, tol)

    def result(value, confidence, interval, exact, stopped, candidates=0, cells=(), lps=0) -> EstimateResult:
        return EstimateResult(value, epsilon, delta, confidence, interval, time.perf_counter() - t0, exact, t, thresh,
                              cell_max, candidates, seed, tolerance.tol, tolerance.meaning, stopped, list(cells), lps)

    if not net.relu_layers:
        return result(1, 1.0, (1.0, 1.0), True, None)  # no ReLU: the whole domain is one region
    bounds = tree_bounds(net, domain)
    lo, hi = bounds.flat()
    candidates = np.flatnonzero((lo < 0) & (hi > 0))
    counter = CellCounter(net, domain, tolerance, bounds, geometry=geometry, variables=candidates, cell_max=cell_max)
    bar = Progress("estimate", progress=progress, total=t, unit="iterations")
    runner = None
    stopped = None
    first_lps = 0
    # SIGTERM stops the run as Ctrl-C does (a cell count's own enumerator turns either into a stop).
    try:
        with stop_signals(lambda signum: KeyboardInterrupt()):
            total, first_lps = counter.count(XorSystem((), ()), deadline)
            if total is None:
                return result(None, None, None, False, "time_limit", candidates.size, lps=first_lps)
            if total <= cell_max:  # fewer than thresh regions: counted, not estimated
                return result(total, 1.0, (float(total), float(total)), True, None, candidates.size, lps=first_lps)
            runner = _Runner(counter, jobs=jobs, dask=dask)
            seeds = np.random.SeedSequence(seed).spawn(t)

            def on_done(cell: dict) -> None:
                values = [c["estimate"] for c in runner.done if c["estimate"] is not None]
                bar.show(f"median {_median(values)}; last m {cell['m']}, cell {cell['cell']}", n=len(runner.done))

            runner.run(seeds, deadline, on_done)
            if runner.done and runner.done[-1]["status"] == "time_limit":
                stopped = "time_limit"
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        bar.close()
        if runner is not None:
            runner.close()
    if runner is None:  # interrupted in the first, unhashed count
        return result(None, None, None, False, stopped, candidates.size, lps=first_lps)
    cells = runner.done
    value = _median([c["estimate"] for c in cells if c["estimate"] is not None])
    interval = None if value is None else (value / (1.0 + epsilon), value * (1.0 + epsilon))
    confidence = 1.0 - delta if stopped is None and value is not None else None
    return result(value, confidence, interval, False, stopped, candidates.size, cells,
                  first_lps + sum(c["lps"] for c in cells))
