"""Sampling estimators: distinct activation patterns of sampled inputs.

Every distinct pattern met by a sample from the domain's interior is the pattern of a linear region
(almost surely: a sample lands on a boundary with probability zero), so the number of distinct
patterns is a certain lower bound on the region count — an *estimate* of it, never the count.
Samples are drawn and classified in batches, so 10^7 samples need memory only for the distinct
patterns (packed bits) and one batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .domains import Domain
from .errors import InputError
from .interrupts import stop_signals
from .network import Network
from .progress import Progress
from .validation import MAX_SAMPLES, int_at_least, load_array, optional_positive_finite, positive_finite

DISTRIBUTIONS = ("uniform", "gaussian", "data")


@dataclass
class SampleResult:
    distinct_patterns: int
    samples: int
    distribution: str
    seconds: float
    outside_domain: int = 0
    stopped: str | None = None  # "interrupted" (SIGINT or SIGTERM) or "time_limit" ended the run early

    def to_dict(self) -> dict:
        return {"distinct_patterns": int(self.distinct_patterns), "samples": int(self.samples),
                "distribution": self.distribution, "seconds": round(self.seconds, 6),
                "outside_domain": int(self.outside_domain), "complete": self.stopped is None,
                "stopped": self.stopped,
                "meaning": "distinct activation patterns of the samples: a lower bound on the number of "
                           "regions, not an exact count"}


def sample_patterns(net: Network, domain: Domain, *, samples: int, distribution: str = "uniform",
                    sigma: float = 1.0, data: str | Path | None = None, seed: int = 0, batch: int = 65536,
                    progress: bool | None = None, time_limit: float | None = None) -> SampleResult:
    """Distinct activation patterns of ``samples`` inputs: a certain lower bound on the region count.

    SIGINT, SIGTERM or ``time_limit`` end the run early with the patterns seen so far (``stopped:
    "interrupted"`` or ``"time_limit"``, and ``samples`` says how many were drawn), still a lower bound.

    Parameters
    ----------
    net : Network
        The network.
    domain : Domain
        The domain (its parameters are sampled).
    samples : int
        How many inputs, at most :data:`~lrmilp.validation.MAX_SAMPLES`.
    distribution : {"uniform", "gaussian", "data"}
        Uniform over the (bounded) domain; N(0, sigma^2 I) in the domain's parameters (Xiong et al.'s
        protocol; samples outside a bounded domain are dropped and counted in ``outside_domain``); or the
        rows of the ``.npy`` file ``data`` (``samples`` caps how many).
    sigma : float
        Standard deviation of ``gaussian``.
    data : str or Path, optional
        A ``.npy`` array of inputs (rows), for ``data``.
    seed : int
        Seed of the draw.
    batch : int
        Inputs per batch.
    progress : bool or None
        A progress line on stderr (None: when stderr is a terminal).
    time_limit : float, optional
        Seconds for the whole run (checked between batches).

    Returns
    -------
    SampleResult
        ``distinct_patterns``, ``samples``, ``outside_domain``, ``stopped``, ...

    Raises
    ------
    InputError
        A bad option, or ``uniform`` over an unbounded domain.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> sample_patterns(random_mlp([2, 5], seed=0), Box(-1, 1, 2), samples=10_000).distinct_patterns
    7
    """
    if distribution not in DISTRIBUTIONS:
        raise InputError(f"unknown distribution '{distribution}' (expected one of {', '.join(DISTRIBUTIONS)})",
                         param="distribution")
    samples = int_at_least("samples", samples, 1, MAX_SAMPLES)
    sigma = positive_finite("sigma", sigma)
    seed = int_at_least("seed", seed, 0)
    batch = int_at_least("batch", batch, 1)
    time_limit = optional_positive_finite("time_limit", time_limit)
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + time_limit
    rng = np.random.default_rng(seed)
    seen: set[bytes] = set()
    rows = None
    if distribution == "data":
        if data is None:
            raise InputError("distribution 'data' needs data (a .npy file of inputs)", param="data")
        rows = load_array(data, "data")
        if rows.ndim == 0 or rows.size == 0:
            raise InputError(f"data: {data} holds no input rows", param="data")
        rows = rows.reshape(len(rows), -1)
        if rows.shape[1] != net.input_dim:
            raise InputError(f"data rows have {rows.shape[1]} values, network expects {net.input_dim}", param="data")
        samples = min(samples, len(rows))
    elif distribution == "uniform" and not domain.bounded:
        raise InputError("uniform sampling needs a bounded domain (use --distribution gaussian)")
    count = {"done": 0, "outside": 0}  # updated batch by batch, so an interrupted run reports its samples
    stopped = None
    try:
        with stop_signals(lambda signum: KeyboardInterrupt()), \
                Progress("sample", progress=progress, total=samples, unit="samples") as bar:
            if not _draw(net, domain, distribution, sigma, rows, rng, seen, samples, batch, bar, count, deadline):
                stopped = "time_limit"
    except KeyboardInterrupt:
        stopped = "interrupted"
    return SampleResult(len(seen), count["done"], distribution, time.perf_counter() - t0, count["outside"], stopped)


def _draw(net: Network, domain: Domain, distribution: str, sigma: float, rows: np.ndarray | None,
          rng: np.random.Generator, seen: set, samples: int, batch: int, bar: Progress, count: dict,
          deadline: float | None = None) -> bool:
    """The sampling loop of :func:`sample_patterns`: adds each batch's patterns to ``seen``, then its size
    to ``count["done"]`` (so ``seen`` always holds the patterns of at least ``done`` samples).  False
    when ``deadline`` (perf_counter) stopped it before all samples."""
    while count["done"] < samples:
        if deadline is not None and time.perf_counter() > deadline:
            return False
        done = count["done"]
        n = min(batch, samples - done)
        if rows is not None:
            X = rows[done:done + n]
        else:
            U = domain.sample(n, rng) if distribution == "uniform" else rng.normal(0.0, sigma, (n, domain.dim))
            if distribution == "gaussian" and (domain.bounded or domain.A_ub.shape[0]):
                inside = domain.contains(U, tol=0.0)
                count["outside"] += int(n - inside.sum())
                U = U[inside]
            X = domain.to_input(U)
        if len(X):
            packed = np.packbits(net.patterns(X), axis=1)
            seen.update(map(bytes, np.unique(packed, axis=0)))
        count["done"] = done + n
        if bar.due():
            bar.show(f"distinct patterns {len(seen):,}", n=done + n)
    return True
