"""The compiled inner loop of the ``dual`` geometry: one cell split by one layer's hyperplanes.

A *node* is a cell P of the domain box (the rows of the ReLU neurons decided above it) entering a
ReLU layer with n hyperplanes a_j u + c_j = 0 (unit normals).  :func:`split` enumerates the
sub-cells of P cut by those hyperplanes — every assignment of the layer's neurons whose region within
P holds a point of margin > tol — by a depth-first search over the neurons, all in numba, with the
margin LPs of :mod:`lrmilp.lp.bvdual` (the box is the LP's variable bounds, the basis is the path's
hyperplane rows, so an LP costs O(m d) per pivot however large d is).

Per neuron j of a sub-cell Q with witness w (a point of Q, margin t to Q's rows):

1. settled for all of P (global and box bounds, or the node's plan below): one child, no LP;
2. the side of w is certified by w itself when w is more than tol from the hyperplane;
3. the far side: a banked witness of this node inside Q and beyond the hyperplane; else a step from w
   straight across the hyperplane (clipped to the box), whose margins are measured exactly; else one
   warm-started LP (Q's basis plus the far row).  Certified independently of the pivoting: the margin
   is recomputed at the returned point (``certify_point``); a "not above tol" answer must be confirmed
   by the Lagrangian bound of the LP's multipliers (``certify_bound``).  An LP the simplex cannot
   solve, or whose certificates disagree, is retried from a cold start; if that fails too the node
   ends with ``FAILED`` and the caller redoes it with HiGHS (counted as a fallback).
4. A row is added to a child only when the other side is not empty (bound >= -noise); a side that
   exists but holds no point of margin > tol is *thin* (counted in ``thin_dropped``).

Before the search, the node's *plan* tests each unsettled neuron once against the whole of P, so a
hyperplane that misses P costs one LP, not one per sub-cell.

The rule is the tree's (:mod:`lrmilp.tolerance`): a region counts iff it holds a ball of radius > tol.
A point w of the box with margin t to every row gives the ball centred at clip(w, lo + rho, hi - rho),
rho = min(t / (1 + sqrt(d)), half the box's narrowest side): each coordinate moves at most rho, so the
centre's margin is at least t - rho sqrt(d) >= rho.  So margin > tol is necessary (a ball's centre has
margin >= its radius) and margin > (1 + sqrt(d)) tol sufficient; a leaf whose ball is not above tol
is flagged (``out_check``) and decided by the caller with the exact Chebyshev LP.

The search pauses (status ``PAUSED``) when its output buffer is full or after ``max_lps`` LPs, so the
caller can check time limits, emit regions and resume; the whole state lives in the workspace.

Layout: the names above are re-exported from the package's private modules: ``_workspace`` (statuses,
statistics indices, parameters, :class:`Workspace`), ``_parity`` (XOR propagation), ``_node`` (a node's
start, the witness bank, rows, the certified LP, a child's output), ``_plan`` (implications and the
node's plan), ``_search`` (:func:`split`) and ``_fused`` (:func:`split_count`).  The driver calls
:func:`split` and :func:`split_count` through this package's attributes (tests replace them there).
"""

from __future__ import annotations

from ._workspace import (BANK_SIZE, DONE, FAILED, IMPLY_MIN_COS, IMPLY_STEPS, N_STATS, PAUSED, S_BANK,
                         S_EMPTY, S_FALLBACK, S_IMPLY, S_LPS, S_PIVOTS, S_RETRY, S_SKIP, S_STEP, S_THIN,
                         T_LO_FACTOR, Workspace, new_workspace)
from ._parity import par_assign, par_forced
from ._node import add_row, load_node, start
from ._search import split
from ._fused import CHILD, ZERO_TOL, split_count



def ready() -> bool:
    """Can the compiled split run without compiling first: is each of its kernels loaded in this process,
    or in numba's cache for these sources?  False on a new machine until a first ``dual`` search has
    compiled and cached them (about two minutes, once).  Reads numba's cache index (not a public numba
    API): if that cannot be read, True (the kernels are then simply compiled on first use, as always)."""
    from numba.core.registry import CPUDispatcher
    from ...lp import bvdual
    kernels = [f for mod in (globals(), vars(bvdual)) for f in mod.values() if isinstance(f, CPUDispatcher)]
    try:
        return all(f.overloads or f._cache._cache_file._load_index() for f in kernels)
    except Exception:  # another numba: no index to read
        return True


__all__ = ["ready", "BANK_SIZE", "DONE", "FAILED", "IMPLY_MIN_COS", "IMPLY_STEPS", "N_STATS", "PAUSED", "S_BANK",
           "S_EMPTY", "S_FALLBACK", "S_IMPLY", "S_LPS", "S_PIVOTS", "S_RETRY", "S_SKIP", "S_STEP", "S_THIN",
           "T_LO_FACTOR", "Workspace", "new_workspace", "par_assign", "par_forced", "add_row", "load_node", "start",
           "split", "CHILD", "ZERO_TOL", "split_count"]
