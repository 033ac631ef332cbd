"""Region counting on one API: the one-tree enumerator and the solver-based peers.

:func:`count_regions` is what the CLI's ``lrmilp count`` calls, and where a count's options are
checked.  ``method="tree"`` (default) is the search of :mod:`lrmilp.search` over a cell geometry of
:mod:`lrmilp.cells`, serial or on workers (:mod:`lrmilp.parallel`); ``"milp"``, ``"scip"`` and
``"gurobi"`` are cross-checks built on the big-M formulation of :mod:`lrmilp.formulations.bigm`
(:mod:`lrmilp.counting.solvers`).
"""

from __future__ import annotations

import time
from pathlib import Path

from ..bounds import METHODS as BOUND_METHODS
from ..bounds import Bounds, tighten
from ..cells import geometry_class
from ..constraints import ConstraintSet
from ..domains import Domain
from ..errors import InputError
from ..network import Network, balanced
from ..outputs import check_distinct, check_writable
from ..parallel import count_parallel
from ..regions import RegionCap, RegionWriter
from ..search import CountResult, TreeSearch, TreeStats, tree_result
from ..tolerance import Tolerance, resolve_tolerance
from ..validation import dask_address, int_at_least, one_of, optional_int_at_least, optional_positive_finite

METHODS = ("tree", "milp", "scip", "gurobi")

__all__ = ["METHODS", "CountResult", "count_regions", "count_tree", "tree_bounds"]


def count_regions(net: Network, domain: Domain, *, method: str = "tree", geometry: str = "auto",
                  tol: float | None = None, jobs: int = 1, time_limit: float | None = None,
                  max_regions: int | None = None, regions_out: str | Path | None = None, bound_method: str = "lp",
                  progress: bool | None = None, radius: float | None = None, dask: str | None = None,
                  checkpoint: str | Path | None = None, task_budget: float | None = None,
                  constraints: ConstraintSet | None = None) -> CountResult:
    """Count the full-dimensional linear regions of ``net`` over ``domain``.

    A pattern counts iff its inputs in the domain contain a ball of radius > ``tol``
    (:mod:`lrmilp.tolerance`); with ``constraints``, iff its inputs in the domain that satisfy them
    contain such a ball (:mod:`lrmilp.constraints`).  The result is exact when ``complete`` is true; a run stopped by
    ``time_limit``, ``max_regions``, SIGINT or SIGTERM returns ``complete=False`` and a count that is a
    valid lower bound.  Every option is checked before work starts.

    Parameters
    ----------
    net : Network
        The network.
    domain : Domain
        The input domain (:mod:`lrmilp.domains`).
    method : {"tree", "milp", "scip", "gurobi"}
        The one-tree enumerator, or a MILP solver's peer count.
    geometry : str
        The tree's cell geometry: ``"auto"`` (by dimension and boundedness), ``"polygon"``,
        ``"vertex"``, ``"lp"``, ``"batch"`` or ``"dual"`` (:mod:`lrmilp.cells`).
    tol : float, optional
        The radius a region's ball must exceed; default 1e-9 of the domain's scale.
    jobs : int
        Worker processes for the tree (or LocalCluster workers with ``dask="local"``).
    time_limit : float, optional
        Seconds for the whole count.
    max_regions : int, optional
        Stop after this many regions.
    regions_out : str or Path, optional
        Stream every region (pattern, interior point, margin) to this JSON-lines file; it holds
        exactly the ``regions`` reported, also when the run stopped early or resumed a checkpoint.
    bound_method : {"lp", "interval", "milp"}
        Pre-activation bounds of the ``lp`` geometry (the others decide hyperplanes exactly or per
        node and use interval bounds).
    progress : bool or None
        A progress line on stderr (None: when stderr is a terminal).
    radius : float, optional
        Solver methods over an unbounded domain count inside [-radius, radius]^d (default: automatic).
    dask : str, optional
        Run the tree's tasks on Dask: ``"local"`` or a scheduler address.
    checkpoint : str or Path, optional
        Journal finished tasks here; the same call resumes a stopped count (:mod:`lrmilp.parallel`).
    task_budget : float, optional
        Seconds a parallel task searches before handing out the rest of its subtree.
    constraints : ConstraintSet, optional
        The user's linear constraints on inputs, pre-activations or outputs (:mod:`lrmilp.constraints`;
        rebuilt and size-checked against ``net`` if built for another network object).  The tree
        decides each region it finds with the constrained Chebyshev LP (exact: every constrained region
        is an unconstrained one) and runs serially: ``jobs`` > 1, ``dask`` and ``checkpoint`` are
        refused.  The solver peers add the rows to their MILP.  ``max_regions`` and ``regions_out``
        then concern the constrained regions; the result adds ``constraints`` and, for the tree,
        ``regions_unconstrained``.

    Returns
    -------
    CountResult
        ``regions``, ``complete``, ``stopped``, ``lps``, ``tol``, ``thin_dropped``, ... (the same keys
        for a serial and a parallel tree count).

    Raises
    ------
    InputError
        A bad option, named as the library spells it (``geometry``, ``tol``, ...); a geometry that
        cannot handle the domain; a tol that float64 cannot certify.
    SolverUnavailable
        SCIP or Gurobi is missing or unlicensed.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> count_regions(random_mlp([2, 5], seed=0), Box(-1, 1, 2)).regions
    7
    >>> count_regions(random_mlp([2, 5], seed=0), Box(-1, 1, 2), geometry="foo")
    Traceback (most recent call last):
    ...
    lrmilp.errors.InputError: unknown geometry 'foo' (expected one of auto, polygon, vertex, lp, batch, dual)
    """
    one_of("method", method, METHODS, what="count method")
    if domain.input_dim != net.input_dim:
        raise InputError(f"domain has {domain.input_dim} inputs, network has {net.input_dim}")
    tol = optional_positive_finite("tol", tol)
    time_limit = optional_positive_finite("time_limit", time_limit)
    max_regions = optional_int_at_least("max_regions", max_regions, 1)
    jobs = int_at_least("jobs", jobs, 1)
    radius = optional_positive_finite("radius", radius)
    task_budget = optional_positive_finite("task_budget", task_budget)
    dask = dask_address("dask", dask)
    one_of("bound_method", bound_method, BOUND_METHODS, what="bound method")
    if regions_out is not None:
        check_writable(regions_out, "regions_out")
    if checkpoint is not None:
        check_writable(checkpoint, "checkpoint")
    check_distinct({"regions_out": regions_out, "checkpoint": checkpoint})
    if constraints is not None:
        if not isinstance(constraints, ConstraintSet):
            raise InputError("constraints must be a ConstraintSet (lrmilp.constraints)", param="constraints")
        if constraints.net is not net:
            constraints = ConstraintSet(constraints.constraints, net, source=constraints.source)
        for name, value in (("jobs", jobs > 1), ("dask", dask is not None), ("checkpoint", checkpoint is not None)):
            if value:
                raise InputError(f"a constrained count runs serially (each region is decided in this process); "
                                 f"drop {name}", param=name)
    if method == "tree":
        cls = geometry_class(geometry, domain, time_limit=time_limit)
        if cls.prefixes is False and checkpoint is not None:
            raise InputError(f"checkpoint needs a count split into tasks, and the {cls.name} geometry (2-D boxes) "
                             "runs serially; choose geometry 'lp' to checkpoint it", param="checkpoint")
        return count_tree(net, domain, geometry=cls.name, tol=tol, jobs=jobs, time_limit=time_limit,
                          max_regions=max_regions, regions_out=regions_out, bound_method=bound_method,
                          progress=progress, dask=dask, checkpoint=checkpoint, task_budget=task_budget,
                          constraints=constraints)
    for name, value in (("dask", dask), ("checkpoint", checkpoint)):
        if value is not None:
            raise InputError(f"{name} needs method 'tree'", param=(name, "method"))
    if geometry != "auto":
        raise InputError("geometry needs method 'tree'", param=("geometry", "method"))
    from .solvers import count_with_solver  # highspy's MILP front end and the solver back ends load here
    return count_with_solver(net, domain, method=method, tol=tol, time_limit=time_limit,
                             max_regions=max_regions, regions_out=regions_out, progress=progress, radius=radius,
                             constraints=constraints)


def tree_bounds(net: Network, domain: Domain, *, geometry: str = "auto", bound_method: str = "lp") -> Bounds:
    """The pre-activation bounds the tree search uses.

    ``bound_method`` for the ``lp`` geometry over a domain with rows (a box or a polytope), interval
    bounds otherwise: polygon and vertex cells decide every hyperplane exactly, batch and dual cells
    meet the bounds with each node's own box range, so tighter bounds would only cost time.

    Parameters
    ----------
    net : Network
        The (balanced) network.
    domain : Domain
        The domain.
    geometry : str
        The geometry name (``"auto"`` as in :func:`lrmilp.cells.choose_geometry`).
    bound_method : {"lp", "interval", "milp"}
        The method of :func:`lrmilp.bounds.tighten` for the ``lp`` geometry.

    Returns
    -------
    Bounds

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> tree_bounds(random_mlp([3, 4, 4], seed=0), Box(-1, 1, 3)).method
    'interval'
    """
    name = geometry_class(geometry, domain).name
    use_lp = name == "lp" and (domain.bounded or domain.A_ub.shape[0])
    return tighten(net, domain, method=bound_method if use_lp else "interval")


def count_tree(net: Network, domain: Domain, *, geometry: str = "auto", tol: "float | Tolerance | None" = None,
               jobs: int = 1, time_limit: float | None = None, max_regions: int | None = None,
               regions_out: str | Path | None = None, bound_method: str = "lp", progress: bool | None = False,
               dask: str | None = None, checkpoint: str | Path | None = None,
               task_budget: float | None = None, constraints: ConstraintSet | None = None) -> CountResult:
    """The one-tree count of :func:`count_regions` (options checked there): serial, or on workers when
    ``jobs`` > 1, ``dask`` or ``checkpoint`` asks for tasks and the geometry makes them.  With
    ``constraints`` (checked against ``net`` as given) the serial count of
    :func:`lrmilp.counting.constrained.count_tree_constrained`.

    Parameters
    ----------
    net, domain
        The network and its domain.
    geometry : str
        A geometry name (:mod:`lrmilp.cells`).
    tol : float or Tolerance, optional
        The tolerance (a resolved one, or an absolute tol, or None for the default).
    jobs, time_limit, max_regions, regions_out, bound_method, progress, dask, checkpoint, task_budget, constraints
        As for :func:`count_regions`.

    Returns
    -------
    CountResult

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> count_tree(random_mlp([3, 4, 4], seed=0), Box(-1, 1, 3), geometry="lp").regions
    21
    """
    t0 = time.perf_counter()
    net = balanced(net)  # exact power-of-two rescaling: the same regions, no overflow in norms
    tolerance = tol if isinstance(tol, Tolerance) else resolve_tolerance(net, domain, tol)
    if constraints is not None:
        from .constrained import count_tree_constrained
        cls = geometry_class(geometry, domain, time_limit=time_limit)
        return count_tree_constrained(net, domain, constraints, tolerance=tolerance,
                                      bounds=tree_bounds(net, domain, geometry=cls.name, bound_method=bound_method),
                                      geometry=cls.name, time_limit=time_limit, max_regions=max_regions,
                                      regions_out=regions_out, progress=progress, t0=t0)
    if not net.relu_layers:
        return tree_result(TreeStats(regions=1), stopped=None, seconds=time.perf_counter() - t0, tolerance=tolerance,
                           geometry="none", bounds=tree_bounds(net, domain), domain=domain)
    cls = geometry_class(geometry, domain, time_limit=time_limit)
    bounds = tree_bounds(net, domain, geometry=cls.name, bound_method=bound_method)
    if (jobs > 1 or dask is not None or checkpoint is not None) and cls.prefixes:
        return count_parallel(net, domain, tol=tolerance, jobs=jobs, bounds=bounds, geometry=cls.name,
                              time_limit=time_limit, max_regions=max_regions, regions_out=regions_out,
                              progress=progress, t0=t0, dask=dask, checkpoint=checkpoint, budget=task_budget)
    writer = RegionWriter(regions_out, neurons=net.neurons, domain=domain) if regions_out else None
    cap = RegionCap(max_regions, writer)
    # The search looks for one region more than max_regions: only a count that has more is incomplete.
    search = TreeSearch(net, domain, tol=tolerance, bounds=bounds, geometry=cls.name,
                        on_region=cap if max_regions is not None else (writer.write if writer else None),
                        time_limit=None if time_limit is None else max(time_limit - (time.perf_counter() - t0), 1e-3),
                        max_regions=None if max_regions is None else max_regions + 1, progress=progress)
    try:
        stats = search.run()
    except BaseException:
        if writer:
            writer.discard()  # a failed count leaves no regions file
        raise
    if max_regions is not None and stats.regions > max_regions:
        stats.regions, stats.min_margin = max_regions, cap.min_margin  # the extra region is not reported
    if writer:
        writer.close()
        if writer.count != stats.regions:
            # A stop (signal or time limit) can land after the search counted a region and before it
            # handed it to the writer; report what the file holds, which is still a lower bound.
            if search.stopped is None or writer.count > stats.regions:
                raise RuntimeError(f"internal error: {writer.count} regions written, {stats.regions} counted")
            stats.regions = writer.count
    return tree_result(stats, stopped=search.stopped, seconds=time.perf_counter() - t0, tolerance=tolerance,
                       geometry=search.geometry, bounds=bounds, domain=domain)
