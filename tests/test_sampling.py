"""Sampling estimators: every sampled pattern is a real region, so the estimate never exceeds the count."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lrmilp import random_mlp, save_npz
from lrmilp.counting import count_regions
from lrmilp.domains import Box, Unbounded
from lrmilp.regions import read_regions
from lrmilp.errors import InputError
from lrmilp.network import pack_pattern
from lrmilp.sampling import sample_patterns


def test_sampled_patterns_are_regions(tmp_path):
    net = random_mlp([3, 8, 8], seed=2)
    dom = Box(-1, 1, 3)
    out = tmp_path / "r.jsonl"
    exact = count_regions(net, dom, regions_out=out)
    regions = {pack_pattern(r["pattern"]) for r in read_regions(out)}
    res = sample_patterns(net, dom, samples=200_000, batch=50_000)
    X = dom.sample(200_000, np.random.default_rng(0))
    seen = {pack_pattern(p) for p in net.patterns(X)}
    assert seen <= regions
    assert res.distinct_patterns == len(seen) <= exact.regions


def test_gaussian_and_data(tmp_path):
    net = random_mlp([2, 6, 6], seed=1)
    exact = count_regions(net, Unbounded(2)).regions
    g = sample_patterns(net, Unbounded(2), samples=100_000, distribution="gaussian", sigma=3.0)
    assert 0 < g.distinct_patterns <= exact
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).normal(size=(5000, 2)))
    d = sample_patterns(net, Unbounded(2), samples=10**9, distribution="data", data=data)
    assert d.samples == 5000 and d.distinct_patterns <= exact
    with pytest.raises(InputError):
        sample_patterns(net, Unbounded(2), samples=10, distribution="uniform")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 3)))
    with pytest.raises(InputError, match="values"):
        sample_patterns(net, Unbounded(2), samples=10, distribution="data", data=bad)


def test_cli_sample(tmp_path):
    path = tmp_path / "n.npz"
    save_npz(random_mlp([3, 5, 5], seed=0), path)
    r = subprocess.run([sys.executable, "-m", "lrmilp.cli", "sample", str(path), "--box", "-1", "1", "--samples",
                        "20000", "--json"], capture_output=True, text=True)
    assert r.returncode == 0 and '"distinct_patterns"' in r.stdout
    r = subprocess.run([sys.executable, "-m", "lrmilp.cli", "sample", str(path), "--box", "-1", "1", "--samples",
                        "0", "--json"], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
