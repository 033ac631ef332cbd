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
these functions and is not recompiled when this file changes; clear its ``__pycache__`` then.  This holds
between the package's own modules too: after a change, delete the ``*.nbi``/``*.nbc`` files under
``lrmilp/`` (and the callers' ``__pycache__``).

Layout: the names above are re-exported from the package's private modules:
``_state`` (statuses, tolerances, parameter indices, :class:`State`, :func:`new_state`), ``_basis``
(rows, the inverse and its updates, primal values and reduced costs, perturbation, cold starts),
``_ratio`` (the bound-flipping breakpoint selection), ``_phases`` (the dual and primal phases) and
``_api`` (the public kernel, the certificates, :func:`solve_margin_lp`).
"""

from __future__ import annotations

from ._state import (AT_LOWER, AT_UPPER, BASIC, CLEAN_DUAL_TOL, DEGENERATE_LIMIT, DEGENERATE_STEP, FLIP_TOL,
                     F_PTOL, HARRIS_TOL, INFEASIBLE, ITERATION_LIMIT, I_CLEANUP, I_FLIPS, I_LAST, I_M,
                     I_PERTURBED, I_PERTURBS, I_PIVOTS, I_PRIMAL, I_REFACTORS, I_RESTARTS, I_SINCE,
                     MAX_PIVOTS, MAX_RESTARTS, NUMERICAL_TROUBLE, N_FPAR, N_IPAR, OPTIMAL, PERTURB,
                     PERTURB_AFTER, PIVOT_ABS, PIVOT_AGREE, PIVOT_TOL, PRIMAL_FEAS, RATIO_TIE,
                     REFACTOR_EVERY, SELECT_SAMPLE, SINGULAR_TOL, SLACK_DUAL_BAD, State, new_state)
from ._api import (add_row, certify_bound, certify_point, copy_into, duals, init, install_basis, last_pivots,
                   load_problem, num_rows, solution, solve, solve_margin_lp)

__all__ = ["AT_LOWER", "AT_UPPER", "BASIC", "CLEAN_DUAL_TOL", "DEGENERATE_LIMIT", "DEGENERATE_STEP",
           "FLIP_TOL", "F_PTOL", "HARRIS_TOL", "INFEASIBLE", "ITERATION_LIMIT", "I_CLEANUP", "I_FLIPS",
           "I_LAST", "I_M", "I_PERTURBED", "I_PERTURBS", "I_PIVOTS", "I_PRIMAL", "I_REFACTORS", "I_RESTARTS",
           "I_SINCE", "MAX_PIVOTS", "MAX_RESTARTS", "NUMERICAL_TROUBLE", "N_FPAR", "N_IPAR", "OPTIMAL",
           "PERTURB", "PERTURB_AFTER", "PIVOT_ABS", "PIVOT_AGREE", "PIVOT_TOL", "PRIMAL_FEAS", "RATIO_TIE",
           "REFACTOR_EVERY", "SELECT_SAMPLE", "SINGULAR_TOL", "SLACK_DUAL_BAD", "State", "new_state",
           "add_row", "certify_bound", "certify_point", "copy_into", "duals", "init", "install_basis",
           "last_pivots", "load_problem", "num_rows", "solution", "solve", "solve_margin_lp"]
