"""Drawing a plane partition with matplotlib (the optional ``plot`` extra, Agg backend, imported lazily).

The figure's format is the one its file name ends in (.png, .pdf, .svg); it is drawn in memory and
written whole by :class:`lrmilp.outputs.AtomicFile` (a temporary name with the same extension, then a
rename).  Everything outside the cells themselves (the legend, the colour bar) sits outside the axes,
so nothing covers a cell.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..cells.polygon import clip_polygon
from ..errors import InputError
from ..outputs import AtomicFile
from ..validation import int_at_least, one_of
from .plane import PlanePartition, polygon_area, window_inside_box

FORMATS = ("png", "pdf", "svg")
"""Figure formats, chosen by the file name's extension (case-insensitive)."""

COLOR_MODES = ("class", "active", "random")
"""How cells are filled: by predicted class (qualitative palette), by the number of active neurons
(sequential colour map with a colour bar), or each in its own random colour."""

MAX_DPI = 600
"""Largest dpi: the 6.4-inch figure at 600 dpi is 3840 x 3840 pixels (59 MB of RGBA while drawing)."""

EDGE = "#3a3a3a"
"""Colour of the thin cell edges (and of the legend patches that stand for them)."""

TIE_TOL = 1e-9
"""An edge of a class's cell piece lies on the decision boundary when the winning margin at both of its
ends is at most TIE_TOL times the output scale."""


def _colours(n: int, seed: int = 0) -> np.ndarray:
    """n distinct pastel RGB colours (golden-ratio hues, varied saturation and lightness), in random order
    so that neighbouring cells rarely look alike; pastel, so that hundreds of cells stay readable."""
    from matplotlib.colors import hsv_to_rgb
    k = np.arange(n)
    hsv = np.c_[(k * 0.618033988749895) % 1.0, 0.2 + 0.3 * ((k * 0.37) % 1.0), 0.82 + 0.15 * ((k * 0.71) % 1.0)]
    return hsv_to_rgb(hsv)[np.random.default_rng(seed).permutation(n)]


def _class_split(part: PlanePartition):
    """The cells crossed by the decision boundary, cut where each class wins: yields (cell, class, piece,
    per piece vertex: on the boundary?).  Exact: the outputs are affine on every cell, so the part where
    a class wins is the cell clipped by one half-plane per other class (by the sign of a single output)."""
    polys = part.polygons()
    out = part.vertex_outputs()
    st = np.r_[0, np.cumsum([len(p) for p in polys])]
    scale = max(float(np.abs(out).max(initial=0.0)), 1e-300)
    for i, poly in enumerate(polys):
        G, h = part.G[i], part.h[i]
        vals = out[st[i]:st[i + 1]]
        if G.shape[0] == 1:
            if vals[:, 0].max() <= 0 or vals[:, 0].min() >= 0:
                continue
            for c, positive in ((1, True), (0, False)):
                piece = clip_polygon(poly, G[0], h[0], positive)
                if len(piece) >= 3:
                    yield i, c, piece, np.abs(piece @ G[0] + h[0]) <= TIE_TOL * scale
            continue
        win = vals.argmax(axis=1)
        if np.all(win == win[0]):
            continue  # one class wins at every vertex, hence on the whole (convex) cell
        for c in np.unique(win):
            piece = poly
            for d in range(G.shape[0]):
                if d != c and len(piece) >= 3:
                    piece = clip_polygon(piece, G[c] - G[d], h[c] - h[d], True)
            if len(piece) < 3:
                continue
            o = piece @ G.T + h
            yield i, int(c), piece, o[:, c] - np.delete(o, c, axis=1).max(axis=1) <= TIE_TOL * scale


def decision_segments(part: PlanePartition) -> list[np.ndarray]:
    """Segments (2 x 2 arrays, in u) of the output's decision boundary: the zero set of a single
    output, or where the argmax of several changes (each may be listed once from either side).

    Parameters
    ----------
    part : PlanePartition
        The partition.

    Returns
    -------
    list of numpy.ndarray
        Exact: the output is affine on every cell.
    """
    segs = []
    for _, _, piece, on in _class_split(part):
        segs.extend(_edges_where(piece, on))
    return segs


def class_pieces(part: PlanePartition) -> tuple[list[np.ndarray], np.ndarray]:
    """Polygons (in u) on which the predicted class is constant, and that class.

    A cell is one piece when a single class wins on all of it (its class is
    :meth:`PlanePartition.predicted_classes`); a cell crossed by the decision boundary is cut into the
    parts where each class wins, so that fills agree with the boundary drawn over them.

    Parameters
    ----------
    part : PlanePartition
        The partition.

    Returns
    -------
    (list of numpy.ndarray, numpy.ndarray)
        The pieces ((k, 2) vertices in cyclic order) and their class indices (:func:`class_names`).
    """
    polys = part.polygons()
    cls = part.predicted_classes()
    split = list(_class_split(part))
    cut = {i for i, _, _, _ in split}
    pieces = [p for i, p in enumerate(polys) if i not in cut]
    classes = [int(c) for i, c in enumerate(cls) if i not in cut]
    for _, c, piece, _ in split:
        if polygon_area(piece) > 0:
            pieces.append(piece)
            classes.append(c)
    return pieces, np.array(classes, dtype=np.int64)


def _edges_where(poly: np.ndarray, on: np.ndarray) -> list[np.ndarray]:
    nxt = np.roll(np.arange(len(poly)), -1)
    return [np.stack([poly[i], poly[j]]) for i, j in zip(range(len(poly)), nxt) if on[i] and on[j]]


def check_plot_options(plot: str | Path, *, color: str = "class", dpi: int = 150, title: str | None = None) -> str:
    """Validate the options of :func:`plot_plane` before any work; the figure format.

    Parameters
    ----------
    plot : str or Path
        The figure file; its extension (.png, .pdf, .svg) is the format.
    color : {"class", "active", "random"}
        The cell colouring (:data:`COLOR_MODES`).
    dpi : int
        Resolution, 10 to :data:`MAX_DPI` (PDF and SVG are vector files; it sets their raster parts).
    title : str, optional
        The figure's title (None: the region count).

    Returns
    -------
    str
        ``"png"``, ``"pdf"`` or ``"svg"``.

    Raises
    ------
    InputError
        An unknown extension, an unknown colour mode, a dpi out of range or a title that is not text;
        each names its parameter.  (The target itself is checked by :class:`lrmilp.outputs.AtomicFile`.)

    Examples
    --------
    >>> check_plot_options("cells.SVG")
    'svg'
    """
    ext = Path(plot).suffix.lower().lstrip(".")
    if ext not in FORMATS:
        shown = f"'.{ext}'" if ext else "no extension"
        raise InputError(f"plot: cannot write a figure to {plot} ({shown}); the name must end in "
                         f"{', '.join('.' + f for f in FORMATS)}", param="plot")
    one_of("color", color, COLOR_MODES, what="colour mode")
    int_at_least("dpi", dpi, 10, MAX_DPI)
    if title is not None and not isinstance(title, str):
        raise InputError(f"title must be text, got {type(title).__name__}", param="title")
    return ext


def class_names(part: PlanePartition) -> list[str]:
    """The name of each class index of :meth:`PlanePartition.predicted_classes`: ``class k`` for
    several outputs, ``output <= 0`` / ``output > 0`` for one."""
    k = part.G.shape[1]
    return ["output <= 0", "output > 0"] if k == 1 else [f"class {c}" for c in range(k)]


def _palette(n: int) -> np.ndarray:
    """n qualitative colours: tab10 up to 10 classes, tab20 up to 20, then tab20 again (cyclic)."""
    from matplotlib import colormaps
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return np.array([cmap(i % cmap.N) for i in range(n)])


def _label_offset(value: float, lo: float, hi: float) -> tuple[int, str]:
    """Offset (points) and alignment that put a point's label on the side facing the window's
    centre, so that it stays inside the axes (and away from the title) wherever the point is."""
    return (6, "left") if value <= 0.5 * (lo + hi) else (-6, "right")


def _outside_path(window: np.ndarray, inside: np.ndarray):
    """A matplotlib Path of the window minus the convex polygon ``inside`` (a hole: reversed orientation)."""
    from matplotlib.path import Path as MPath
    rings = [window] + ([inside[::-1]] if len(inside) >= 3 else [])
    verts, codes = [], []
    for ring in rings:
        verts += [*ring, ring[0]]
        codes += [MPath.MOVETO] + [MPath.LINETO] * (len(ring) - 1) + [MPath.CLOSEPOLY]
    return MPath(np.array(verts), codes)


def plot_plane(part: PlanePartition, plot: str | Path, *, boundary: bool = False, title: str | None = None,
               dpi: int = 150, color: str = "class", model_box=None) -> Path:
    """Write a figure of the partition in the format its name ends in (.png, .pdf, .svg).

    The cells are filled by ``color`` with thin edges; the three points p0, p1, p2 (u = (0,0), (1,0),
    (0,1)) of a slice are marked and labelled inside the axes; ``boundary`` draws the output's decision
    boundary and names the class on each side (at the largest cell of every class); ``model_box`` hatches
    the part of a slice's window outside that input box.  The legend (and the colour bar of ``active``)
    sit outside the axes.

    Parameters
    ----------
    part : PlanePartition
        The partition (:func:`lrmilp.geometry.plane_partition`).
    plot : str or Path
        The figure file.
    boundary : bool
        Draw the decision boundary and the class labels.
    title : str, optional
        The title (None: the region count and tol); drawn as plain text, no math.
    dpi : int
        Resolution, 10 to :data:`MAX_DPI`.
    color : {"class", "active", "random"}
        ``class``: by predicted class (argmax at the cell's interior point) in a qualitative palette;
        ``active``: by the number of active neurons, viridis with a colour bar; ``random``: every cell
        its own colour.
    model_box : (array_like, array_like), optional
        (lo, hi) of the network's inputs: where its regions mean something.  Marked on slices only
        (on a 2-input box the window is the box).

    Returns
    -------
    Path
        The file written, whole or not at all (:class:`lrmilp.outputs.AtomicFile`).

    Raises
    ------
    InputError
        Bad options (:func:`check_plot_options`), no matplotlib, or a write error naming the file.
    """
    fmt = check_plot_options(plot, color=color, dpi=dpi, title=title)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plotting needs matplotlib (pip install 'lrmilp[plot]')") from None
    inside = None
    if model_box is not None and part.domain.basis is not None:
        inside = window_inside_box(part.domain, *model_box)
    with AtomicFile(plot, "plot", binary=True, suffix="." + fmt) as out:  # refuses a bad target before drawing
        fig = _draw(plt, part, boundary=boundary, title=title, color=color, inside=inside)
        buf = io.BytesIO()
        try:
            # drawn in memory: matplotlib's PDF writer wants a file it can seek in
            fig.savefig(buf, format=fmt, dpi=dpi)
        finally:
            plt.close(fig)
        out.write(buf.getvalue())
    return out.path


def _draw(plt, part: PlanePartition, *, boundary: bool, title: str | None, color: str, inside):
    """The matplotlib figure of :func:`plot_plane`."""
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, PathPatch
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.4, 6.4), layout="constrained")
    polys = part.polygons()
    lw = 0.3 if len(polys) < 2000 else 0.12  # thin: thousands of edges must not turn the figure grey
    edge_patch = Patch(facecolor="none", edgecolor=EDGE, lw=0.6, label=f"{part.regions:,} linear regions (cell edges)")
    handles = [edge_patch]
    cells = PolyCollection(polys, edgecolors=EDGE, linewidths=lw)
    names = class_names(part)
    pieces, classes = class_pieces(part) if color == "class" or boundary else ([], np.zeros(0, dtype=np.int64))
    if color == "class":
        pal = _palette(len(names))
        # the pieces are filled (edges in their own colour: no hairline seams), the cells outlined on top
        ax.add_collection(PolyCollection(pieces, facecolors=pal[classes] if len(classes) else "none",
                                         edgecolors="face", linewidths=0.3))
        cells.set_facecolor("none")
        handles += [Patch(facecolor=pal[c], edgecolor=EDGE, lw=0.6, label=names[c]) for c in np.unique(classes)]
    elif color == "active":
        counts = part.active_counts()
        cells.set_array(counts)
        cells.set_cmap("viridis")
        lo, hi = (int(counts.min()), int(counts.max())) if len(counts) else (0, 1)
        cells.set_clim(lo - 0.5, max(hi, lo + 1) + 0.5)  # one colour step per count
        bar = fig.colorbar(cells, ax=ax, shrink=0.8, pad=0.02)
        bar.set_label("active neurons in the cell's pattern")
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
    else:
        cells.set_facecolor(_colours(len(polys)) if len(polys) else "none")
    ax.add_collection(cells)
    lo, hi = part.domain.lo, part.domain.hi
    window = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    if inside is not None and polygon_area(inside) < polygon_area(window) * (1 - 1e-9):
        # a white veil with dark hatching: grey would read as a class colour (tab10 has a grey)
        style = dict(facecolor=(1.0, 1.0, 1.0, 0.6), edgecolor="#555555", hatch="///", lw=0.0)
        ax.add_patch(PathPatch(_outside_path(window, inside), zorder=3, **style))
        handles.append(Patch(**style, label="outside the model's input box"))
    if boundary:
        segs = decision_segments(part)
        ax.add_collection(LineCollection(segs, colors="black", linewidths=1.8, zorder=4))
        handles.append(Line2D([], [], color="black", lw=1.8, label="decision boundary"))
        _class_labels(ax, part, pieces, classes, names, inside)
    if part.domain.basis is not None:
        _points(ax, lo, hi)
        handles.append(Line2D([], [], marker="o", ls="", mfc="white", mec="black", label="p0, p1, p2"))
        ax.set_xlabel("u1  (along p1 - p0)")
        ax.set_ylabel("u2  (along p2 - p0)")
    else:
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_title(title if title is not None else f"{part.regions:,} linear regions on the plane (tol {part.tol:.2g})",
                 parse_math=False)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3 if len(handles) > 6 else 2),
               frameon=False, fontsize=9)
    return fig


def _clip_convex(poly: np.ndarray, window: np.ndarray) -> np.ndarray:
    """The part of a convex polygon inside a convex, counter-clockwise polygon ``window``."""
    for p, q in zip(window, np.roll(window, -1, axis=0)):
        if len(poly) < 3:
            break
        a = np.array([p[1] - q[1], q[0] - p[0]])  # left of the edge p -> q: the window's side
        poly = clip_polygon(poly, a, -float(a @ p), True)
    return poly


def _class_labels(ax, part: PlanePartition, pieces: list[np.ndarray], classes: np.ndarray, names: list[str],
                  inside: np.ndarray | None) -> None:
    """Name each class at its largest piece (the largest leaves room for the text), counting on a slice
    only the part inside the model's box when the class reaches it (where the reader looks); classes
    whose largest piece is below 0.2% of the window are too small to carry a label."""
    if not len(classes):
        return
    if inside is not None and len(inside) >= 3:
        shown = [_clip_convex(p, inside) for p in pieces]
    else:
        shown = pieces
    areas = np.array([polygon_area(p) for p in shown])
    full = np.array([polygon_area(p) for p in pieces])
    lo, hi = part.domain.lo, part.domain.hi
    floor = 0.002 * float(np.prod(hi - lo))
    for c in np.unique(classes):
        idx = np.flatnonzero(classes == c)
        best = idx[np.argmax(areas[idx])]
        at = shown[best]
        if areas[best] < floor:  # (almost) all outside the box: label its largest piece anyway
            best = idx[np.argmax(full[idx])]
            at = pieces[best]
            if full[best] < floor:
                continue
        ax.text(*at.mean(axis=0), names[c], ha="center", va="center", fontsize=9, zorder=6, clip_on=True,
                bbox=dict(boxstyle="round,pad=0.2", facecolor="white", edgecolor="black", lw=0.5, alpha=0.85))


def _points(ax, lo: np.ndarray, hi: np.ndarray) -> None:
    """Mark p0, p1, p2 (those inside the window), each label on the side facing the window's centre."""
    for (x, y), name in zip(((0.0, 0.0), (1.0, 0.0), (0.0, 1.0)), ("p0", "p1", "p2")):
        if not (lo[0] <= x <= hi[0] and lo[1] <= y <= hi[1]):
            continue
        ax.scatter([x], [y], s=50, c="white", edgecolors="black", zorder=7, clip_on=False)
        dx, ha = _label_offset(x, lo[0], hi[0])
        dy, va = _label_offset(y, lo[1], hi[1])
        ax.annotate(name, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha,
                    va="bottom" if va == "left" else "top", fontsize=10, weight="bold", zorder=7,
                    bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.8))
