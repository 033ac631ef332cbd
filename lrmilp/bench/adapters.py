"""Bench tasks that need more than one library call: each is a function (net, domain, **options) -> dict."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..domains import Domain
from ..errors import InputError
from ..network import Network

DATA_PREFIX = "digits:"  # points = "digits:test" reads lrmilp.datasets.digits(split="test")


def load_points(points: str | Path, *, input_dim: int) -> np.ndarray:
    """Rows of inputs from a ``.npy`` file or ``"digits:SPLIT"``, as an (n, input_dim) float array."""
    if str(points).startswith(DATA_PREFIX):
        from ..datasets import digits
        X = digits(split=str(points)[len(DATA_PREFIX):])[0]
    else:
        try:
            X = np.load(points, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read points file {points}: {e}") from None
    X = np.asarray(X, dtype=float)
    X = X.reshape(len(X), -1) if X.ndim > 1 else X[None, :]
    if X.shape[1] != input_dim:
        raise InputError(f"points have {X.shape[1]} values per row, the network expects {input_dim}")
    if len(X) < 2:
        raise InputError("random lines need at least two points")
    return X


def random_lines(net: Network, domain: Domain, *, lines: int = 100, seed: int = 0, points: str | None = None,
                 infinite: bool = False, tol: float | None = None) -> dict:
    """Exact regions along ``lines`` random segments (``lrmilp.geometry.lines.line_regions``).

    End points are two different random rows of ``points`` (a ``.npy`` file or ``"digits:test"``)
    or, without ``points``, two uniform samples of the (bounded) domain.  Reports the mean, minimum
    and maximum number of regions per line and every line's count.
    """
    from ..geometry.lines import line_regions
    if lines < 1:
        raise InputError("lines must be at least 1")
    rng = np.random.default_rng(seed)
    if points is None:
        P = domain.to_input(domain.sample(2 * lines, rng))
        A, B = P[:lines], P[lines:]
    else:
        X = load_points(points, input_dim=net.input_dim)
        i = rng.integers(len(X), size=lines)
        j = (i + rng.integers(1, len(X), size=lines)) % len(X)  # a different row than i
        A, B = X[i], X[j]
    res = line_regions(net, A, B, infinite=infinite, **({} if tol is None else {"tol": tol}))
    counts = np.asarray(res.regions, dtype=np.int64).reshape(-1)
    per_neuron = counts / net.neurons if net.neurons else np.full(len(counts), np.nan)
    return {"lines": int(lines), "mean_regions": float(counts.mean()), "min_regions": int(counts.min()),
            "max_regions": int(counts.max()), "std_regions": float(counts.std()), "regions": counts.tolist(),
            "neurons": int(net.neurons), "mean_regions_per_neuron": float(per_neuron.mean()),
            "std_regions_per_neuron": float(per_neuron.std()),
            "quartiles_regions_per_neuron": np.quantile(per_neuron, [0.25, 0.5, 0.75]).tolist(),
            "mean_length": float(np.mean(np.linalg.norm(B - A, axis=1))), "infinite": bool(infinite),
            "source": "domain" if points is None else str(points), "seed": int(seed)}


def slice_faces(net: Network, *, points: str = "digits:test", rows: list | None = None, lo: float = -0.5,
                hi: float = 1.5, tol: float | None = None, rays: int = 16, seed: int = 0,
                time_limit: float | None = None) -> dict:
    """Facets per region (``lrmilp.geometry.faces.region_faces``) on the affine slice through data points.

    The slice is x = p0 + sum_i u_i (p_i - p0), u in [lo, hi]^k, through the k + 1 rows ``rows``
    (default [0, 1, 2]: a plane) of ``points`` (a ``.npy`` file or ``"digits:test"``): a
    k-dimensional cut through the data where every region's facets can be found quickly even when
    the input has 64 dimensions.  The result is region_faces' (histograms of facets per region,
    neuron and domain facets apart) plus the slice's ``rows`` and ``slice_dim``.
    """
    from ..domains import AffineSlice
    from ..geometry.faces import region_faces
    rows = [0, 1, 2] if rows is None else [int(r) for r in rows]
    if len(rows) < 2 or len(set(rows)) != len(rows):
        raise InputError("rows must name at least two different points")
    X = load_points(points, input_dim=net.input_dim)
    if max(rows) >= len(X) or min(rows) < 0:
        raise InputError(f"rows must lie in 0..{len(X) - 1}")
    P = X[rows]
    dom = AffineSlice(P[0], (P[1:] - P[0]).T, lo, hi)
    opts = {"rays": rays, "seed": seed, "time_limit": time_limit, **({} if tol is None else {"tol": tol})}
    out = region_faces(net, dom, **opts).to_dict()
    return {**out, "rows": rows, "slice_dim": len(rows) - 1, "window": [float(lo), float(hi)],
            "source": str(points)}
