"""The one-tree enumerator against oracles that share no code with it (tests/oracles.py)."""

from __future__ import annotations

import numpy as np
import pytest

from lrmilp import random_mlp
from lrmilp.counting import count_regions
from lrmilp.domains import AffineSlice, Box, Polytope, Unbounded
from lrmilp.regions import read_regions
from lrmilp.search import TreeSearch
from lrmilp.network import Dense, Network

from oracles import box_rows, brute_force_count, sawtooth, zaslavsky_general


def _layers(net):
    return [(np.asarray(layer.matrix.toarray() if hasattr(layer.matrix, "toarray") else layer.matrix),
             layer.bias, layer.relu) for layer in net.layers]


def _patterns(net, dom, **kw):
    seen = []
    enum = TreeSearch(net, dom, on_region=lambda p, u, r: seen.append((tuple(p), u, r)), **kw)
    enum.run()
    return seen


def _check_against_brute(net, dom, A_dom, b_dom, **kw):
    seen = _patterns(net, dom, **kw)
    pats = [p for p, _, _ in seen]
    assert len(pats) == len(set(pats)), "a region was listed twice"
    origin = np.zeros(net.input_dim) if dom.origin is None else dom.origin
    basis = np.eye(net.input_dim) if dom.basis is None else dom.basis
    truth = brute_force_count(_layers(net), origin=origin, basis=basis, A_dom=A_dom, b_dom=b_dom)
    assert set(pats) == truth
    # every listed interior point lies in its region's pattern and in the domain
    for p, u, r in seen:
        x = dom.to_input(u)
        assert tuple(net.patterns(x)[0]) == p
        assert dom.contains(u[None, :])[0]
        assert r > 0


CASES = []
for seed in range(8):
    CASES.append(("box", seed))
for seed in range(6):
    CASES.append(("polytope", seed))
for seed in range(6):
    CASES.append(("slice", seed))
for seed in range(4):
    CASES.append(("box-deep", seed))
for seed in range(3):
    CASES.append(("box-5-6d", seed))   # the vertex (qhull) pre-tests
    CASES.append(("polytope-in-box", seed))
for seed in range(4):
    CASES.append(("box-7-8d", seed))   # batch geometry by default


@pytest.mark.parametrize("kind,seed", CASES)
def test_brute_force_agrees(kind, seed):
    net, dom, A, b = _case(kind, seed)
    _check_against_brute(net, dom, A, b)


@pytest.mark.parametrize("kind,seed", [c for c in CASES if c[0] not in ("polytope",)])
def test_batch_geometry_agrees_with_brute_force(kind, seed):
    """The batch geometry (frontier + batched dense LPs) on every bounded case, small d included."""
    net, dom, A, b = _case(kind, seed)
    _check_against_brute(net, dom, A, b, geometry="batch")


def _case(kind, seed):
    rng = np.random.default_rng(100 + seed)
    if kind == "box":
        n0 = int(rng.integers(2, 5))
        net = random_mlp([n0, 5, 4, 1], seed=seed, last_relu=False)
        lo, hi = -rng.uniform(0.5, 2, n0), rng.uniform(0.5, 2, n0)
        dom = Box(lo, hi, n0)
        A, b = box_rows(lo, hi)
    elif kind == "box-deep":
        n0 = 3
        net = random_mlp([n0, 3, 3, 3, 2], seed=seed, last_relu=False)
        dom = Box(-1, 1, n0)
        A, b = box_rows(-np.ones(n0), np.ones(n0))
    elif kind == "box-7-8d":
        n0 = 7 + seed % 2
        net = random_mlp([n0, 5, 4], seed=seed, bias_std=0.5)
        lo, hi = -rng.uniform(0.5, 2, n0), rng.uniform(0.5, 2, n0)
        dom = Box(lo, hi, n0)
        A, b = box_rows(lo, hi)
    elif kind == "box-5-6d":
        n0 = 5 + seed % 2
        net = random_mlp([n0, 5, 4], seed=seed)
        dom = Box(-1, 1, n0)
        A, b = box_rows(-np.ones(n0), np.ones(n0))
    elif kind == "polytope-in-box":
        n0 = 4 + seed % 2
        net = random_mlp([n0, 5, 4], seed=seed)
        Ap = rng.normal(size=(3, n0))
        bp = rng.uniform(0.2, 0.8, 3)
        dom = Polytope(Ap, bp, n0, lo=-1, hi=1)
        Ab, bb = box_rows(-np.ones(n0), np.ones(n0))
        A, b = np.vstack([Ap, Ab]), np.concatenate([bp, bb])
    elif kind == "polytope":
        n0 = int(rng.integers(2, 4))
        net = random_mlp([n0, 5, 4, 1], seed=seed, last_relu=False)
        Ap = rng.normal(size=(n0 + 3, n0))
        bp = rng.uniform(0.5, 1.5, n0 + 3)  # contains a ball around 0
        dom = Polytope(Ap, bp, n0)
        A, b = Ap, bp
    else:
        n0 = 5
        net = random_mlp([n0, 5, 4, 1], seed=seed, last_relu=False)
        p = rng.normal(size=(3, n0))
        dom = AffineSlice(p[0], np.stack([p[1] - p[0], p[2] - p[0]], 1), -0.5, 1.5)
        A, b = box_rows(np.full(2, -0.5), np.full(2, 1.5))
    return net, dom, A, b


def test_lp_and_polygon_geometry_agree_in_2d():
    for seed in range(4):
        net = random_mlp([2, 8, 8, 1], seed=seed, last_relu=False)
        dom = Box(-1, 1, 2)
        a = {p for p, _, _ in _patterns(net, dom, geometry="lp")}
        b = {p for p, _, _ in _patterns(net, dom, geometry="polygon")}
        assert a == b and len(a) > 10


@pytest.mark.parametrize("n0,n1", [(1, 7), (2, 6), (2, 10), (3, 8), (4, 9), (5, 12)])
def test_one_layer_general_position_over_rn(n0, n1):
    net = random_mlp([n0, n1], seed=n0 * 100 + n1)
    r = count_regions(net, Unbounded(n0))
    assert r.complete and r.regions == zaslavsky_general(n0, n1)


@pytest.mark.parametrize("depth", [1, 2, 5, 8, 12])
def test_sawtooth(depth):
    net = sawtooth(depth)
    dom = Box(0, 1, 1)
    assert count_regions(net, dom).regions == 2 ** depth


def test_sawtooth_on_lp_geometry():
    net = sawtooth(6)
    seen = _patterns(net, Box(0, 1, 1), geometry="lp")
    assert len(seen) == 64


def test_sampled_patterns_are_enumerated(tmp_path):
    net = random_mlp([3, 10, 10, 2], seed=7, last_relu=False)
    dom = Box(-1, 1, 3)
    out = tmp_path / "regions.jsonl"
    r = count_regions(net, dom, regions_out=out)
    pats = {tuple(rec["pattern"]) for rec in read_regions(out)}
    assert len(pats) == r.regions > 50
    X = np.random.default_rng(0).uniform(-1, 1, (100_000, 3))
    sampled = {tuple(p) for p in np.unique(net.patterns(X), axis=0)}
    assert sampled <= pats


def test_degenerate_nets_match_brute_force():
    rng = np.random.default_rng(3)
    W1 = rng.normal(size=(6, 2))
    b1 = rng.normal(size=6)
    W1[1] = W1[0]; b1[1] = b1[0]          # duplicate neuron
    W1[2] = 0.0; b1[2] = -1.0             # dead neuron
    W1[3] = 0.0; b1[3] = 0.5              # always-active constant neuron
    W1[4] = -2 * W1[5]; b1[4] = -2 * b1[5]  # same hyperplane, opposite orientation
    W2 = rng.normal(size=(4, 6))
    W2[0] = 0.0                           # zero weight row
    W2[1, :] = 0.0; W2[1, 2] = 1.0        # reads only the dead neuron: constant 0 on every region
    b2 = rng.normal(size=4)
    b2[1] = 0.0
    net = Network([Dense(W1, b1), Dense(W2, b2), Dense(np.ones((1, 4)), np.zeros(1), relu=False)], (2,))
    for dom, (A, b) in [(Box(-2, 2, 2), box_rows(np.full(2, -2.0), np.full(2, 2.0)))]:
        for geometry in ("lp", "polygon", "batch"):
            seen = {p for p, _, _ in _patterns(net, dom, geometry=geometry)}
            truth = brute_force_count(_layers(net), origin=np.zeros(2), basis=np.eye(2), A_dom=A, b_dom=b)
            assert seen == truth


def test_limits_give_lower_bounds():
    net = random_mlp([3, 12, 12], seed=1)
    dom = Box(-1, 1, 3)
    full = count_regions(net, dom)
    part = count_regions(net, dom, max_regions=10)
    assert full.complete and not part.complete and part.regions == 10 and part.stopped == "max_regions"


def test_tolerance_is_reported():
    net = random_mlp([2, 5], seed=0)
    r = count_regions(net, Box(-1, 1, 2), tol=1e-4).to_dict()
    assert r["tol"] == 1e-4 and "ball" in r["tol_meaning"]


@pytest.mark.parametrize("widths,n0", [([3, 8, 8, 1], 3), ([7, 6, 6, 5], 7), ([2, 6, 6], 2)])
def test_parallel_equals_serial(widths, n0, tmp_path):
    net = random_mlp(widths, seed=4)
    dom = Box(-1, 1, n0)
    serial = count_regions(net, dom)
    out = tmp_path / "r.jsonl"
    par = count_regions(net, dom, jobs=2, regions_out=out)
    assert par.complete and par.regions == serial.regions
    pats = [tuple(r["pattern"]) for r in read_regions(out)]
    assert len(pats) == len(set(pats)) == serial.regions


def test_time_limit_stops_serial_and_parallel():
    import time
    net = random_mlp([16, 11, 11], seed=0)
    dom = Box(-1, 1, 16)
    for jobs in (1, 2):
        t = time.perf_counter()
        r = count_regions(net, dom, jobs=jobs, time_limit=2.0)
        assert not r.complete and r.stopped == "time_limit" and r.regions > 0
        assert time.perf_counter() - t < 10


def test_ctrl_c_returns_partial_count(tmp_path, numba_cache):
    import json
    import re
    import signal
    from lrmilp import save_npz
    from procs import Child
    net = random_mlp([16, 11, 11], seed=0)
    path = tmp_path / "n.npz"
    save_npz(net, path)
    regions = tmp_path / "r.jsonl"
    child = Child("count", str(path), "--box", "-1", "1", "--json", "--progress", "--regions-out", str(regions))
    child.wait_for_stderr(re.compile(rb"regions [1-9]"))  # the search has found regions, whatever the load
    child.proc.send_signal(signal.SIGINT)
    code, out, err = child.finish()
    assert code == 0, err
    res = json.loads(out)
    assert res["complete"] is False and res["stopped"] == "interrupted" and res["regions"] > 0
    assert sum(1 for _ in read_regions(regions)) == res["regions"]
