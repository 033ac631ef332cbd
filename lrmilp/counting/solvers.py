"""Solver-based region counting on the two-sided big-M model: ``milp``, ``scip`` and ``gurobi``.

All three search the patterns z of :func:`lrmilp.counting.model.solver_model` with margin f >=
``search_tol`` and decide each by the tree's counting rule (:class:`lrmilp.counting.model.PatternCheck`).

* ``milp`` — Serra, Tjandraatmadja & Ramalingam (2018): solve the MILP with HiGHS, record the
  pattern, cut it off with a no-good cut on the unstable z, repeat until infeasible.  Each MILP
  only has to find *some* pattern with f >= search_tol.  One MILP per pattern plus one.
* ``scip`` — SCIP's solution counter (``cons_countsols``) on the model with f >= search_tol: SCIP
  enumerates the projection of the feasible set onto the integer variables z, each pattern once; an
  observer records each, and the rule decides it.
* ``gurobi`` — Gurobi's solution pool (PoolSearchMode 2) on the model with f >= search_tol; distinct z.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import highspy
import numpy as np

from ..constraints import ConstraintSet
from ..domains import Domain
from ..errors import SolverUnavailable
from ..formulations.backends import to_gurobi, to_scip
from ..formulations.highs import to_highspy
from ..network import Network, balanced
from ..progress import Progress
from ..regions import RegionCap, RegionWriter
from ..search import CountResult
from ..tolerance import resolve_tolerance
from ..validation import positive_finite
from .model import (SOLVER_FEASTOL, PatternCheck, SolverSetup, add_constraint_rows, default_search_tol,
                    solver_model)

FORMULATION = "bigm-two-sided"
_INF = highspy.kHighsInf


@dataclass
class Outcome:
    """What a counter found: regions, why it stopped, solver calls (MILPs or LPs) and nodes."""

    regions: int
    stopped: str | None
    solves: int
    nodes: int = 0


# --- the entry point -----------------------------------------------------------------------------

def count_with_solver(net: Network, domain: Domain, *, method: str, tol: float | None = None,
                      time_limit: float | None = None, max_regions: int | None = None,
                      regions_out: str | Path | None = None, progress: bool | None = None,
                      radius: float | None = None, search_tol: float | None = None,
                      constraints: ConstraintSet | None = None) -> CountResult:
    """Count regions with a MILP solver (``method`` "milp", "scip" or "gurobi"; see the module); the
    options are those of :func:`lrmilp.counting.count_regions`, which checks them and calls this.

    Exact (``complete=True``) unless stopped by ``time_limit``, ``max_regions`` or Ctrl-C, when
    ``regions`` is the number of patterns found so far, a valid lower bound.  A pattern found counts
    by the tree's rule with ``tol`` (:mod:`lrmilp.tolerance`; default relative).  On an unbounded
    domain the box radius is ``radius`` or :func:`~lrmilp.counting.model.auto_radius`
    (``extra["radius"]``); the count is then complete only for one ReLU layer.  ``search_tol`` (default
    :func:`~lrmilp.counting.model.default_search_tol`) is the margin the MILP searches with.

    With ``constraints`` (checked against ``net``, :mod:`lrmilp.constraints`) each becomes a row of
    the model held with the same margin search_tol (:func:`~lrmilp.counting.model.add_constraint_rows`),
    and each pattern found is decided by the Chebyshev LP of the region's rows plus the constraints'
    (:class:`~lrmilp.counting.model.PatternCheck`): the count of patterns whose inputs in the domain
    satisfying the constraints hold a ball of radius > tol.  (A constraint exactly tight on the whole
    of a region -- a tie constant there -- cannot be met with a margin: the peers miss such a region,
    the tree counts it.)

    Raises
    ------
    SolverUnavailable
        SCIP or Gurobi cannot be used.
    """
    t0 = time.perf_counter()
    net = balanced(net)  # exact power-of-two rescaling: the same regions, no overflow in the model
    tolerance = resolve_tolerance(net, domain, tol)
    search_tol = default_search_tol(tolerance) if search_tol is None else positive_finite("search_tol", search_tol)
    tinfo = tolerance.describe()
    extra: dict = {"formulation": FORMULATION, "domain": domain.describe(), "search_tol": search_tol,
                   "tol_scale": tinfo["tol_scale"], "tol_source": tinfo["tol_source"]}
    if constraints is not None:
        extra["constraints"] = constraints.describe()
    check = cap = None

    def result(regions: int, stopped: str | None, solves: int, nodes: int = 0) -> CountResult:
        complete = stopped is None and "incomplete" not in extra
        return CountResult(regions, complete, method, time.perf_counter() - t0, solves, tolerance.tol,
                           tinfo["tol_meaning"], stopped, nodes, extra=extra,
                           thin_dropped=check.thin if check else 0,
                           min_margin=_finite_or_none(cap.min_margin if cap else check.min_margin if check else np.inf))

    bound = None if constraints is None else constraints.bind(domain)
    if not net.relu_layers:
        extra["bound_method"] = None
        if bound is None:
            return result(1, None, 0)
        # One region, the whole domain: the constrained Chebyshev LP decides it.
        check = PatternCheck(net, domain, tolerance, constraints=bound)
        return result(int(check.confirm(np.zeros(0, dtype=bool))), None, 1)
    model, info = solver_model(net, domain, search_tol=search_tol, radius=radius)
    extra.update(info)
    if constraints is not None:
        model, extra["constraint_rows"] = add_constraint_rows(model, net, constraints)
    z = model.groups["z"]
    unstable = np.flatnonzero(model.lb[z] < model.ub[z])
    writer = RegionWriter(regions_out, neurons=net.neurons, domain=domain) if regions_out else None
    # Each method looks for one region more than max_regions (only then is the count incomplete).
    cap = RegionCap(max_regions, writer) if max_regions is not None else None
    check = PatternCheck(net, domain, tolerance, cap or (writer.write if writer else None), constraints=bound)
    setup = SolverSetup(model, z, unstable, int(model.groups["f"][0]), model.groups["u"], search_tol, check,
                        None if time_limit is None else t0 + time_limit, max_regions, progress, extra)
    try:
        outcome = COUNTERS[method](setup)
    finally:
        if writer:
            writer.close()
    extra.update(check.report())
    return result(outcome.regions, outcome.stopped, outcome.solves, outcome.nodes)


def _finite_or_none(margin: float) -> float | None:
    return float(margin) if np.isfinite(margin) else None


# --- milp: HiGHS with no-good cuts ---------------------------------------------------------------

def count_milp(s: SolverSetup) -> Outcome:
    """Serra et al.'s loop: find a pattern with f >= search_tol, decide it by the rule, cut it off, repeat."""
    h = to_highspy(s.model)
    h.changeColBounds(s.f, s.search_tol, float(s.model.ub[s.f]))
    # The first solution with f >= search_tol is enough: the rule decides the pattern itself.
    h.setOptionValue("mip_max_improving_sols", 1)
    # Tolerances far below search_tol: with HiGHS's defaults (1e-6) a neuron pinned at g = 0 could fake a
    # margin of search_tol, and the spurious patterns pile up cuts until HiGHS fails on deep nets.
    feastol = SOLVER_FEASTOL
    h.setOptionValue("mip_feasibility_tolerance", feastol)
    h.setOptionValue("primal_feasibility_tolerance", feastol)
    lp = s.check
    ucols = s.z[s.unstable].astype(np.int32)
    regions = solves = 0
    stopped: str | None = None
    bar = Progress("count (milp)", progress=s.progress)
    try:
        while True:
            rem = s.remaining()
            if rem is not None:
                if rem <= 0:
                    stopped = "time_limit"
                    break
                h.setOptionValue("time_limit", float(rem))
            h.run()
            solves += 1
            status = h.getModelStatus()
            if status == highspy.HighsModelStatus.kInfeasible:
                break
            has_sol = h.getInfo().primal_solution_status == 2  # kSolutionStatusFeasible
            if status == highspy.HighsModelStatus.kTimeLimit and not has_sol:
                stopped = "time_limit"
                break
            if not has_sol:
                raise RuntimeError(f"HiGHS stopped with status '{h.modelStatusToString(status)}' and no solution")
            x = np.asarray(h.getSolution().col_value)
            pattern = x[s.z] > 0.5
            regions += lp.confirm(pattern)
            if ucols.size == 0:
                break  # one pattern only, nothing to cut
            # No-good cut: sum_{z_i=1} (1 - z_i) + sum_{z_i=0} z_i >= 1 over the unstable neurons.
            on = pattern[s.unstable]
            h.addRow(1.0 - float(on.sum()), _INF, ucols.size, ucols, np.where(on, -1.0, 1.0))
            if s.max_regions is not None and regions > s.max_regions:
                regions, stopped = s.max_regions, "max_regions"  # one more exists: the count is incomplete
                break
            if status == highspy.HighsModelStatus.kTimeLimit:
                stopped = "time_limit"
                break
            if bar.due():
                bar.show(f"regions {regions:,}  MILPs {solves:,}")
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        bar.close()
    return Outcome(regions, stopped, solves)


# --- scip: cons_countsols ------------------------------------------------------------------------

def _scip_observer(s: SolverSetup, xs: list, seen: dict):
    """A constraint handler that records every integral solution SCIP's counter is about to count.

    It enforces just before ``countsols`` (priority -9999999) and always answers FEASIBLE, so it
    changes nothing; SCIP hands it only solutions that every other constraint accepted.
    """
    from pyscipopt import SCIP_RESULT, Conshdlr

    zvars = [xs[int(j)] for j in s.z]

    class Observer(Conshdlr):
        def _record(self) -> None:
            vals = np.array([self.model.getSolVal(None, v) for v in zvars])
            key = (vals > 0.5).tobytes()
            seen.setdefault(key, vals > 0.5)

        def consenfolp(self, constraints, nusefulconss, solinfeasible):
            if not solinfeasible:
                self._record()
            return {"result": SCIP_RESULT.FEASIBLE}

        def consenfops(self, constraints, nusefulconss, solinfeasible, objinfeasible):
            if not solinfeasible:
                self._record()
            return {"result": SCIP_RESULT.FEASIBLE}

        def conscheck(self, constraints, solution, checkintegrality, checklprows, printreason, completely):
            return {"result": SCIP_RESULT.FEASIBLE}

        def conslock(self, constraint, locktype, nlockspos, nlocksneg):
            pass

    return Observer()


def _count_scip(s: SolverSetup) -> Outcome:
    """SCIP's counter on the model with f >= search_tol: every distinct feasible z (the projection) is
    recorded by an observer and decided by the rule."""
    try:
        import pyscipopt  # noqa: F401
    except ImportError:
        raise SolverUnavailable("method 'scip' needs PySCIPOpt, which is not installed (pip install pyscipopt)") from None
    if s.unstable.size == 0:
        # Every neuron is stable: one pattern, fixed by the bounds.  (SCIP's counter with an observer
        # crashes on a model whose binaries are all fixed, so the rule decides the pattern directly.)
        pattern = s.model.lb[s.z] > 0.5
        s.extra.update({"scip_status": "not run: every neuron is stable", "scip_counted": None, "patterns_seen": 1})
        return Outcome(int(s.check.confirm(pattern)), None, 0)
    m, xs = to_scip(s.feasibility_model())
    # The counting settings: restarts off (they break counting), heuristics off, no symmetry
    # handling; dual reductions are switched off by the counter's variable locks.
    m.setParamsCountsols()
    m.setParam("numerics/feastol", SOLVER_FEASTOL)
    m.setParam("misc/catchctrlc", True)
    seen: dict = {}
    # Every pattern must reach the observer one by one, so no sparse (2^k at once) counting.
    m.setParam("constraints/countsols/sparsetest", False)
    m.includeConshdlr(_scip_observer(s, xs, seen), "lrmilp_observer", "records counted patterns",
                      enfopriority=-9_999_998, chckpriority=-9_999_998, needscons=False)
    if s.max_regions is not None:  # one more than max_regions: a count that finishes below it is complete
        m.setParam("constraints/countsols/sollimit", int(s.max_regions) + 1)
    rem = s.remaining()
    if rem is not None:
        if rem <= 0:
            return Outcome(0, "time_limit", 0)
        m.setParam("limits/time", float(rem))
    m.count()
    counted = int(m.getNCountedSols())
    status = m.getStatus()
    regions = 0
    for pattern in seen.values():
        if s.max_regions is not None and regions > s.max_regions:
            break
        regions += s.check.confirm(pattern)
    over = s.max_regions is not None and regions > s.max_regions  # one more region than may be reported
    if over:
        regions, stopped = s.max_regions, "max_regions"
    elif status == "infeasible":  # the counter rejects every solution, so a finished count ends infeasible
        stopped = None
    elif status == "timelimit":
        stopped = "time_limit"
    elif status == "userinterrupt":
        stopped = "max_regions" if s.max_regions is not None and counted > s.max_regions else "interrupted"
    else:
        stopped = status
    s.extra.update({"scip_status": status, "scip_counted": counted, "patterns_seen": len(seen),
                    "scip_version": m.version() if hasattr(m, "version") else None})
    return Outcome(regions, stopped, int(m.getNLPs()), int(m.getNTotalNodes()))


# --- gurobi: solution pool -----------------------------------------------------------------------

_POOL_MAX = 2_000_000_000  # Gurobi's upper limit on PoolSolutions


def _count_gurobi(s: SolverSetup) -> Outcome:
    """Gurobi's solution pool (PoolSearchMode 2) on the model with f >= tol; distinct z patterns."""
    try:
        import gurobipy as gp
        from gurobipy import GRB
    except ImportError:
        raise SolverUnavailable("method 'gurobi' needs gurobipy, which is not installed (pip install gurobipy)") from None
    try:
        env = gp.Env(empty=True)
        env.setParam("OutputFlag", 0)
        env.start()
    except gp.GurobiError as e:
        raise SolverUnavailable(f"Gurobi cannot start: {e}") from None
    fm = s.feasibility_model()
    try:
        m, x = to_gurobi(fm, env=env)
        m.Params.PoolSearchMode = 2
        m.Params.PoolSolutions = min(_POOL_MAX, s.max_regions + 1 if s.max_regions is not None else _POOL_MAX)
        m.Params.FeasibilityTol = SOLVER_FEASTOL
        m.Params.IntFeasTol = SOLVER_FEASTOL
        m.Params.Threads = 1
        rem = s.remaining()
        if rem is not None:
            if rem <= 0:
                return Outcome(0, "time_limit", 0)
            m.Params.TimeLimit = float(rem)
        m.optimize()
    except gp.GurobiError as e:
        if getattr(e, "errno", None) == 10010 or "size-limited" in str(e):
            raise SolverUnavailable(f"Gurobi licence too small for this model ({fm.num_vars} variables, "
                                    f"{fm.A.shape[0]} rows): {e}") from None
        raise SolverUnavailable(f"Gurobi failed: {e}") from None
    status = m.Status
    patterns: dict[bytes, np.ndarray] = {}
    zcols = s.z
    for k in range(m.SolCount):
        m.Params.SolutionNumber = k
        pattern = np.asarray(x.Xn)[zcols] > 0.5
        patterns.setdefault(pattern.tobytes(), pattern)
    # Count what the rule confirms, exactly as the milp method does.
    regions = sum(s.check.confirm(pattern) for pattern in patterns.values())
    over = s.max_regions is not None and regions > s.max_regions  # one more region than may be reported
    if over:
        regions, stopped = s.max_regions, "max_regions"
    elif status in (GRB.OPTIMAL, GRB.INFEASIBLE):
        full = m.SolCount >= m.Params.PoolSolutions
        stopped = "max_regions" if full and s.max_regions is not None else None
    elif status == GRB.TIME_LIMIT:
        stopped = "time_limit"
    elif status == GRB.INTERRUPTED:
        stopped = "interrupted"
    else:
        stopped = f"gurobi status {status}"
    s.extra.update({"pool_solutions": int(m.SolCount), "gurobi_status": int(status)})
    nodes = int(m.NodeCount)
    m.dispose()
    env.dispose()
    return Outcome(regions, stopped, 1, nodes)


COUNTERS = {"milp": count_milp, "scip": _count_scip, "gurobi": _count_gurobi}
"""The counter of each solver method."""
