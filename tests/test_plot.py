"""Plane figures (lrmilp.geometry.plot, `lrmilp plane --plot`): formats, options, layout, colour modes,
--box planes and the part of a slice's window outside the model's box."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from lrmilp import random_mlp, save_npz
from lrmilp.cli import main
from lrmilp.counting import count_regions
from lrmilp.domains import Box, plane
from lrmilp.errors import InputError
from lrmilp.geometry import plane_partition
from lrmilp.geometry.plane import polygon_area, window_inside_box
from lrmilp.geometry.plot import check_plot_options, class_names, class_pieces, decision_segments

MAGIC = {"png": (b"\x89PNG\r\n\x1a\n",), "pdf": (b"%PDF",), "svg": (b"<?xml", b"<svg")}


def _cli(*args):
    """Run the CLI in this process (a subprocess per case would cost seconds of imports each)."""
    return CliRunner().invoke(main, list(map(str, args)), catch_exceptions=False)


def _ok(*args) -> dict:
    r = _cli(*args, "--json")
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def _bad(needle: str, *args) -> str:
    r = _cli(*args, "--json")
    assert r.exit_code == 2 and r.stdout == "", (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle.lower() in lines[0].lower(), r.stderr
    return lines[0]


@pytest.fixture
def nets(tmp_path):
    """A 2-input net with a model box, a 3-input net with one, a 3-input net without one, and points."""
    two = random_mlp([2, 8, 8, 3], seed=1, last_relu=False)
    two.lo, two.hi = np.full(2, -1.0), np.full(2, 1.0)
    three = random_mlp([3, 6, 6, 2], seed=2, last_relu=False)
    save_npz(three, tmp_path / "free.npz")
    three.lo, three.hi = np.zeros(3), np.ones(3)
    save_npz(two, tmp_path / "two.npz")
    save_npz(three, tmp_path / "three.npz")
    np.save(tmp_path / "P.npy", np.array([[0.2, 0.2, 0.5], [0.8, 0.3, 0.5], [0.3, 0.9, 0.5]]))
    return tmp_path, two, three


def _inside_convex(poly: np.ndarray, U: np.ndarray) -> np.ndarray:
    """Points in a closed counter-clockwise convex polygon (an oracle sharing no code with clipping; a
    repeated vertex gives a zero-length edge, which every point passes)."""
    ok = np.ones(len(U), dtype=bool)
    for p, q in zip(poly, np.roll(poly, -1, axis=0)):
        ok &= (q[0] - p[0]) * (U[:, 1] - p[1]) - (q[1] - p[1]) * (U[:, 0] - p[0]) >= -1e-12
    return ok


# --- the part of a slice's window inside the model's box (geometry, no drawing) --------------------
def test_window_inside_box_unit_square():
    dom = plane([0.0, 0.0], [1.0, 0.0], [0.0, 1.0], -1.0, 2.0)  # x = u, window [-1, 2]^2
    inside = window_inside_box(dom, 0.0, 1.0)
    assert polygon_area(inside) == pytest.approx(1.0)
    assert np.allclose(np.sort(inside, axis=0).min(axis=0), [0, 0]) and np.allclose(inside.max(axis=0), [1, 1])
    assert polygon_area(window_inside_box(dom, -5.0, 5.0)) == pytest.approx(9.0)  # the whole window
    assert polygon_area(window_inside_box(dom, [-np.inf, 0.5], [np.inf, np.inf])) == pytest.approx(4.5)
    assert window_inside_box(dom, 3.0, 4.0).shape == (0, 2)  # the box misses the window


def test_window_inside_box_constant_coordinate():
    # x3 = 0.5 on the whole plane: inside a box whose third side holds 0.5, outside one that does not
    dom = plane([0.0, 0.0, 0.5], [1.0, 0.0, 0.5], [0.0, 1.0, 0.5], -0.5, 1.5)
    assert polygon_area(window_inside_box(dom, 0.0, 1.0)) == pytest.approx(1.0)
    assert window_inside_box(dom, [0, 0, 0.6], [1, 1, 1]).shape == (0, 2)


@pytest.mark.parametrize("seed", range(4))
def test_window_inside_box_matches_pointwise_membership(seed):
    rng = np.random.default_rng(seed)
    n = 6
    P = rng.uniform(0.1, 0.9, size=(3, n))
    dom = plane(*P, -1.0, 2.0)
    inside = window_inside_box(dom, np.zeros(n), np.ones(n))
    g = np.linspace(-1, 2, 121)
    U = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    X = dom.to_input(U)
    margin = np.minimum(X, 1 - X).min(axis=1)  # > 0 inside the box
    far = np.abs(margin) > 1e-6  # away from the box's faces, where rounding decides
    truth = margin > 0
    assert truth.any() and (~truth).any()
    assert np.array_equal(_inside_convex(inside, U[far]), truth[far])
    assert polygon_area(inside) == pytest.approx(truth.mean() * 9.0, rel=0.05)


def test_window_inside_box_bad_input():
    dom = plane(np.zeros(3), np.eye(3)[0], np.eye(3)[1])
    with pytest.raises(InputError, match="lo"):
        window_inside_box(dom, np.zeros(2), np.ones(3))
    with pytest.raises(InputError, match="2-D"):
        window_inside_box(Box(-1, 1, 3), -1, 1)


# --- classes and the decision boundary ------------------------------------------------------------
@pytest.mark.parametrize("outputs", [1, 3])
def test_class_pieces_tile_the_window_and_hold_their_class(outputs):
    net = random_mlp([2, 7, 7, outputs], seed=3, last_relu=False)  # a seed where the classes meet
    part = plane_partition(net, Box(-1, 1, 2))
    pieces, classes = class_pieces(part)
    assert sum(polygon_area(p) for p in pieces) == pytest.approx(4.0)
    assert len(pieces) >= part.regions and set(classes) <= set(range(len(class_names(part))))
    out = net.forward(np.array([p.mean(axis=0) for p in pieces]))
    truth = (out[:, 0] > 0).astype(int) if outputs == 1 else out.argmax(axis=1)
    assert np.array_equal(classes, truth)
    # the cells' own classes are the argmax at their interior points
    X = part.interior_points()
    cell_truth = net.forward(X)
    cell_truth = (cell_truth[:, 0] > 0).astype(int) if outputs == 1 else cell_truth.argmax(axis=1)
    assert np.array_equal(part.predicted_classes(), cell_truth)
    segs = decision_segments(part)
    assert len(set(classes)) > 1 and segs
    mids = net.forward(np.array([s.mean(axis=0) for s in segs]))  # on the boundary: a tie, or output 0
    top = np.sort(mids, axis=1)
    gap = np.abs(top[:, 0]) if outputs == 1 else top[:, -1] - top[:, -2]
    assert np.all(gap <= 1e-9 * max(np.abs(mids).max(), 1.0))


def test_active_counts_are_pattern_sums():
    net = random_mlp([2, 6, 6, 2], seed=5, last_relu=False)
    part = plane_partition(net, Box(-1, 1, 2))
    assert np.array_equal(part.active_counts(), net.patterns(part.interior_points()).sum(axis=1))


# --- options ----------------------------------------------------------------------------------------
def test_check_plot_options(tmp_path):
    assert check_plot_options(tmp_path / "a.PNG") == "png"
    assert check_plot_options(tmp_path / "a.pdf", color="active", dpi=600) == "pdf"
    assert check_plot_options(tmp_path / "a.svg", color="random", dpi=10, title="t") == "svg"
    for path, needle in (("a.jpg", "'.jpg'"), ("a", "no extension"), ("a.png.gz", "'.gz'")):
        with pytest.raises(InputError, match=needle) as e:
            check_plot_options(tmp_path / path)
        assert e.value.param == ("plot",)
    with pytest.raises(InputError, match="colour mode"):
        check_plot_options(tmp_path / "a.png", color="rainbow")
    for dpi in (9, 601, 1.5):
        with pytest.raises(InputError, match="dpi"):
            check_plot_options(tmp_path / "a.png", dpi=dpi)
    assert list(tmp_path.iterdir()) == []


# --- the command line ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_cli_plot_formats(nets, fmt):
    pytest.importorskip("matplotlib")
    tmp, _, _ = nets
    out = tmp / f"cells.{fmt}"
    res = _ok("plane", tmp / "three.npz", "--points", tmp / "P.npy", "--plot", out, "--boundary")
    head = out.read_bytes()[:64].lstrip()
    assert head.startswith(MAGIC[fmt]), head
    assert res["plot"] == str(out)
    assert sorted(p.name for p in tmp.iterdir()) == sorted(["free.npz", "three.npz", "two.npz", "P.npy",
                                                           out.name])  # no temporary file left


def test_cli_unknown_format_writes_nothing(nets):
    tmp, _, _ = nets
    before = sorted(tmp.iterdir())
    line = _bad("--plot", "plane", tmp / "three.npz", "--points", tmp / "P.npy", "--plot", tmp / "cells.jpg")
    assert "'.jpg'" in line and ".png" in line
    _bad("--plot", "plane", tmp / "two.npz", "--plot", tmp / "cells")
    assert sorted(tmp.iterdir()) == before


def test_cli_title_and_dpi(nets):
    pytest.importorskip("matplotlib")
    tmp, _, _ = nets
    widths = []
    for dpi in (50, 100):
        png = tmp / f"d{dpi}.png"
        _ok("plane", tmp / "two.npz", "--plot", png, "--dpi", dpi)
        widths.append(int.from_bytes(png.read_bytes()[16:20], "big"))  # the IHDR width
    assert widths[1] == pytest.approx(2 * widths[0], rel=0.02)
    svg = tmp / "t.svg"
    _ok("plane", tmp / "two.npz", "--plot", svg, "--title", "Cells of $net$ 50% <two>")
    assert "Cells of $net$ 50% &lt;two&gt;" in svg.read_text()  # plain text, no math parsing
    _bad("--dpi", "plane", tmp / "two.npz", "--plot", tmp / "x.png", "--dpi", "5")
    _bad("--plot", "plane", tmp / "two.npz", "--title", "t")
    _bad("--plot", "plane", tmp / "two.npz", "--boundary")
    _bad("--color", "plane", tmp / "two.npz", "--plot", tmp / "x.png", "--color", "rainbow")


@pytest.mark.parametrize("color", ["class", "active", "random"])
def test_cli_color_modes(nets, color):
    pytest.importorskip("matplotlib")
    tmp, _, _ = nets
    png = tmp / f"{color}.png"
    _ok("plane", tmp / "two.npz", "--plot", png, "--color", color, "--boundary", "--dpi", "40")
    assert png.read_bytes()[:8] == MAGIC["png"][0]


def test_cli_box_plane_of_a_two_input_net(nets):
    tmp, two, _ = nets
    res = _ok("plane", tmp / "two.npz")  # the model's own box, no point file
    assert res["plane"] == "input box" and res["domain"]["kind"] == "box"
    assert res["regions"] == count_regions(two, Box(-1, 1, 2)).regions
    res = _ok("plane", tmp / "two.npz", "--box", "-2", "0.5")
    assert res["regions"] == count_regions(two, Box(-2, 0.5, 2)).regions and res["domain"]["lo"] == [-2, -2]
    box = tmp / "box.json"
    box.write_text(json.dumps({"lo": [-1, 0], "hi": [0, 1]}))
    assert _ok("plane", tmp / "two.npz", "--box-file", box)["regions"] == count_regions(
        two, Box([-1, 0], [0, 1], 2)).regions
    box.write_text(json.dumps({"lo": [-1, 0], "hi": [0, 1], "A": [[1, 1]], "b": [0]}))
    _bad("--box-file", "plane", tmp / "two.npz", "--box-file", box)
    _bad("2-input", "plane", tmp / "three.npz")
    _bad("--points", "plane", tmp / "three.npz", "--box", "0", "1")
    _bad("--window", "plane", tmp / "two.npz", "--window", "0", "1")
    _bad("--unbounded", "plane", tmp / "two.npz", "--unbounded")


def test_cli_slice_reports_the_share_inside_the_box(nets):
    tmp, _, _ = nets
    P = np.load(tmp / "P.npy")
    res = _ok("plane", tmp / "three.npz", "--points", tmp / "P.npy")
    expect = polygon_area(window_inside_box(plane(*P), 0.0, 1.0)) / 4.0
    assert 0 < res["window_inside_box"] < 1 and res["window_inside_box"] == pytest.approx(expect)
    # --box overrides the model's box; a net without a box gets no share
    assert _ok("plane", tmp / "three.npz", "--points", tmp / "P.npy", "--box", "-100", "100")[
        "window_inside_box"] == pytest.approx(1.0)
    assert "window_inside_box" not in _ok("plane", tmp / "free.npz", "--points", tmp / "P.npy")


# --- layout: nothing covers the cells, labels stay inside the axes ---------------------------------
def test_layout_labels_inside_legend_outside(nets):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lrmilp.geometry import plot

    _, _, three = nets
    # p0 on the window's lower-left corner and p1, p2 on its edges: the worst case for labels
    part = plane_partition(three, plane([0.2, 0.2, 0.5], [0.8, 0.3, 0.5], [0.3, 0.9, 0.5], 0.0, 1.0))
    inside = window_inside_box(part.domain, three.lo, three.hi)
    fig = plot._draw(plt, part, boundary=True, title=None, color="class", inside=inside)
    try:
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        ax = fig.axes[0]
        box = ax.get_window_extent(r)
        title = ax.title.get_window_extent(r)
        texts = [t for t in ax.texts if t.get_text()]
        assert {"p0", "p1", "p2"} <= {t.get_text() for t in texts}
        for t in texts:
            e = t.get_window_extent(r)
            assert box.x0 - 0.5 <= e.x0 and e.x1 <= box.x1 + 0.5 and box.y0 - 0.5 <= e.y0 and e.y1 <= box.y1 + 0.5, t
            assert not e.overlaps(title), t
        legend = fig.legends[0].get_window_extent(r)
        assert not legend.overlaps(box)
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert any("linear regions" in s for s in labels) and "decision boundary" in labels
        assert any(s.startswith("class ") for s in labels)
    finally:
        plt.close(fig)


def test_outside_box_is_drawn_only_when_part_of_the_window_is_outside(nets):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lrmilp.geometry import plot

    _, _, three = nets
    part = plane_partition(three, plane([0.2, 0.2, 0.5], [0.8, 0.3, 0.5], [0.3, 0.9, 0.5]))
    for lo, hi, marked in ((three.lo, three.hi, True), (-10.0, 10.0, False)):
        fig = plot._draw(plt, part, boundary=False, title="t", color="active",
                         inside=window_inside_box(part.domain, lo, hi))
        try:
            labels = [t.get_text() for t in fig.legends[0].get_texts()]
            assert ("outside the model's input box" in labels) == marked
            assert len(fig.axes) == 2  # the colour bar of --color active
        finally:
            plt.close(fig)
