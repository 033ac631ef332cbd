"""Each region's geometry in a regions file (``count --regions-out F --geometry-detail``).

Oracles that share no code with the detail pass: the network's own forward pass (patterns and outputs
at points), a dense grid on a 1-D input (each region an interval: its inradius is half its length), and
points sampled inside the reported ball.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lrmilp import random_mlp, save_npz
from lrmilp.counting import count_regions
from lrmilp.domains import Box, Unbounded, plane
from lrmilp.geometry.detail import add_geometry_detail, region_detail
from lrmilp.regions import read_regions


def _detailed(net, dom, tmp_path, **kw) -> list[dict]:
    out = tmp_path / "r.jsonl"
    res = count_regions(net, dom, regions_out=out, **kw)
    assert res.complete
    d = add_geometry_detail(net, dom, out)
    assert d.stopped is None and d.regions == d.total == res.regions
    return list(read_regions(out))


@pytest.mark.parametrize("widths,seed", [([3, 6, 5, 2], 1), ([2, 5, 5, 5, 3], 4)])
def test_detail_agrees_with_the_forward_pass(tmp_path, widths, seed):
    net = random_mlp(widths, seed=seed, last_relu=False)
    dom = Box(-1, 1, widths[0])
    rng = np.random.default_rng(0)
    for rec in _detailed(net, dom, tmp_path):
        A, b = np.array(rec["inequalities"]["A"]), np.array(rec["inequalities"]["b"])
        W, w = np.array(rec["affine"]["W"]), np.array(rec["affine"]["b"])
        x = rec["point"]
        assert A.shape == (net.neurons, widths[0]) and np.all(A @ x < b)  # an interior point: strict
        assert np.allclose(net.forward(x[None])[0], W @ x + w, atol=1e-9)
        # The largest ball is at least the count's certificate, inside the box, and every point of it
        # (sampled, shrunk by a hair) has the region's pattern.
        r, c = rec["inradius"], np.array(rec["inradius_center"])
        assert r >= rec["margin"] * (1 - 1e-7) and np.all(np.abs(c) <= 1 - r + 1e-9)
        v = rng.normal(size=(64, widths[0]))
        pts = c + 0.999 * r * v / np.linalg.norm(v, axis=1, keepdims=True)
        assert np.all(net.patterns(pts) == rec["pattern"])
        assert np.allclose(net.forward(pts), pts @ W.T + w, atol=1e-9)


def test_inradius_of_intervals_is_half_their_length(tmp_path):
    """One input: a pattern's set is convex, so each region is an interval of [-1, 1]: its largest ball
    is its half-length around its midpoint, read off a dense grid of the forward pass."""
    net = random_mlp([1, 6, 4], seed=3)
    grid = np.linspace(-1, 1, 200_001)[:, None]
    pats = net.patterns(grid)
    step = grid[1, 0] - grid[0, 0]
    for rec in _detailed(net, Box(-1, 1, 1), tmp_path):
        xs = grid[np.all(pats == rec["pattern"], axis=1), 0]
        assert xs.size
        assert abs(rec["inradius"] - (xs.max() - xs.min()) / 2) <= step
        assert abs(rec["inradius_center"][0] - (xs.max() + xs.min()) / 2) <= step


def test_slice_and_unbounded_domains(tmp_path):
    net = random_mlp([4, 5, 5], seed=2)
    rng = np.random.default_rng(1)
    dom = plane(rng.normal(size=4), rng.normal(size=4), rng.normal(size=4), -1.0, 1.0)
    for rec in _detailed(net, dom, tmp_path):
        c = np.array(rec["inradius_center"])  # a network input on the plane
        assert np.all(net.patterns(c[None])[0] == rec["pattern"]) and rec["inradius"] >= rec["margin"] * (1 - 1e-7)
    small = random_mlp([2, 3], seed=0)
    recs = _detailed(small, Unbounded(2), tmp_path, method="tree")
    # Three lines in the plane: every region is unbounded, and some hold arbitrarily large balls.
    assert any(r["inradius"] is None for r in recs)
    assert all(r["inradius"] is None or r["inradius"] >= r["margin"] * (1 - 1e-7) for r in recs)


def test_region_detail_of_one_pattern():
    net = random_mlp([2, 4], seed=0)
    x = np.array([[0.1, -0.2]])
    d = region_detail(net, Box(-1, 1, 2), net.patterns(x)[0])
    A, b = np.array(d["inequalities"]["A"]), np.array(d["inequalities"]["b"])
    assert np.all(A @ x[0] < b)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "lrmilp.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_cli_geometry_detail(tmp_path):
    path = tmp_path / "n.npz"
    save_npz(random_mlp([3, 5, 4], seed=0), path)
    out = tmp_path / "r.jsonl"
    r = _cli("count", path, "--box", "-1", "1", "--regions-out", out, "--geometry-detail", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["geometry_detail"]["complete"] and res["geometry_detail"]["regions"] == res["regions"]
    lines = out.read_text().splitlines()
    assert "geometry_detail" in json.loads(lines[0])
    assert len(lines) == res["regions"] + 1 and all("inradius" in json.loads(s) for s in lines[1:])
    r = _cli("count", path, "--box", "-1", "1", "--geometry-detail")
    assert r.returncode == 2 and "--regions-out" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_stopped_pass_leaves_the_count_file_as_it_was(tmp_path, monkeypatch):
    import time

    import lrmilp.geometry.detail as detail
    net, dom = random_mlp([3, 6, 5], seed=1), Box(-1, 1, 3)
    out = tmp_path / "r.jsonl"
    count_regions(net, dom, regions_out=out)
    before = out.read_bytes()
    real = detail._Detailer.__call__
    monkeypatch.setattr(detail._Detailer, "__call__", lambda self, p: (time.sleep(0.02), real(self, p))[1])
    res = add_geometry_detail(net, dom, out, time_limit=0.1)
    assert res.stopped == "time_limit" and 0 < res.regions < res.total
    assert out.read_bytes() == before and list(tmp_path.iterdir()) == [out]  # no temporary file left


def test_a_stop_signal_leaves_the_count_file_as_it_was(tmp_path, monkeypatch):
    import signal

    import lrmilp.geometry.detail as detail
    net, dom = random_mlp([3, 6, 5], seed=1), Box(-1, 1, 3)
    out = tmp_path / "r.jsonl"
    count_regions(net, dom, regions_out=out)
    before = out.read_bytes()
    real, calls = detail._Detailer.__call__, {"n": 0}

    def call(self, pattern):
        calls["n"] += 1
        if calls["n"] == 3:
            signal.raise_signal(signal.SIGTERM)  # this thread's signal: handled right here
        return real(self, pattern)
    monkeypatch.setattr(detail._Detailer, "__call__", call)
    res = add_geometry_detail(net, dom, out)
    assert res.stopped == "interrupted" and res.regions == 2
    assert out.read_bytes() == before and list(tmp_path.iterdir()) == [out]
