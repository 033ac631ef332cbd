"""Solver-based region counting on the two-sided big-M model: ``milp``, ``scip`` and ``gurobi``.

All three search the activation patterns z of the model built by
:func:`lrmilp.formulations.bigm.build_bigm` with ``margin="two-sided"``, where the margin f is at
most the distance of every *unstable* neuron's pre-activation from 0 (stable neurons are fixed by
the bounds and never split a region), for patterns with f >= ``search_tol``; and every pattern found
is then decided by **the counting rule of the tree** (:mod:`lrmilp.tolerance`): it counts iff its
inputs within the domain hold a ball of radius > tol, measured by one Chebyshev LP on the pattern's
own hyperplanes (:func:`pattern_ball`, independent of the MILP).  So tree and peers count by the
same rule; a peer's search finds every region whose pre-activations can all be ``search_tol`` away
from 0 at once (``search_tol`` is 1e-6 of the domain's scale by default, far above the solvers'
feasibility tolerance ``SOLVER_FEASTOL`` so that the MILP cannot fake a margin, and far below the
pre-activation margins of a region with a ball of radius > tol once tol is 1e-9 of the scale).

* ``milp`` — Serra, Tjandraatmadja & Ramalingam (2018): solve the MILP with HiGHS, record the
  pattern, cut it off with a no-good cut on the unstable z, repeat until infeasible.  Each MILP
  only has to find *some* pattern with f >= search_tol.  One MILP per pattern plus one.
* ``scip`` — SCIP's solution counter (``cons_countsols``) on the model with f >= search_tol: SCIP
  enumerates the projection of the feasible set onto the integer variables z, each pattern once; an
  observer records each, and the rule decides it.
* ``gurobi`` — Gurobi's solution pool (PoolSearchMode 2) on the model with f >= search_tol; distinct z.

Unbounded domains are cut to a box [-R, R]^d in domain parameters, R from :func:`auto_radius`
(or ``radius``); for networks with one ReLU layer no region is lost, for deeper ones regions lying
entirely outside the box may be, so such a count is never marked complete (``incomplete`` says why).
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import highspy
import numpy as np

from ..bounds import tighten
from ..domains import Domain
from ..lp.chebyshev import chebyshev_ball
from ..domains import domain_rows
from ..errors import InputError, SolverUnavailable
from ..formulations.backends import to_gurobi, to_scip
from ..formulations.bigm import LinearModel, build_bigm
from ..formulations.highs import to_highspy
from ..network import Network, balanced
from ..regions import RegionWriter
from ..search import CountResult
from ..tolerance import Tolerance, parameter_box, resolve_tolerance

METHODS = ("milp", "scip", "gurobi")
SEARCH_TOL_REL = 1e-6
"""Default ``search_tol`` (the MILP's margin f >= search_tol) as a fraction of the domain's scale."""
FORMULATION = "bigm-two-sided"
MAX_SUBSETS = 200_000
"""Most hyperplane subsets :func:`auto_radius` examines before falling back to FALLBACK_RADIUS."""
FALLBACK_RADIUS = 100.0
SOLVER_FEASTOL = 1e-9
"""Feasibility tolerance given to HiGHS, SCIP and Gurobi (the smallest Gurobi accepts): far below
search_tol, so that f >= search_tol means what it says."""
MIN_SEARCH_TOL = 100 * SOLVER_FEASTOL
"""search_tol is never below this: a margin within a few feasibility tolerances of 0 could be faked."""


def default_search_tol(tolerance: Tolerance) -> float:
    """The MILP margin the peers search with: ``SEARCH_TOL_REL`` of the domain's scale (at least
    ``MIN_SEARCH_TOL``)."""
    return max(SEARCH_TOL_REL * tolerance.scale, MIN_SEARCH_TOL)


def pattern_ball(net: Network, domain: Domain, pattern: np.ndarray, *, cap: float) -> tuple[float, np.ndarray | None]:
    """The largest ball (radius, centre in domain parameters) inside the inputs of ``pattern`` within the
    domain: one Chebyshev LP on the pattern's own hyperplanes, unit normals, radius capped at ``cap``.

    Shares nothing with the MILP.  A neuron whose pre-activation is constant under the pattern must
    have the pattern's sign (active iff > 0), else the pattern has no inputs: radius -inf.
    """
    origin = domain.origin if domain.basis is not None else None
    A, c, _, _ = net.region_map(pattern, origin=origin, basis=domain.basis)
    norms = np.sqrt(np.einsum("ij,ij->i", A, A))
    scale = np.abs(A).sum(axis=1) + 1e-300
    const = norms <= 1e-10 * scale
    if np.any(const & ((c > 0) != pattern)):
        return -np.inf, None
    live = ~const
    sg = np.where(pattern[live], 1.0, -1.0)
    dr, dh = domain_rows(domain)
    rows = np.vstack([-sg[:, None] * A[live] / norms[live, None], dr])
    rhs = np.concatenate([sg * c[live] / norms[live], dh])
    t, u = chebyshev_ball(rows, rhs, cap)
    if not np.isfinite(t):
        return t, None
    return min(float((rhs - rows @ u).min()), cap), u  # the radius measured at the centre returned
_INF = highspy.kHighsInf


# --- unbounded domains ---------------------------------------------------------------------------

def auto_radius(net: Network, domain: Domain, *, max_subsets: int = MAX_SUBSETS) -> tuple[float, str | None]:
    """A radius R such that [-R, R]^d meets every region of the first ReLU layer's arrangement.

    Hyperplanes: the first ReLU layer's neurons (in domain parameters u), the domain's own rows
    and its finite box sides.  The closure of a region of that arrangement is a polyhedron whose
    minimal faces are flats cut out by linearly independent subsets of at most d hyperplanes; the
    minimum-norm point of each such flat lies in the closure, so R = 2 * (largest such norm) + 1
    puts a neighbourhood of a point of every region inside the box.  Returns ``(R, None)``, or
    ``(FALLBACK_RADIUS, reason)`` when more than ``max_subsets`` subsets would be needed.
    """
    k0 = net.relu_layers[0]
    M = np.eye(domain.dim) if domain.basis is None else domain.basis
    m0 = np.zeros(domain.input_dim) if domain.origin is None else domain.origin
    A, c = np.asarray(M, dtype=float), np.asarray(m0, dtype=float)
    for layer in net.layers[:k0 + 1]:  # linear layers before the first ReLU compose into one affine map
        A, c = np.asarray(layer.matrix @ A), np.asarray(layer.matrix @ c).reshape(-1) + layer.bias
    rows, offs = [A], [c]
    if domain.A_ub.shape[0]:
        rows.append(domain.A_ub)
        offs.append(-domain.b_ub)
    d = domain.dim
    eye = np.eye(d)
    for side in (domain.lo, domain.hi):
        fin = np.isfinite(side)
        rows.append(eye[fin])
        offs.append(-side[fin])
    A, c = np.vstack(rows), np.concatenate(offs)
    norms = np.linalg.norm(A, axis=1)
    keep = norms > 1e-12 * max(norms.max(initial=0.0), 1.0)  # zero rows are no hyperplanes
    A, c = A[keep] / norms[keep, None], c[keep] / norms[keep]
    m = A.shape[0]
    total = sum(math.comb(m, k) for k in range(1, min(d, m) + 1))
    if total > max_subsets:
        return FALLBACK_RADIUS, (f"{total:,} hyperplane subsets exceed the limit of {max_subsets:,}; "
                                 f"used R = {FALLBACK_RADIUS:g}, regions outside the box may be missed")
    best = 0.0
    for k in range(1, min(d, m) + 1):
        combos = np.array(list(itertools.combinations(range(m), k)), dtype=np.intp)
        for chunk in np.array_split(combos, max(1, len(combos) // 20_000)):
            S, rhs = A[chunk], -c[chunk]  # (N, k, d), (N, k)
            U, s, Vt = np.linalg.svd(S, full_matrices=False)
            ok = s[:, -1] > 1e-9 * s[:, 0]  # rows are unit vectors: a tiny singular value means dependent
            if not ok.any():
                continue
            U, s, Vt, rhs = U[ok], s[ok], Vt[ok], rhs[ok]
            # Minimum-norm solution of S x = rhs: V diag(1/s) U^T rhs.
            coef = np.einsum("nij,ni->nj", U, rhs) / s
            x = np.einsum("nji,nj->ni", Vt, coef)
            best = max(best, float(np.linalg.norm(x, axis=1).max()))
    return 2.0 * best + 1.0, None


def boxed(domain: Domain, radius: float) -> Domain:
    """``domain`` intersected with the box [-radius, radius]^d in domain parameters."""
    lo = np.maximum(domain.lo, -radius)
    hi = np.minimum(domain.hi, radius)
    if np.any(lo >= hi):
        raise InputError(f"radius {radius:g} leaves the domain empty")
    return replace(domain, lo=lo, hi=hi, kind=f"{domain.kind}-in-box")


# --- shared pieces -------------------------------------------------------------------------------

@dataclass
class _Setup:
    """Everything the three counters share: the model, its column groups and the output."""

    model: LinearModel
    z: np.ndarray  # columns of all binaries, pattern order
    unstable: np.ndarray  # positions (into z) of the unstable neurons
    f: int
    u: np.ndarray
    search_tol: float  # the MILP looks for patterns with margin f >= search_tol
    check: "PatternCheck"  # the counting rule, applied to each pattern found
    deadline: float | None
    max_regions: int | None
    progress: bool
    extra: dict = field(default_factory=dict)

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.perf_counter()

    def feasibility_model(self) -> LinearModel:
        """The model with f >= search_tol and no objective: its integer projection is the set of patterns
        the search finds."""
        lb = self.model.lb.copy()
        lb[self.f] = self.search_tol
        return replace(self.model, lb=lb, obj=np.zeros(self.model.num_vars), obj_const=0.0)


class PatternCheck:
    """The counting rule applied to patterns a solver found: a pattern counts iff its inputs within the
    domain hold a ball of radius > tol (:func:`pattern_ball`).  Keeps the statistics a result reports."""

    def __init__(self, net: Network, domain: Domain, tolerance: Tolerance,
                 on_region: Callable[[np.ndarray, np.ndarray, float], None] | None = None) -> None:
        self.net, self.domain, self.tolerance, self.on_region = net, domain, tolerance, on_region
        self.solves = 0
        self.rejected = 0  # patterns found whose largest ball is not above tol
        self.thin = 0  # ... of which the ball is above rounding noise: real but thinner than tol
        self.min_margin = np.inf

    def confirm(self, pattern: np.ndarray) -> bool:
        """Is the pattern a region?  Reports it to ``on_region`` if so."""
        radius, centre = pattern_ball(self.net, self.domain, pattern, cap=self.tolerance.cap)
        self.solves += 1
        if radius > self.tolerance.tol:
            self.min_margin = min(self.min_margin, radius)
            if self.on_region is not None:
                self.on_region(pattern, centre, radius)
            return True
        self.rejected += 1
        if radius > self.tolerance.noise:
            self.thin += 1
        return False

    def report(self) -> dict:
        return {"pattern_lps": self.solves, "rejected_patterns": self.rejected}


class _Progress:
    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled, self.label = enabled, label
        self.t0 = time.perf_counter()
        self.next = self.t0 + 1.0

    def tick(self, regions: int, solves: int) -> None:
        now = time.perf_counter()
        if self.enabled and now >= self.next:
            print(f"\r[lrmilp] regions {regions:,}  {self.label} {solves:,}  {now - self.t0:,.0f}s",
                  end="", file=sys.stderr, flush=True)
            self.next = now + 1.0

    def done(self) -> None:
        if self.enabled:
            print(file=sys.stderr)


@dataclass
class _Outcome:
    regions: int
    stopped: str | None
    solves: int
    nodes: int = 0


def solver_model(net: Network, domain: Domain, *, search_tol: float, radius: float | None = None
                 ) -> tuple[LinearModel, dict]:
    """The two-sided big-M model every solver method works on, and what the result should say of it.

    LP-tightened bounds; an unbounded domain is cut to [-R, R]^d with R = ``radius`` or
    :func:`auto_radius` (the info says which, and what that can miss).  ``model.groups`` holds
    ``z`` (binaries in pattern order), ``f`` (the margin) and ``u`` (domain parameters).
    """
    extra: dict = {}
    work = domain
    if not domain.bounded and domain.A_ub.shape[0]:
        plo, phi = parameter_box(domain)  # a polytope may be bounded by its rows alone
        if np.all(np.isfinite(plo)) and np.all(np.isfinite(phi)):
            work = replace(domain, lo=plo, hi=phi)
    if not work.bounded:
        if radius is not None:
            R, note = float(radius), "given"
        else:
            R, note = auto_radius(net, domain)
        work = boxed(domain, R)
        extra["radius"] = R
        if note == "given":
            extra["radius_note"] = f"given radius: regions lying entirely outside [-R, R]^{domain.dim} are missed"
        elif note is not None:  # auto_radius fell back to FALLBACK_RADIUS and says why
            extra["radius_note"] = note
        elif len(net.relu_layers) == 1:
            extra["radius_note"] = f"[-R, R]^{domain.dim} meets every region of a one-ReLU-layer network"
        else:
            extra["radius_note"] = ("R comes from the first ReLU layer only: regions of deeper layers lying "
                                    f"entirely outside [-R, R]^{domain.dim} may be missed")
        if note is not None or len(net.relu_layers) > 1:
            extra["incomplete"] = extra["radius_note"]
    bounds = tighten(net, work, method="lp")
    extra.update({"bound_method": bounds.method, "bound_lps": bounds.lps})
    last_relu = net.relu_layers[-1]
    # fmax caps f (it only has to exceed search_tol); it also sets the big-M constants of the margin rows.
    fmax = max(1.0, 10.0 * search_tol)
    model = build_bigm(net, work, bounds.lower, bounds.upper, layers=last_relu + 1, margin="two-sided", fmax=fmax)
    z = model.groups["z"]
    extra["unstable"] = int(np.sum(model.lb[z] < model.ub[z]))
    return model, extra


# --- the entry point -----------------------------------------------------------------------------

def count_with_solver(net: Network, domain: Domain, *, method: str, tol: float | None = None,
                      time_limit: float | None = None, max_regions: int | None = None,
                      regions_out: str | Path | None = None, progress: bool = False,
                      radius: float | None = None, search_tol: float | None = None) -> CountResult:
    """Count regions with a MILP solver (``method`` "milp", "scip" or "gurobi"; see the module).

    Exact (``complete=True``) unless stopped by ``time_limit``, ``max_regions`` or Ctrl-C, when
    ``regions`` is the number of patterns found so far, a valid lower bound.  A pattern found counts
    by the tree's rule with ``tol`` (:mod:`lrmilp.tolerance`; default relative).  On an unbounded
    domain the box radius is ``radius`` or :func:`auto_radius` (``extra["radius"]``); the count is then
    complete only for one ReLU layer.  Raises :class:`~lrmilp.errors.SolverUnavailable` when SCIP or
    Gurobi cannot be used.
    """
    t0 = time.perf_counter()
    if method not in METHODS:
        raise InputError(f"unknown solver method '{method}' (expected one of {', '.join(METHODS)})")
    if radius is not None and not (radius > 0 and math.isfinite(radius)):
        raise InputError("radius must be a positive finite number")
    if domain.input_dim != net.input_dim:
        raise InputError(f"domain has {domain.input_dim} inputs, network has {net.input_dim}")
    net = balanced(net)  # exact power-of-two rescaling: the same regions, no overflow in the model
    tolerance = resolve_tolerance(net, domain, tol)
    search_tol = default_search_tol(tolerance) if search_tol is None else float(search_tol)
    if not (search_tol > 0 and math.isfinite(search_tol)):
        raise InputError("search_tol must be a positive finite number")
    tinfo = tolerance.describe()
    extra: dict = {"formulation": FORMULATION, "domain": domain.describe(), "search_tol": search_tol,
                   "tol_scale": tinfo["tol_scale"], "tol_source": tinfo["tol_source"]}
    check = None

    def result(regions: int, stopped: str | None, solves: int, nodes: int = 0) -> CountResult:
        complete = stopped is None and "incomplete" not in extra
        return CountResult(regions, complete, method, time.perf_counter() - t0, solves, tolerance.tol,
                           tinfo["tol_meaning"], stopped, nodes, extra=extra,
                           thin_dropped=check.thin if check else 0,
                           min_margin=float(check.min_margin) if check and np.isfinite(check.min_margin) else None)

    if not net.relu_layers:
        extra["bound_method"] = None
        return result(1, None, 0)
    model, info = solver_model(net, domain, search_tol=search_tol, radius=radius)
    extra.update(info)
    z = model.groups["z"]
    unstable = np.flatnonzero(model.lb[z] < model.ub[z])
    writer = RegionWriter(regions_out, neurons=net.neurons, domain=domain) if regions_out else None
    check = PatternCheck(net, domain, tolerance, writer.write if writer else None)
    setup = _Setup(model, z, unstable, int(model.groups["f"][0]), model.groups["u"], search_tol, check,
                   None if time_limit is None else t0 + time_limit, max_regions, progress, extra)
    try:
        outcome = {"milp": _count_milp, "scip": _count_scip, "gurobi": _count_gurobi}[method](setup)
    finally:
        if writer:
            writer.close()
    extra.update(check.report())
    return result(outcome.regions, outcome.stopped, outcome.solves, outcome.nodes)


# --- milp: HiGHS with no-good cuts ---------------------------------------------------------------

def _count_milp(s: _Setup) -> _Outcome:
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
    prog = _Progress(s.progress, "MILPs")
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
            if s.max_regions is not None and regions >= s.max_regions:
                stopped = "max_regions"
                break
            if status == highspy.HighsModelStatus.kTimeLimit:
                stopped = "time_limit"
                break
            prog.tick(regions, solves)
    except KeyboardInterrupt:
        stopped = "interrupted"
    prog.done()
    return _Outcome(regions, stopped, solves)


# --- scip: cons_countsols ------------------------------------------------------------------------

def _scip_observer(s: _Setup, xs: list, seen: dict):
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


def _count_scip(s: _Setup) -> _Outcome:
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
        return _Outcome(int(s.check.confirm(pattern)), None, 0)
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
    if s.max_regions is not None:
        m.setParam("constraints/countsols/sollimit", int(s.max_regions))
    rem = s.remaining()
    if rem is not None:
        if rem <= 0:
            return _Outcome(0, "time_limit", 0)
        m.setParam("limits/time", float(rem))
    m.count()
    counted = int(m.getNCountedSols())
    status = m.getStatus()
    regions = 0
    for pattern in seen.values():
        if s.max_regions is not None and regions >= s.max_regions:
            break
        regions += s.check.confirm(pattern)
    if status == "infeasible":  # the counter rejects every solution, so a finished count ends infeasible
        stopped = None
    elif status == "timelimit":
        stopped = "time_limit"
    elif status == "userinterrupt":
        stopped = "max_regions" if s.max_regions is not None and counted >= s.max_regions else "interrupted"
    else:
        stopped = status
    s.extra.update({"scip_status": status, "scip_counted": counted, "patterns_seen": len(seen),
                    "scip_version": m.version() if hasattr(m, "version") else None})
    return _Outcome(regions, stopped, int(m.getNLPs()), int(m.getNTotalNodes()))


# --- gurobi: solution pool -----------------------------------------------------------------------

_POOL_MAX = 2_000_000_000  # Gurobi's upper limit on PoolSolutions


def _count_gurobi(s: _Setup) -> _Outcome:
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
        m.Params.PoolSolutions = min(_POOL_MAX, s.max_regions or _POOL_MAX)
        m.Params.FeasibilityTol = SOLVER_FEASTOL
        m.Params.IntFeasTol = SOLVER_FEASTOL
        m.Params.Threads = 1
        rem = s.remaining()
        if rem is not None:
            if rem <= 0:
                return _Outcome(0, "time_limit", 0)
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
    if status in (GRB.OPTIMAL, GRB.INFEASIBLE):
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
    return _Outcome(regions, stopped, 1, nodes)
