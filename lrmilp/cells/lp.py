"""The ``lp`` geometry: a cell is a ball certificate, one warm HiGHS Chebyshev LP per hard decision.

Any domain (unbounded ones included).  A cell is the polytope of a node's rows (the domain's and
those the search path added) and is carried as a ball inside it (centre, radius > tol).  Deciding
neuron j of a layer inside a cell, cheapest test first:

1. its sign is fixed on the whole node (bounds, constancy, or the layer's plan below): one child;
2. the hyperplane cuts the cell's ball so that both parts hold a ball of radius > tol: both children,
   each with a smaller ball, no LP;
3. otherwise the side holding the ball's centre exists (no LP), and a banked ball or one LP (maximise
   the radius of a ball inside the cell and beyond the hyperplane) decides the other side.

All LPs run on one warm-started highspy model whose rows follow the search path (added on the way
down, deleted on the way up).  At each layer entry the *plan* tests every undecided hyperplane once
against the whole cell, so a hyperplane that misses it costs one LP rather than one per sub-cell, and
the far-side balls found are banked for the sub-cells.
"""

from __future__ import annotations

import numpy as np

from ..lp.chebyshev import HighsChebyshevLP
from .base import Cells, LayerCut, PrefixRow, Visit, chebyshev_row, settled_by_bounds

BALL_SLACK = 1e-9
"""Banked balls are shrunk by this relative amount, so LP optima that touch constraints up to
solver tolerance still certify a ball strictly inside."""

Ball = tuple[np.ndarray, float]


class LayerPlan:
    """Per layer entry: neurons fixed on the whole cell, and a bank of balls certified inside it.

    ``fixed[j]`` is 1/0 for a neuron whose sign is settled on the cell (``row[j]``: a sliver of the
    other side exists, so its row is still added), -1 for a neuron the cell's sub-cells must decide.
    Bank balls are kept with their signed distances to every hyperplane of the layer, so "is this
    ball inside the current sub-cell and beyond hyperplane j" is a few vector comparisons.
    """

    __slots__ = ("A", "c", "safe", "fixed", "row", "centers", "radii", "dist", "path", "order")

    def __init__(self, A: np.ndarray, c: np.ndarray, safe: np.ndarray, center: np.ndarray, radius: float) -> None:
        n = A.shape[0]
        self.A, self.c, self.safe = A, c, safe
        self.fixed = np.full(n, -1, dtype=np.int8)
        self.row = np.zeros(n, dtype=bool)
        self.centers = center[None, :].copy()
        self.radii = np.array([radius * (1 - BALL_SLACK)])
        self.dist = ((A @ center + c) / safe)[None, :]
        self.path: list[tuple[int, float]] = []  # (neuron, sign) of this layer's rows on the search path
        self.order = np.arange(n)  # the order the layer's neurons are branched in

    def add(self, center: np.ndarray, radius: float) -> None:
        self.centers = np.vstack([self.centers, center])
        self.radii = np.append(self.radii, radius * (1 - BALL_SLACK))
        self.dist = np.vstack([self.dist, (self.A @ center + self.c) / self.safe])

    def find(self, j: int, side: bool, path: list[tuple[int, float]] | None) -> Ball | None:
        """A banked ball inside the sub-cell of ``path`` and on side ``side`` of hyperplane j."""
        r = self.radii
        ok = (self.dist[:, j] if side else -self.dist[:, j]) >= r
        if not ok.any():
            return None
        if path:
            cand = np.flatnonzero(ok)
            idx = [i for i, _ in path]
            sg = np.array([s for _, s in path])
            inside = np.all(self.dist[np.ix_(cand, idx)] * sg >= r[cand, None], axis=1)
            if not inside.any():
                return None
            ok = np.zeros_like(ok)
            ok[cand[inside]] = True
        b = int(np.argmax(np.where(ok, r, -1.0)))
        return self.centers[b], float(r[b])


class LpCells(Cells):
    """Ball certificates and warm HiGHS LPs (module docstring); any domain."""

    name = "lp"

    def __init__(self, walk) -> None:
        super().__init__(walk)
        self.lp = HighsChebyshevLP(walk.domain.dim, walk.rows, walk.rhs, cap=walk.cap)

    def root(self, rows: list[PrefixRow]) -> Ball | None:
        for unit, cu, st in rows:
            self.lp.push(*chebyshev_row(unit, cu, 1.0, st))
        return self.ball()

    def ball(self) -> Ball | None:
        """The largest ball of the cell the LP's rows hold now (one LP), if its radius is above tol."""
        t, u = self.lp.solve()
        self.walk.stats.lps += 1
        return (u, t) if t > self.walk.tol else None

    def witness(self, cell: Ball) -> Ball:
        return cell

    def reset(self) -> None:
        while self.lp.stack:  # a stopped search leaves its path's rows behind
            self.lp.pop()
        self.walk.stats.lp_retries += self.lp.retries
        self.lp.retries = 0

    def split(self, cell: Ball, layer: LayerCut, visit: Visit) -> None:
        center, radius = cell
        plan = self._plan(layer, center, radius)
        self._neuron(layer, plan, visit, 0, np.zeros(layer.width, dtype=bool), center, radius)

    def _plan(self, layer: LayerCut, center: np.ndarray, radius: float) -> LayerPlan:
        """Decide, once for the node's whole cell P, every neuron of the layer that P does not split.

        A hyperplane that misses P would otherwise cost one LP in every sub-cell the layer's other
        neurons cut P into; here it costs at most one.  The far-side balls found are banked.
        """
        A, c, norms, safe, _ = layer.planes
        walk = self.walk
        tol, stats = walk.tol, walk.stats
        plan = LayerPlan(A, c, safe, center, radius)
        plan.fixed[:], plan.row[:], thin = settled_by_bounds(layer.planes, layer.node_bounds(), tol, walk.noise)
        stats.thin_dropped += thin
        fixed = plan.fixed
        stats.bound_skips += int(np.sum(fixed >= 0))
        live = np.flatnonzero(fixed < 0)
        delta = (A[live] @ center + c[live]) / norms[live]
        for j, dl in zip(live, delta):
            dist = abs(dl)
            s_center = bool(dl > 0)
            if dist < radius and (radius - dist) / 2 > tol:
                continue  # the ball proves both sides
            if plan.find(j, not s_center, None) is not None:
                continue
            self.lp.push(*chebyshev_row(A[j], c[j], norms[j], not s_center))
            t, u = self.lp.solve()
            self.lp.pop()
            stats.lps += 1
            if t > tol:
                plan.add(u, t)
            else:
                stats.lps_empty += 1
                walk.thin(t)
                fixed[j] = 1 if s_center else 0
                plan.row[j] = t > 0
        # Branch on peripheral hyperplanes first: one far from the cell's centre cuts few sub-cells,
        # so deciding it early tests it on fewer of them (fewer LPs that only prove a miss).
        live = np.flatnonzero(fixed < 0)
        far_first = live[np.argsort(-np.abs(plan.dist[0, live]))]
        plan.order = np.concatenate([np.flatnonzero(fixed >= 0), far_first])
        return plan

    def _neuron(self, layer: LayerCut, plan: LayerPlan, visit: Visit, pos: int, states: np.ndarray,
                center: np.ndarray, radius: float) -> None:
        """Decide the layer's neurons from position ``pos`` of ``plan.order`` on."""
        par = visit.parity
        mark = par.mark() if par is not None else None  # decisions below change it; the caller's path needs it back
        A, c, norms = layer.planes[:3]
        n = A.shape[0]
        off = layer.offset
        walk = self.walk
        tol = walk.tol
        fixed, order = plan.fixed, plan.order
        # Walk neurons the plan decided without recursion.
        while pos < n and fixed[order[pos]] >= 0:
            j = order[pos]
            s = bool(fixed[j])
            if plan.row[j]:
                self._descend(layer, plan, visit, pos, states, s, center, radius)
                if par is not None:
                    par.undo(mark)
                return
            states[j] = s
            if par is not None and not par.decide(off + j, s):
                par.undo(mark)
                return
            pos += 1
        if pos == n:
            visit.child(states, (center, radius))
            if par is not None:
                par.undo(mark)
            return
        j = order[pos]
        a, nrm = A[j], norms[j]
        delta = (a @ center + c[j]) / nrm  # signed distance of the ball centre to the hyperplane
        s_center = bool(delta > 0)
        dist = abs(delta)
        want = None if par is None else par.forced(off + j)  # a state the XORs imply
        if dist < radius and (radius - dist) / 2 > tol:
            # The hyperplane cuts the ball: both sides hold a ball, no LP needed.
            walk.stats.ball_splits += 1
            if want is None or want == s_center:
                self._descend(layer, plan, visit, pos, states, s_center, center, radius)
            if want is None or want != s_center:
                self._descend(layer, plan, visit, pos, states, not s_center, center, radius)
        elif want is not None and want == s_center:
            # The XORs rule the far side out: no need to decide whether it exists.
            self._descend(layer, plan, visit, pos, states, s_center, center, radius)
        else:
            self._far_side(layer, plan, visit, pos, states, center, radius, s_center, dist, want)
        if par is not None:
            par.undo(mark)

    def _far_side(self, layer, plan, visit, pos, states, center, radius, s_center, dist, want) -> None:
        """Neuron order[pos] whose hyperplane does not cut the ball: the far side by a banked ball or one
        LP, then the centre's side (unless the XORs rule it out)."""
        A, c, norms = layer.planes[:3]
        walk = self.walk
        j = plan.order[pos]
        # far: 1 = holds a ball > tol, 0 = at most a sliver, -1 = empty.
        hit = plan.find(j, not s_center, plan.path)
        self.lp.push(*chebyshev_row(A[j], c[j], norms[j], not s_center))
        if hit is not None:
            walk.stats.bank_hits += 1
            far, u, t = 1, hit[0], hit[1]
        else:
            t, u = self.lp.solve()
            walk.stats.lps += 1
            far = 1 if t > walk.tol else (0 if t > 0 else -1)
            if far == 1:
                plan.add(u, t)
            else:
                walk.stats.lps_empty += 1
                walk.thin(t)
        if far == 1:
            self._enter(layer, plan, visit, pos, states, not s_center, u, t, pushed=True)
        else:
            self.lp.pop()
        if want is not None:
            return  # the XORs rule the centre's side out
        if far >= 0 or dist < radius:
            self._descend(layer, plan, visit, pos, states, s_center, center, radius)
        else:
            # The far side is empty: the hyperplane misses the cell and its row would be redundant.
            self._enter(layer, plan, visit, pos, states, s_center, center, radius, pushed=False)

    def _descend(self, layer, plan, visit, pos, states, s, center, radius) -> None:
        """Enter the child where neuron order[pos] has state s, with its row, and a ball inside the child.

        The ball is the largest one inside the old ball on side s; when that is not above tol, one
        LP gives the child's exact ball (or proves the child holds none).
        """
        A, c, norms = layer.planes[:3]
        j = plan.order[pos]
        a, nrm = A[j], norms[j]
        self.lp.push(*chebyshev_row(a, c[j], nrm, s))
        depth = (a @ center + c[j]) / nrm * (1.0 if s else -1.0)  # > 0: centre on side s
        if depth < radius:
            new_r = (radius + depth) / 2
            center = center + (a / nrm) * ((1.0 if s else -1.0) * (new_r - depth))
            radius = new_r
            walk = self.walk
            if radius <= walk.tol:
                radius, center = self.lp.solve()
                walk.stats.lps += 1
                if radius <= walk.tol:
                    walk.stats.lps_empty += 1
                    walk.thin(radius)
                    self.lp.pop()
                    return
                plan.add(center, radius)
        self._enter(layer, plan, visit, pos, states, s, center, radius, pushed=True)

    def _enter(self, layer, plan, visit, pos, states, s, center, radius, *, pushed) -> None:
        j = plan.order[pos]
        # No need to restore states afterwards: a path rewrites every neuron's state before it is read.
        states[j] = s
        if pushed:
            plan.path.append((j, 1.0 if s else -1.0))
        par = visit.parity
        if par is None:
            self._neuron(layer, plan, visit, pos + 1, states, center, radius)
        else:
            mark = par.mark()
            if par.decide(layer.offset + j, s):
                self._neuron(layer, plan, visit, pos + 1, states, center, radius)
            par.undo(mark)
        # A stop unwinds past here by an exception: reset() then clears the path's rows at once.
        if pushed:
            plan.path.pop()
            self.lp.pop()
