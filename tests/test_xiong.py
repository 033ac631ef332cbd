"""Xiong et al. 2020: Theorem 2 by the boundary sweep against the subset method, Theorem 5's lower bound
worked by hand, and lower <= upper on deep CNNs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lrmilp import save_npz
from lrmilp.errors import InputError
from lrmilp.network import Conv2d, Dense, Network
from lrmilp.theory import bounds_for_network, xiong2020
from lrmilp.theory.cnn import theorem5_parts, xiong2020_lower
from lrmilp.theory.summary import xiong2020_lower_exact


def small_shapes():
    """Every small one-layer shape with at most 12 output positions (the subset method's cost)."""
    for c in (1, 2):
        for h in range(1, 6):
            for w in range(h, 6):
                for kh in range(1, 4):
                    for kw in range(1, 4):
                        for stride in (1, 2):
                            for padding in (0, 1):
                                oh = (h + 2 * padding - kh) // stride + 1
                                ow = (w + 2 * padding - kw) // stride + 1
                                if 1 <= oh and 1 <= ow and oh * ow <= 12 and (h * w + c + kh + kw) % 3 == 0:
                                    yield (c, h, w), (kh, kw), 1 + (h + kw) % 3, stride, padding


SHAPES = list(small_shapes())


def test_enough_shapes():
    assert len(SHAPES) > 100


@pytest.mark.parametrize("shape, kernel, d, stride, padding", SHAPES)
def test_frontier_equals_subset_method(shape, kernel, d, stride, padding):
    kw = {"input_shape": shape, "kernel": kernel, "filters": d, "stride": stride, "padding": padding}
    assert xiong2020(**kw) == xiong2020(**kw, method="subsets")


def test_frontier_beyond_the_subset_limit():
    # 1x7x7 input, 3x3 kernel, 2 filters: 25 positions (the subset method stops at 20).  Every t has
    # t_p <= 2 and a single position's field has 9 >= 2 pixels; the one set of positions whose demand can
    # exceed its pixels is all of them with t = 2 everywhere (50 > 49 pixels), weight C(2, 2)^25 = 1, so
    # the sum is 3^25 t's weighted = (1 + 2 + 1)^25 - 1 = 2^50 - 1.
    assert xiong2020(input_shape=(1, 7, 7), kernel=3, filters=2) == 2 ** 50 - 1
    with pytest.raises(InputError, match="max_positions"):
        xiong2020(input_shape=(1, 7, 7), kernel=3, filters=2, method="subsets")


def test_theorem5_hand_worked():
    # Input 1x5x5 (d_0 = 1).  Layer 1: 3 filters 2x2, stride 1 -> 4x4x3.  Layer 2: 2 filters 2x2,
    # stride 2 -> 2x2x2.  Product over l < L: floor(d_1 / d_0)^(n_1 n_1 d_0) = floor(3/1)^(4*4*1) = 3^16.
    # N': input 4x4x1, 2 filters 2x2 stride 2: four positions with disjoint 4-pixel fields, so Theorem 2
    # gives per position sum_{t<=2} C(2, t) = 4 (t <= 4 pixels never binds): 4^4 = 256.
    layers = [{"kernel": (2, 2), "filters": 3, "stride": 1}, {"kernel": (2, 2), "filters": 2, "stride": 2}]
    factor, nprime = theorem5_parts((1, 5, 5), layers)
    assert factor == 3 ** 16 == 43046721
    assert nprime == {"input_shape": (1, 4, 4), "kernel": (2, 2), "filters": 2, "stride": 2, "padding": 0}
    assert xiong2020_lower(input_shape=(1, 5, 5), layers=layers) == 256 * 3 ** 16 == 11019960576
    # A random N': 8 normals, two per disjoint 4-d block, are independent: 2^8 = 256 regions as well.
    assert xiong2020_lower_exact(input_shape=(1, 5, 5), layers=layers) == 256 * 3 ** 16
    # Two input channels: 2x4x4 -> (3x3 kernel, 5 filters) 2x2x5 -> (1x1 kernel, 3 filters).  Product
    # floor(5/2)^(2*2*2) = 2^8 = 256.  N' (2x2x2 input, 1x1x2 filters) is four independent copies of 3
    # lines in a plane, sum_{i<=2} C(3, i) = 7 regions each: 7^4 = 2401.
    two = [{"kernel": (3, 3), "filters": 5, "stride": 1}, {"kernel": (1, 1), "filters": 3, "stride": 1}]
    assert xiong2020_lower(input_shape=(2, 4, 4), layers=two) == 2 ** 8 * 7 ** 4 == 614656
    assert xiong2020_lower_exact(input_shape=(2, 4, 4), layers=two) == 614656


def deep_cnn(shape, layers, seed=0) -> Network:
    rng = np.random.default_rng(seed)
    convs, in_shape = [], shape
    for kernel, filters, stride in layers:
        conv = Conv2d(rng.normal(size=(filters, in_shape[0], kernel, kernel)), rng.normal(size=filters), in_shape,
                      stride)
        convs.append(conv)
        in_shape = conv.out_shape
    return Network(convs + [Dense(rng.normal(size=(2, convs[-1].out_size)), np.zeros(2), relu=False)], shape)


DEEP = [
    ((1, 5, 5), [(2, 3, 1), (2, 2, 2)]),
    ((2, 4, 4), [(3, 5, 1), (1, 3, 1)]),
    ((1, 6, 6), [(3, 2, 1), (3, 2, 1)]),
    ((1, 6, 6), [(2, 2, 2), (2, 3, 1)]),
    ((1, 5, 5), [(2, 2, 1), (2, 2, 1), (2, 2, 1)]),
    ((1, 4, 4), [(2, 2, 1), (2, 2, 1)]),
    ((1, 8, 8), [(3, 4, 2), (2, 3, 1)]),
    ((2, 5, 5), [(2, 1, 1), (2, 2, 1)]),  # floor(1/2) = 0: the product, and the bound, are 0
]


@pytest.mark.parametrize("shape, layers", DEEP)
def test_deep_lower_below_upper(shape, layers):
    b = bounds_for_network(deep_cnn(shape, layers))
    assert type(b["xiong2020_lower"]) is int and type(b["xiong2020_upper"]) is int
    assert b["xiong2020_lower"] <= b["xiong2020_upper"]
    if b["xiong2020_lower_exact"] is not None:  # a drawn N' never beats Theorem 2's upper bound on it
        assert b["xiong2020_lower_exact"] <= b["xiong2020_lower"]
    assert "MAXIMUM" in b["xiong2020_scope"]


def test_deep_with_padding_says_why(tmp_path):
    rng = np.random.default_rng(1)
    c1 = Conv2d(rng.normal(size=(2, 1, 3, 3)), rng.normal(size=2), (1, 4, 4), 1, 1)
    c2 = Conv2d(rng.normal(size=(2, 2, 2, 2)), rng.normal(size=2), c1.out_shape)
    net = Network([c1, c2, Dense(rng.normal(size=(1, c2.out_size)), np.zeros(1), relu=False)], (1, 4, 4))
    b = bounds_for_network(net)
    assert b["xiong2020_lower"] is None and "padding" in b["xiong2020_lower_note"]
    path = tmp_path / "padded.npz"
    save_npz(net, path)
    table = subprocess.run([sys.executable, "-m", "lrmilp.cli", "bounds", str(path)], capture_output=True,
                           text=True).stdout
    assert "n/a (theorem 5 is implemented for convolutions without padding" in table
    out = json.loads(subprocess.run([sys.executable, "-m", "lrmilp.cli", "bounds", str(path), "--json"],
                                    capture_output=True, text=True).stdout)
    assert out["xiong2020_lower"] is None and out["xiong2020_lower_note"]
