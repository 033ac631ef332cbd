"""Geometry of regions (lrmilp.geometry) against oracles that share no code with it."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from math import comb

import numpy as np
import pytest
from scipy.optimize import linprog

from lrmilp import Conv2d, Network, random_mlp, save_npz
from lrmilp.counting import count_regions
from lrmilp.domains import Box, Unbounded, plane, segment
from lrmilp.geometry import (boundary_distance, cone_statistics, line_regions, plane_partition,
                             polyline_regions, region_faces)
from lrmilp.geometry.cones import filter_cone, kernel_rotation, nesting_state

from oracles import sawtooth


# --- lines -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n0,n1,seed", [(2, 7, 0), (5, 12, 1), (30, 20, 2)])
def test_one_layer_infinite_line_has_n_plus_one_regions(n0, n1, seed):
    net = random_mlp([n0, n1, 1], seed=seed, last_relu=False)
    rng = np.random.default_rng(seed)
    res = line_regions(net, rng.normal(size=n0), rng.normal(size=n0), infinite=True)
    assert res.regions[0] == n1 + 1
    assert np.all(np.diff(res.breakpoints[0]) > 0)


@pytest.mark.parametrize("seed", range(6))
def test_segment_counts_equal_tree_count_on_1d_slice(seed):
    rng = np.random.default_rng(seed)
    n0 = int(rng.integers(2, 6))
    net = random_mlp([n0] + [int(w) for w in rng.integers(4, 9, size=1 + seed % 3)] + [2], seed=seed,
                     last_relu=False)
    a, b = rng.normal(size=n0) * 2, rng.normal(size=n0) * 2
    res = line_regions(net, np.stack([a, b]), np.stack([b, a]))  # a batch: the segment both ways
    truth = count_regions(net, segment(a, b)).regions
    assert list(res.regions) == [truth, truth]
    assert np.allclose(res.breakpoints[0], 1 - res.breakpoints[1][::-1])
    # every piece between breakpoints is one pattern; neighbouring pieces differ
    cuts = np.r_[0.0, res.breakpoints[0], 1.0]
    mids = 0.5 * (cuts[1:] + cuts[:-1])
    pats = net.patterns(a + mids[:, None] * (b - a))
    assert np.all(np.any(pats[1:] != pats[:-1], axis=1))


@pytest.mark.parametrize("depth", [1, 3, 5, 7])
def test_sawtooth_breakpoints(depth):
    net = sawtooth(depth)
    res = line_regions(net, [0.0], [1.0])
    assert res.regions[0] == 2 ** depth
    assert np.allclose(res.breakpoints[0], np.arange(1, 2 ** depth) / 2 ** depth, atol=1e-12)


def test_polyline_along_a_straight_line_equals_the_segment():
    net = random_mlp([4, 10, 10, 1], seed=3, last_relu=False)
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=4), rng.normal(size=4)
    pts = np.stack([a, a + 0.3137 * (b - a), b])
    poly = polyline_regions(net, pts)
    seg = line_regions(net, a, b)
    assert poly.regions == seg.regions[0]
    assert poly.distinct_patterns == poly.regions  # a straight line meets each (convex) region once
    # the polyline's parameter on segment 0 is s = t / 0.3137, on segment 1 it is 1 + (t - 0.3137) / 0.6863
    t = seg.breakpoints[0]
    s = np.where(t < 0.3137, t / 0.3137, 1 + (t - 0.3137) / (1 - 0.3137))
    assert np.allclose(np.sort(s), poly.breakpoints, atol=1e-9)


# --- planes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("widths,seed", [([3, 8, 1], 0), ([5, 6, 6, 2], 1), ([4, 5, 5, 5, 1], 2),
                                         ([6, 4, 4, 4, 4, 3], 3), ([2, 10, 10, 1], 4), ([40, 12, 12, 1], 5)])
def test_plane_count_equals_tree_count(widths, seed):
    net = random_mlp(widths, seed=seed, last_relu=False)
    P = np.random.default_rng(seed).normal(size=(3, widths[0]))
    dom = plane(*P, -0.5, 1.5)
    part = plane_partition(net, dom)
    assert part.regions == count_regions(net, dom).regions
    polys = part.polygons()
    # each cell's centre has the cell's pattern, patterns are distinct, and the cells tile the window
    centres = np.array([p.mean(axis=0) for p in polys])
    assert np.array_equal(net.patterns(dom.to_input(centres)), part.patterns)
    assert len({p.tobytes() for p in np.packbits(part.patterns, axis=1)}) == part.regions
    areas = [0.5 * abs(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1))) for p in polys]
    assert sum(areas) == pytest.approx(4.0, rel=1e-9, abs=1e-9)
    # the output map of each cell is exact at its centre
    out = net.forward(dom.to_input(centres))
    assert np.allclose(np.einsum("cok,ck->co", part.G, centres) + part.h, out, atol=1e-8)


def test_plane_on_a_two_input_box():
    net = random_mlp([2, 16, 16, 16], seed=7)
    dom = Box(-1, 1, 2)
    assert plane_partition(net, dom).regions == count_regions(net, dom).regions


# --- distance --------------------------------------------------------------------------------------
def _lp_distance(layers, x):
    """Largest ball around x inside x's region, by LP over the region's H-representation built here."""
    rows, rhs = [], []
    M, m = np.eye(len(x)), np.zeros(len(x))
    for W, b, relu in layers:
        A, c = W @ M, W @ m + b
        if relu:
            s = (A @ x + c) > 0
            for i in range(len(c)):
                nrm = np.linalg.norm(A[i])
                if nrm > 1e-12:
                    sg = 1.0 if s[i] else -1.0
                    rows.append([nrm])      # r |a_i| <= sg (a_i x + c_i)
                    rhs.append(sg * (A[i] @ x + c[i]))
            M, m = A * s[:, None], c * s
    res = linprog([-1.0], A_ub=np.array(rows), b_ub=np.array(rhs), bounds=[(0, None)], method="highs")
    assert res.status == 0
    return -res.fun


@pytest.mark.parametrize("seed", range(3))
def test_distance_equals_lp(seed):
    net = random_mlp([4, 9, 7, 5, 2], seed=seed, last_relu=False)
    X = np.random.default_rng(seed).normal(size=(25, 4))
    res = boundary_distance(net, X, chunk=7)
    layers = [(layer.W, layer.b, layer.relu) for layer in net.layers]
    truth = np.array([_lp_distance(layers, x) for x in X])
    assert np.allclose(res.distances, truth, rtol=1e-7, atol=1e-10)


def test_distance_with_domain_faces_and_slice():
    net = random_mlp([3, 6, 6, 1], seed=4, last_relu=False)
    dom = Box(-1, 1, 3)
    X = np.array([[0.999, 0.0, 0.0], [0.0, 0.0, 0.0]])
    res = boundary_distance(net, X, domain=dom, domain_faces=True)
    plain = boundary_distance(net, X)
    assert res.distances[0] == pytest.approx(min(0.001, plain.distances[0]))
    assert res.distances[1] == pytest.approx(min(1.0, plain.distances[1]))
    # on a slice the distance is measured in the slice's parameters: basis 2 e_1 halves it
    sl = segment(np.zeros(3), np.array([2.0, 0.0, 0.0]))
    u = np.array([[0.1]])
    on_line = boundary_distance(net, u, domain=sl).distances[0]
    along = line_regions(net, np.zeros(3), np.array([2.0, 0.0, 0.0])).breakpoints[0]
    assert on_line == pytest.approx(np.min(np.abs(along - 0.1)), rel=1e-9)


# --- faces -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("d,n", [(2, 10), (3, 10), (2, 20)])
def test_facet_mean_of_generic_arrangement(d, n):
    net = random_mlp([d, n], seed=1)
    res = region_faces(net, Unbounded(d))
    expected = Fraction(2 * n * sum(comb(n - 1, i) for i in range(d)), sum(comb(n, i) for i in range(d + 1)))
    assert len(res.facets) == sum(comb(n, i) for i in range(d + 1))
    assert Fraction(int(res.facets.sum()), len(res.facets)) == expected
    assert res.domain_facets.sum() == 0


def test_faces_on_a_box_count_box_sides():
    # one neuron x1 + x2 = 0.5 over [0,1]^2: a triangle (2 box sides + the neuron) and a pentagon (4 + 1)
    from lrmilp.network import Dense
    net = Network([Dense(np.array([[1.0, 1.0]]), np.array([-0.5]))], (2,))
    res = region_faces(net, Box(0, 1, 2))
    assert sorted(zip(res.neuron_facets.tolist(), res.domain_facets.tolist())) == [(1, 2), (1, 4)]
    assert res.to_dict()["histogram"] == {3: 1, 5: 1}


# --- cones -----------------------------------------------------------------------------------------
# Definitions after Gamba et al. (reference code github.com/magamba/cones): apex -b/sum(w) on the
# identity line, opening arcsin(|sum w| / (|w| sqrt(n))) in the layer's input space R^n, states from
# D = max(upper apex - lower apex), O = min(upper opening - lower opening).
def test_filter_cone_apex_and_opening():
    ones = np.ones((1, 2, 2))                                       # S = 4, |w| = 2
    c = filter_cone(ones, 1.0)                                      # n = 4: sin = 4 / (2 * 2) = 1
    assert c["apex"] == pytest.approx(-0.25) and c["orientation"] == 1
    assert c["angle_deg"] == pytest.approx(90.0) and c["opening"] == pytest.approx(1.0)
    c = filter_cone(ones, 1.0, dim=16)                              # whole 4x4 input: sin = 4 / (2 * 4)
    assert c["angle_deg"] == pytest.approx(30.0) and c["opening"] == pytest.approx(1 / 3)
    c = filter_cone(-ones, 1.0)
    assert c["apex"] == pytest.approx(0.25) and c["orientation"] == -1
    thin = np.array([1.0, -0.9, 0.0, 0.0]).reshape(1, 2, 2)          # S = 0.1, |w| = sqrt(1.81)
    assert filter_cone(thin, -1.0)["apex"] == pytest.approx(10.0)
    assert filter_cone(thin, -1.0)["angle_deg"] == pytest.approx(
        np.degrees(np.arcsin(0.1 / (np.sqrt(1.81) * 2))))
    assert filter_cone(np.array([1.0, -1.0]).reshape(1, 1, 2), 0.3)["apex"] is None
    with pytest.raises(ValueError):
        filter_cone(ones, 1.0, dim=3)


def test_nesting_state_is_the_reference_rule():
    assert nesting_state([0.5], [0.2]) == "OUT_PARTIAL_IN"
    assert nesting_state([0.5], [-0.2]) == "OUT_FULL_IN"
    assert nesting_state([0.0], [0.0]) == "OUT_FULL_IN"               # D = 0 is OUT, O = 0 is FULL
    assert nesting_state([-0.5], [0.0]) == "IN_FULL_OUT"              # O = 0 is FULL
    assert nesting_state([-0.5], [-0.2]) == "IN_PARTIAL_OUT"
    assert nesting_state([-1.0, 0.5], [0.2, -0.1]) == "OUT_FULL_IN"   # max of the apex gaps, min of openings
    assert nesting_state([-1.0, -0.5], [0.3, 0.1]) == "IN_FULL_OUT"


def test_kernel_rotation():
    u, v = np.array([[1.0, -1.0]]), np.array([[-1.0, 1.0]])
    assert kernel_rotation(u, u, (3, 3)) == pytest.approx(0.0, abs=1e-6)
    assert kernel_rotation(u, v, (3, 3)) == pytest.approx(60.0)     # best shift: dot 1, norms sqrt 2
    # components orthogonal to the identity line of a 1x3 channel: Pu = (1,1,0) - 2/3, Pv = (1,0,0) - 1/3
    # |Pu|^2 = |Pv|^2 = 2/3, best dot 1 - 2/3: cos = 1/2 (45 deg without the projection)
    assert kernel_rotation(np.array([[1.0, 1.0]]), np.array([[1.0, 0.0]]), (1, 3)) == pytest.approx(60.0)
    assert kernel_rotation(np.array([[1.0, 1.0]]), np.array([[1.0, 0.0]]), (1, 2)) is None  # Pu = 0


def test_cone_statistics_on_a_cnn():
    # layer 0 on 1x3x3 (n = 9): two all-ones 2x2 filters, apexes 0.25 and 0.5, opening arcsin(4 / (2*3))
    l1 = Conv2d(np.ones((2, 1, 2, 2)), np.array([-1.0, -2.0]), (1, 3, 3))
    low_open = np.arcsin(2 / 3) / (np.pi / 2)
    ones, narrow = np.ones((2, 2, 2)), np.array([[[1.0, -1.0], [1.0, -1.0]], [[1.0, 0.0], [0.0, 0.0]]])
    flat = np.array([[[1.0, -1.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    # layer 1 on 2x2x2 (n = 8): ones has opening 90 deg (wider than layer 0), narrow arcsin(1/sqrt(40))
    W = np.stack([ones, ones, ones, narrow, narrow, flat])
    b = np.array([-8.0, 0.0, -2.4, -1.0, 1.0, 0.0])                  # apexes 1, 0, 0.3, 1, -1, none
    l2 = Conv2d(W, b, l1.out_shape)
    res = cone_statistics(Network([l1, l2], (1, 3, 3))).to_dict()
    pair = res["pairs"][0]
    assert [lc["apex"] for lc in pair["lower_filters"]] == pytest.approx([0.25, 0.5])
    assert [f["state"] for f in pair["filters"]] == [
        "OUT_PARTIAL_IN",   # apex 1 beyond both, wider
        "IN_FULL_OUT",      # apex 0 before both, wider
        "OUT_PARTIAL_IN",   # apex 0.3: beyond 0.25 only, and D is a max
        "OUT_FULL_IN",      # apex 1, narrower
        "IN_PARTIAL_OUT",   # apex -1, narrower
        "NO_APEX"]
    assert pair["counts"] == {"OUT_FULL_IN": 1, "OUT_PARTIAL_IN": 2, "IN_FULL_OUT": 1,
                              "IN_PARTIAL_OUT": 1, "NO_APEX": 1}
    assert res["counts"] == pair["counts"]
    p = pair["filters"][0]
    assert p["apex"] == pytest.approx(1.0) and p["angle_deg"] == pytest.approx(90.0)
    assert p["apex_distance"] == pytest.approx((0.75 + 0.5) / 2)
    assert p["opening_distance"] == pytest.approx(1 - low_open)
    assert pair["filters"][3]["angle_deg"] == pytest.approx(np.degrees(np.arcsin(1 / np.sqrt(40))))
    # all-ones kernels fill the 2x2 grid: normals along the identity line, no rotation defined
    assert pair["rotation_deg"] is None


def test_cone_rotation_in_a_cnn():
    # kernel [-1, 1] of layer 1 against kernel [1, -1] of layer 0: 60 deg (see test_kernel_rotation)
    l1 = Conv2d(np.array([1.0, -1.0]).reshape(1, 1, 1, 2), np.zeros(1), (1, 3, 3))
    l2 = Conv2d(np.array([-1.0, 1.0]).reshape(1, 1, 1, 2), np.zeros(1), l1.out_shape)
    pair = cone_statistics(Network([l1, l2], (1, 3, 3))).pairs[0]
    assert pair["rotation_deg"] == pytest.approx(60.0)
    assert pair["filters"][0]["rotation"] == pytest.approx(2 / 3)
    assert pair["filters"][0]["state"] == "NO_APEX"                   # both sums are 0


# --- command line ----------------------------------------------------------------------------------
def _run(*args):
    return subprocess.run([sys.executable, "-m", "lrmilp", *args], capture_output=True, text=True, timeout=120)


def _ok(*args):
    r = _run(*args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def files(tmp_path):
    net = random_mlp([3, 6, 6, 2], seed=2, last_relu=False)
    save_npz(net, tmp_path / "net.npz")
    rng = np.random.default_rng(2)
    np.save(tmp_path / "A.npy", rng.normal(size=3))
    np.save(tmp_path / "B.npy", rng.normal(size=3))
    np.save(tmp_path / "P.npy", rng.normal(size=(3, 3)))
    np.save(tmp_path / "X.npy", rng.normal(size=(10, 3)))
    return tmp_path, net


def test_cli_line_and_plane(files):
    tmp, net = files
    out = _ok("line", str(tmp / "net.npz"), "--start", str(tmp / "A.npy"), "--end", str(tmp / "B.npy"))
    assert type(out["regions"]) is int and out["regions"] == len(out["breakpoints"]) + 1
    assert all(0 < b < 1 for b in out["breakpoints"]) and out["breakpoints"] == sorted(out["breakpoints"])
    P = np.load(tmp / "P.npy")
    out = _ok("plane", str(tmp / "net.npz"), "--points", str(tmp / "P.npy"), "--window", "-1", "2")
    assert out["regions"] == count_regions(net, plane(*P, -1.0, 2.0)).regions


def test_cli_plane_plot(files):
    pytest.importorskip("matplotlib")
    tmp, _ = files
    png = tmp / "out.png"
    out = _ok("plane", str(tmp / "net.npz"), "--points", str(tmp / "P.npy"), "--plot", str(png), "--boundary")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out["plot"] == str(png)


def test_cli_faces_distance_cones(files):
    tmp, _ = files
    out = _ok("faces", str(tmp / "net.npz"), "--box", "-1", "1")
    hist = {int(k): v for k, v in out["histogram"].items()}
    assert sum(hist.values()) == out["regions"]
    assert out["mean_faces"] == pytest.approx(sum(k * v for k, v in hist.items()) / out["regions"])
    out = _ok("distance", str(tmp / "net.npz"), "--points", str(tmp / "X.npy"))
    assert len(out["distances"]) == 10 and out["mean"] > 0
    out = _ok("distance", str(tmp / "net.npz"), "--box", "-1", "1", "--samples", "50", "--domain-faces")
    assert out["points"] == 50
    assert _ok("cones", str(tmp / "net.npz"))["pairs"] == []


@pytest.mark.parametrize("args,needle", [
    (["line", "{net}", "--start", "{A}"], "--end"),
    (["line", "{net}", "--start", "{missing}", "--end", "{B}"], "no such file"),
    (["line", "{net}", "--start", "{A}", "--end", "{A}"], "equal start and end"),
    (["line", "{net}", "--start", "{P}", "--end", "{B}"], "shape"),
    (["plane", "{net}", "--points", "{A}"], "three points"),
    (["plane", "{net}", "--points", "{P}", "--window", "1", "1"], "empty"),
    (["plane", "{net}", "--points", "{P}", "--plot", "{nodir}/x.png"], "no folder"),
    (["distance", "{net}"], "--points"),
    (["faces", "{net}"], "no domain"),
])
def test_cli_bad_input(files, args, needle):
    tmp, _ = files
    names = {"net": tmp / "net.npz", "A": tmp / "A.npy", "B": tmp / "B.npy", "P": tmp / "P.npy",
             "missing": tmp / "nope.npy", "nodir": tmp / "nodir"}
    r = _run(*[a.format(**names) for a in args], "--json")
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle.lower() in lines[0].lower(), r.stderr
