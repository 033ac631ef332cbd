"""The result of a count: one schema for every method, serial or parallel."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..bounds import Bounds
from ..cells import TreeStats
from ..domains import Domain
from ..tolerance import Tolerance


@dataclass
class CountResult:
    """The outcome of a count; ``regions`` is exact when ``complete``, else a valid lower bound.

    :meth:`to_dict` gives the JSON object of ``lrmilp count --json`` (CONTRACT.md section 3): the
    fields below, ``lps_per_region`` when a region was counted, and the method's ``extra`` keys.
    """

    regions: int
    complete: bool
    method: str
    seconds: float
    lps: int
    tol: float
    tol_meaning: str
    stopped: str | None = None
    nodes: int = 0
    extra: dict = field(default_factory=dict)
    thin_dropped: int = 0
    """Candidate cells met that exist (radius above rounding noise) but hold no ball of radius > tol:
    0 means the count does not depend on tol; > 0 means a smaller tol would count more."""
    min_margin: float | None = None
    """The smallest certified ball radius of a counted region (None if none was counted)."""

    def to_dict(self) -> dict:
        """The result as one JSON object (numbers as Python ints and floats)."""
        out = {"regions": int(self.regions), "complete": bool(self.complete), "method": self.method,
               "seconds": round(self.seconds, 6), "lps": int(self.lps), "tol": self.tol,
               "tol_meaning": self.tol_meaning, "nodes": int(self.nodes), "stopped": self.stopped,
               "thin_dropped": int(self.thin_dropped), "min_margin": self.min_margin}
        if self.regions:
            out["lps_per_region"] = round(self.lps / self.regions, 4)
        out.update(self.extra)
        return out


def tree_result(stats: TreeStats, *, stopped: str | None, seconds: float, tolerance: Tolerance, geometry: str,
                bounds: Bounds, domain: Domain, jobs: int = 1, engine: str = "serial", tasks: int = 1,
                resumed_tasks: int = 0, budget: float | None = None) -> CountResult:
    """The CountResult of a tree search, serial or parallel (the same keys either way).

    Parameters
    ----------
    stats : TreeStats
        The search's counters (summed over its tasks).
    stopped : str or None
        Why the search stopped early (None: it finished).
    seconds : float
        Wall time of the whole count.
    tolerance : Tolerance
        The count's tolerance.
    geometry : str
        The cell geometry used.
    bounds : Bounds
        The pre-activation bounds the search used.
    domain : Domain
        The domain counted over.
    jobs, engine, tasks, resumed_tasks, budget
        How the search ran: workers, ``serial``/``local``/``dask``, tasks run, tasks resumed from a
        checkpoint, the seconds a task searched before splitting (None when serial).

    Returns
    -------
    CountResult

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.bounds import interval_bounds
    >>> from lrmilp.domains import Box
    >>> from lrmilp.tolerance import resolve_tolerance
    >>> net, dom = random_mlp([2, 3], seed=0), Box(-1, 1, 2)
    >>> r = tree_result(TreeStats(regions=7), stopped=None, seconds=0.1, tolerance=resolve_tolerance(net, dom),
    ...                 geometry="polygon", bounds=interval_bounds(net, dom), domain=dom)
    >>> r.regions, r.complete, r.extra["engine"]
    (7, True, 'serial')
    """
    tinfo = tolerance.describe()
    return CountResult(stats.regions, stopped is None, "tree", seconds, stats.lps, tolerance.tol, tinfo["tol_meaning"],
                       stopped, stats.nodes,
                       extra={"geometry": geometry, "tol_scale": tinfo["tol_scale"], "tol_source": tinfo["tol_source"],
                              "lps_empty": stats.lps_empty, "ball_splits": stats.ball_splits,
                              "bound_skips": stats.bound_skips, "bank_hits": stats.bank_hits,
                              "lp_fallbacks": stats.lp_fallbacks, "lp_retries": stats.lp_retries,
                              "bound_method": bounds.method, "bound_lps": bounds.lps, "domain": domain.describe(),
                              "jobs": jobs, "engine": engine, "tasks": tasks, "resumed_tasks": resumed_tasks,
                              "budget": budget},
                       thin_dropped=stats.thin_dropped,
                       min_margin=None if math.isinf(stats.min_margin) else float(stats.min_margin))
