"""An activation-based upper bound on the regions of *given* weights over a domain (Serra & Ramalingam 2020).

Serra & Ramalingam, "Empirical Bounds on Linear Regions of Deep Rectifier Networks" (AAAI 2020,
arXiv 1810.03370), refine Theorem 1 of Serra, Tjandraatmadja & Ramalingam (ICML 2018) with
quantities of the trained network over the input domain: how many neurons of a layer can be active
together, how many inactive together, and which neurons never change state.  Those quantities come
from MILPs on the big-M model of the network (:mod:`lrmilp.formulations.bigm`).

The statement implemented here is a derivation, not a quotation: the paper's text could not be
retrieved while this module was written, so :func:`activation_bound` re-derives the refinement from
the proof of the ICML 2018 Theorem 1, with every step argued in its docstring so that the result is
provably an upper bound.  It never exceeds Theorem 1 for the same architecture and is equal to it
when nothing is learnt from the weights (every neuron unstable, all of a layer able to be active
together and inactive together).

Every count is an exact Python ``int``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import highspy
import numpy as np

from .bounds import METHODS as BOUND_METHODS
from .bounds import tighten
from .domains import Domain
from .errors import InputError
from .formulations.bigm import LinearModel, build_bigm
from .formulations.highs import to_highspy
from .network import Network
from .validation import int_at_least, nonnegative_finite, one_of, positive_finite

__all__ = ["EmpiricalBound", "LayerActivity", "SOLVERS", "activation_bound", "layer_activity", "serra2020"]

SOLVERS = ("highs", "scip")
DEFAULT_TIME_LIMIT = 10.0
"""Seconds per MILP (two MILPs per ReLU layer)."""
DEFAULT_INTEGRALITY_TOL = 1e-6
"""How far a solver's dual bound on a sum of binaries may sit past an integer and still round to it.

A max problem's bound b gives ``floor(b + tol)``: a proof of 3 reported as 2.9999999 by a solver working
with 1e-9..1e-6 tolerances must not become 2 (that would no longer be an upper bound)."""


# --- the combinatorial bound -------------------------------------------------------------------

def _binom_row(n: int) -> list[int]:
    """C(n, 0), ..., C(n, n) as exact ints."""
    row = [1]
    for j in range(n):
        row.append(row[-1] * (n - j) // (j + 1))
    return row


def activation_bound(dim: int, widths: Sequence[int], *, max_active: Sequence[int],
                     max_inactive: Sequence[int], stable_active: Sequence[int] | None = None,
                     stable_inactive: Sequence[int] | None = None) -> int:
    """Activation-based upper bound on the number of linear regions (our derivation of Serra & Ramalingam 2020).

    For ReLU layer l (width n_l) let s+_l / s-_l be the numbers of neurons active / inactive on the whole
    domain, u_l = n_l - s+_l - s-_l the others, A_l >= the largest number of neurons of layer l active
    together at a point of a region, and I_l >= the largest number inactive together.  With
    a_l = min(u_l, A_l - s+_l) and b_l = max(0, u_l + s-_l - I_l) (the most and fewest unstable neurons
    active together), define G_{L+1}(d) = 1 and, for d = 0..dim,

        G_l(d) = sum_{k = a_l, a_l - 1, ..., b_l} c_k G_{l+1}(min(d, s+_l + k)),

    where c_k = min(C(u_l, k), Z - c_{a_l} - ... - c_{k+1}) fills the budget
    Z = sum_{j <= min(d, u_l)} C(u_l, j) greedily from the most active k down.  The bound is G_1(dim).

    Why it is an upper bound (by induction from the last layer, G_{l+1} being nondecreasing in d):
    take a region R of layers 1..l-1 on which the input of layer l is an affine image of dimension
    <= d.  (i) Only the u_l unstable neurons can split R, and they cut that image along at most u_l
    hyperplanes, so R splits into at most Z pieces (Zaslavsky), which is the counting step of ICML 2018
    Theorem 1.  (ii) A piece with k unstable neurons active has a distinct pattern, so at most C(u_l, k)
    pieces have k active, and b_l <= k <= a_l by the definitions of A_l and I_l.  (iii) On a piece the
    output of layer l is that image times a diagonal 0/1 matrix with s+_l + k ones, of dimension
    <= min(d, s+_l + k), so by induction the piece holds at most G_{l+1}(min(d, s+_l + k)) regions.
    Maximising the sum of these, a nondecreasing function of k, under (i) and (ii) is a fractional
    knapsack whose optimum is the greedy fill.  G_l is again nondecreasing in d (a larger d raises the
    budget and every term).

    With s+ = s- = 0 and A_l = I_l = n_l the fill takes C(n_l, n_l - j) for j = 0..min(d, n_l) with next
    dimension min(d, n_l - j): exactly Theorem 1 of Serra, Tjandraatmadja & Ramalingam (ICML 2018),
    "sum over (j_1..j_L) in J of prod_l C(n_l, j_l) with 0 <= j_l <= min{n_0, n_1 - j_1, ...,
    n_{l-1} - j_{l-1}, n_l}".  With any other admissible quantities every greedy value and count is
    dominated by that one, so the bound never exceeds Theorem 1.

    Parameters
    ----------
    dim : int
        Dimension of the input domain (n_0 for a full-dimensional box).
    widths : sequence of int
        ReLU layer widths n_1..n_L.
    max_active, max_inactive : sequence of int
        A_l and I_l per layer, upper bounds on the neurons active / inactive together.
    stable_active, stable_inactive : sequence of int, optional
        s+_l and s-_l per layer (default 0): neurons that never change state over the domain.

    Returns
    -------
    int
        The bound, an exact integer.

    Raises
    ------
    InputError
        Inconsistent quantities (e.g. A_l < s+_l, or A_l + I_l < n_l, which no region can meet).

    Examples
    --------
    >>> activation_bound(2, [2, 2], max_active=[2, 2], max_inactive=[2, 2])  # = Theorem 1 (ICML 2018)
    11
    >>> activation_bound(2, [2, 2], max_active=[1, 2], max_inactive=[2, 2])
    7
    """
    dim = int_at_least("dim", dim, 0)
    ws = [int_at_least("widths", w, 1) for w in widths]
    L = len(ws)
    if L == 0:
        raise InputError("widths must name at least one ReLU layer", param="widths")

    def per_layer(name: str, values: Sequence[int] | None) -> list[int]:
        if values is None:
            return [0] * L
        vs = [int_at_least(name, v, 0) for v in values]
        if len(vs) != L:
            raise InputError(f"{name} has {len(vs)} entries for {L} layers", param=name)
        return vs

    A, I = per_layer("max_active", max_active), per_layer("max_inactive", max_inactive)
    sp_, sm_ = per_layer("stable_active", stable_active), per_layer("stable_inactive", stable_inactive)
    for l, (n, a, i, p, m) in enumerate(zip(ws, A, I, sp_, sm_), 1):
        if p + m > n or not p <= a <= n - m or not m <= i <= n - p or a + i < n:
            raise InputError(f"layer {l}: inconsistent activity (width {n}, max active {a}, max inactive {i}, "
                             f"stable active {p}, stable inactive {m})", param="max_active")
    G = [1] * (dim + 1)  # G_{L+1}
    for n, a_cap, i_cap, p, m in reversed(list(zip(ws, A, I, sp_, sm_))):
        u = n - p - m
        hi, lo = min(u, a_cap - p), max(0, u + m - i_cap)
        row = _binom_row(u)
        budgets = [0] * (u + 1)  # budgets[t] = sum_{j <= t} C(u, j)
        acc = 0
        for t in range(u + 1):
            acc += row[t]
            budgets[t] = acc
        new = []
        for d in range(dim + 1):
            budget, total = budgets[min(d, u)], 0
            for k in range(hi, lo - 1, -1):
                if budget <= 0:
                    break
                c = min(row[k], budget)
                total += c * G[min(d, p + k)]
                budget -= c
            new.append(total)
        G = new
    return G[dim]


# --- the network's quantities, by MILP ---------------------------------------------------------

@dataclass
class LayerActivity:
    """What the MILPs of one ReLU layer proved over the domain.

    ``max_active`` / ``max_inactive`` are upper bounds on the neurons active / inactive together
    (exact when the matching ``*_optimal`` is true; otherwise from the solver's dual bound, never from
    an incumbent); ``*_dual`` are the raw dual bounds on the number of active neurons (None: none).
    """

    layer: int  # index in net.layers
    width: int
    stable_active: int
    stable_inactive: int
    max_active: int
    max_inactive: int
    max_active_optimal: bool
    max_inactive_optimal: bool
    max_active_dual: float | None
    min_active_dual: float | None
    seconds: float

    @property
    def unstable(self) -> int:
        return self.width - self.stable_active - self.stable_inactive


@dataclass
class EmpiricalBound:
    """The activation-based bound of :func:`serra2020` and the per-layer quantities it used."""

    value: int
    dim: int
    widths: list[int]
    layers: list[LayerActivity]
    solver: str
    bound_method: str
    time_limit: float
    seconds: float
    dual_bound_used: int = 0  # MILPs not proved optimal (time limit): their dual bound was used
    meaning: str = field(default=("an upper bound on the number of linear regions of these weights over this "
                                  "domain (activation-based bound after Serra & Ramalingam 2020)"))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["value"] = int(self.value)
        for d, layer in zip(out["layers"], self.layers):
            d["unstable"] = layer.unstable
        return out


def _sum_objective(model: LinearModel, cols: np.ndarray) -> np.ndarray:
    obj = np.zeros(model.num_vars)
    obj[cols] = 1.0
    return obj


def _highs_extremes(model: LinearModel, cols: np.ndarray, time_limit: float) -> list[tuple[float | None, bool]]:
    """(dual bound, optimal) of max and of min sum(model[cols]) with HiGHS."""
    h = to_highspy(model.with_objective(_sum_objective(model, cols), "max"))
    h.setOptionValue("time_limit", float(time_limit))
    # The objective is an integer: a zero gap makes "optimal" mean the dual bound is the optimum.
    h.setOptionValue("mip_rel_gap", 0.0)
    out = []
    for sense in (highspy.ObjSense.kMaximize, highspy.ObjSense.kMinimize):
        h.changeObjectiveSense(sense)
        h.run()
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kInfeasible:
            raise InputError("the domain is empty (the network's MILP is infeasible)")
        optimal = status == highspy.HighsModelStatus.kOptimal
        dual = float(h.getInfo().mip_dual_bound) if optimal or status == highspy.HighsModelStatus.kTimeLimit else None
        out.append((dual if dual is not None and math.isfinite(dual) else None, optimal))
    return out


def _scip_extremes(model: LinearModel, cols: np.ndarray, time_limit: float) -> list[tuple[float | None, bool]]:
    """(dual bound, optimal) of max and of min sum(model[cols]) with SCIP (PySCIPOpt)."""
    try:
        from .formulations.backends import to_scip
        import pyscipopt  # noqa: F401  (only to fail early with a clear message)
    except ImportError:
        raise InputError("solver 'scip' needs PySCIPOpt, which is not installed", param="solver") from None
    out = []
    for sense in ("max", "min"):
        m, _ = to_scip(model.with_objective(_sum_objective(model, cols), sense))
        m.setParam("limits/time", float(time_limit))
        m.setParam("limits/gap", 0.0)
        m.optimize()
        status = m.getStatus()
        if status == "infeasible":
            raise InputError("the domain is empty (the network's MILP is infeasible)")
        dual = float(m.getDualbound()) if status in ("optimal", "timelimit") else None
        out.append((dual if dual is not None and math.isfinite(dual) else None, status == "optimal"))
    return out


def layer_activity(net: Network, domain: Domain, *, solver: str = "highs", time_limit: float = DEFAULT_TIME_LIMIT,
                   bound_method: str = "lp", integrality_tol: float = DEFAULT_INTEGRALITY_TOL) -> list[LayerActivity]:
    """Stable neurons and the most neurons active / inactive together, per ReLU layer, over ``domain``.

    Stable neurons come from :func:`lrmilp.bounds.tighten` (``lower > 0``: always active, ``upper <= 0``:
    never active).  For ReLU layer l two MILPs on the big-M model of layers 1..l maximise and minimise the
    sum of its binaries z_l.  Every point of a region, with its exact activations, is feasible in that
    model with z equal to its pattern, so max sum z_l bounds the active neurons of every region and
    n_l - min sum z_l the inactive ones.  Only the solver's dual bound is used (rounded with
    ``integrality_tol``), so a MILP stopped by ``time_limit`` still gives valid, only looser, numbers.

    Parameters
    ----------
    net : Network
        The network.
    domain : Domain
        A bounded domain (big-M needs finite pre-activation bounds).
    solver : {"highs", "scip"}
        The MILP solver (SCIP needs PySCIPOpt).
    time_limit : float
        Seconds per MILP.
    bound_method : {"lp", "interval", "milp"}
        How :func:`lrmilp.bounds.tighten` bounds the pre-activations (stable neurons and big-M constants).
    integrality_tol : float
        A dual bound b of a max problem counts as ``floor(b + integrality_tol)``, of a min problem as
        ``ceil(b - integrality_tol)``.

    Returns
    -------
    list of LayerActivity
        One per ReLU layer, in order.

    Raises
    ------
    InputError
        A bad option, an unbounded or empty domain, or SCIP asked for but not installed.
    """
    one_of("solver", solver, SOLVERS, what="solver")
    time_limit = positive_finite("time_limit", time_limit)
    one_of("bound_method", bound_method, BOUND_METHODS, what="bound method")
    tol = nonnegative_finite("integrality_tol", integrality_tol)
    if tol >= 0.5:
        raise InputError(f"integrality_tol must be below 0.5, got {tol}", param="integrality_tol")
    if domain.input_dim != net.input_dim:
        raise InputError(f"the domain has {domain.input_dim} inputs, the network {net.input_dim}")
    if not domain.bounded:
        raise InputError("the activation-based bound needs a bounded domain (big-M needs finite bounds)")
    extremes = _highs_extremes if solver == "highs" else _scip_extremes
    b = tighten(net, domain, method=bound_method)
    out = []
    for k in net.relu_layers:
        t0 = time.perf_counter()
        lo, hi = b.lower[k], b.upper[k]
        n = int(lo.size)
        s_plus, s_minus = int(np.sum(lo > 0)), int(np.sum(hi <= 0))
        if s_plus + s_minus == n:
            # Nothing to solve: the layer's pattern is the same everywhere.
            out.append(LayerActivity(k, n, s_plus, s_minus, s_plus, s_minus, True, True, float(s_plus),
                                     float(s_plus), time.perf_counter() - t0))
            continue
        model = build_bigm(net, domain, b.lower, b.upper, layers=k + 1)
        (up, up_opt), (down, down_opt) = extremes(model, model.groups[f"z{k}"], time_limit)
        # Clip into [s+, n - s-]: a missing or numerically odd dual bound falls back to the trivial one,
        # which is always valid.
        most = n - s_minus if up is None else min(n - s_minus, max(s_plus, math.floor(up + tol)))
        fewest = s_plus if down is None else max(s_plus, min(n - s_minus, math.ceil(down - tol)))
        out.append(LayerActivity(k, n, s_plus, s_minus, most, n - fewest, up_opt, down_opt, up, down,
                                 time.perf_counter() - t0))
    return out


def serra2020(net: Network, domain: Domain, *, solver: str = "highs", time_limit: float = DEFAULT_TIME_LIMIT,
              bound_method: str = "lp", integrality_tol: float = DEFAULT_INTEGRALITY_TOL) -> EmpiricalBound:
    """Activation-based upper bound on the linear regions of ``net`` over ``domain`` (after Serra & Ramalingam 2020).

    Serra & Ramalingam (AAAI 2020, arXiv 1810.03370), second contribution: Theorem 1 of Serra,
    Tjandraatmadja & Ramalingam (ICML 2018) refined with the most neurons of each layer active together
    and inactive together, and the stable neurons, all computed over the domain by MILP.  The
    combinatorial statement used is our derivation (:func:`activation_bound`, where it is proved), as
    the paper's exact wording was not available; the quantities come from :func:`layer_activity`.

    Guarantee: the value is at least the number of full-dimensional linear regions of these weights over
    ``domain`` (what :func:`lrmilp.counting.count_regions` counts), whether or not every MILP finished
    (a stopped MILP contributes its dual bound, never its incumbent), and at most
    ``lrmilp.theory.serra2018(domain.dim, net.widths)``.

    Parameters
    ----------
    net : Network
        The network (any layers; the ReLU layers' widths enter the bound).
    domain : Domain
        A bounded domain; its dimension ``domain.dim`` plays the role of n_0.
    solver : {"highs", "scip"}
        MILP solver (SCIP needs PySCIPOpt).
    time_limit : float
        Seconds per MILP (two per ReLU layer).
    bound_method : {"lp", "interval", "milp"}
        Pre-activation bounds of :func:`lrmilp.bounds.tighten` (stable neurons, big-M constants).
    integrality_tol : float
        Rounding slack for the solver's dual bounds (see :func:`layer_activity`).

    Returns
    -------
    EmpiricalBound
        ``value`` (exact int), per-layer :class:`LayerActivity`, timing.

    Raises
    ------
    InputError
        A bad option, a network without ReLU layers, an unbounded or empty domain.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> r = serra2020(random_mlp([2, 3, 3], seed=0), Box(-1, 1, 2))
    >>> 1 <= r.value <= 40  # 40 = lrmilp.theory.serra2018(2, [3, 3])
    True
    """
    t0 = time.perf_counter()
    if not net.widths:
        raise InputError("the network has no ReLU layer, hence a single linear region")
    layers = layer_activity(net, domain, solver=solver, time_limit=time_limit, bound_method=bound_method,
                            integrality_tol=integrality_tol)
    value = activation_bound(domain.dim, [a.width for a in layers],
                             max_active=[a.max_active for a in layers],
                             max_inactive=[a.max_inactive for a in layers],
                             stable_active=[a.stable_active for a in layers],
                             stable_inactive=[a.stable_inactive for a in layers])
    not_optimal = sum((not a.max_active_optimal) + (not a.max_inactive_optimal) for a in layers)
    return EmpiricalBound(value, domain.dim, [a.width for a in layers], layers, solver, bound_method,
                          float(time_limit), time.perf_counter() - t0, not_optimal)
