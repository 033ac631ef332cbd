"""count --around: exact counts in the l-inf box around each point (local complexity), checked against
brute force over all patterns, sampled patterns, parallel runs and the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lrmilp import random_mlp, save_npz
from lrmilp.domains import Box
from lrmilp.errors import InputError
from lrmilp.local import count_around

from oracles import box_rows, brute_force_count


def _layers(net):
    return [(np.asarray(layer.matrix.toarray() if hasattr(layer.matrix, "toarray") else layer.matrix),
             layer.bias, layer.relu) for layer in net.layers]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_point_equals_brute_force_over_its_box(seed):
    net = random_mlp([2, 4, 3], seed=seed)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (4, 2))
    r = 0.4
    res = count_around(net, X, r)
    assert res.complete and res.stopped is None and len(res.counts) == 4
    for x, got in zip(X, res.counts):
        A, b = box_rows(x - r, x + r)
        truth = brute_force_count(_layers(net), origin=np.zeros(2), basis=np.eye(2), A_dom=A, b_dom=b)
        assert got == len(truth)


def test_within_cuts_each_box_and_samples_never_exceed_counts():
    net = random_mlp([3, 5, 4], seed=3)  # 9 neurons: 512 brute-force LPs a point
    X = np.array([[0.0, 0.0, 0.0], [0.95, 0.5, 0.05]])
    unit = Box(0, 1, 3)
    res = count_around(net, X, 0.2, within=unit)
    lo, hi = np.maximum(X - 0.2, 0), np.minimum(X + 0.2, 1)
    rng = np.random.default_rng(0)
    for x_lo, x_hi, got in zip(lo, hi, res.counts):
        A, b = box_rows(x_lo, x_hi)
        assert got == len(brute_force_count(_layers(net), origin=np.zeros(3), basis=np.eye(3), A_dom=A, b_dom=b))
        U = rng.uniform(x_lo, x_hi, (20000, 3))
        assert len({p.tobytes() for p in net.patterns(U)}) <= got
    assert res.within == [[0.0] * 3, [1.0] * 3]


def test_parallel_equals_serial():
    net = random_mlp([4, 8, 8], seed=5)
    X = np.random.default_rng(1).uniform(-1, 1, (6, 4))
    serial = count_around(net, X, 0.3)
    par = count_around(net, X, 0.3, jobs=2)
    assert par.counts == serial.counts and par.complete
    d = par.to_dict()
    assert d["mean"] == pytest.approx(np.mean(serial.counts)) and d["min"] == min(serial.counts)


@pytest.mark.parametrize("kwargs,param", [({"radius": 0.0}, "radius"), ({"radius": float("nan")}, "radius"),
                                          ({"points": np.zeros((2, 5))}, "points"),
                                          ({"points": np.full((1, 4), np.inf)}, "points"),
                                          ({"method": "foo"}, "method"), ({"geometry": "foo"}, "geometry"),
                                          ({"within": Box(0.5, 1, 4)}, "points"), ({"jobs": 0}, "jobs")])
def test_bad_options_name_the_parameter(kwargs, param):
    net = random_mlp([4, 5], seed=0)
    args = {"points": np.zeros((2, 4)), "radius": 0.1, **kwargs}
    with pytest.raises(InputError) as e:
        count_around(net, args.pop("points"), args.pop("radius"), **args)
    assert param in str(e.value) or param in str(getattr(e.value, "param", ""))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lrmilp.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_count_around(tmp_path):
    net = random_mlp([3, 6, 6], seed=2)
    model, pts = tmp_path / "net.npz", tmp_path / "x.npy"
    save_npz(net, model)
    X = np.random.default_rng(3).uniform(-0.5, 0.5, (3, 3))
    np.save(pts, X)
    r = cli("count", str(model), "--around", str(pts), "--radius", "0.25", "--jobs", "1", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["counts"] == count_around(net, X, 0.25).counts and out["complete"] is True
    assert out["points"] == 3 and out["norm"] == "inf"
    for args, needle in [(("--radius", "0.25", "--max-regions", "5"), "--max-regions"), ((), "--radius"),
                         (("--radius", "0.25", "--unbounded"), "--unbounded")]:
        bad = cli("count", str(model), "--around", str(pts), *args)
        assert bad.returncode == 2 and bad.stdout == "" and needle in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
