"""The bounded-variable dual simplex's statuses, tolerances, parameter indices and its :class:`State`
(a numba structref); see :mod:`lrmilp.lp.bvdual`."""

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

FASTMATH = {"reassoc", "contract"}
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

