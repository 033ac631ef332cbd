"""The ``vertex`` geometry: every cell held by its vertices (bounded domains, 3 <= d <= VERTEX_MAX_DIM).

A hyperplane splits a cell by keeping the points on one side and adding the crossing point of every
pair that shares d-1 rows — every true edge among them — so each "misses / sliver / cuts" test is
exact arithmetic on the cell's points.  LPs are needed only for cells whose certified ball is not
above tol.
"""

from __future__ import annotations

import numpy as np

from ..domains import Domain
from ..lp.chebyshev import chebyshev_ball
from .base import Cells, LayerCut, PrefixRow, Visit

VERTEX_MAX_DIM = 6
"""Bounded domains of dimension 3..VERTEX_MAX_DIM use vertex geometry by default: every node holds its
cell's vertices, so every hyperplane test is exact arithmetic and LPs are needed only for thin cells."""
_BITS = [np.uint64(1 << b) for b in range(64)]  # row bit masks, made once: np.uint64() per split is not free


class VertexCells(Cells):
    """Cells as vertex sets (:class:`VertexCell`); bounded domains."""

    name = "vertex"

    def __init__(self, walk) -> None:
        super().__init__(walk)
        # Points within rounding noise of a hyperplane lie on it when a cell is clipped (far below tol,
        # so a ball certified inside a cell is off by a negligible part of tol at most).
        eps = walk.noise
        self.eps = eps
        self.on_plane = np.array([-eps, np.nextafter(eps, np.inf)])  # searchsorted cuts: below | on | above

    @classmethod
    def check(cls, domain: Domain) -> None:
        if not domain.bounded:
            raise cls.refuse(domain, "a bounded domain")

    def root(self, rows: list[PrefixRow]) -> "VertexCell | None":
        walk = self.walk
        dom = walk.domain
        box = (dom.lo, dom.hi) if dom.A_ub.shape[0] == 0 else None
        cell = VertexCell.of_domain(walk.rows, walk.rhs, box)
        for unit, cu, st in rows:
            if cell is None:
                return None
            h = np.append(unit, cu)  # homogeneous row: h (u, 1) = unit u + cu
            cell = cell.clip(h, st, cell.V @ h, self.on_plane)
        if cell is None:
            return None
        cell.ball = self.cell_ball(cell)
        return cell if cell.ball[1] > walk.tol else None

    def witness(self, cell: "VertexCell") -> tuple[np.ndarray, float] | None:
        p, r = self.cell_ball(cell) if cell.ball is None else cell.ball
        return (p[:-1], r) if r > self.walk.tol else None  # a cell clipped by a sliver may hold no ball

    def cell_ball(self, cell: "VertexCell") -> tuple[np.ndarray, float]:
        """An interior point of the cell (homogeneous) and a ball radius certified there; exact (one
        LP) only when the certified radius does not already exceed tol."""
        walk = self.walk
        p = cell.centroid()
        r = -float(cell.rows.dot(p).max())
        if r > walk.tol:
            return p, r
        t, u = chebyshev_ball(cell.rows[:, :-1], -cell.rows[:, -1], walk.cap)
        walk.stats.lps += 1
        if t <= walk.tol:
            walk.stats.lps_empty += 1
            walk.thin(t)
        return np.append(u, 1.0), t

    def _part_ball(self, cell: "VertexCell", h: np.ndarray, vals: np.ndarray, active: bool,
                   part: "VertexCell") -> tuple[np.ndarray, float]:
        """A ball in ``part``, the side ``active`` of hyperplane h (``vals``: h at the cell's points).

        Derived from the cell's ball B(p, r) in O(d), without the part's rows: if p is in the part at
        distance g from h, B(p, min(r, g)); else the hull of B(p, r) and the part's deepest point v
        (depth e) lies in the cell and holds B(p + lam (v - p), (1 - lam) r), lam = (r + |g|) / (r +
        |g| + e), which touches h from the part's side.  Only when that is not > tol: :meth:`cell_ball`.
        """
        if cell.ball is None:
            cell.ball = self.cell_ball(cell)
        p, r = cell.ball
        g = float(h.dot(p)) if active else -float(h.dot(p))
        if g >= 0:
            q, rho = p, min(r, g)
        else:
            i = vals.argmax() if active else vals.argmin()
            e = abs(float(vals[i]))
            rho = r * e / (r - g + e)
            q = p + (cell.V[i] - p) * ((r - g) / (r - g + e))
        return (q, rho) if rho > self.walk.tol else self.cell_ball(part)

    def split(self, cell: "VertexCell", layer: LayerCut, visit: Visit) -> None:
        A, c, _, safe, const = layer.planes
        units = np.concatenate([A, c[:, None]], axis=1) / safe[:, None]  # (u, 1) -> signed distance
        # Branch on hyperplanes far from the cell's centre first (fewer sub-cells to test them on).
        dist = np.abs(units.dot(cell.centroid()))
        order = np.argsort(-np.where(const, np.inf, dist)).tolist()
        self._neuron(layer, visit, units, order, 0, np.zeros(layer.width, dtype=bool), cell)

    def _neuron(self, layer: LayerCut, visit: Visit, units: np.ndarray, order: list[int], pos: int,
                states: np.ndarray, cell: "VertexCell") -> None:
        """Decide the neurons order[pos:] inside ``cell``."""
        c, const = layer.planes.c, layer.planes.const
        n = len(c)
        off = layer.offset
        walk = self.walk
        tol, eps, on_plane = walk.tol, self.eps, self.on_plane
        par = visit.parity
        mark = par.mark() if par is not None else None  # decisions below change it; the caller's path needs it back
        D = units.dot(cell.V.T)  # D[j]: signed distances of the cell's points to hyperplane j
        while pos < n:
            j = order[pos]
            if const[j]:
                s = bool(c[j] > 0)
            else:
                vals = D[j]
                hi, lo = vals.max(), vals.min()
                if hi <= tol:
                    s = False
                    if hi > eps:  # a sliver of the active side: cut it off
                        walk.thin(hi)
                        cell = cell.clip(units[j], False, vals, on_plane)
                        D = units.dot(cell.V.T)
                elif lo >= -tol:
                    s = True
                    if lo < -eps:
                        walk.thin(-lo)
                        cell = cell.clip(units[j], True, vals, on_plane)
                        D = units.dot(cell.V.T)
                else:
                    break
                walk.stats.bound_skips += 1
            states[j] = s
            if par is not None and not par.decide(off + j, s):
                par.undo(mark)
                return
            pos += 1
        if pos == n:
            visit.child(states, cell)
            if par is not None:
                par.undo(mark)
            return
        want = None if par is None else par.forced(off + j)  # a state the XORs imply
        parts = cell.split(units[j], vals, on_plane)
        for s, part in zip((True, False), parts):
            if part is None or (want is not None and want != s):
                continue
            p, r = self._part_ball(cell, units[j], vals, s, part)
            if r <= tol:
                continue
            part.ball = (p, r)
            states[j] = s  # later states are rewritten on every path before they are read
            if par is None:
                self._neuron(layer, visit, units, order, pos + 1, states, part)
            else:
                before = par.mark()
                if par.decide(off + j, s):
                    self._neuron(layer, visit, units, order, pos + 1, states, part)
                par.undo(before)
        if par is not None:
            par.undo(mark)


class VertexCell:
    """A bounded convex cell held by a superset of its vertices, in homogeneous coordinates.

    A point u is stored as (u, 1) and a row as (a, -b) for a u <= b, so the cell is
    {x : rows x <= 0, x[-1] = 1} and every affine function of u is one dot product (the arrays are
    tiny: the number of numpy calls sets the cost).  ``V`` holds every vertex of the cell (and
    possibly extra points of the cell: crossings of pairs that share d-1 tight rows without being an
    edge, which only happens at degenerate vertices).  So max/min of any affine function over V
    equal those over the cell, exactly.  Bit i of ``T[p]`` (packed in uint64 words) says point p
    lies on row i.  Clipping needs no LP and no convex hull: points on the kept side stay, and each
    pair across the hyperplane sharing >= d-1 tight rows (every true edge among them) adds its
    crossing point.
    """

    __slots__ = ("V", "T", "rows", "ball")
    MAX_POINTS = 20_000

    def __init__(self, V, T, rows):
        self.V, self.T, self.rows = V, T, rows
        self.ball = None

    @classmethod
    def of_domain(cls, rows: np.ndarray, rhs: np.ndarray, box: tuple[np.ndarray, np.ndarray] | None = None
                  ) -> "VertexCell | None":
        """The cell {u : rows u <= rhs} of the domain: a box's corners directly, any other polytope's
        vertices by qhull."""
        if box is not None:
            lo, hi = box
            V = np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(len(lo), -1).T
        else:
            from scipy.spatial import HalfspaceIntersection, QhullError
            t, u = chebyshev_ball(rows, rhs)
            if t <= 0:
                return None
            try:
                V = HalfspaceIntersection(np.c_[rows, -rhs], u).intersections
            except QhullError as e:
                raise RuntimeError(f"vertex geometry: qhull failed on the domain ({e}); use geometry='lp'") from None
        slack = rhs[None, :] - V @ rows.T
        scale = 1.0 + np.abs(rhs)[None, :] + np.abs(V) @ np.abs(rows).T
        return cls(np.c_[V, np.ones(len(V))], _pack_rows(np.abs(slack) <= 1e-9 * scale), np.c_[rows, -rhs])

    def centroid(self) -> np.ndarray:
        """The mean of the points, homogeneous (last entry 1)."""
        return self.V.sum(axis=0) / len(self.V)

    def clip(self, h: np.ndarray, active: bool, vals: np.ndarray, on_plane: np.ndarray) -> "VertexCell | None":
        """The part where h x >= 0 (active) or <= 0, as a new cell (None if empty)."""
        return self.split(h, vals, on_plane)[0 if active else 1]

    def split(self, h: np.ndarray, vals: np.ndarray, on_plane: np.ndarray) -> tuple["VertexCell | None", ...]:
        """Both parts, (h x >= 0, h x <= 0); ``vals`` are the points' values h x; ``on_plane`` = [-eps,
        next float above eps]: values within eps of 0 count as lying on the hyperplane.

        The points sorted by value are [below | on | above] the hyperplane, so each part is a slice
        plus the crossing points, which lie on the hyperplane and are computed once for both
        (``take``, not fancy indexing: it is several times cheaper on arrays this small).
        """
        perm = vals.argsort()
        vs = vals.take(perm)
        lo, hi = vs.searchsorted(on_plane).tolist()  # below: [:lo], on: [lo:hi], above: [hi:]
        V, T = self.V.take(perm, axis=0), self.T.take(perm, axis=0)
        word, bit = divmod(len(self.rows), 64)  # the bit of the hyperplane's row
        if word == T.shape[1]:
            T = np.concatenate([T, np.zeros((len(T), 1), dtype=np.uint64)], axis=1)
        mask = _BITS[bit]
        n, d = V.shape[0], V.shape[1] - 1
        if lo and hi < n:
            # rows shared by each pair across the hyperplane: popcount of the AND of packed bits
            if T.shape[1] == 1:
                both = T[hi:] & T[:lo, 0]  # (above, 1) & (below,) -> (above, below)
                f = (np.bitwise_count(both) >= d - 1).ravel().nonzero()[0]  # flat: 2-D nonzero is slow
                TX = (both.ravel().take(f) | mask)[:, None]
                ip, iq = np.divmod(f, lo)
            else:
                both = T[hi:, None, :] & T[None, :lo, :]
                ip, iq = np.nonzero(np.bitwise_count(both).sum(axis=2) >= d - 1)
                TX = both[ip, iq]
                TX[:, word] |= mask
            ip += hi
            P, vp = V.take(ip, axis=0), vs.take(ip)
            X = P + (V.take(iq, axis=0) - P) * (vp / (vp - vs.take(iq)))[:, None]
        else:
            X, TX = V[:0], T[:0]
        if n + len(X) > self.MAX_POINTS:
            raise RuntimeError("vertex geometry: too many points; use geometry='lp'")
        if hi > lo:
            T[lo:hi, word] |= mask
        return (VertexCell(np.concatenate([V[lo:], X]), np.concatenate([T[lo:], TX]),
                           np.concatenate([self.rows, -h[None]])) if hi < n else None,
                VertexCell(np.concatenate([V[:hi], X]), np.concatenate([T[:hi], TX]),
                           np.concatenate([self.rows, h[None]])) if lo else None)


def _pack_rows(B: np.ndarray) -> np.ndarray:
    """Boolean (n, m) -> (n, ceil(m/64)) uint64 words, bit i of row p = B[p, i]."""
    words = max(1, (B.shape[1] + 63) // 64)
    P = np.packbits(B, axis=1, bitorder="little")
    P = np.pad(P, ((0, 0), (0, words * 8 - P.shape[1])))
    return np.ascontiguousarray(P).view(np.uint64)
