"""Local complexity: the linear regions in a small neighbourhood of each of N data points.

The neighbourhood of a point x is the l-infinity ball {u : |u - x|_inf <= radius}, a box, optionally
cut down to a box ``within`` (e.g. the model's input box [0, 1]^n0, so that a pixel at 0 does not
count regions of negative images).  Each neighbourhood is counted exactly by
:func:`lrmilp.counting.count_regions` with the same counting rule as any count (a region counts iff
it holds a ball of radius > tol inside the neighbourhood; the default tol is 1e-9 of the
neighbourhood's half-width), so the numbers are exact counts, not estimates — the measure of "local
complexity" of, e.g., Hanin & Rolnick (2019) and Gamba et al. (2022) without sampling.

An l2 ball is not offered: it is not a polytope, and every cell geometry and solver peer of this
package decides full-dimensionality by linear programs, so its counts would not be exact.

Points are counted independently: on ``jobs`` local processes or a Dask cluster, one point per task.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .cells import geometry_class
from .counting import METHODS, count_regions
from .domains import Box, Domain
from .errors import InputError
from .interrupts import stop_signals
from .network import Network
from .parallel import Workers
from .progress import Progress
from .validation import dask_address, int_at_least, one_of, optional_positive_finite, positive_finite

__all__ = ["LocalResult", "count_around"]


@dataclass
class LocalResult:
    """Per-point exact counts; ``complete`` when every point's count is exact."""

    radius: float
    points: int
    counts: list[int | None]  # regions per point (None: not counted, the run stopped first)
    per_point: list[dict]
    seconds: float
    stopped: str | None  # None, "time_limit" or "interrupted"
    within: list | None = None  # [lo, hi] of the clipping box, per coordinate, or None
    method: str = "tree"
    norm: str = "inf"
    summary: dict = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.stopped is None and all(p["complete"] for p in self.per_point)

    def to_dict(self) -> dict:
        return {"counts": self.counts, "complete": self.complete, "points": self.points, "radius": self.radius,
                "norm": self.norm, "method": self.method, "within": self.within, "seconds": round(self.seconds, 6),
                "stopped": self.stopped, **self.summary, "per_point": self.per_point,
                "meaning": "exact region counts in the l-inf ball of the radius around each point (cut to 'within' "
                           "when given); a count with complete false is a lower bound"}


def _count_one(ctx: dict, index: int, lo: np.ndarray, hi: np.ndarray, deadline: float | None) -> dict:
    """One neighbourhood, in a worker (or here): its count as a dict."""
    left = None if deadline is None else deadline - time.time()
    if left is not None and left <= 0:
        return {"point": index, "regions": None, "complete": False, "stopped": "time_limit", "seconds": 0.0}
    res = count_regions(ctx["net"], Box(lo, hi, lo.size), method=ctx["method"], geometry=ctx["geometry"],
                        tol=ctx["tol"], time_limit=left, progress=False)
    return {"point": index, "regions": res.regions, "complete": res.complete, "stopped": res.stopped,
            "seconds": round(res.seconds, 6), "lps": res.lps, "tol": res.tol}


def count_around(net: Network, points: np.ndarray, radius: float, *, within: Domain | None = None, method: str = "tree",
                 geometry: str = "auto", tol: float | None = None, jobs: int = 1, dask: str | None = None,
                 time_limit: float | None = None, progress: bool | None = None) -> LocalResult:
    """Count the regions of ``net`` in the l-infinity ball of ``radius`` around each point.

    Guarantee: each point's ``regions`` is the exact count of
    :func:`lrmilp.counting.count_regions` over the box [x - radius, x + radius] (cut to ``within``) when
    its ``complete`` is true, and a lower bound otherwise.  SIGINT or SIGTERM stops the run with the
    points counted so far.

    Parameters
    ----------
    net : Network
        The network.
    points : array of shape (N, n0) or (n0,)
        The centres.
    radius : float
        Half-width of each box (> 0).
    within : Domain, optional
        A box (:func:`lrmilp.domains.Box`).
        Each neighbourhood is intersected with it; every point must lie in it.
    method, geometry, tol
        As for :func:`lrmilp.counting.count_regions`.
    jobs : int
        Points counted at once on this many processes (or Dask LocalCluster workers).
    dask : str, optional
        ``"local"`` or a scheduler address.
    time_limit : float, optional
        Seconds for the whole run; points not reached are reported uncounted.
    progress : bool or None
        A progress line on stderr (None: when stderr is a terminal).

    Returns
    -------
    LocalResult

    Raises
    ------
    InputError
        A bad option, a point of the wrong size or outside ``within``.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> r = count_around(random_mlp([2, 6], seed=0), np.zeros((3, 2)), 10.0)
    >>> r.counts[0] == r.counts[1] == r.counts[2] > 0
    True
    """
    t0 = time.perf_counter()
    radius = positive_finite("radius", radius)
    time_limit = optional_positive_finite("time_limit", time_limit)
    tol = optional_positive_finite("tol", tol)
    jobs = int_at_least("jobs", jobs, 1)
    dask = dask_address("dask", dask)
    X = np.asarray(points, dtype=float)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != net.input_dim or X.shape[0] == 0:
        raise InputError(f"points must have shape (N, {net.input_dim}) with N >= 1, got {np.shape(points)}",
                         param="points")
    if not np.isfinite(X).all():
        raise InputError("points must be finite", param="points")
    lo, hi = X - radius, X + radius
    if within is not None:
        if not isinstance(within, Domain) or within.kind != "box":
            raise InputError("within must be a box (lrmilp.domains.Box)", param="within")
        outside = np.flatnonzero(((X < within.lo) | (X > within.hi)).any(axis=1))
        if outside.size:
            raise InputError(f"point {int(outside[0])} lies outside the box 'within'", param="points")
        lo, hi = np.maximum(lo, within.lo), np.minimum(hi, within.hi)
    # the method and geometry are checked once, here, before any worker starts
    one_of("method", method, METHODS, what="count method")
    if method == "tree":
        geometry_class(geometry, Box(lo[0], hi[0], net.input_dim))
    deadline = None if time_limit is None else time.time() + time_limit
    ctx = {"net": net, "method": method, "geometry": geometry, "tol": tol}
    n = X.shape[0]
    done: list[dict | None] = [None] * n
    stopped = None
    bar = Progress("count --around", progress=progress)
    workers = Workers(jobs, dask=dask, context=ctx, inline=True)
    try:
        with stop_signals(lambda signum: KeyboardInterrupt()):
            # inline: each point runs as it is submitted, so submit one at a time (progress, stops)
            futures = ([workers.submit(_count_one, i, lo[i], hi[i], deadline) for i in range(n)]
                       if workers.kind != "inline" else None)
            for i in range(n):
                f = futures[i] if futures is not None else workers.submit(_count_one, i, lo[i], hi[i], deadline)
                done[i] = f.result()
                bar.show(f"point {i + 1:,}/{n:,}: {done[i]['regions']} regions")
                if done[i]["stopped"] == "interrupted":  # the count caught the signal itself
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        bar.close()
        workers.close()
    per_point = [d if d is not None else {"point": i, "regions": None, "complete": False, "stopped": stopped,
                                          "seconds": 0.0} for i, d in enumerate(done)]
    if stopped is None and any(p["stopped"] == "time_limit" for p in per_point):
        stopped = "time_limit"
    counts = [p["regions"] for p in per_point]
    got = np.array([c for c in counts if c is not None], dtype=float)
    summary = ({"mean": float(got.mean()), "median": float(np.median(got)), "min": int(got.min()),
                "max": int(got.max())} if got.size else {"mean": None, "median": None, "min": None, "max": None})
    box = None if within is None else [within.lo.tolist(), within.hi.tolist()]
    return LocalResult(radius, n, counts, per_point, time.perf_counter() - t0, stopped, box, method, "inf", summary)
