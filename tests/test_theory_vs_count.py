"""Closed forms against measured counts: one_layer_exact must equal the enumerator over R^n0."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lrmilp import random_mlp, save_npz
from lrmilp.counting import count_regions
from lrmilp.domains import Unbounded
from lrmilp.network import Conv2d, Dense, Network
from lrmilp.theory import one_layer_exact, xiong2020


@pytest.mark.parametrize("n0,n1,seed", [(2, 5, 0), (3, 7, 1), (4, 6, 2), (5, 9, 3)])
def test_one_layer_mlp(n0, n1, seed):
    net = random_mlp([n0, n1, 2], seed=seed, last_relu=False)
    assert one_layer_exact(net) == count_regions(net, Unbounded(n0)).regions


@pytest.mark.parametrize("shape,kernel,filters,stride,seed", [
    ((1, 3, 3), (2, 2), 2, 1, 0),   # overlapping 2-D filters: Theorem 2 says 256, the truth is 255
    ((1, 3, 3), (2, 2), 2, 1, 1),
    ((1, 1, 4), (1, 2), 3, 1, 2),   # 1-D filters: both are 217
    ((1, 3, 4), (2, 2), 1, 1, 3),
    ((2, 3, 3), (2, 2), 1, 1, 4),
])
def test_one_layer_cnn(shape, kernel, filters, stride, seed):
    rng = np.random.default_rng(seed)
    conv = Conv2d(rng.normal(size=(filters, shape[0], *kernel)), rng.normal(size=filters), shape, stride=stride)
    net = Network([conv, Dense(rng.normal(size=(1, conv.out_size)), np.zeros(1), relu=False)], shape)
    exact = one_layer_exact(net)
    assert exact == count_regions(net, Unbounded(net.input_dim)).regions
    assert exact <= xiong2020(input_shape=shape, kernel=kernel, filters=filters, stride=stride)
    if shape == (1, 3, 3):
        assert exact == 255


def test_cli_bounds_on_cnn_shows_both(tmp_path):
    rng = np.random.default_rng(0)
    conv = Conv2d(rng.normal(size=(2, 1, 2, 2)), rng.normal(size=2), (1, 3, 3))
    path = tmp_path / "cnn.npz"
    save_npz(Network([conv, Dense(rng.normal(size=(1, 8)), np.zeros(1), relu=False)], (1, 3, 3)), path)
    r = subprocess.run([sys.executable, "-m", "lrmilp.cli", "bounds", str(path), "--json"], capture_output=True,
                       text=True)
    out = json.loads(r.stdout)
    assert out["xiong2020"] == 256 and out["one_layer_exact"] == 255
    table = subprocess.run([sys.executable, "-m", "lrmilp.cli", "bounds", str(path)], capture_output=True,
                           text=True).stdout
    assert "xiong2020" in table and "one_layer_exact" in table
