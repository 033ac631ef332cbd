"""The ``polygon`` geometry: a 1-D or 2-D box, each cell held as its exact polygon (interval in 1-D).

A hyperplane is decided by the signs of its values at the polygon's vertices; a cell is split by
clipping, and a part counts iff its inradius exceeds tol (area/perimeter brackets it; one 3-variable LP
decides the rest).  No LP per decision; tasks need prefixes, which this geometry does not build, so its
counts run serially.
"""

from __future__ import annotations

import numpy as np

from ..domains import Domain
from .base import Cells, LayerCut, PrefixRow, Visit


class PolygonCells(Cells):
    """Exact polygon clipping (d <= 2 over a box)."""

    name = "polygon"
    prefixes = False

    @classmethod
    def check(cls, domain: Domain) -> None:
        if not (domain.dim <= 2 and domain.bounded and domain.A_ub.shape[0] == 0):
            raise cls.refuse(domain, "a box of dimension 1 or 2")

    def root(self, rows: list[PrefixRow]) -> np.ndarray | None:
        if rows:
            raise ValueError("the polygon geometry builds no cells from task prefixes")
        dom = self.walk.domain
        cell = box_polygon(dom.lo, dom.hi)
        return cell if polygon_inradius(cell, self.walk.tol) > self.walk.tol else None

    def witness(self, cell: np.ndarray) -> tuple[np.ndarray, float]:
        return polygon_ball(cell, self.walk.tol)

    def split(self, cell: np.ndarray, layer: LayerCut, visit: Visit) -> None:
        self._neuron(layer, visit, 0, np.zeros(layer.width, dtype=bool), cell)

    def _neuron(self, layer: LayerCut, visit: Visit, j: int, states: np.ndarray, cell: np.ndarray) -> None:
        """Decide the layer's neurons from j on inside ``cell``."""
        A, c, norms, _, const = layer.planes
        n = A.shape[0]
        off = layer.offset
        walk = self.walk
        tol = walk.tol
        par = visit.parity
        mark = par.mark() if par is not None else None  # decisions below change it; the caller's path needs it back
        while j < n:
            if const[j]:
                s = bool(c[j] > 0)
            else:
                vals = (cell @ A[j] + c[j]) / norms[j]
                hi, lo = vals.max(), vals.min()
                if hi <= tol:
                    s = False
                    if hi > 0:
                        walk.thin(hi)
                        cell = clip_polygon(cell, A[j], c[j], False)  # drop the thin active sliver
                elif lo >= -tol:
                    s = True
                    if lo < 0:
                        walk.thin(-lo)
                        cell = clip_polygon(cell, A[j], c[j], True)
                else:
                    break
            states[j] = s
            if par is not None and not par.decide(off + j, s):
                par.undo(mark)
                return
            j += 1
        if j == n:
            visit.child(states, cell)
            if par is not None:
                par.undo(mark)
            return
        want = None if par is None else par.forced(off + j)  # a state the XORs imply
        for s in (True, False):
            if want is not None and want != s:
                continue
            part = clip_polygon(cell, A[j], c[j], s)
            r = polygon_inradius(part, tol)
            if r <= tol:
                walk.thin(r)
                continue
            states[j] = s  # later states are rewritten on every path before they are read
            if par is None:
                self._neuron(layer, visit, j + 1, states, part)
            else:
                before = par.mark()
                if par.decide(off + j, s):
                    self._neuron(layer, visit, j + 1, states, part)
                par.undo(before)
        if par is not None:
            par.undo(mark)


def box_polygon(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The box [lo, hi] as a polygon: its corners in cyclic order (a 1-D box: its two ends)."""
    if lo.size == 1:
        return np.array([[lo[0]], [hi[0]]])
    return np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])


def clip_polygon(poly: np.ndarray, a: np.ndarray, c: float, active: bool) -> np.ndarray:
    """The part of a convex polygon (or 1-D interval) on one side of a u + c = 0 (closed).

    Parameters
    ----------
    poly : numpy.ndarray
        (k, 2) vertices in cyclic order, or (2, 1) interval ends.
    a, c : numpy.ndarray, float
        The hyperplane a u + c = 0.
    active : bool
        Keep the side a u + c >= 0 (else <= 0).

    Returns
    -------
    numpy.ndarray
        The part's vertices (no rows when it is empty).

    Examples
    --------
    >>> import numpy as np
    >>> clip_polygon(np.array([[0.0], [2.0]]), np.array([1.0]), -1.0, True).ravel().tolist()
    [1.0, 2.0]
    """
    v = poly @ a + c
    if not active:
        v = -v
    if poly.shape[1] == 1:
        lo, hi = poly[0, 0], poly[1, 0]
        # 1-D: the interval [lo, hi] where v >= 0, v linear from v[0] at lo to v[1] at hi
        if v[0] >= 0 and v[1] >= 0:
            return poly
        if v[0] < 0 and v[1] < 0:
            return poly[:0]
        x = lo + (hi - lo) * v[0] / (v[0] - v[1])
        return np.array([[lo], [x]]) if v[0] >= 0 else np.array([[x], [hi]])
    out = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        vp, vq = v[i], v[(i + 1) % n]
        if vp >= 0:
            out.append(p)
        if (vp >= 0) != (vq >= 0):
            out.append(p + (q - p) * (vp / (vp - vq)))
    return np.array(out).reshape(-1, poly.shape[1])


def _outward_normals(poly: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit outward normals n_i and offsets r_i of a convex polygon's edges: n_i . x <= r_i inside."""
    edges = np.roll(poly, -1, axis=0) - poly
    lens = np.sqrt(np.einsum("ij,ij->i", edges, edges))
    keep = lens > 0
    normals = np.stack([edges[keep, 1], -edges[keep, 0]], axis=1) / lens[keep, None]
    inside = poly.mean(axis=0)
    flip = np.einsum("ij,ij->i", normals, inside - poly[keep]) > 0
    normals[flip] *= -1
    return normals, np.einsum("ij,ij->i", normals, poly[keep])


def _distance_to_boundary(poly: np.ndarray, point: np.ndarray) -> float:
    if poly.shape[1] == 1:
        return float(min(point[0] - poly[0, 0], poly[-1, 0] - point[0]))
    normals, rhs = _outward_normals(poly)
    return float(np.min(rhs - normals @ point))


def _largest_ball(poly: np.ndarray):
    """scipy's answer to max r s.t. a ball of radius r around x lies in the polygon (one LP)."""
    from scipy.optimize import linprog
    normals, rhs = _outward_normals(poly)
    return linprog([0, 0, -1], A_ub=np.c_[normals, np.ones(len(normals))], b_ub=rhs,
                   bounds=[(None, None)] * 3, method="highs")


def polygon_ball(poly: np.ndarray, tol: float) -> tuple[np.ndarray, float]:
    """A ball inside a convex polygon (interval in 1-D) of radius > tol when its inradius exceeds tol:
    centred at the vertex mean when that is deep enough, else the exact largest ball (one LP)."""
    point = poly.mean(axis=0)
    r = _distance_to_boundary(poly, point)
    if r > tol or poly.shape[1] == 1:
        return point, r
    res = _largest_ball(poly)
    return (res.x[:2], float(-res.fun)) if res.status == 0 else (point, r)


def polygon_inradius(poly: np.ndarray, tol: float) -> float:
    """Radius of the largest ball in a convex polygon (half-length for an interval), exact where it
    matters: only its comparison with ``tol`` is used.

    For a convex polygon area/perimeter <= r <= 2 area/perimeter, which decides most comparisons;
    in between, one 3-variable LP gives r.

    Parameters
    ----------
    poly : numpy.ndarray
        (k, 2) vertices in cyclic order, or (2, 1) interval ends.
    tol : float
        The radius the answer is compared with.

    Returns
    -------
    float
        A value on the same side of ``tol`` as the inradius (the inradius itself near ``tol``).

    Examples
    --------
    >>> import numpy as np
    >>> polygon_inradius(np.array([[0.0], [2.0]]), 1e-9)
    1.0
    """
    if poly.shape[1] == 1:
        return float(poly[-1, 0] - poly[0, 0]) / 2 if len(poly) == 2 else 0.0
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    edges = np.roll(poly, -1, axis=0) - poly
    per = float(np.sqrt(np.einsum("ij,ij->i", edges, edges)).sum())
    if per <= 0 or area <= 0:
        return 0.0
    if area / per > tol or 2 * area / per <= tol:
        return 2 * area / per if area / per > tol else area / per
    res = _largest_ball(poly)
    return float(-res.fun) if res.status == 0 else 0.0
