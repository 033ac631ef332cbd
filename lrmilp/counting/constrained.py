"""The tree's count under the user's linear constraints (:mod:`lrmilp.constraints`).

A pattern counts iff its inputs within the domain that satisfy the constraints C hold a Euclidean ball
of radius > tol.  A ball inside region ∩ C lies inside the region, so every such pattern is a region
of the unconstrained count: the one-tree search enumerates the unconstrained regions, and each region
it emits is decided by one Chebyshev LP on the region's rows plus C's rows in u
(:func:`lrmilp.counting.model.pattern_ball`).  The count is exact when the search completes; it runs
serially (the filter sits in the search's ``on_region`` hook, in this process).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..bounds import Bounds
from ..constraints import ConstraintSet
from ..domains import Domain
from ..network import Network
from ..regions import RegionWriter
from ..search import CountResult, TreeSearch, TreeStats, tree_result
from ..search.core import Stop
from ..tolerance import Tolerance
from .model import pattern_ball


class ConstrainedFilter:
    """The ``on_region`` hook that keeps the regions whose part satisfying the constraints holds a ball
    of radius > tol, and the statistics a result reports.

    Parameters
    ----------
    net : Network
        The (balanced) network the search runs on: its regions' rows.
    domain : Domain
        The domain.
    constraints : ConstraintSet
        The constraints, checked against the network as given (their rows come from it).
    tolerance : Tolerance
        The count's tolerance.
    on_region : callable, optional
        Sees each kept region as ``on_region(pattern, point_u, radius)``; the point is the centre of
        the constrained ball, so it satisfies the constraints.
    max_regions : int, optional
        Stop the search (raise the search's Stop) once this many regions are kept.
    """

    def __init__(self, net: Network, domain: Domain, constraints: ConstraintSet, tolerance: Tolerance, *,
                 on_region=None, max_regions: int | None = None) -> None:
        self.net, self.domain, self.tolerance = net, domain, tolerance
        self.bound = constraints.bind(domain)
        self.on_region, self.max_regions = on_region, max_regions
        self.kept = self.seen = self.thin = 0
        self.min_margin = math.inf
        self.search: TreeSearch | None = None  # set once the search exists, so a stop can be recorded on it

    def __call__(self, pattern: np.ndarray, point_u: np.ndarray, margin: float) -> None:
        self.seen += 1
        radius, centre = pattern_ball(self.net, self.domain, pattern, cap=self.tolerance.cap, constraints=self.bound)
        if radius <= self.tolerance.tol:
            if radius > self.tolerance.noise:
                self.thin += 1  # region ∩ C exists but is thinner than tol
            return
        self.kept += 1
        self.min_margin = min(self.min_margin, radius)
        if self.on_region is not None:
            self.on_region(pattern, centre, radius)
        if self.max_regions is not None and self.kept >= self.max_regions:
            if self.search is not None:
                self.search.stopped = "max_regions"
            raise Stop


def count_tree_constrained(net: Network, domain: Domain, constraints: ConstraintSet, *, tolerance: Tolerance,
                           bounds: Bounds, geometry: str, time_limit: float | None = None,
                           max_regions: int | None = None, regions_out: str | Path | None = None,
                           progress: bool | None = False, t0: float | None = None) -> CountResult:
    """The serial tree count under ``constraints`` (module docstring); options as for
    :func:`lrmilp.counting.count_regions`, which checks them and calls this.

    Parameters
    ----------
    net : Network
        The balanced network.
    domain : Domain
        The domain.
    constraints : ConstraintSet
        The constraints, checked against the network as given.
    tolerance : Tolerance
        The count's tolerance.
    bounds : Bounds
        The search's pre-activation bounds.
    geometry : str
        The cell geometry (checked).
    time_limit, max_regions, regions_out, progress
        As for :func:`lrmilp.counting.count_regions`; ``max_regions`` counts constrained regions.
    t0 : float, optional
        ``time.perf_counter()`` when the count started.

    Returns
    -------
    CountResult
        ``regions`` under the constraints (exact when ``complete``, else a lower bound); ``lps`` the
        search's LPs plus one per region decided; ``extra`` adds ``constraints`` (rows, targets, source),
        ``constraint_lps`` and ``regions_unconstrained`` (the search's count: exact when complete, the
        regions decided so far otherwise); ``thin_dropped`` and ``min_margin`` are those of the
        constrained balls, plus the search's own thin cells.
    """
    t0 = time.perf_counter() if t0 is None else t0
    writer = RegionWriter(regions_out, neurons=net.neurons, domain=domain) if regions_out else None
    keep = ConstrainedFilter(net, domain, constraints, tolerance, on_region=writer.write if writer else None,
                             max_regions=max_regions)
    stopped: str | None = None
    try:
        if net.relu_layers:
            search = TreeSearch(net, domain, tol=tolerance, bounds=bounds, geometry=geometry, on_region=keep,
                                time_limit=None if time_limit is None else max(time_limit - (time.perf_counter() - t0),
                                                                                1e-3),
                                progress=progress)
            keep.search = search
            stats = search.run()
            stopped = search.stopped
        else:  # no ReLU: one region, the whole domain
            stats = TreeStats(regions=1)
            try:
                keep(np.zeros(0, dtype=bool), np.zeros(domain.dim), math.inf)
            except Stop:
                pass
    except BaseException:
        if writer:
            writer.discard()  # a failed count leaves no regions file
        raise
    if writer:
        writer.close()
        if writer.count != keep.kept:
            # A stop can land between keeping a region and writing it: report what the file holds.
            if stopped is None or writer.count > keep.kept:
                raise RuntimeError(f"internal error: {writer.count} regions written, {keep.kept} kept")
            keep.kept = writer.count
    unconstrained = stats.regions
    stats.regions, stats.lps = keep.kept, stats.lps + keep.seen
    stats.thin_dropped += keep.thin
    stats.min_margin = keep.min_margin
    res = tree_result(stats, stopped=stopped, seconds=time.perf_counter() - t0, tolerance=tolerance,
                      geometry=geometry if net.relu_layers else "none", bounds=bounds, domain=domain)
    res.extra.update({"constraints": constraints.describe(), "constraint_lps": keep.seen,
                      "regions_unconstrained": unconstrained})
    return res
