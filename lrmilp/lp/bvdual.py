"""Bounded-variable dual simplex for the margin LP, compiled with numba.

The margin LP over u in R^d and t::

    maximise t
    s.t.  G[i] . u + w[i] * t <= r[i]      rows i = 0..m-1   (w[i] = 1: hyperplane row, 0: plain row)
          lo <= u <= hi                     (finite box: variable bounds, not rows)
          t_lo <= t <= t_cap                (finite)

Hyperplane rows have unit-norm ``G[i]``, so t is a Euclidean margin; plain rows are domain rows (they
are stored scaled to unit norm, and their multipliers are unscaled on output).  d is large (up to 1000)
and m small (0..40, at most a few hundred), so the basis is the m x m one of the row form
``G u + w t + z = r`` with slacks z >= 0, not the (d+1) x (d+1) active-row basis of
:mod:`lrmilp.chebyshev`.  Variables are indexed ``0..d-1`` (u), ``d`` (t), ``d+1+i`` (slack of row i).

Method: the bounded-variable ("boxed") dual simplex of minimise -t.

* An explicit dense inverse of the basis matrix, updated by one rank-one (product-form) step per pivot
  and recomputed from the basis columns every :data:`REFACTOR_EVERY` pivots.
* Every structural variable is boxed, so any basis is made dual feasible by putting each nonbasic u_k
  and t at the bound its reduced cost asks for; only slacks (z >= 0, no upper bound) can be genuinely
  dual infeasible.  The slack basis is dual feasible (u's reduced costs are 0, t's is -1, so t sits at
  t_cap) and is the cold start; a warm :func:`add_row` puts the new row's slack in the basis, which
  keeps every reduced cost, so a child LP starts dual feasible from its parent's optimum.
* Leaving row: largest primal infeasibility scaled by the exact dual steepest-edge weight
  ``||e_p' B^-1||^2`` (cheap with an explicit m x m inverse).
* Ratio test: bound flipping ("long step").  In increasing ratio order, breakpoints are passed (their
  variables flipped to the other bound) while the leaving row stays infeasible, found by a weighted
  selection in expected O(n) rather than a sort; then Harris: the remaining ratios up to the smallest
  Harris bound are ties and the largest pivot among them enters.  Ties left with a reduced cost of the
  wrong sign get their cost shifted to make it 0 (no dual infeasibility is ever carried).
* Degeneracy.  The cold start is totally dual degenerate (every u has reduced cost 0), and so is any
  LP whose optimum is t = t_cap (then it is a feasibility problem in u): with zero costs the dual
  simplex has no measure of progress, and Bland's rule, though finite, needs 1e5 pivots on 20 x 300
  instances.  So costs are perturbed (:data:`PERTURB`, in the direction that keeps every reduced cost
  feasible) at a cold start and after :data:`PERTURB_AFTER` consecutive degenerate pivots.  When the
  perturbed (or shifted) LP is optimal the true costs are restored, the reduced costs recomputed, and
  the dual infeasibilities this may leave are removed by primal simplex pivots (the basis stays
  primal feasible), so the answer is optimal for the true LP.  Bland's rule remains the last resort
  after :data:`DEGENERATE_LIMIT` degenerate pivots despite the perturbation.
* Numerical safety: relative pivot tolerance; the pivot element is computed twice (from the pivot row
  and from the entering column) and a mismatch forces a refactorisation first; a singular
  refactorisation, or a slack that turns dual infeasible after one, falls back to a cold start from
  the current point (:data:`MAX_RESTARTS` per :func:`solve`), and then to ``NUMERICAL_TROUBLE``.

Nothing here is trusted for a final answer without a check a caller can make:
:func:`certify_point` (a feasible point's margin) and :func:`certify_bound` (an upper bound from any
multipliers) do not use the basis, and bracket the optimum.

The state is a :class:`State` (a numba structref: one reference, cheap to pass between compiled
functions, cacheable) holding preallocated arrays for at most M rows, which the ``@njit`` functions
mutate; everything is callable from Python (about 2 us per call) and from ``@njit`` code.  Typical use
by a depth-first search::

    S = new_state(M, d); saved = new_state(M, d)
    load_problem(S, G, r, w, lo, hi, t_lo, t_cap)       # cold start included; init(S, hint) for a hint
    solve(S, MAX_PIVOTS)                                  # root
    copy_into(saved, S, 0)                                # keep the parent
    add_row(S, g, rhs, 1.0); solve(S, MAX_PIVOTS)         # child
    copy_into(S, saved, m_parent)                         # back to the parent (its rows are in S)

Caveat of numba's cache: a caller compiled with ``cache=True`` in another module keeps its own copy of
these functions and is not recompiled when this file changes; clear its ``__pycache__`` then.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.core import types
from numba.experimental import structref

# ---------------------------------------------------------------------------------------------------
# Statuses
OPTIMAL = 0
"""Primal feasible (within the primal tolerance) and dual feasible: the basis is optimal."""
ITERATION_LIMIT = 1
"""``max_pivots`` pivots without reaching optimality; the state is a valid basis and :func:`solve`
may be called again."""
INFEASIBLE = 2
"""A row stays violated by more than the primal tolerance even with every nonbasic variable at its
most favourable bound (dual unbounded): no (u, t) in the bounds satisfies the rows."""
NUMERICAL_TROUBLE = 3
"""The basis could not be kept accurate even after a cold restart; re-solve with another LP solver."""

# Nonbasic / basic status of a variable
AT_LOWER = 0
AT_UPPER = 1
BASIC = 2

# ---------------------------------------------------------------------------------------------------
# Tolerances and limits
PRIMAL_FEAS = 1e-11
"""A basic variable is infeasible when it violates a bound by more than PRIMAL_FEAS * xscale, with
xscale = max_k max(|lo_k|, |hi_k|) the length scale of the box (every row is unit-norm or zero, so
slacks and t are lengths in u-space too).  Relative, so boxes from 1e-3 to 1e3 behave alike; above the
rounding error of a slack evaluated at a point of that magnitude."""
HARRIS_TOL = 1e-9
"""Harris tolerance of the dual ratio test: ratios up to the smallest (dual slack + HARRIS_TOL) /
|pivot entry| are ties, and the largest pivot among them enters.  Costs no accuracy: a tie left with a
wrong-signed reduced cost has its cost shifted, and shifts are removed before the answer."""
FLIP_TOL = 1e-13
"""Wrong-signed reduced costs beyond this are repaired in the dual phase (shifted after a pivot,
flipped after a refactorisation); below it they are rounding noise."""
CLEAN_DUAL_TOL = 1e-12
"""After perturbations and shifts are removed, primal simplex pivots run until no reduced cost has
the wrong sign by more than this.  An optimum with such a residue is off by at most CLEAN_DUAL_TOL
times the variable's range."""
SLACK_DUAL_BAD = 1e-7
"""In the dual phase, a nonbasic slack whose recomputed reduced cost is below -SLACK_DUAL_BAD after a
refactorisation means the duals drifted: the basis is abandoned for a cold start."""
PERTURB = 1e-8
"""Size of the cost perturbation: nonbasic reduced costs move away from zero by PERTURB * (1 + h) *
(1 + |c_j|), h in [0, 1) a fixed pseudo-random sequence.  Far above FLIP_TOL and HARRIS_TOL, so it
really breaks ties; small enough that the clean-up after removing it takes few pivots."""
PERTURB_AFTER = 5
"""Consecutive degenerate dual pivots of an unperturbed solve after which costs are perturbed."""
PIVOT_TOL = 1e-9
"""Relative pivot tolerance: entries of a pivot row (dual phase) or column (primal phase) below
PIVOT_TOL times its largest entry are never pivoted on."""
PIVOT_ABS = 1e-12
"""Absolute floor of the pivot tolerance (rows are unit-norm, so basis entries are O(1))."""
PIVOT_AGREE = 1e-8
"""The pivot element from the pivot row and from the entering column must agree to this relative
accuracy; otherwise the inverse is refactorised before pivoting."""
SINGULAR_TOL = 1e-11
"""A refactorisation whose partial-pivoting pivot falls below SINGULAR_TOL times its column's largest
entry declares the basis singular (-> cold start)."""
RATIO_TIE = 1e-12
"""In Bland mode, ratios within this of the minimum are ties (broken by the smallest index)."""
DEGENERATE_STEP = 1e-12
"""A dual step (reduced-cost change per unit pivot entry) at most this long is degenerate; a primal
step is degenerate when it moves the basic variables by at most the primal tolerance."""
DEGENERATE_LIMIT = 100
"""Consecutive degenerate pivots (despite the perturbation) after which Bland's rule is used until a
pivot makes progress."""
REFACTOR_EVERY = 50
"""Pivots (counted across solves, warm starts and copies) between recomputations of the inverse,
primal values and reduced costs from scratch."""
MAX_PIVOTS = 5000
"""Default pivot limit of one :func:`solve` (a safety net)."""
MAX_RESTARTS = 1
"""Cold restarts one :func:`solve` may do after numerical trouble before giving up."""
SELECT_SAMPLE = 15
"""The bound-flipping selection's first partition value is a quantile of this many sampled ratios."""

# Index of the float parameters (``fpar``) and integer counters (``ipar``)
F_PTOL = 0
"""Absolute primal tolerance, PRIMAL_FEAS * xscale."""
N_FPAR = 1
I_M = 0
"""Rows in use."""
I_SINCE = 1
"""Pivots since the inverse was last computed from scratch."""
I_PERTURBED = 2
"""1 while the costs are perturbed or shifted."""
I_CLEANUP = 3
"""1 while the true costs are back but dual infeasibilities may remain (primal clean-up pending)."""
I_LAST = 4
"""Pivots of the last :func:`solve` (dual and primal)."""
I_PIVOTS = 5
"""Statistics from here on (kept by :func:`copy_into`'s destination): pivots,"""
I_REFACTORS = 6
"""refactorisations,"""
I_RESTARTS = 7
"""cold restarts after numerical trouble,"""
I_PERTURBS = 8
"""perturbations (also the salt of the next one),"""
I_PRIMAL = 9
"""primal clean-up pivots and flips,"""
I_FLIPS = 10
"""bound flips of the dual ratio test."""
N_IPAR = 11

_GOLDEN = 0.6180339887498949
_FASTMATH = {"reassoc", "contract"}
"""LLVM flags of the kernel: reassociation lets sums (dot products) vectorise, contraction allows fused
multiply-adds.  No 'nnan'/'ninf': infinite bounds and ratios are compared on purpose."""


# ---------------------------------------------------------------------------------------------------
# State

@structref.register
class _StateType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class State(structref.StructRefProxy):
    """All arrays of one LP, for at most M rows in dimension d (made by :func:`new_state`).  Only
    ``[:m]`` of the row arrays and ``[:d+1+m]`` of the variable arrays are meaningful.

    G (M, d) rows as stored (plain rows scaled to unit norm); r, w (M,) right-hand sides, t
    coefficients; rowscale (M,) stored row i = rowscale[i] * the caller's row i; lb, ub (d+1+M,) bounds
    of all variables (lo / t_lo / 0 and hi / t_cap / +inf); lo, hi (d,) views of them; fpar, ipar
    parameters and counters (``F_*``, ``I_*``); basis (M,) the variable basic in each position;
    status (d+1+M,) int8 AT_LOWER / AT_UPPER / BASIC; Binv (M, M) the inverse basis matrix; xB (M,)
    basic values; cost (d+1+M,) costs of min -t (perturbed or shifted at times); dj (d+1+M,) reduced
    costs (0 at basic variables).  Then scratch: alpha (pivot row), col (entering column), vec, xs
    (u and t values), cidx, cabs, crat, chb, cdec, perm, pbuf, samp (ratio test), work (M, M)."""


_FIELDS = ("G", "r", "w", "rowscale", "lb", "ub", "lo", "hi", "fpar", "ipar", "basis", "status", "Binv", "xB",
           "cost", "dj", "alpha", "col", "vec", "xs", "cidx", "cabs", "crat", "chb", "cdec", "perm", "pbuf",
           "samp", "work")
structref.define_proxy(State, _StateType, list(_FIELDS))


@njit(cache=True)
def _arrays(S: State) -> tuple:
    return (S.G, S.r, S.w, S.rowscale, S.lb, S.ub, S.lo, S.hi, S.fpar, S.ipar, S.basis, S.status, S.Binv, S.xB,
            S.cost, S.dj)


def _field_property(i: int, name: str) -> property:
    return property(lambda self: _arrays(self)[i], doc=f"The state's ``{name}`` array (shares its memory).")


for _i, _name in enumerate(_FIELDS[:16]):  # Python-side access to the non-scratch arrays (inspection, tests)
    setattr(State, _name, _field_property(_i, _name))


@njit(cache=True)
def new_state(capacity: int, d: int) -> State:
    """An empty state for at most ``capacity`` rows in dimension ``d`` (then :func:`load_problem`)."""
    M = max(capacity, 1)
    n = d + 1 + M
    lb = np.zeros(n)
    ub = np.full(n, np.inf)
    return State(np.zeros((M, d)), np.zeros(M), np.zeros(M), np.ones(M), lb, ub, lb[:d], ub[:d],
                 np.zeros(N_FPAR), np.zeros(N_IPAR, np.int64), np.zeros(M, np.int64),
                 np.full(n, AT_LOWER, np.int8), np.zeros((M, M)), np.zeros(M), np.zeros(n), np.zeros(n),
                 np.zeros(n), np.zeros(M), np.zeros(M), np.zeros(d + 1), np.zeros(n, np.int64),
                 np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, np.int64), np.zeros(n, np.int64),
                 np.zeros(SELECT_SAMPLE), np.zeros((M, M)))


# ---------------------------------------------------------------------------------------------------
# Small helpers.  Array fields are bound to locals before loops: a structref field read is a call.

@njit(cache=True, fastmath=_FASTMATH)
def _store_row(S: State, i: int, g: np.ndarray, rhs: float, wt: float) -> None:
    """Row i := (g, rhs, wt); plain rows (wt == 0) are scaled to unit norm (zero rows are kept)."""
    G = S.G
    d = G.shape[1]
    sc = 1.0
    if wt == 0.0:
        nrm = 0.0
        for k in range(d):
            nrm += g[k] * g[k]
        nrm = np.sqrt(nrm)
        if nrm > 0.0:
            sc = 1.0 / nrm
    for k in range(d):
        G[i, k] = g[k] * sc
    S.r[i] = rhs * sc
    S.w[i] = wt
    S.rowscale[i] = sc


@njit(cache=True, fastmath=_FASTMATH)
def _fill_structural(S: State, basic_zero: bool) -> None:
    """S.xs := the values of u and t (basic ones from xB, or 0 when ``basic_zero``)."""
    xs, lb, ub, status, basis, xB = S.xs, S.lb, S.ub, S.status, S.basis, S.xB
    d = xs.size - 1
    m = S.ipar[I_M]
    for k in range(d + 1):
        xs[k] = lb[k] if status[k] == AT_LOWER else ub[k]
    for i in range(m):
        j = basis[i]
        if j <= d:
            xs[j] = 0.0 if basic_zero else xB[i]


@njit(cache=True, fastmath=_FASTMATH)
def _recompute_primal(S: State) -> None:
    """xB := B^-1 (r - A_N x_N) from the current inverse and nonbasic positions."""
    _fill_structural(S, True)
    G, r, w, Binv, xB, xs, v = S.G, S.r, S.w, S.Binv, S.xB, S.xs, S.vec
    d = G.shape[1]
    m = S.ipar[I_M]
    for i in range(m):
        acc = r[i] - w[i] * xs[d]
        for k in range(d):
            acc -= G[i, k] * xs[k]
        v[i] = acc
    for i in range(m):
        acc = 0.0
        for k in range(m):
            acc += Binv[i, k] * v[k]
        xB[i] = acc


@njit(cache=True, fastmath=_FASTMATH)
def _t_position(S: State) -> int:
    basis = S.basis
    d = S.G.shape[1]
    for i in range(S.ipar[I_M]):
        if basis[i] == d:
            return i
    return -1


@njit(cache=True, fastmath=_FASTMATH)
def _recompute_duals(S: State) -> float:
    """dj := cost - y A with y = c_B B^-1 (O(m d)).  Returns the most negative reduced cost of a
    nonbasic slack (0 if none)."""
    G, w, Binv, cost, dj, status, basis = S.G, S.w, S.Binv, S.cost, S.dj, S.status, S.basis
    y, a = S.vec, S.alpha
    d = G.shape[1]
    m = S.ipar[I_M]
    for k in range(m):
        y[k] = 0.0
    for i in range(m):
        c = cost[basis[i]]
        if c != 0.0:
            for k in range(m):
                y[k] += c * Binv[i, k]
    for k in range(d):
        a[k] = 0.0
    yw = 0.0
    for i in range(m):
        yi = y[i]
        if yi != 0.0:
            for k in range(d):
                a[k] += yi * G[i, k]
            yw += yi * w[i]
    for k in range(d):
        dj[k] = 0.0 if status[k] == BASIC else cost[k] - a[k]
    dj[d] = 0.0 if status[d] == BASIC else cost[d] - yw
    worst = 0.0
    for i in range(m):
        j = d + 1 + i
        if status[j] == BASIC:
            dj[j] = 0.0
        else:
            dj[j] = cost[j] - y[i]
            worst = min(worst, dj[j])
    return worst


@njit(cache=True, fastmath=_FASTMATH)
def _flip_wrong_signs(S: State) -> int:
    """Put every nonbasic boxed variable at the bound its reduced cost asks for (no xB update)."""
    status, dj = S.status, S.dj
    d = S.G.shape[1]
    n = 0
    for j in range(d + 1):
        st = status[j]
        if st == AT_LOWER and dj[j] < -FLIP_TOL:
            status[j] = AT_UPPER
            n += 1
        elif st == AT_UPPER and dj[j] > FLIP_TOL:
            status[j] = AT_LOWER
            n += 1
    return n


@njit(cache=True, fastmath=_FASTMATH)
def _invert(S: State) -> bool:
    """Binv := inverse of the basis columns, by Gauss-Jordan with partial pivoting.  False (Binv
    garbage) when the basis is numerically singular."""
    G, w, basis, W, Bi, cmax = S.G, S.w, S.basis, S.work, S.Binv, S.vec
    d = G.shape[1]
    m = S.ipar[I_M]
    for c in range(m):
        j = basis[c]
        mx = 0.0
        for i in range(m):
            if j < d:
                v = G[i, j]
            elif j == d:
                v = w[i]
            else:
                v = 1.0 if i == j - d - 1 else 0.0
            W[i, c] = v
            mx = max(mx, abs(v))
            Bi[i, c] = 1.0 if i == c else 0.0
        cmax[c] = mx
    for c in range(m):
        pr = c
        best = abs(W[c, c])
        for i in range(c + 1, m):
            if abs(W[i, c]) > best:
                best = abs(W[i, c])
                pr = i
        if not best > SINGULAR_TOL * cmax[c]:  # also catches a zero column (cmax 0) and NaN
            return False
        if pr != c:
            for k in range(m):
                tmp = W[c, k]
                W[c, k] = W[pr, k]
                W[pr, k] = tmp
                tmp = Bi[c, k]
                Bi[c, k] = Bi[pr, k]
                Bi[pr, k] = tmp
        piv = 1.0 / W[c, c]
        for k in range(m):
            W[c, k] *= piv
            Bi[c, k] *= piv
        for i in range(m):
            if i != c:
                f = W[i, c]
                if f != 0.0:
                    for k in range(c, m):
                        W[i, k] -= f * W[c, k]
                    for k in range(m):
                        Bi[i, k] -= f * Bi[c, k]
    return True


@njit(cache=True, fastmath=_FASTMATH)
def _refactor(S: State, dual_phase: bool) -> bool:
    """Recompute the inverse, the reduced costs and the primal values from scratch; in the dual phase
    also flip boxed variables to match their reduced costs.  False when the basis is singular, or (dual
    phase) a slack has drifted dual infeasible."""
    ipar = S.ipar
    ipar[I_REFACTORS] += 1
    ipar[I_SINCE] = 0
    if not _invert(S):
        return False
    worst = _recompute_duals(S)
    if dual_phase:
        if worst < -SLACK_DUAL_BAD:
            return False
        _flip_wrong_signs(S)
    _recompute_primal(S)
    return True


@njit(cache=True, fastmath=_FASTMATH)
def _true_costs(S: State) -> None:
    cost = S.cost
    cost[:] = 0.0
    cost[S.G.shape[1]] = -1.0


@njit(cache=True, fastmath=_FASTMATH)
def _perturb(S: State) -> None:
    """Move the cost (and reduced cost) of every nonbasic variable away from zero, in the direction
    that keeps it dual feasible, by a distinct pseudo-random amount (breaks dual degeneracy)."""
    status, cost, dj, ipar = S.status, S.cost, S.dj, S.ipar
    nv = S.G.shape[1] + 1 + ipar[I_M]
    salt = ipar[I_PERTURBS]
    for j in range(nv):
        st = status[j]
        if st == BASIC:
            continue
        h = ((j + 1 + 7919 * salt) * _GOLDEN) % 1.0
        delta = PERTURB * (1.0 + h) * (1.0 + abs(cost[j]))
        if st == AT_UPPER:
            delta = -delta
        cost[j] += delta
        dj[j] += delta
    ipar[I_PERTURBED] = 1
    ipar[I_PERTURBS] += 1


@njit(cache=True, fastmath=_FASTMATH)
def _cold_start(S: State, hint: np.ndarray) -> None:
    """The slack basis: t at t_cap, u_k at the bound nearest hint[k] (at lo_k without a hint);
    costs perturbed (every u is dual degenerate at this basis)."""
    status, dj, basis, Binv, lo, hi, ipar = S.status, S.dj, S.basis, S.Binv, S.lo, S.hi, S.ipar
    d = lo.size
    m = ipar[I_M]
    use_hint = hint.size == d
    _true_costs(S)
    for k in range(d):
        if use_hint and abs(hi[k] - hint[k]) < abs(hint[k] - lo[k]):
            status[k] = AT_UPPER
        else:
            status[k] = AT_LOWER
        dj[k] = 0.0
    status[d] = AT_UPPER
    dj[d] = -1.0
    for i in range(m):
        basis[i] = d + 1 + i
        status[d + 1 + i] = BASIC
        dj[d + 1 + i] = 0.0
        for k in range(m):
            Binv[i, k] = 1.0 if i == k else 0.0
    ipar[I_SINCE] = 0
    ipar[I_CLEANUP] = 0
    ipar[I_PERTURBED] = 0
    if m > 0:
        _perturb(S)
    _recompute_primal(S)


@njit(cache=True, fastmath=_FASTMATH)
def _restart(S: State) -> None:
    """Cold start from the current point (its u as the hint)."""
    _fill_structural(S, False)
    hint = S.xs[:-1].copy()
    S.ipar[I_RESTARTS] += 1
    _cold_start(S, hint)


@njit(cache=True, fastmath=_FASTMATH)
def _pivot_row(S: State, p: int) -> float:
    """S.alpha := e_p' B^-1 A over the nonbasic variables, 0 at the basic ones (O(m d)); returns its
    largest |entry|."""
    G, w, Binv, basis, alpha = S.G, S.w, S.Binv, S.basis, S.alpha
    d = G.shape[1]
    m = S.ipar[I_M]
    for k in range(d):
        alpha[k] = 0.0
    at = 0.0
    for i in range(m):
        ri = Binv[p, i]
        if ri != 0.0:
            for k in range(d):
                alpha[k] += ri * G[i, k]
            at += ri * w[i]
        alpha[d + 1 + i] = ri
    alpha[d] = at
    for i in range(m):  # exactly 0 at basic variables, so loops over all variables need no status test
        alpha[basis[i]] = 0.0
    amax = 0.0
    for j in range(d + 1 + m):
        amax = max(amax, abs(alpha[j]))
    return amax


@njit(cache=True, fastmath=_FASTMATH)
def _column(S: State, q: int) -> None:
    """S.col := B^-1 A_q (O(m^2))."""
    G, w, Binv, col = S.G, S.w, S.Binv, S.col
    d = G.shape[1]
    m = S.ipar[I_M]
    if q < d:
        for i in range(m):
            acc = 0.0
            for k in range(m):
                acc += Binv[i, k] * G[k, q]
            col[i] = acc
    elif q == d:
        for i in range(m):
            acc = 0.0
            for k in range(m):
                acc += Binv[i, k] * w[k]
            col[i] = acc
    else:
        for i in range(m):
            col[i] = Binv[i, q - d - 1]


@njit(cache=True, fastmath=_FASTMATH)
def _update_inverse(S: State, p: int) -> None:
    """Rank-one update of B^-1 when the variable with column S.col (B^-1 A_q) replaces position p."""
    Binv, col, ipar = S.Binv, S.col, S.ipar
    m = ipar[I_M]
    inv = 1.0 / col[p]
    for k in range(m):
        Binv[p, k] *= inv
    for i in range(m):
        f = col[i]
        if i != p and f != 0.0:
            for k in range(m):
                Binv[i, k] -= f * Binv[p, k]
    ipar[I_SINCE] += 1
    ipar[I_PIVOTS] += 1


@njit(cache=True, fastmath=_FASTMATH)
def _pivot_mismatch(S: State, p: int, q: int) -> bool:
    """The pivot element from the row and from the column disagree, or is tiny."""
    a = S.col[p]
    b = S.alpha[q]
    return abs(a - b) > PIVOT_AGREE * max(abs(a), abs(b)) or abs(a) <= PIVOT_ABS


@njit(cache=True, fastmath=_FASTMATH)
def _primal_infeasibility(S: State) -> float:
    """Largest bound violation of a basic variable."""
    lb, ub, xB, basis = S.lb, S.ub, S.xB, S.basis
    worst = 0.0
    for i in range(S.ipar[I_M]):
        j = basis[i]
        worst = max(worst, lb[j] - xB[i], xB[i] - ub[j])
    return worst


@njit(cache=True, fastmath=_FASTMATH)
def _bfrt_select(crat: np.ndarray, cdec: np.ndarray, perm: np.ndarray, buf: np.ndarray, nc: int,
                 target: float, first: float) -> int:
    """The bound-flipping breakpoint.  In increasing ratio order, breakpoints are passed while the sum
    of their ``cdec`` stays below ``target``; returns the position b in ``perm`` (rearranged) of the
    first breakpoint that reaches it: perm[:b] are passed, all with ratios <= the rest's.  -1 when even
    all of them stay below (the row cannot be satisfied).

    Weighted quickselect, expected O(nc) instead of a sort.  Partitions are branch-free (each element
    is written to both ends of ``buf`` and one end advances): ratios are in random order, and a
    branching partition mispredicts about every other element.  Ties (many ratios are 0) are split off
    by a second pass, which also guarantees progress.  ``first`` (if not NaN) is the first partition
    value: a good guess of the answer leaves a small range after one pass over all."""
    lo = 0
    hi = nc
    acc = 0.0
    pv = first
    while hi - lo > 16:
        if not pv == pv:  # NaN: median of three
            a = crat[perm[lo]]
            b = crat[perm[(lo + hi) // 2]]
            c = crat[perm[hi - 1]]
            pv = max(min(a, b), min(max(a, b), c))
        lt = lo
        ge = hi - 1
        sl = 0.0
        se = 0.0
        for i in range(lo, hi):
            k = perm[i]
            v = crat[k]
            less = v < pv
            buf[lt] = k
            buf[ge] = k
            lt += 1 if less else 0
            ge -= 0 if less else 1
            sl += cdec[k] if less else 0.0
            se += cdec[k] if v == pv else 0.0
        for i in range(lo, hi):  # [lo, lt) < pv <= [lt, hi)
            perm[i] = buf[i]
        if acc + sl >= target:
            hi = lt
            pv = np.nan
            continue
        acc += sl
        eq = lt
        gt = hi - 1
        for i in range(lt, hi):
            k = perm[i]
            same = crat[k] == pv
            buf[eq] = k
            buf[gt] = k
            eq += 1 if same else 0
            gt -= 0 if same else 1
        for i in range(lt, hi):  # [lt, eq) == pv < [eq, hi)
            perm[i] = buf[i]
        if acc + se >= target:
            for pos in range(lt, eq):  # ties: pass them in any order
                acc += cdec[perm[pos]]
                if acc >= target:
                    return pos
            return eq - 1  # only by rounding of the sums
        acc += se
        lo = eq
        pv = np.nan
    for i in range(lo + 1, hi):  # insertion sort of the small rest
        k = perm[i]
        v = crat[k]
        j = i - 1
        while j >= lo and crat[perm[j]] > v:
            perm[j + 1] = perm[j]
            j -= 1
        perm[j + 1] = k
    for pos in range(lo, hi):
        acc += cdec[perm[pos]]
        if acc >= target:
            return pos
    return -1


# ---------------------------------------------------------------------------------------------------
# The two phases

@njit(cache=True, fastmath=_FASTMATH)
def _dual_phase(S: State, budget: int, restarts_left: int) -> tuple[int, int, int]:
    """Dual simplex pivots until primal feasible.  Returns (status, pivots, cold restarts used)."""
    G, w, Binv, xB, dj, cost = S.G, S.w, S.Binv, S.xB, S.dj, S.cost
    basis, status, lb, ub, ipar = S.basis, S.status, S.lb, S.ub, S.ipar
    alpha, col, v = S.alpha, S.col, S.vec
    cidx, cabs, crat, chb, cdec, perm, pbuf, smp = S.cidx, S.cabs, S.crat, S.chb, S.cdec, S.perm, S.pbuf, S.samp
    d = G.shape[1]
    m = ipar[I_M]
    nv = d + 1 + m
    ptol = S.fpar[F_PTOL]
    pivots = 0
    restarts = 0
    degen = 0
    perturbed = False  # in this call (cost shifts also set I_PERTURBED, but break no ties)
    while True:
        if ipar[I_SINCE] >= REFACTOR_EVERY:
            if not _refactor(S, True):
                if restarts >= restarts_left:
                    return NUMERICAL_TROUBLE, pivots, restarts
                restarts += 1
                degen = 0
                _restart(S)
        if degen >= PERTURB_AFTER and not perturbed:
            _perturb(S)
            perturbed = True
            degen = 0
        bland = degen >= DEGENERATE_LIMIT

        # ---- pricing: the leaving row (dual steepest edge, or Bland's smallest index)
        p = -1
        best = 0.0
        bestj = nv
        for i in range(m):
            j = basis[i]
            x = xB[i]
            if x < lb[j] - ptol:
                inf = lb[j] - x
            elif x > ub[j] + ptol:
                inf = x - ub[j]
            else:
                continue
            if bland:
                if j < bestj:
                    bestj = j
                    p = i
            else:
                beta = 0.0
                for k in range(m):
                    beta += Binv[i, k] * Binv[i, k]
                score = inf * inf / max(beta, 1e-300)
                if score > best:
                    best = score
                    p = i
        if p < 0:
            return OPTIMAL, pivots, restarts
        if pivots >= budget:
            return ITERATION_LIMIT, pivots, restarts
        jp = basis[p]
        lbp = lb[jp]
        ubp = ub[jp]
        if xB[p] < lbp:
            sgn = 1.0  # leaves at its lower bound
            delta = lbp - xB[p]
        else:
            sgn = -1.0  # leaves at its upper bound
            delta = xB[p] - ubp
        amax = _pivot_row(S, p)
        tolpiv = max(PIVOT_TOL * amax, PIVOT_ABS)

        # ---- ratio-test candidates.  With s >= 0 the dual step, reduced costs move as
        # dj += s * sgn * alpha; a candidate's "dual slack" sig * dj (sig = +1 at lower, -1 at upper)
        # shrinks at rate |alpha| and reaches 0 at its ratio.  Basic entries of alpha are 0.  The
        # compaction is branch-free (every variable is written at slot nc, candidates advance it).
        nc = 0
        for j in range(nv):
            sig = 1.0 - 2.0 * status[j]
            a = sgn * sig * alpha[j]
            cidx[nc] = j
            cabs[nc] = -a
            chb[nc] = sig * dj[j]  # the dual slack, for now
            cdec[nc] = -a * (ub[j] - lb[j])  # +inf for slacks: they cannot be passed
            nc += 1 if a < -tolpiv else 0
        tmax = np.inf
        for c in range(nc):
            ds = chb[c]
            inv = 1.0 / cabs[c]
            crat[c] = max(ds, 0.0) * inv
            chb[c] = (ds + HARRIS_TOL) * inv
            tmax = min(tmax, chb[c])
        tmax = max(tmax, 0.0)

        cq = -1
        npass = 0  # candidates perm[:npass] are the passed breakpoints, flipped below
        if bland:
            rmin = np.inf
            for c in range(nc):
                rmin = min(rmin, crat[c])
            bq = nv
            for c in range(nc):
                if crat[c] <= rmin + RATIO_TIE and cidx[c] < bq:
                    bq = cidx[c]
                    cq = c
        elif nc > 0:
            # Bound-flipping ratio test with Harris ties.  Breakpoints are passed (their variables
            # flipped) while the leaving row stays infeasible by more than ptol; each reduces its
            # infeasibility by |alpha_j| width_j.  Then, among the rest, every ratio up to the
            # smallest Harris bound is a tie, and the largest pivot among the ties enters.
            target = delta - ptol
            wgroup = 0.0
            for c in range(nc):
                wgroup += cdec[c] if crat[c] <= tmax else 0.0
            if wgroup < target:
                # The first tie group is passed: select the breakpoint.  First partition value: the
                # sampled ratio quantile at about twice the rank target / mean(cdec) (finite ones).
                sdec = 0.0
                for c in range(nc):
                    sdec += cdec[c] if cdec[c] < np.inf else 0.0
                    perm[c] = c
                first = np.nan
                if nc > 4 * SELECT_SAMPLE and sdec > 0.0:
                    rank = 2.0 * target / (sdec / nc) + 2.0
                    pos = int(rank * SELECT_SAMPLE / nc) if rank < nc else SELECT_SAMPLE
                    if pos < SELECT_SAMPLE:
                        for i in range(SELECT_SAMPLE):
                            smp[i] = crat[(i * nc) // SELECT_SAMPLE + (nc // (2 * SELECT_SAMPLE))]
                        smp.sort()
                        first = smp[pos]
                npass = _bfrt_select(crat, cdec, perm, pbuf, nc, target, first)
                if npass < 0:
                    nc = 0  # every breakpoint passed, the row still violated: no entering variable
                    npass = 0
                else:
                    for c in range(npass):  # passed: out of the entering choice
                        crat[perm[c]] = np.inf
                        chb[perm[c]] = np.inf
                    tmax = np.inf
                    for c in range(nc):
                        tmax = min(tmax, chb[c])
                    tmax = max(tmax, 0.0)
            babs = 0.0
            for c in range(nc):
                if crat[c] <= tmax and cabs[c] > babs:
                    babs = cabs[c]
                    cq = c
        if cq < 0:
            # Dual unbounded: the row cannot be satisfied.  Trust that only on a fresh inverse.
            if ipar[I_SINCE] > 0:
                ipar[I_SINCE] = REFACTOR_EVERY
                continue
            return INFEASIBLE, pivots, restarts
        q = cidx[cq]
        s = crat[cq]

        # ---- entering column; the pivot element computed both ways must agree
        _column(S, q)
        if _pivot_mismatch(S, p, q):
            if ipar[I_SINCE] > 0:
                ipar[I_SINCE] = REFACTOR_EVERY
                continue
            if abs(col[p]) <= PIVOT_ABS:  # fresh inverse and still no usable pivot
                return NUMERICAL_TROUBLE, pivots, restarts
        piv = col[p]

        # ---- dual step.  The passed breakpoints are flipped to their other bound; any other reduced
        # cost left with the wrong sign (a Harris tie, or rounding) has its cost shifted to make it 0,
        # which keeps the dual objective monotone; shifts are removed with the perturbation when the LP
        # is optimal.
        xq = lb[q] if status[q] == AT_LOWER else ub[q]
        step = s * sgn
        if npass > 0:
            for i in range(m):
                v[i] = 0.0
            for c in range(npass):
                j = cidx[perm[c]]
                if status[j] == AT_LOWER:
                    status[j] = AT_UPPER
                    dx = ub[j] - lb[j]
                else:
                    status[j] = AT_LOWER
                    dx = lb[j] - ub[j]
                if j < d:
                    for i in range(m):
                        v[i] += G[i, j] * dx
                else:
                    for i in range(m):
                        v[i] += w[i] * dx
            ipar[I_FLIPS] += npass
            for i in range(m):  # xB -= B^-1 (A_F dx_F)
                acc = 0.0
                for k in range(m):
                    acc += Binv[i, k] * v[k]
                xB[i] -= acc
        worst = 0.0
        for j in range(nv):
            dj[j] += step * alpha[j]  # alpha is 0 at basic variables (their dj stays 0)
            worst = min(worst, (1.0 - 2.0 * status[j]) * dj[j])
        dj[q] = 0.0
        if worst < -FLIP_TOL:
            for j in range(nv):
                if j != q and (1.0 - 2.0 * status[j]) * dj[j] < -FLIP_TOL:
                    cost[j] -= dj[j]
                    dj[j] = 0.0
                    ipar[I_PERTURBED] = 1

        # ---- primal step: x_p goes to its bound, x_q enters
        bnd = lbp if sgn > 0.0 else ubp
        theta = (xB[p] - bnd) / piv
        for i in range(m):
            xB[i] -= theta * col[i]
        xB[p] = xq + theta
        basis[p] = q
        status[q] = BASIC
        status[jp] = AT_LOWER if sgn > 0.0 else AT_UPPER
        dj[jp] = step  # s >= 0 at lower, -s at upper: dual feasible
        _update_inverse(S, p)
        pivots += 1
        if s <= DEGENERATE_STEP:
            degen += 1
        else:
            degen = 0


@njit(cache=True, fastmath=_FASTMATH)
def _primal_phase(S: State, budget: int) -> tuple[int, int]:
    """Primal simplex pivots from a primal feasible basis until no reduced cost has the wrong sign by
    more than CLEAN_DUAL_TOL (Dantzig pricing, Harris ratio test, bound flips of the entering
    variable).  Returns (status, pivots)."""
    xB, dj, basis, status, col, alpha, lb, ub, ipar = S.xB, S.dj, S.basis, S.status, S.col, S.alpha, S.lb, S.ub, S.ipar
    d = S.G.shape[1]
    m = ipar[I_M]
    nv = d + 1 + m
    ptol = S.fpar[F_PTOL]
    pivots = 0
    degen = 0
    while True:
        if ipar[I_SINCE] >= REFACTOR_EVERY:
            if not _refactor(S, False):
                return NUMERICAL_TROUBLE, pivots
        bland = degen >= DEGENERATE_LIMIT
        q = -1
        best = CLEAN_DUAL_TOL
        for j in range(nv):
            st = status[j]
            if st == BASIC:
                continue
            viol = -dj[j] if st == AT_LOWER else dj[j]
            if viol > best:
                q = j
                if bland:
                    break
                best = viol
        if q < 0:
            return OPTIMAL, pivots
        if pivots >= budget:
            return ITERATION_LIMIT, pivots
        dirq = 1.0 if status[q] == AT_LOWER else -1.0
        _column(S, q)
        cmax = 0.0
        for i in range(m):
            cmax = max(cmax, abs(col[i]))
        tolpiv = max(PIVOT_TOL * cmax, PIVOT_ABS)
        # Harris pass 1: the longest step keeping every basic variable within its bounds + ptol.
        # x_B(theta) = x_B + theta * rate with rate = -dirq * col.
        hmax = np.inf
        for i in range(m):
            rate = -dirq * col[i]
            j = basis[i]
            if rate < -tolpiv:
                hmax = min(hmax, (xB[i] - lb[j] + ptol) / -rate)
            elif rate > tolpiv and ub[j] < np.inf:
                hmax = min(hmax, (ub[j] - xB[i] + ptol) / rate)
        # pass 2: among the rows blocking within hmax, the largest |rate| leaves.
        p = -1
        theta = np.inf
        babs = 0.0
        to_lower = True
        for i in range(m):
            rate = -dirq * col[i]
            j = basis[i]
            if rate < -tolpiv:
                ti = max(xB[i] - lb[j], 0.0) / -rate
                low = True
            elif rate > tolpiv and ub[j] < np.inf:
                ti = max(ub[j] - xB[i], 0.0) / rate
                low = False
            else:
                continue
            if bland:
                if ti < theta - RATIO_TIE or (ti <= theta + RATIO_TIE and (p < 0 or j < basis[p])):
                    p, theta, to_lower = i, ti, low
            elif ti <= hmax and abs(rate) > babs:
                p, theta, babs, to_lower = i, ti, abs(rate), low
        width = ub[q] - lb[q]
        xq = lb[q] if status[q] == AT_LOWER else ub[q]
        if width <= theta:
            # the entering variable reaches its other bound first: flip it, no basis change
            if not width < np.inf:
                return NUMERICAL_TROUBLE, pivots  # unbounded ray: impossible for a bounded LP
            for i in range(m):
                xB[i] -= width * dirq * col[i]
            status[q] = AT_UPPER if status[q] == AT_LOWER else AT_LOWER
            pivots += 1
            degen = 0
            continue
        _pivot_row(S, p)
        if _pivot_mismatch(S, p, q):
            if ipar[I_SINCE] > 0:
                ipar[I_SINCE] = REFACTOR_EVERY
                continue
            if abs(col[p]) <= PIVOT_ABS:
                return NUMERICAL_TROUBLE, pivots
        mu = dj[q] / col[p]
        for j in range(nv):
            dj[j] -= mu * alpha[j]  # alpha is 0 at basic variables
        jp = basis[p]
        dj[jp] = -mu
        dj[q] = 0.0
        for i in range(m):
            xB[i] -= theta * dirq * col[i]
        xB[p] = xq + dirq * theta
        status[jp] = AT_LOWER if to_lower else AT_UPPER
        status[q] = BASIC
        basis[p] = q
        _update_inverse(S, p)
        pivots += 1
        if theta * cmax <= ptol:
            degen += 1
        else:
            degen = 0


# ---------------------------------------------------------------------------------------------------
# Public kernel

@njit(cache=True, fastmath=_FASTMATH)
def load_problem(S: State, G: np.ndarray, r: np.ndarray, w: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 t_lo: float, t_cap: float) -> None:
    """Store an LP with m0 = len(r) rows (G (m0, d), r, w (m0,)) and its bounds, reset the counters
    and cold start (every u_k at lo_k; :func:`init` restarts with a hint)."""
    Slo, Shi, lb, ub, ipar = S.lo, S.hi, S.lb, S.ub, S.ipar
    d = Slo.size
    m0 = r.size
    if m0 > S.G.shape[0]:
        raise ValueError("load_problem: more rows than the state's capacity")
    if lo.size != d or hi.size != d or (m0 > 0 and G.shape[1] != d) or w.size != m0:
        raise ValueError("load_problem: dimension mismatch")
    if not (np.isfinite(t_lo) and np.isfinite(t_cap) and t_lo <= t_cap):
        raise ValueError("load_problem: t_lo <= t_cap, both finite, is required")
    for k in range(d):
        if not (np.isfinite(lo[k]) and np.isfinite(hi[k]) and lo[k] <= hi[k]):
            raise ValueError("load_problem: lo <= hi, all finite, is required")
    for i in range(m0):
        if not (np.isfinite(r[i]) and np.isfinite(w[i]) and np.all(np.isfinite(G[i]))):
            raise ValueError("load_problem: rows must be finite")
    xscale = 0.0
    for k in range(d):
        Slo[k] = lo[k]
        Shi[k] = hi[k]
        xscale = max(xscale, abs(lo[k]), abs(hi[k]))
    if not xscale > 0.0:
        xscale = 1.0
    lb[d] = t_lo
    ub[d] = t_cap
    S.fpar[F_PTOL] = PRIMAL_FEAS * xscale
    for i in range(m0):
        _store_row(S, i, G[i], r[i], w[i])
    ipar[:] = 0
    ipar[I_M] = m0
    _cold_start(S, np.empty(0))


@njit(cache=True, fastmath=_FASTMATH)
def init(S: State, hint: np.ndarray) -> None:
    """Cold start on the stored rows: all slacks basic, t at t_cap, u_k at the bound nearest hint[k]
    (``hint`` of size d; any other size, e.g. ``np.empty(0)``: every u_k at lo_k)."""
    _cold_start(S, hint)


@njit(cache=True, fastmath=_FASTMATH)
def add_row(S: State, g: np.ndarray, rhs: float, wt: float) -> None:
    """Append the row g . u + wt * t <= rhs; its slack enters the basis (O(m^2 + d)).  Reduced costs
    are unchanged (the new multiplier is 0), so a dual feasible basis stays dual feasible."""
    G, Bi, basis, ipar = S.G, S.Binv, S.basis, S.ipar
    d = G.shape[1]
    m = ipar[I_M]
    if m >= G.shape[0]:
        raise ValueError("add_row: state is full")
    if g.size != d or not (np.isfinite(rhs) and np.isfinite(wt) and np.all(np.isfinite(g))):
        raise ValueError("add_row: a finite row of size d is required")
    _fill_structural(S, False)  # current u, t (before the new row exists)
    _store_row(S, m, g, rhs, wt)
    wm = S.w[m]
    for k in range(m + 1):
        Bi[m, k] = 0.0
        Bi[k, m] = 0.0
    Bi[m, m] = 1.0
    # B_new = [[B, 0], [a_B, 1]]  ->  inverse [[B^-1, 0], [-a_B B^-1, 1]]
    for i in range(m):
        j = basis[i]
        if j < d:
            coef = G[m, j]
        elif j == d:
            coef = wm
        else:
            coef = 0.0
        if coef != 0.0:
            for k in range(m):
                Bi[m, k] -= coef * Bi[i, k]
    xs = S.xs
    acc = S.r[m] - wm * xs[d]
    for k in range(d):
        acc -= G[m, k] * xs[k]
    S.xB[m] = acc
    basis[m] = d + 1 + m
    S.status[d + 1 + m] = BASIC
    S.cost[d + 1 + m] = 0.0
    S.dj[d + 1 + m] = 0.0
    ipar[I_M] = m + 1


@njit(cache=True, fastmath=_FASTMATH)
def copy_into(dst: State, src: State, first_row: int) -> None:
    """dst := src (the m-row part only; dst's statistics counters ``I_PIVOTS``... are kept).  Rows
    ``[:first_row]`` of G, r, w are not copied: 0 for a full copy, the parent's row count when restoring
    a parent into a state that descends from it (same rows).  O(m^2 + (m - first_row) d + d)."""
    sG, dG, sipar, dipar = src.G, dst.G, src.ipar, dst.ipar
    d = sG.shape[1]
    m = sipar[I_M]
    if m > dG.shape[0] or dG.shape[1] != d:
        raise ValueError("copy_into: destination too small or of another dimension")
    sr, sw, ss, dr, dw, ds = src.r, src.w, src.rowscale, dst.r, dst.w, dst.rowscale
    for i in range(first_row, m):
        for k in range(d):
            dG[i, k] = sG[i, k]
        dr[i] = sr[i]
        dw[i] = sw[i]
        ds[i] = ss[i]
    slb, sub, dlb, dub = src.lb, src.ub, dst.lb, dst.ub
    for k in range(d + 1):
        dlb[k] = slb[k]
        dub[k] = sub[k]
    dst.fpar[:] = src.fpar
    for k in range(I_PIVOTS):  # the basis-defining entries; dst's statistics keep accumulating
        dipar[k] = sipar[k]
    sB, dB, sbas, dbas, sx, dx = src.Binv, dst.Binv, src.basis, dst.basis, src.xB, dst.xB
    for i in range(m):
        dbas[i] = sbas[i]
        dx[i] = sx[i]
        for k in range(m):
            dB[i, k] = sB[i, k]
    sst, dst_, sc, dc, sd, dd = src.status, dst.status, src.cost, dst.cost, src.dj, dst.dj
    for j in range(d + 1 + m):
        dst_[j] = sst[j]
        dc[j] = sc[j]
        dd[j] = sd[j]


@njit(cache=True, fastmath=_FASTMATH)
def solve(S: State, max_pivots: int) -> int:
    """Re-optimise from the state's basis (dual feasible, or pending clean-up) with at most
    ``max_pivots`` pivots (e.g. MAX_PIVOTS); returns OPTIMAL, ITERATION_LIMIT, INFEASIBLE or
    NUMERICAL_TROUBLE.  Each pivot costs O(m d + m^2)."""
    ipar = S.ipar
    ptol = S.fpar[F_PTOL]
    pivots = 0
    restarts = 0
    result = NUMERICAL_TROUBLE
    for _ in range(4):  # dual phase, clean-up; again only if the clean-up lost primal feasibility
        result, pv, rs = _dual_phase(S, max_pivots - pivots, MAX_RESTARTS - restarts)
        pivots += pv
        restarts += rs
        if result != OPTIMAL:
            break
        if ipar[I_PERTURBED] == 1:
            _true_costs(S)
            _recompute_duals(S)
            ipar[I_PERTURBED] = 0
            ipar[I_CLEANUP] = 1
        if ipar[I_CLEANUP] == 0:
            break
        result, pv = _primal_phase(S, max_pivots - pivots)
        pivots += pv
        ipar[I_PRIMAL] += pv
        if result != OPTIMAL:
            break
        ipar[I_CLEANUP] = 0
        if _primal_infeasibility(S) <= ptol:
            break
        # rounding pushed a basic variable out of bounds during the clean-up: back to the dual phase
        if _flip_wrong_signs(S) > 0:
            _recompute_primal(S)
        result = NUMERICAL_TROUBLE
    ipar[I_LAST] = pivots
    return result


@njit(cache=True, fastmath=_FASTMATH)
def solution(S: State, u_out: np.ndarray) -> float:
    """u_out[:d] := the basic solution's u; returns its t (nonbasic at bounds, basic from xB)."""
    _fill_structural(S, False)
    xs = S.xs
    d = xs.size - 1
    for k in range(d):
        u_out[k] = xs[k]
    return xs[d]


@njit(cache=True, fastmath=_FASTMATH)
def duals(S: State, y_out: np.ndarray) -> None:
    """y_out[:m] := the basis's row multipliers y = c_B B^-1 of max t (true costs) for the caller's
    (unscaled) rows: row ``t`` of B^-1, or 0 while t is nonbasic.  y >= 0 (up to the dual tolerances)
    at an optimal basis."""
    Binv, rowscale = S.Binv, S.rowscale
    m = S.ipar[I_M]
    pt = _t_position(S)
    for i in range(m):
        y_out[i] = Binv[pt, i] * rowscale[i] if pt >= 0 else 0.0


@njit(cache=True)
def num_rows(S: State) -> int:
    """Rows in use."""
    return S.ipar[I_M]


@njit(cache=True)
def last_pivots(S: State) -> int:
    """Pivots of the last :func:`solve`."""
    return S.ipar[I_LAST]


# ---------------------------------------------------------------------------------------------------
# Certification, independent of the pivoting

@njit(cache=True)
def certify_point(G: np.ndarray, r: np.ndarray, w: np.ndarray, m: int, lo: np.ndarray, hi: np.ndarray,
                  u: np.ndarray) -> tuple[float, float]:
    """Clip u into [lo, hi] (in place); return (margin, plain_violation): margin = min over rows with
    w_i > 0 of (r_i - G_i u) / w_i (+inf if none), plain_violation = max over rows with w_i == 0 of
    G_i u - r_i (-inf if none; <= 0 when u satisfies them).  (u, min(margin, t_cap)) is feasible for
    the margin LP when plain_violation <= 0 and that value is >= t_lo."""
    d = lo.size
    for k in range(d):
        u[k] = min(max(u[k], lo[k]), hi[k])
    margin = np.inf
    viol = -np.inf
    for i in range(m):
        a = 0.0
        for k in range(d):
            a += G[i, k] * u[k]
        if w[i] > 0.0:
            margin = min(margin, (r[i] - a) / w[i])
        elif w[i] == 0.0:
            viol = max(viol, a - r[i])
    return margin, viol


@njit(cache=True)
def certify_bound(G: np.ndarray, r: np.ndarray, w: np.ndarray, m: int, lo: np.ndarray, hi: np.ndarray,
                  t_cap: float, y: np.ndarray) -> float:
    """An upper bound on the margin LP's optimum from any multipliers y (m,): with y+ = max(y, 0) and
    s = y+ . w, every feasible (u, t) has s t <= y+ . r - (y+' G) u, so for s > 0
    t <= (y+ . r + sum_k max(-(y+' G)_k lo_k, -(y+' G)_k hi_k)) / s; the bound is min(t_cap, that),
    or t_cap when s <= 0.  ``y`` is not modified.  Valid up to the rounding of these sums."""
    d = lo.size
    s = 0.0
    yr = 0.0
    for i in range(m):
        yi = max(y[i], 0.0)
        s += yi * w[i]
        yr += yi * r[i]
    if not s > 0.0:
        return t_cap
    box = 0.0
    for k in range(d):
        c = 0.0
        for i in range(m):
            yi = y[i]
            if yi > 0.0:
                c += yi * G[i, k]
        box += max(-c * lo[k], -c * hi[k])
    return min(t_cap, (yr + box) / s)


# ---------------------------------------------------------------------------------------------------
# Python convenience (not for the hot path)

def solve_margin_lp(G: np.ndarray, r: np.ndarray, w: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    t_lo: float, t_cap: float, hint: np.ndarray | None = None,
                    max_pivots: int = MAX_PIVOTS) -> tuple[float, np.ndarray, np.ndarray, int]:
    """Solve one margin LP from a cold start: (t, u, y, status), y the multipliers of the rows as
    given (see :func:`duals`).  ``t``/``u`` are the final basis's values whatever the status."""
    lo = np.ascontiguousarray(lo, dtype=np.float64)
    hi = np.ascontiguousarray(hi, dtype=np.float64)
    d = lo.size
    r = np.ascontiguousarray(r, dtype=np.float64).reshape(-1)
    m = r.size
    G = np.ascontiguousarray(G, dtype=np.float64).reshape(m, d)
    w = np.ascontiguousarray(w, dtype=np.float64).reshape(-1)
    S = new_state(m, d)
    load_problem(S, G, r, w, lo, hi, float(t_lo), float(t_cap))
    if hint is not None:
        init(S, np.ascontiguousarray(hint, dtype=np.float64))
    status = solve(S, max_pivots)
    u = np.empty(d)
    t = solution(S, u)
    y = np.zeros(m)
    duals(S, y)
    return t, u, y, int(status)


@njit(cache=True)
def install_basis(S: State, basis: np.ndarray, status: np.ndarray) -> bool:
    """Make ``basis`` (length m, the variable basic in each row position) with nonbasic positions
    ``status`` (length d + 1 + m) the state's basis: true costs, inverse, reduced costs and primal values
    recomputed from scratch, boxed variables moved to their dual feasible bounds.  False when that basis
    is singular or a slack is dual infeasible (the caller then cold starts with :func:`init`)."""
    d = S.lo.size
    m = S.ipar[I_M]
    bas, stat = S.basis, S.status
    for i in range(m):
        bas[i] = basis[i]
    for j in range(d + 1 + m):
        stat[j] = status[j]
    _true_costs(S)
    S.ipar[I_PERTURBED] = 0
    S.ipar[I_CLEANUP] = 0
    return _refactor(S, True)
