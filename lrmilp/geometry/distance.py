"""Exact distance from points to the boundary of their linear region (no LP).

Inside the region of a point x every pre-activation is affine, z_i(y) = a_i . y + c_i, with a_i the
gradient under x's activation pattern.  The region is the polyhedron {y : s_i z_i(y) >= 0}, so the
largest ball centred at x inside it has radius min_i |z_i(x)| / |a_i| (over neurons with a_i != 0),
optionally also bounded by the domain's faces.  Gradients are propagated layer by layer for a chunk of
points at once (batched matrix products).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..domains import Domain
from ..errors import InputError
from ..network import Network
from ..progress import Progress
from ..validation import int_at_least, optional_positive_finite
from ._common import affine_rows, region_layers, summary

ZERO_GRAD = 1e-12
"""A neuron whose gradient norm is <= ZERO_GRAD times its layer's largest is constant on the region
(its pre-activation never changes sign there) and bounds no distance."""
CHUNK_POINTS = 64
"""Points whose per-neuron gradients are held in memory at once (points x neurons x input dim)."""


@dataclass
class DistanceResult:
    """``distances[p]``: radius of the largest ball around point p inside its region (in the domain's
    parameters u; input space for a box); ``nearest[p]``: the flat neuron index bounding it, or -1
    when a domain face does (``domain_faces``)."""

    distances: np.ndarray
    nearest: np.ndarray
    domain_faces: bool
    seconds: float
    stopped: str | None = None  # "time_limit": only the first ``len(distances)`` points were done
    points_given: int | None = None

    def to_dict(self, *, per_point: bool = True, bins: int = 20) -> dict:
        given = len(self.distances) if self.points_given is None else self.points_given
        out = {"points": int(len(self.distances)), **summary(self.distances, bins=bins),
               "domain_faces": self.domain_faces, "seconds": round(self.seconds, 6),
               "complete": self.stopped is None, "stopped": self.stopped, "points_given": int(given)}
        out.pop("count", None)
        if per_point:
            out["distances"] = self.distances.tolist()
            out["nearest_neuron"] = self.nearest.tolist()
        return out


def boundary_distance(net: Network, points, *, domain: Domain | None = None, domain_faces: bool = False,
                      chunk: int = CHUNK_POINTS, progress: bool | None = None,
                      time_limit: float | None = None) -> DistanceResult:
    """Distance from each point to the boundary of its linear region.

    Exact up to rounding, for every point; a point on a boundary (a non-constant pre-activation
    exactly 0) gets 0.

    Parameters
    ----------
    net : Network
        The network.
    points : array_like
        Network inputs (rows), or slice parameters u when ``domain`` is an AffineSlice (then distances
        are measured in u).
    domain : Domain, optional
        The domain the points live in.
    domain_faces : bool
        The domain's faces bound the distance too (the points must lie in the domain).
    chunk : int
        Points whose per-neuron gradients are held in memory at once.
    progress : bool or None
        A progress line on stderr (None: when stderr is a terminal).
    time_limit : float, optional
        Seconds for the run, checked between chunks: a stopped run holds the first points' distances
        (``stopped: "time_limit"``; ``points_given`` says how many were asked for).

    Returns
    -------
    DistanceResult

    Raises
    ------
    InputError
        Points of the wrong size, not finite, or outside the domain with ``domain_faces``.

    Examples
    --------
    >>> import numpy as np
    >>> from lrmilp.network import Dense, Network
    >>> net = Network([Dense(np.array([[1.0, 0.0]]), np.zeros(1))], (2,))
    >>> boundary_distance(net, np.array([[0.5, 3.0]])).distances.tolist()
    [0.5]
    """
    t0 = time.perf_counter()
    chunk = int_at_least("chunk", chunk, 1)
    time_limit = optional_positive_finite("time_limit", time_limit)
    if domain is not None and domain.input_dim != net.input_dim:
        raise InputError(f"domain has {domain.input_dim} inputs, network has {net.input_dim}")
    d = net.input_dim if domain is None else domain.dim
    U = np.asarray(points, dtype=float)
    U = U.reshape(1, -1) if U.ndim == 1 else U.reshape(U.shape[0], -1)
    if U.shape[1] != d:
        raise InputError(f"points have {U.shape[1]} coordinates, expected {d}")
    if not np.all(np.isfinite(U)):
        raise InputError("points contain NaN or infinite values")
    if domain_faces and domain is None:
        raise InputError("domain faces need a domain")
    if domain_faces and not np.all(domain.contains(U)):
        raise InputError(f"point {int(np.argmin(domain.contains(U)))} lies outside the domain")
    basis = None if domain is None or domain.basis is None else domain.basis
    dist = np.full(len(U), np.inf)
    nearest = np.full(len(U), -1)
    done, stopped = len(U), None
    with Progress("distance", progress=progress, total=len(U), unit="points") as bar:
        for s in range(0, len(U), chunk):
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                done, stopped = s, "time_limit"
                break
            dist[s:s + chunk], nearest[s:s + chunk] = _neuron_distance(net, U[s:s + chunk], domain, basis)
            if bar.due():
                bar.show(n=min(s + chunk, len(U)))
    given = len(U)
    U, dist, nearest = U[:done], dist[:done], nearest[:done]
    if domain_faces:
        face = _face_distance(domain, U)
        closer = face < dist
        dist[closer], nearest[closer] = face[closer], -1
    return DistanceResult(dist, nearest, domain_faces, time.perf_counter() - t0, stopped, given)


def _neuron_distance(net: Network, U: np.ndarray, domain: Domain | None, basis: np.ndarray | None):
    X = U if domain is None else domain.to_input(U)
    best = np.full(len(U), np.inf)
    arg = np.full(len(U), -1)
    G = None  # gradients of the layer's input w.r.t. u: (points, n_in, d); None means the basis itself
    H = X
    off = 0
    for layer in region_layers(net):
        Z = affine_rows(layer, H)  # (points, n)
        if G is None:
            B = np.eye(net.input_dim) if basis is None else basis
            Gz = np.broadcast_to(np.asarray(layer.matrix @ B), (len(U),) + (Z.shape[1], B.shape[1]))
        else:
            Gz = _batched_matmul(layer, G)
        if layer.relu:
            norms = np.sqrt(np.einsum("pnk,pnk->pn", Gz, Gz))
            live = norms > ZERO_GRAD * np.maximum(norms.max(axis=1, keepdims=True), 1e-300)
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(live, np.abs(Z) / norms, np.inf)
            j = np.argmin(r, axis=1)
            rj = r[np.arange(len(U)), j]
            better = rj < best
            best[better], arg[better] = rj[better], off + j[better]
            off += Z.shape[1]
            on = Z > 0
            H, G = Z * on, Gz * on[:, :, None]
        else:
            H, G = Z, Gz
    return best, arg


def _batched_matmul(layer, G: np.ndarray) -> np.ndarray:
    """layer.matrix @ G[p] for every point p (G: (points, n_in, d))."""
    p, n_in, d = G.shape
    flat = np.asarray(layer.matrix @ G.transpose(1, 0, 2).reshape(n_in, p * d))
    return flat.reshape(-1, p, d).transpose(1, 0, 2)


def _face_distance(domain: Domain, U: np.ndarray) -> np.ndarray:
    """Distance from each point (inside the domain) to the domain's nearest face, in u."""
    with np.errstate(invalid="ignore"):
        gaps = np.concatenate([U - domain.lo, domain.hi - U], axis=1)
    gaps = np.where(np.isfinite(gaps), gaps, np.inf)
    out = gaps.min(axis=1) if gaps.shape[1] else np.full(len(U), np.inf)
    if domain.A_ub.shape[0]:
        norms = np.linalg.norm(domain.A_ub, axis=1)
        out = np.minimum(out, ((domain.b_ub - U @ domain.A_ub.T) / norms).min(axis=1))
    return out
