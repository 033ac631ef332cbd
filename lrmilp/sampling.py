"""Sampling estimators: distinct activation patterns of sampled inputs.

Every distinct pattern met by a sample from the domain's interior is the pattern of a linear region
(almost surely: a sample lands on a boundary with probability zero), so the number of distinct
patterns is a certain lower bound on the region count — an *estimate* of it, never the count.
Samples are drawn and classified in batches, so 10^7 samples need memory only for the distinct
patterns (packed bits) and one batch.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .domains import Domain
from .errors import InputError
from .network import Network

DISTRIBUTIONS = ("uniform", "gaussian", "data")


@dataclass
class SampleResult:
    distinct_patterns: int
    samples: int
    distribution: str
    seconds: float
    outside_domain: int = 0

    def to_dict(self) -> dict:
        return {"distinct_patterns": int(self.distinct_patterns), "samples": int(self.samples),
                "distribution": self.distribution, "seconds": round(self.seconds, 6),
                "outside_domain": int(self.outside_domain),
                "meaning": "distinct activation patterns of the samples: a lower bound on the number of "
                           "regions, not an exact count"}


def sample_patterns(net: Network, domain: Domain, *, samples: int, distribution: str = "uniform",
                    sigma: float = 1.0, data: str | Path | None = None, seed: int = 0, batch: int = 65536,
                    progress: bool = False) -> SampleResult:
    """Distinct activation patterns of ``samples`` inputs.

    ``uniform``: uniform over the (bounded) domain; ``gaussian``: N(0, sigma^2 I) in the domain's
    parameters (Xiong et al.'s protocol; samples outside a bounded domain are dropped and counted in
    ``outside_domain``); ``data``: the rows of a ``.npy`` file of inputs (``samples`` caps how many).
    """
    if distribution not in DISTRIBUTIONS:
        raise InputError(f"unknown distribution '{distribution}' (expected one of {', '.join(DISTRIBUTIONS)})")
    if samples < 1:
        raise InputError("--samples must be at least 1")
    if sigma <= 0:
        raise InputError("--sigma must be positive")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    seen: set[bytes] = set()
    done = outside = 0
    rows = None
    if distribution == "data":
        if data is None:
            raise InputError("--distribution data needs --data FILE.npy")
        try:
            rows = np.load(data, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read data file {data}: {e}") from None
        rows = np.asarray(rows, dtype=float).reshape(len(rows), -1)
        if rows.shape[1] != net.input_dim:
            raise InputError(f"data rows have {rows.shape[1]} values, network expects {net.input_dim}")
        if not np.all(np.isfinite(rows)):
            raise InputError(f"data file {data} contains NaN or infinite values")
        samples = min(samples, len(rows))
    elif distribution == "uniform" and not domain.bounded:
        raise InputError("uniform sampling needs a bounded domain (use --distribution gaussian)")
    next_report = t0 + 1.0
    while done < samples:
        n = min(batch, samples - done)
        if rows is not None:
            X = rows[done:done + n]
        else:
            U = domain.sample(n, rng) if distribution == "uniform" else rng.normal(0.0, sigma, (n, domain.dim))
            if distribution == "gaussian" and (domain.bounded or domain.A_ub.shape[0]):
                inside = domain.contains(U, tol=0.0)
                outside += int(n - inside.sum())
                U = U[inside]
            X = domain.to_input(U)
        if len(X):
            packed = np.packbits(net.patterns(X), axis=1)
            seen.update(map(bytes, np.unique(packed, axis=0)))
        done += n
        if progress and time.perf_counter() >= next_report:
            print(f"\r[lrmilp] samples {done:,}/{samples:,}  distinct patterns {len(seen):,}", end="",
                  file=sys.stderr, flush=True)
            next_report = time.perf_counter() + 1.0
    if progress:
        print(file=sys.stderr)
    return SampleResult(len(seen), done, distribution, time.perf_counter() - t0, outside)
