"""The model every solver peer searches, and the counting rule applied to the patterns it finds.

The peers search the two-sided big-M model of :func:`lrmilp.formulations.bigm.build_bigm`
(:func:`solver_model`), where the margin f is at most the distance of every *unstable* neuron's
pre-activation from 0, for patterns with f >= ``search_tol``; every pattern found is decided by **the
counting rule of the tree** (:mod:`lrmilp.tolerance`): it counts iff its inputs within the domain hold
a ball of radius > tol, measured by one Chebyshev LP on the pattern's own hyperplanes
(:func:`pattern_ball`, independent of the MILP; :class:`PatternCheck`).  ``search_tol`` is 1e-6 of the
domain's scale by default, far above the solvers' feasibility tolerance ``SOLVER_FEASTOL`` so that the
MILP cannot fake a margin, and far below the pre-activation margins of a region with a ball of radius
> tol once tol is 1e-9 of the scale.

Unbounded domains are cut to a box [-R, R]^d in domain parameters, R from :func:`auto_radius` (or a
given radius); for networks with one ReLU layer no region is lost, for deeper ones regions lying
entirely outside the box may be, so such a count is never marked complete (``incomplete`` says why).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import scipy.sparse as sp

from ..bounds import tighten
from ..constraints import BoundConstraints, ConstraintSet
from ..domains import Domain, domain_rows
from ..errors import InputError
from ..formulations.bigm import LinearModel, build_bigm
from ..lp.chebyshev import chebyshev_ball
from ..network import Network
from ..tolerance import Tolerance, parameter_box

SEARCH_TOL_REL = 1e-6
"""Default ``search_tol`` (the MILP's margin f >= search_tol) as a fraction of the domain's scale."""
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
    ``MIN_SEARCH_TOL``).

    Parameters
    ----------
    tolerance : Tolerance
        The count's tolerance (its scale).

    Returns
    -------
    float

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> from lrmilp.tolerance import resolve_tolerance
    >>> default_search_tol(resolve_tolerance(random_mlp([2, 3]), Box(-1, 1, 2)))
    1e-06
    """
    return max(SEARCH_TOL_REL * tolerance.scale, MIN_SEARCH_TOL)


def pattern_ball(net: Network, domain: Domain, pattern: np.ndarray, *, cap: float,
                 constraints: BoundConstraints | None = None) -> tuple[float, np.ndarray | None]:
    """The largest ball (radius, centre in domain parameters) inside the inputs of ``pattern`` within the
    domain (and satisfying ``constraints``): one Chebyshev LP on the pattern's own hyperplanes and the
    constraints' rows in u for this pattern, unit normals, radius capped at ``cap``.

    Shares nothing with the MILP.  A neuron whose pre-activation is constant under the pattern must
    have the pattern's sign (active iff > 0), else the pattern has no inputs: radius -inf; likewise a
    constraint constant on the region must hold there (:meth:`lrmilp.constraints.BoundConstraints.rows`).

    Parameters
    ----------
    net : Network
        The network.
    domain : Domain
        The domain.
    pattern : numpy.ndarray
        A full activation pattern (bools, pattern order).
    cap : float
        The radius cap.
    constraints : BoundConstraints, optional
        The user's constraints over this domain (:mod:`lrmilp.constraints`): the ball must satisfy them too.

    Returns
    -------
    tuple
        (radius, centre or None).

    Examples
    --------
    >>> import numpy as np
    >>> from lrmilp.network import Dense, Network
    >>> from lrmilp.domains import Box
    >>> net = Network([Dense(np.array([[1.0]]), np.zeros(1))], (1,))
    >>> round(pattern_ball(net, Box(-1, 1, 1), np.array([True]), cap=10.0)[0], 9)
    0.5
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
    if constraints is not None:
        extra = constraints.rows(pattern)
        if extra is None:  # a constraint constant on the region fails there
            return -np.inf, None
        rows, rhs = np.vstack([rows, extra[0]]), np.concatenate([rhs, extra[1]])
    t, u = chebyshev_ball(rows, rhs, cap)
    if not np.isfinite(t):
        return t, None
    return min(float((rhs - rows @ u).min()), cap), u  # the radius measured at the centre returned


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


@dataclass
class SolverSetup:
    """Everything the three counters share: the model, its column groups, the rule, limits and the
    result's extra keys."""

    model: LinearModel
    z: np.ndarray  # columns of all binaries, pattern order
    unstable: np.ndarray  # positions (into z) of the unstable neurons
    f: int
    u: np.ndarray
    search_tol: float  # the MILP looks for patterns with margin f >= search_tol
    check: "PatternCheck"  # the counting rule, applied to each pattern found
    deadline: float | None
    max_regions: int | None
    progress: bool | None
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
    domain (satisfying ``constraints`` when given) hold a ball of radius > tol (:func:`pattern_ball`).  Keeps the statistics a result reports."""

    def __init__(self, net: Network, domain: Domain, tolerance: Tolerance,
                 on_region: Callable[[np.ndarray, np.ndarray, float], None] | None = None,
                 constraints: BoundConstraints | None = None) -> None:
        self.net, self.domain, self.tolerance, self.on_region = net, domain, tolerance, on_region
        self.constraints = constraints  # the user's constraints: the ball must satisfy them too
        self.solves = 0
        self.rejected = 0  # patterns found whose largest ball is not above tol
        self.thin = 0  # ... of which the ball is above rounding noise: real but thinner than tol
        self.min_margin = np.inf

    def confirm(self, pattern: np.ndarray) -> bool:
        """Is the pattern a region?  Reports it to ``on_region`` if so."""
        radius, centre = pattern_ball(self.net, self.domain, pattern, cap=self.tolerance.cap,
                                      constraints=self.constraints)
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


def layer_scales(net: Network, work: Network) -> dict[int, np.ndarray]:
    """Per ReLU layer k, the factors s with pre-activation of ``work`` = s * that of ``net``, where
    ``work`` is :func:`lrmilp.network.balanced` of ``net`` (powers of two, 1 for rows it left alone).

    Balancing scales a neuron's row, bias included, by an exact power of two, and scaling by powers of
    two is exact in floating point, so the ratio of the two networks' pre-activations at any input
    where they are non-zero is that power exactly.  A neuron that is zero at every probe input is
    identically zero (its scale never matters): factor 1.
    """
    out = {k: np.ones(net.layers[k].out_size) for k in net.relu_layers}
    same = all(np.array_equal(a.W, b.W) and np.array_equal(a.b, b.b) for a, b in zip(net.layers, work.layers))
    if same:  # the common case: balancing left every row alone
        return out
    X = np.random.default_rng(0).standard_normal((8, net.input_dim))
    with np.errstate(all="ignore"):
        pn, pw = net.preactivations(X), work.preactivations(X)
        for k in net.relu_layers:
            ok = (pn[k] != 0) & np.isfinite(pn[k]) & np.isfinite(pw[k])
            ratio = np.where(ok, pw[k] / np.where(ok, pn[k], 1.0), np.nan)
            first = np.argmax(ok, axis=0)
            r = ratio[first, np.arange(ratio.shape[1])]
            out[k] = np.where(ok.any(axis=0), np.exp2(np.round(np.log2(np.abs(r)))), 1.0)
    return out


def add_constraint_rows(model: LinearModel, work: Network, constraints: ConstraintSet) -> tuple[LinearModel, int]:
    """The model with one row per user constraint, each held with the model's margin f:
    ``a @ q + f <= b`` after scaling (a, b) so that max |a| = 1 (q the constraint's quantity).

    In the feasibility models of the peers f >= search_tol, so every constraint is met with slack
    search_tol, as every unstable neuron is (module docstring); the pattern each solution gives is then
    decided by :func:`pattern_ball` with the constraints.  The quantities are the model's columns:
    network inputs ``x``, the pre-activations ``g{k}`` of ReLU layer k and, for outputs, the last ReLU
    layer's outputs ``out`` through the linear layers after it (composed into one affine map, as the
    model stops at the last ReLU layer).  ``work`` is the balanced network the model was built from;
    its layer scales (:func:`layer_scales`) are undone in the coefficients.

    Returns
    -------
    tuple
        (model, rows added).
    """
    net = constraints.net
    scales = layer_scales(net, work)
    last = net.relu_layers[-1]
    T = np.eye(net.layers[last].out_size)
    t = np.zeros(T.shape[0])
    for layer in net.layers[last + 1:]:  # the tail after the last ReLU: y = T h_last + t
        T, t = np.asarray(layer.matrix @ T), np.asarray(layer.matrix @ t).reshape(-1) + layer.bias
        if layer.relu:  # pragma: no cover - layers after the last ReLU layer have no ReLU by definition
            raise AssertionError("a ReLU after the last ReLU layer")
    g = model.groups
    f = int(g["f"][0])
    coo_r, coo_c, coo_v, hi = [], [], [], []
    for con in constraints.constraints:
        a, b = con.as_le()
        if con.on == "input":
            cols, vals = g["x"], a
        elif con.on == "layer":
            k = net.relu_layers[con.layer - 1]
            cols, vals = g[f"g{k}"], a / scales[k]
        else:
            cols, vals, b = g["out"], (a @ T) / scales[last], b - float(a @ t)
        size = float(np.abs(vals).max(initial=0.0))
        if size == 0.0:
            # The quantity is a constant (e.g. two identical outputs): 0 <= b holds everywhere, with no
            # margin to ask for (a tie is a win), or nowhere; the row 0 <= b says which.
            hi.append(b)
            continue
        nz = np.flatnonzero(vals)
        row = len(hi)
        coo_r += [row] * (nz.size + 1)
        coo_c += list(np.asarray(cols)[nz]) + [f]
        coo_v += list(vals[nz] / size) + [1.0]
        hi.append(b / size)
    m = len(hi)
    extra = sp.csr_matrix((coo_v, (coo_r, coo_c)), shape=(m, model.num_vars))
    return replace(model, A=sp.vstack([model.A, extra], format="csr"),
                   row_lo=np.concatenate([model.row_lo, np.full(m, -np.inf)]),
                   row_hi=np.concatenate([model.row_hi, hi]),
                   row_names=model.row_names + [f"user_constraint_{i}" for i in range(m)]), m
