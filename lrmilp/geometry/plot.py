"""Drawing a plane partition with matplotlib (the optional ``plot`` extra, Agg backend, imported lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..cells.polygon import clip_polygon
from ..errors import InputError
from ..outputs import AtomicFile
from .plane import PlanePartition

TIE_TOL = 1e-9
"""An edge of a class's cell piece lies on the decision boundary when the winning margin at both of its
ends is at most TIE_TOL times the output scale."""


def _colours(n: int, seed: int = 0) -> np.ndarray:
    """n visually distinct RGB colours (golden-ratio hues, varied lightness), in random order so that
    neighbouring cells rarely look alike."""
    from matplotlib.colors import hsv_to_rgb
    k = np.arange(n)
    hsv = np.c_[(k * 0.618033988749895) % 1.0, 0.35 + 0.4 * ((k * 0.37) % 1.0), 0.75 + 0.2 * ((k * 0.71) % 1.0)]
    return hsv_to_rgb(hsv)[np.random.default_rng(seed).permutation(n)]


def decision_segments(part: PlanePartition) -> list[np.ndarray]:
    """Segments (2 x 2 arrays, in u) of the output's decision boundary: the zero set of a single
    output, or where the argmax of several changes.  Exact: the output is affine on every cell."""
    polys = part.polygons()
    segs = []
    out = part.vertex_outputs()
    st = np.r_[0, np.cumsum([len(p) for p in polys])]
    scale = max(float(np.abs(out).max(initial=0.0)), 1e-300)
    for i, poly in enumerate(polys):
        G, h = part.G[i], part.h[i]
        vals = out[st[i]:st[i + 1]]
        if G.shape[0] == 1:
            v = vals[:, 0]
            if v.max() <= 0 or v.min() >= 0:
                continue
            piece = clip_polygon(poly, G[0], h[0], True)
            on = np.abs(piece @ G[0] + h[0]) <= TIE_TOL * scale
            segs.extend(_edges_where(piece, on))
            continue
        win = vals.argmax(axis=1)
        if np.all(win == win[0]):
            continue
        for c in np.unique(win):
            piece = poly
            for d in range(G.shape[0]):
                if d != c and len(piece) >= 3:
                    piece = clip_polygon(piece, G[c] - G[d], h[c] - h[d], True)
            if len(piece) < 3:
                continue
            o = piece @ G.T + h
            margin = o[:, c] - np.delete(o, c, axis=1).max(axis=1)
            segs.extend(_edges_where(piece, margin <= TIE_TOL * scale))
    return segs


def _edges_where(poly: np.ndarray, on: np.ndarray) -> list[np.ndarray]:
    nxt = np.roll(np.arange(len(poly)), -1)
    return [np.stack([poly[i], poly[j]]) for i, j in zip(range(len(poly)), nxt) if on[i] and on[j]]


def plot_plane(part: PlanePartition, path: str | Path, *, boundary: bool = False, title: str | None = None,
               dpi: int = 150) -> Path:
    """Write a PNG of the partition: each cell filled in its own colour with dark edges, the three
    points p0, p1, p2 (u = (0,0), (1,0), (0,1)) marked, optionally the output's decision boundary,
    and a legend stating the region count.  Written whole or not at all (:class:`lrmilp.outputs.AtomicFile`:
    never over a link or a special file; InputError naming the path when it cannot be written)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.collections import LineCollection, PolyCollection
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
    except ImportError:
        raise InputError("plotting needs matplotlib (pip install 'lrmilp[plot]')") from None
    out = AtomicFile(path, "plot", binary=True)  # refuses a bad target before any drawing
    fig, ax = plt.subplots(figsize=(7, 7))
    polys = part.polygons()
    ax.add_collection(PolyCollection(polys, facecolors=_colours(len(polys)), edgecolors="#222222",
                                     linewidths=0.3 if len(polys) < 3000 else 0.15))
    handles = [Patch(facecolor="#bbbbbb", edgecolor="#222222", label=f"{part.regions:,} linear regions")]
    if boundary:
        segs = decision_segments(part)
        ax.add_collection(LineCollection(segs, colors="black", linewidths=2.0))
        handles.append(Line2D([], [], color="black", lw=2, label="decision boundary"))
    if part.domain.basis is not None:
        pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        ax.scatter(pts[:, 0], pts[:, 1], s=60, c="white", edgecolors="black", zorder=5)
        for (x, y), name in zip(pts, ("p0", "p1", "p2")):
            ax.annotate(name, (x, y), xytext=(5, 5), textcoords="offset points", fontsize=11, weight="bold")
        handles.append(Line2D([], [], marker="o", ls="", mfc="white", mec="black", label="p0, p1, p2"))
        ax.set_xlabel("u1  (along p1 - p0)")
        ax.set_ylabel("u2  (along p2 - p0)")
    else:
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
    lo, hi = part.domain.lo, part.domain.hi
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_title(title or f"Linear regions on the plane: {part.regions:,} (tol {part.tol:g})")
    ax.legend(handles=handles, loc="upper right", framealpha=0.9)
    try:
        with out:
            fig.savefig(out, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out.path
