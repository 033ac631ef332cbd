"""Exact linear regions along lines, segments and polylines (Hanin & Rolnick 2019).

A line x(t) = a + t (b - a) meets the regions of a ReLU network in intervals of t.  Layer by layer,
each current piece carries the layer's input as P + t Q (exact: affine on the piece); a neuron's
pre-activation alpha + t beta changes sign at t = -alpha / beta, and each piece is split at the sign
changes inside it.  All pieces of all lines are processed together as flat numpy arrays, so many
lines cost a few matrix products per layer.

Tolerance: as in :mod:`lrmilp.tolerance`, a piece counts as a region iff it holds a ball of radius
> ``tol`` in the line's parameter t, i.e. its t-length exceeds 2 tol; thinner pieces are dropped and
the breakpoint between their neighbours is the middle of the gap.  So on a segment the count equals
``count_regions(net, segment(a, b), tol=tol)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..tolerance import DEFAULT_REL_TOL

DEFAULT_TOL = DEFAULT_REL_TOL * 0.5
"""Default tol of a segment: the relative default of :mod:`lrmilp.tolerance` for its parameter domain
[0, 1] (half-width 0.5), so a segment's pieces are those of ``count_regions(net, segment(a, b))``; the
same absolute value is used for infinite lines."""
from ..errors import InputError
from ..network import Network
from ..validation import positive_finite
from ._common import affine_rows, region_layers

TOL_MEANING = "a piece counts iff its length in the line parameter t exceeds 2 tol"
CHUNK_LINES = 128
"""Lines processed together: bounds the memory of the flat piece arrays (pieces x layer width)."""


@dataclass
class LineResult:
    """Regions along each of several lines.

    ``regions[i]`` pieces lie on line i; ``breakpoints[i]`` are the sorted parameters t where the
    pattern changes (segments: inside (0, 1)); ``lengths[i]`` is the Euclidean length of the segment
    (inf for an infinite line).
    """

    regions: np.ndarray
    breakpoints: list[np.ndarray]
    lengths: np.ndarray
    infinite: bool
    neurons: int
    tol: float
    seconds: float

    def to_dict(self, *, single: bool = False) -> dict:
        """JSON-ready; ``single`` gives scalars for a one-line result (the CONTRACT's shape)."""
        regions = [int(r) for r in self.regions]
        per_len = [None if not np.isfinite(L) or L == 0 else r / float(L) for r, L in zip(regions, self.lengths)]
        out = {"regions": regions, "breakpoints": [b.tolist() for b in self.breakpoints],
               "length": [float(L) for L in self.lengths], "regions_per_unit_length": per_len,
               "regions_per_neuron": [r / self.neurons if self.neurons else None for r in regions]}
        if single:
            out = {k: v[0] for k, v in out.items()}
        else:
            out["lines"] = len(regions)
            out["mean_regions"] = float(np.mean(regions)) if regions else 0.0
            finite = [v for v in per_len if v is not None]
            out["mean_regions_per_unit_length"] = float(np.mean(finite)) if finite else None
        out.update({"infinite": self.infinite, "neurons": self.neurons, "tol": self.tol,
                    "tol_meaning": TOL_MEANING, "seconds": round(self.seconds, 6)})
        return out


def _split(net: Network, P: np.ndarray, Q: np.ndarray, t0: float, t1: float) -> tuple[np.ndarray, ...]:
    """Pieces (line id, lo, hi) of the lines x = P[i] + t Q[i], t in [t0, t1], cut at every sign change."""
    lid = np.arange(len(P))
    lo, hi = np.full(len(P), t0), np.full(len(P), t1)
    for layer in region_layers(net):
        Z0, Z1 = affine_rows(layer, P), affine_rows(layer, Q, bias=False)
        if not layer.relu:
            P, Q = Z0, Z1
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            T = -Z0 / Z1
        inside = (T > lo[:, None]) & (T < hi[:, None])  # NaN and inf (beta = 0) are never inside
        T = np.where(inside, T, np.inf)
        cnt = inside.sum(axis=1)
        width = int(cnt.max()) if len(cnt) else 0
        if width:
            T = np.sort(T, axis=1)[:, :width]
        n_new = cnt + 1
        rep = np.repeat(np.arange(len(lo)), n_new)
        first = np.cumsum(n_new) - n_new
        k = np.arange(len(rep)) - first[rep]  # index of the new piece within its parent
        if width:
            new_lo = np.where(k == 0, lo[rep], T[rep, np.maximum(k - 1, 0)])
            new_hi = np.where(k == cnt[rep], hi[rep], T[rep, np.minimum(k, width - 1)])
        else:
            new_lo, new_hi = lo[rep], hi[rep]
        lo, hi, lid = new_lo, new_hi, lid[rep]
        mid = _interior_point(lo, hi)
        A, B = Z0[rep], Z1[rep]
        on = (A + mid[:, None] * B) > 0
        P, Q = A * on, B * on
    return lid, lo, hi


def _interior_point(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A point inside each interval, also for infinite ends."""
    mid = np.where(np.isfinite(lo) & np.isfinite(hi), 0.5 * (lo + hi), 0.0)
    mid = np.where(np.isinf(lo) & np.isfinite(hi), hi - 1.0, mid)
    return np.where(np.isfinite(lo) & np.isinf(hi), lo + 1.0, mid)


def _breakpoints(lid: np.ndarray, lo: np.ndarray, hi: np.ndarray, n_lines: int, tol: float
                 ) -> tuple[np.ndarray, list[np.ndarray]]:
    keep = (hi - lo) > 2 * tol
    lid, lo, hi = lid[keep], lo[keep], hi[keep]
    regions = np.bincount(lid, minlength=n_lines)
    # consecutive kept pieces of the same line: the breakpoint is the middle of the gap between them
    same = lid[1:] == lid[:-1]
    bp = 0.5 * (hi[:-1][same] + lo[1:][same])  # finite: only infinite ends are infinite
    owner = lid[1:][same]
    cuts = np.searchsorted(owner, np.arange(1, n_lines))
    return regions, np.split(bp, cuts)


def _as_points(name: str, arr, n0: int) -> np.ndarray:
    a = np.asarray(arr, dtype=float)
    if a.ndim == 1:
        a = a[None, :]
    a = a.reshape(a.shape[0], -1) if a.ndim > 2 else a
    if a.ndim != 2 or a.shape[1] != n0:
        raise InputError(f"{name} has shape {np.shape(arr)}, expected ({n0},) or (lines, {n0})")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} contains NaN or infinite values")
    return a


def line_regions(net: Network, starts, ends, *, infinite: bool = False, tol: float | None = None,
                 chunk: int = CHUNK_LINES) -> LineResult:
    """Exact regions along the segments starts[i] -> ends[i] (t in [0, 1]), or along the infinite
    lines through them (``infinite``: t in R).

    Guarantees: ``regions[i]`` is the number of pieces of t-length > 2 tol on line i (each piece is a
    distinct activation pattern: patterns are convex, a line meets each once), and ``breakpoints[i]``
    holds the regions[i] - 1 parameters where the pattern changes, sorted.

    Parameters
    ----------
    net : Network
        The network.
    starts, ends : array_like
        (n0,) or (lines, n0) points.
    infinite : bool
        The whole lines, not the segments.
    tol : float, optional
        Pieces of t-length at most 2 tol are not regions (default: the relative default of the segment).
    chunk : int
        Lines processed together.

    Returns
    -------
    LineResult

    Raises
    ------
    InputError
        Points of different shapes or sizes, or not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from lrmilp.network import Dense, Network
    >>> net = Network([Dense(np.array([[1.0]]), np.zeros(1))], (1,))
    >>> line_regions(net, np.array([-1.0]), np.array([1.0])).regions.tolist()
    [2]
    """
    t_start = time.perf_counter()
    tol = DEFAULT_TOL if tol is None else positive_finite("tol", tol)
    A, B = _as_points("start", starts, net.input_dim), _as_points("end", ends, net.input_dim)
    if len(A) != len(B):
        raise InputError(f"start has {len(A)} points but end has {len(B)}")
    D = B - A
    lengths = np.linalg.norm(D, axis=1)
    if np.any(lengths == 0):
        raise InputError(f"line {int(np.argmax(lengths == 0))} has equal start and end: no direction")
    t0, t1 = (-np.inf, np.inf) if infinite else (0.0, 1.0)
    regions, bps = [], []
    for s in range(0, len(A), max(1, chunk)):
        a, d = A[s:s + chunk], D[s:s + chunk]
        r, b = _breakpoints(*_split(net, a, d, t0, t1), len(a), tol)
        regions.append(r)
        bps.extend(b)
    return LineResult(np.concatenate(regions), bps, np.full(len(A), np.inf) if infinite else lengths, infinite,
                      net.neurons, tol, time.perf_counter() - t_start)


@dataclass
class PolylineResult:
    """Regions along a path through points p_0, ..., p_{k-1}; parameter s in [0, k-1], segment i is
    [i, i+1].  ``regions`` counts the pieces along the path (a region the path re-enters counts
    again); ``distinct_patterns`` counts the different regions visited."""

    regions: int
    breakpoints: np.ndarray
    distinct_patterns: int
    length: float
    neurons: int
    tol: float
    seconds: float

    def to_dict(self) -> dict:
        return {"regions": int(self.regions), "breakpoints": self.breakpoints.tolist(),
                "distinct_patterns": int(self.distinct_patterns), "length": self.length,
                "regions_per_unit_length": self.regions / self.length if self.length else None,
                "regions_per_neuron": self.regions / self.neurons if self.neurons else None,
                "neurons": self.neurons, "tol": self.tol, "tol_meaning": TOL_MEANING,
                "seconds": round(self.seconds, 6)}


def polyline_regions(net: Network, points, *, tol: float | None = None) -> PolylineResult:
    """Exact regions along the polyline through ``points`` (k >= 2 rows), e.g. through data points.

    Each segment is cut as by :func:`line_regions` (tol in each segment's own parameter); where the
    pieces on both sides of a path vertex share a pattern they are one region.

    Parameters
    ----------
    net : Network
        The network.
    points : array_like
        (k, n0) points, k >= 2.
    tol : float, optional
        As for :func:`line_regions`.

    Returns
    -------
    PolylineResult

    Raises
    ------
    InputError
        Fewer than two points, or points of the wrong size.

    Examples
    --------
    >>> import numpy as np
    >>> from lrmilp.network import Dense, Network
    >>> net = Network([Dense(np.array([[1.0]]), np.zeros(1))], (1,))
    >>> polyline_regions(net, np.array([[-1.0], [0.5], [2.0]])).to_dict()["regions"]
    2
    """
    t_start = time.perf_counter()
    X = _as_points("points", points, net.input_dim)
    if len(X) < 2:
        raise InputError("a polyline needs at least two points")
    seg = line_regions(net, X[:-1], X[1:], tol=tol)
    # pieces as (segment, lo, hi) with global parameters; interior points give each piece's pattern
    bounds = [np.concatenate([[0.0], b, [1.0]]) + i for i, b in enumerate(seg.breakpoints)]
    mids = np.concatenate([0.5 * (b[1:] + b[:-1]) for b in bounds])
    seg_of = np.floor(np.minimum(mids, len(X) - 1.5)).astype(int)
    frac = mids - seg_of
    pats = net.patterns(X[seg_of] + frac[:, None] * (X[seg_of + 1] - X[seg_of]))
    inner = np.concatenate([b[1:-1] for b in bounds])
    vertices = np.arange(1, len(X) - 1, dtype=float)
    ends = np.cumsum([len(b) - 1 for b in bounds])[:-1]  # piece index where each later segment starts
    differ = np.any(pats[ends] != pats[ends - 1], axis=1) if len(ends) else np.zeros(0, dtype=bool)
    breakpoints = np.sort(np.concatenate([inner, vertices[differ]]))
    distinct = len(np.unique(np.packbits(pats, axis=1), axis=0)) if pats.shape[1] else 1
    length = float(np.linalg.norm(np.diff(X, axis=0), axis=1).sum())
    return PolylineResult(len(breakpoints) + 1, breakpoints, distinct, length, net.neurons, tol,
                          time.perf_counter() - t_start)
