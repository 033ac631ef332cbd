"""The exact partition of a 2-D slice into linear regions, by polygon clipping (no LP).

Cells are convex polygons in the slice parameters u, stored flat: ``V`` (vertices), ``cid`` (cell of
each vertex; a cell's vertices are contiguous and in cyclic order).  Every cell also carries the
current layer's pre-activations as an exact affine map, stored as ``L[c]`` of shape (3, neurons):
values ``u1 L[c, 0] + u2 L[c, 1] + L[c, 2]`` (valid on the whole cell).

Per ReLU layer: the neurons whose zero line crosses each cell are found from the vertex signs, and
in rounds every cell is split by the next neuron on its own list, all cells of a round at once
(vectorised over ragged polygons).  A part counts iff it holds a ball of radius > ``tol`` (as in
:mod:`lrmilp.cells.polygon`), so the count equals ``count_regions`` on the same AffineSlice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..domains import Domain
from ..cells.polygon import clip_polygon, polygon_inradius
from ..tolerance import RULE, resolve_tolerance
from ..errors import InputError
from ..network import Network
from ..validation import optional_positive_finite
from ._common import affine_rows

SNAP = 1e-11
"""A vertex lies on a neuron's zero line when |value| <= SNAP * (largest |value| of that neuron on the
cell's vertices): rounding in the interpolated values must not create slivers of width ~1e-16."""


def _starts(cid: np.ndarray) -> np.ndarray:
    """Index of each cell's first vertex (cells contiguous, numbered 0, 1, ... in order)."""
    counts = np.bincount(cid)
    return np.cumsum(counts) - counts


def _successor(cid: np.ndarray, st: np.ndarray) -> np.ndarray:
    """The next vertex of each vertex within its cell, cyclically."""
    nxt = np.arange(1, len(cid) + 1)
    nxt[st[1:] - 1] = st[:-1]
    nxt[-1] = st[-1]
    return nxt


def _inradius_ok(V: np.ndarray, cid: np.ndarray, tol: float) -> np.ndarray:
    """Per cell: does it hold a ball of radius > tol?  area/perimeter <= r <= 2 area/perimeter for a
    convex polygon decides almost every cell; the rest get the exact inradius."""
    st = _starts(cid)
    nxt = _successor(cid, st)
    x, y = V[:, 0], V[:, 1]
    area = 0.5 * np.abs(np.add.reduceat(x * y[nxt] - x[nxt] * y, st)) if len(st) else np.zeros(0)
    per = np.add.reduceat(np.hypot(x[nxt] - x, y[nxt] - y), st) if len(st) else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(per > 0, area / per, 0.0)
    ok = r > tol
    unsure = np.flatnonzero(~ok & (2 * r > tol) & (np.bincount(cid, minlength=len(st)) >= 3))
    ends = np.append(st[1:], len(cid))
    for c in unsure:
        ok[c] = polygon_inradius(V[st[c]:ends[c]], tol) > tol
    return ok


def _split_cells(V: np.ndarray, cid: np.ndarray, g: np.ndarray, eps: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Split every cell along the zero line of its own affine values g (one per vertex): vertices and
    cell ids of the parts, the parts of cell c numbered c (g >= 0) and n + c (g <= 0)."""
    n = int(cid[-1]) + 1
    nxt = _successor(cid, _starts(cid))
    g = np.where(np.abs(g) <= eps, 0.0, g)
    gq = g[nxt]
    ci = np.flatnonzero(((g > 0) & (gq < 0)) | ((g < 0) & (gq > 0)))
    t = g[ci] / (g[ci] - gq[ci])
    nv = len(V)
    VV = np.concatenate([V, V[ci] + t[:, None] * (V[nxt[ci]] - V[ci])])
    xref = np.full(nv, -1)
    xref[ci] = nv + np.arange(len(ci))  # the crossing point on the edge leaving vertex i
    idx = np.arange(nv)
    refs, ids = [], []
    for keep, offset in ((g >= 0, 0), (g <= 0, n)):
        slots = np.stack([np.where(keep, idx, -1), xref], axis=1).ravel()  # vertex i, then its crossing
        sel = slots >= 0
        refs.append(slots[sel])
        ids.append(np.repeat(cid, 2)[sel] + offset)
    return VV[np.concatenate(refs)], np.concatenate(ids)


def _take(mask: np.ndarray, cid: np.ndarray, anc: np.ndarray, *vertex_arrays):
    """The cells in ``mask`` (renumbered 0.. in order): (cid, anc, vertex arrays)."""
    keep = mask[cid]
    new_id = np.cumsum(mask) - 1
    return (new_id[cid[keep]], anc[mask]) + tuple(x[keep] for x in vertex_arrays)


def _relabel(cid: np.ndarray) -> np.ndarray:
    """Renumber contiguous cell ids 0, 1, ... in order of appearance."""
    if len(cid) == 0:
        return cid
    new = np.ones(len(cid), dtype=np.int64)
    new[1:] = cid[1:] != cid[:-1]
    return np.cumsum(new) - 1


def _reduce_any(mask: np.ndarray, st: np.ndarray) -> np.ndarray:
    return np.logical_or.reduceat(mask, st, axis=0)


def partition_layer(V: np.ndarray, cid: np.ndarray, L: np.ndarray, tol: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split the cells along every zero line of one ReLU layer, whose pre-activations on cell c are
    u1 L[c, 0] + u2 L[c, 1] + L[c, 2] (L: (cells, 3, neurons)).

    Returns (V, cid, anc): the new cells, and for each new cell the input cell it lies in.  Parts
    without a ball of radius > tol are dropped.
    """
    st = _starts(cid)
    F = V[:, :1] * L[cid, 0] + V[:, 1:] * L[cid, 1] + L[cid, 2]  # (vertices, neurons)
    eps = SNAP * np.abs(F).max(axis=0)
    crossing = (np.maximum.reduceat(F, st, axis=0) > eps) & (np.minimum.reduceat(F, st, axis=0) < -eps)
    m = crossing.sum(axis=1)
    rounds = int(m.max()) if len(m) else 0
    lists = np.argsort(~crossing, axis=1, kind="stable")[:, :rounds]  # each cell's crossing neurons
    a = np.arange(len(st))  # the input cell ("ancestor") of each pool cell
    done = []
    for r in range(rounds):
        fin = m[a] <= r  # its ancestor's list is used up: no zero line of this layer crosses it
        if fin.any():
            done.append(_take(fin, cid, a, V))
            cid, a, V = _take(~fin, cid, a, V)
        if not len(a):
            break
        av = a[cid]
        jv = lists[a, r][cid]
        g = V[:, 0] * L[av, 0, jv] + V[:, 1] * L[av, 1, jv] + L[av, 2, jv]
        e = eps[jv]
        st = _starts(cid)
        split = (np.maximum.reduceat(g, st) > e[st]) & (np.minimum.reduceat(g, st) < -e[st])
        if not split.any():
            continue
        cs, as_, Vs, gs, es = _take(split, cid, a, V, g, e)
        Vp, cp = _split_cells(Vs, cs, gs, es)  # parts 0..2ns-1, all non-empty, in order
        ok = _inradius_ok(Vp, cp, tol)
        keep = ok[cp]
        cu, au, Vu = _take(~split, cid, a, V)
        cid = np.concatenate([cu, len(au) + _relabel(cp[keep])])
        a = np.concatenate([au, np.concatenate([as_, as_])[ok]])
        V = np.concatenate([Vu, Vp[keep]])
    done.append((cid, a, V))
    offsets = np.cumsum([0] + [len(d[1]) for d in done])
    return (np.concatenate([d[2] for d in done]), np.concatenate([d[0] + off for d, off in zip(done, offsets)]),
            np.concatenate([d[1] for d in done]))


def _centroids(V: np.ndarray, cid: np.ndarray) -> np.ndarray:
    """Mean of each cell's vertices: a point inside the convex cell."""
    st = _starts(cid)
    return np.add.reduceat(V, st, axis=0) / np.bincount(cid)[:, None]


def _layer_affine(layer, H: np.ndarray) -> np.ndarray:
    """Per cell, the layer's pre-activations from its input, both as (cells, 3, n) affine maps."""
    cells, _, n_in = H.shape
    L = affine_rows(layer, H.reshape(cells * 3, n_in), bias=False).reshape(cells, 3, -1)
    L[:, 2] += layer.bias
    return L


@dataclass
class PlanePartition:
    """The regions of a network on a 2-D slice: cell i is the convex polygon ``polygon(i)`` (vertices in
    the slice parameters u, in cyclic order) with activation pattern ``patterns[i]``; on it the network
    output is ``G[i] @ u + h[i]`` exactly."""

    V: np.ndarray
    cid: np.ndarray
    patterns: np.ndarray
    G: np.ndarray
    h: np.ndarray
    domain: Domain
    tol: float
    seconds: float

    @property
    def regions(self) -> int:
        return int(self.patterns.shape[0])

    def polygons(self) -> list[np.ndarray]:
        return np.split(self.V, _starts(self.cid)[1:])

    def interior_points(self) -> np.ndarray:
        """A point inside every cell (the mean of its vertices; cells are convex), (cells, 2) in u."""
        return _centroids(self.V, self.cid) if len(self.cid) else np.zeros((0, 2))

    def areas(self) -> np.ndarray:
        """The area of every cell in the slice parameters u, (cells,)."""
        return np.array([polygon_area(p) for p in self.polygons()]) if len(self.cid) else np.zeros(0)

    def predicted_classes(self) -> np.ndarray:
        """The class each cell predicts, at its interior point: the argmax of the outputs, or for a
        single output 1 where it is > 0 and 0 elsewhere (the sign is the decision then), (cells,)."""
        X = self.interior_points()
        out = np.einsum("cok,ck->co", self.G, X) + self.h
        if out.shape[1] == 1:
            return (out[:, 0] > 0).astype(np.int64)
        return out.argmax(axis=1)

    def active_counts(self) -> np.ndarray:
        """The number of active ReLU neurons of every cell's pattern, (cells,)."""
        return self.patterns.sum(axis=1)

    def vertex_outputs(self) -> np.ndarray:
        """Network outputs at every vertex (each cell's own copy), (vertices, outputs)."""
        return np.einsum("vok,vk->vo", self.G[self.cid], self.V) + self.h[self.cid]

    def to_dict(self, *, cells: bool = False) -> dict:
        out = {"regions": self.regions, "tol": self.tol, "tol_meaning": RULE,
               "seconds": round(self.seconds, 6), "domain": self.domain.describe(),
               "vertices": int(len(self.V))}
        if cells:
            out["cells"] = [{"polygon": p.tolist(), "pattern": np.packbits(s).tobytes().hex(),
                             "output_linear": g.tolist(), "output_offset": o.tolist()}
                            for p, s, g, o in zip(self.polygons(), self.patterns, self.G, self.h)]
        return out


def plane_partition(net: Network, domain: Domain, *, tol: float | None = None) -> PlanePartition:
    """The exact partition of a 2-D box domain (a plane slice, or a 2-input net's box) into regions.

    Guarantees: the cells are the full-dimensional regions holding a ball of radius > tol in u, each
    listed once with its pattern and exact output map; their count equals
    ``count_regions(net, domain, tol=tol)`` (tol None: the same relative default, :mod:`lrmilp.tolerance`).

    Parameters
    ----------
    net : Network
        The network.
    domain : Domain
        A 2-D box in its parameters (``lrmilp.domains.plane`` or a 2-input ``Box``).
    tol : float, optional
        The region tolerance.

    Returns
    -------
    PlanePartition

    Raises
    ------
    InputError
        A domain that is not a bounded 2-D box, or a bad tol.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> plane_partition(random_mlp([2, 5], seed=0), Box(-1, 1, 2)).to_dict()["regions"]
    7
    """
    t0 = time.perf_counter()
    if domain.dim != 2 or not domain.bounded or domain.A_ub.shape[0]:
        raise InputError("plane partitions need a bounded 2-D box domain (a plane slice or a 2-input box)")
    if domain.input_dim != net.input_dim:
        raise InputError(f"domain has {domain.input_dim} inputs, network has {net.input_dim}")
    tol = resolve_tolerance(net, domain, optional_positive_finite("tol", tol)).tol
    lo, hi = domain.lo, domain.hi
    V = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    cid = np.zeros(4, dtype=np.int64)
    basis = np.eye(2) if domain.basis is None else domain.basis
    H = np.concatenate([basis.T, (np.zeros(2) if domain.origin is None else domain.origin)[None]])[None]
    pats = np.zeros((1, 0), dtype=bool)
    if not _inradius_ok(V, cid, tol)[0]:
        V, cid, H, pats = V[:0], cid[:0], H[:0], pats[:0]
    for layer in net.layers if len(H) else []:
        L = _layer_affine(layer, H)
        if not layer.relu:
            H = L
            continue
        V, cid, anc = partition_layer(V, cid, L, tol)
        L = L[anc]
        X = _centroids(V, cid)
        on = X[:, :1] * L[:, 0] + X[:, 1:] * L[:, 1] + L[:, 2] > 0  # no zero line crosses a cell
        pats = np.concatenate([pats[anc], on], axis=1)
        H = L * on[:, None, :]
    G, h = np.transpose(H[:, :2], (0, 2, 1)), H[:, 2]
    return PlanePartition(V, cid, pats, G, h, domain, tol, time.perf_counter() - t0)


def polygon_area(poly: np.ndarray) -> float:
    """The area of a polygon given by its vertices in cyclic order (shoelace formula); 0 for fewer than 3.

    Parameters
    ----------
    poly : numpy.ndarray
        (k, 2) vertices.

    Returns
    -------
    float

    Examples
    --------
    >>> polygon_area(np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [0.0, 1.0]]))
    2.0
    """
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))


def window_inside_box(domain: Domain, lo, hi) -> np.ndarray:
    """The part of a 2-D slice's window whose inputs lie in the box lo <= x <= hi, as a convex polygon in u.

    A plane through three points leaves the model's input box in general (digits pixels outside
    [0, 1], say), and regions there are never met by data; this is the exact part that stays inside,
    the window clipped by the two half-planes lo_i <= origin_i + basis_i . u <= hi_i of every input.

    Parameters
    ----------
    domain : Domain
        A bounded 2-D box of parameters u (``lrmilp.domains.plane``, or a 2-input ``Box``: x = u).
    lo, hi : array_like
        The input box (one value per input; scalars broadcast); infinite bounds clip nothing.

    Returns
    -------
    numpy.ndarray
        (k, 2) vertices in cyclic order, counter-clockwise; no rows when no point of the window is
        in the box.

    Raises
    ------
    InputError
        A domain that is not a bounded 2-D box, or lo, hi of the wrong length or NaN.

    Examples
    --------
    >>> from lrmilp.domains import plane
    >>> dom = plane([0.0, 0.0], [1.0, 0.0], [0.0, 1.0], -1.0, 2.0)
    >>> polygon_area(window_inside_box(dom, 0.0, 1.0))
    1.0
    """
    if domain.dim != 2 or not domain.bounded or domain.A_ub.shape[0]:
        raise InputError("window_inside_box needs a bounded 2-D box domain (a plane slice or a 2-input box)")
    n = domain.input_dim
    bounds = []
    for name, v in (("lo", lo), ("hi", hi)):
        v = np.broadcast_to(np.asarray(v, dtype=float), (n,)) if np.ndim(v) == 0 else np.asarray(v, dtype=float)
        if v.shape != (n,) or np.isnan(v).any():
            raise InputError(f"{name}: the box needs {n} numbers (no NaN), got shape {v.shape}", param=name)
        bounds.append(v)
    lo, hi = bounds
    basis = np.eye(2) if domain.basis is None else domain.basis
    origin = np.zeros(n) if domain.origin is None else domain.origin
    wl, wh = domain.lo, domain.hi
    poly = np.array([[wl[0], wl[1]], [wh[0], wl[1]], [wh[0], wh[1]], [wl[0], wh[1]]])
    for i in range(n):
        if len(poly) < 3:
            break
        if np.isfinite(lo[i]):  # origin_i + basis_i . u - lo_i >= 0
            poly = clip_polygon(poly, basis[i], origin[i] - lo[i], True)
        if np.isfinite(hi[i]) and len(poly) >= 3:  # hi_i - origin_i - basis_i . u >= 0
            poly = clip_polygon(poly, -basis[i], hi[i] - origin[i], True)
    return poly if len(poly) >= 3 else poly[:0].reshape(0, 2)
