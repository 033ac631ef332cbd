"""Region counting on one API: the one-tree enumerator and the solver-based peers.

:func:`count_regions` is what the CLI's ``lrmilp count`` calls.  ``method="tree"`` (default) is
:mod:`lrmilp.search`; ``"milp"``, ``"scip"`` and ``"gurobi"`` are cross-checks built on the
big-M formulation of :mod:`lrmilp.formulations.bigm`.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..bounds import Bounds, tighten
from ..domains import Domain
from ..cells import choose_geometry
from ..search import CountResult, TreeSearch, TreeStats, tree_result
from ..errors import InputError
from ..network import Network, balanced
from ..outputs import check_distinct, check_writable
from ..regions import RegionWriter
from ..tolerance import Tolerance, resolve_tolerance
from ..validation import dask_address, int_at_least, optional_int_at_least, optional_positive_finite

METHODS = ("tree", "milp", "scip", "gurobi")


def count_regions(net: Network, domain: Domain, *, method: str = "tree", tol: float | None = None,
                  jobs: int = 1, time_limit: float | None = None, max_regions: int | None = None,
                  regions_out: str | Path | None = None, bound_method: str = "lp", progress: bool = False,
                  radius: float | None = None, dask: str | None = None,
                  checkpoint: str | Path | None = None, task_budget: float | None = None) -> CountResult:
    """Count the full-dimensional linear regions of ``net`` over ``domain``.

    The result is exact when ``complete`` is true; a run stopped by ``time_limit``, ``max_regions``
    or Ctrl-C returns ``complete=False`` and a count that is a valid lower bound.  A pattern counts iff
    its inputs in the domain contain a ball of radius > ``tol`` (:mod:`lrmilp.tolerance`; default
    1e-9 of the domain's scale); the result reports ``tol``, its meaning and ``thin_dropped``.
    ``regions_out`` streams every region (pattern, interior point, margin) to a JSON-lines file.
    The tree method runs on ``jobs`` local processes or a Dask cluster (``dask`` = "local" or a
    scheduler address) and journals finished subtrees to ``checkpoint`` (see :mod:`lrmilp.parallel`).

    Every option is checked before work starts (InputError naming the parameter).  The regions file
    holds exactly the ``regions`` reported, also when the run stopped early or resumed a checkpoint.
    """
    if method not in METHODS:
        raise InputError(f"unknown count method '{method}' (expected one of {', '.join(METHODS)})", param="method")
    if domain.input_dim != net.input_dim:
        raise InputError(f"domain has {domain.input_dim} inputs, network has {net.input_dim}")
    tol = optional_positive_finite("tol", tol)
    time_limit = optional_positive_finite("time_limit", time_limit)
    max_regions = optional_int_at_least("max_regions", max_regions, 1)
    jobs = int_at_least("jobs", jobs, 1)
    radius = optional_positive_finite("radius", radius)
    task_budget = optional_positive_finite("task_budget", task_budget)
    dask = dask_address("dask", dask)
    if regions_out is not None:
        check_writable(regions_out, "regions_out")
    if checkpoint is not None:
        check_writable(checkpoint, "checkpoint")
    check_distinct({"regions_out": regions_out, "checkpoint": checkpoint})
    if method == "tree":
        return count_tree(net, domain, tol=tol, jobs=jobs, time_limit=time_limit,
                          max_regions=max_regions, regions_out=regions_out, bound_method=bound_method,
                          progress=progress, dask=dask, checkpoint=checkpoint, task_budget=task_budget)
    if dask is not None or checkpoint is not None:
        raise InputError("--dask and --checkpoint work with --method tree only")
    from .solvers import count_with_solver
    return count_with_solver(net, domain, method=method, tol=tol, time_limit=time_limit,
                             max_regions=max_regions, regions_out=regions_out, progress=progress, radius=radius)


def tree_bounds(net: Network, domain: Domain, *, bound_method: str = "lp") -> Bounds:
    """The bounds the tree search uses: ``bound_method`` in LP geometry, interval otherwise (polygon
    and vertex geometry decide every hyperplane exactly, so tighter bounds would only cost time)."""
    use_lp = choose_geometry(domain) == "lp" and (domain.bounded or domain.A_ub.shape[0])
    return tighten(net, domain, method=bound_method if use_lp else "interval")


def count_tree(net: Network, domain: Domain, *, tol: "float | Tolerance | None" = None, jobs: int = 1,
               time_limit: float | None = None, max_regions: int | None = None,
               regions_out: str | Path | None = None, bound_method: str = "lp",
               progress: bool = False, dask: str | None = None, checkpoint: str | Path | None = None,
               task_budget: float | None = None) -> CountResult:
    """The one-tree enumerator (see :mod:`lrmilp.search`); the regions file, when asked for, holds
    exactly the ``regions`` reported."""
    t0 = time.perf_counter()
    net = balanced(net)  # exact power-of-two rescaling: the same regions, no overflow in norms
    tolerance = (tol if isinstance(tol, Tolerance)
                 else resolve_tolerance(net, domain, optional_positive_finite("tol", tol)))
    if not net.relu_layers:
        return tree_result(TreeStats(regions=1), stopped=None, seconds=time.perf_counter() - t0, tolerance=tolerance,
                           geometry="none", bounds=tree_bounds(net, domain), domain=domain)
    bounds = tree_bounds(net, domain, bound_method=bound_method)
    if jobs > 1 or dask is not None or checkpoint is not None:
        from ..parallel import count_parallel
        return count_parallel(net, domain, tol=tolerance, jobs=jobs, bounds=bounds, time_limit=time_limit,
                              max_regions=max_regions, regions_out=regions_out, progress=progress, t0=t0,
                              dask=dask, checkpoint=checkpoint,
                              budget=task_budget)
    writer = RegionWriter(regions_out, neurons=net.neurons, domain=domain) if regions_out else None
    enum = TreeSearch(net, domain, tol=tolerance, bounds=bounds, on_region=writer.write if writer else None,
                          time_limit=None if time_limit is None else max(time_limit - (time.perf_counter() - t0), 1e-3),
                          max_regions=max_regions, progress=progress)
    try:
        stats = enum.run()
    except BaseException:
        if writer:
            writer.discard()  # a failed count leaves no regions file
        raise
    if writer:
        writer.close()
        if writer.count != stats.regions:
            # A stop (signal or time limit) can land after the search counted a region and before it
            # handed it to the writer; report what the file holds, which is still a lower bound.
            if enum.stopped is None or writer.count > stats.regions:
                raise RuntimeError(f"internal error: {writer.count} regions written, {stats.regions} counted")
            stats.regions = writer.count
    return tree_result(stats, stopped=enum.stopped, seconds=time.perf_counter() - t0, tolerance=tolerance,
                       geometry=enum.geometry, bounds=bounds, domain=domain)
