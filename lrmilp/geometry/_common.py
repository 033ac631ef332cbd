"""Small helpers shared by the geometry modules."""

from __future__ import annotations

import numpy as np

from ..network import Network


def region_layers(net: Network) -> list:
    """The layers up to the last ReLU layer: later linear layers create no regions."""
    relu = net.relu_layers
    return net.layers[:relu[-1] + 1] if relu else []


def affine_rows(layer, H: np.ndarray, *, bias: bool = True) -> np.ndarray:
    """layer.matrix @ h (+ bias) for every row h of H (dense or sparse matrix); directions take no bias."""
    M = layer.matrix
    out = H @ M.T if isinstance(M, np.ndarray) else np.asarray(M @ H.T).T  # row-major product for dense
    return out + layer.bias if bias else out


def summary(values: np.ndarray, *, bins: int = 20) -> dict:
    """Mean, quantiles and a histogram of a 1-D sample (what the CLI reports for distributions)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return {"count": 0}
    counts, edges = np.histogram(v, bins=bins)
    qs = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
    return {"count": int(v.size), "mean": float(v.mean()), "std": float(v.std()),
            "quantiles": {str(q): float(x) for q, x in zip(qs, np.quantile(v, qs))},
            "histogram": {"counts": [int(c) for c in counts], "edges": edges.tolist()}}
