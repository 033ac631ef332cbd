"""Tests of lrmilp.theory: closed forms against worked examples and independent brute-force oracles."""

from __future__ import annotations

import itertools
from math import comb, prod
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog

from lrmilp.errors import InputError
from lrmilp.network import Conv2d, Dense, Network, random_mlp
from lrmilp.theory import (activation_patterns, bounds_for_arch, bounds_for_network, cnn_bounds,
                           mlp_bounds, montufar2014_lower, montufar2017, one_layer_exact, one_layer_max,
                           raghu2017, serra2018, serra2018_lower, xiong2020, xiong2020_deep_bounds)

CASES = Path(__file__).resolve().parents[2] / "shared" / "cases"


def one_layer_net(W: np.ndarray, b: np.ndarray) -> Network:
    """x -> ReLU(W x + b) followed by a linear output."""
    return Network([Dense(W, b), Dense(np.ones((1, W.shape[0])), np.zeros(1), relu=False)], (W.shape[1],))


def one_layer_cnn(input_shape, kernel, filters, *, stride=1, padding=0, seed=0) -> Network:
    rng = np.random.default_rng(seed)
    conv = Conv2d(rng.normal(size=(filters, input_shape[0]) + tuple(kernel)), rng.normal(size=filters),
                  input_shape, stride, padding)
    return Network([conv, Dense(rng.normal(size=(1, conv.out_size)), np.zeros(1), relu=False)], input_shape)


def lp_region_count(W: np.ndarray, b: np.ndarray) -> int:
    """Brute force: the sign patterns whose open cell {s_i (a_i x + b_i) > 0} has an interior point.

    One LP per pattern: maximise t s.t. s_i (a_i x + b_i) >= t ||a_i||, t <= 1, x free.
    """
    m, n = W.shape
    norms = np.linalg.norm(W, axis=1)
    count = 0
    for signs in itertools.product([1.0, -1.0], repeat=m):
        s = np.array(signs)
        A_ub = np.hstack([-s[:, None] * W, norms[:, None]])
        res = linprog(np.r_[np.zeros(n), -1.0], A_ub=A_ub, b_ub=s * b,
                      bounds=[(None, None)] * n + [(None, 1.0)], method="highs")
        count += res.status == 0 and -res.fun > 1e-7
    return count


# --- MLP bounds --------------------------------------------------------------------------------

@pytest.mark.parametrize("n0, widths, expected", [
    (1, (20, 20, 20), 9261),
    (2, (30, 30), 217156),
    (10, (20, 20, 20), 234503869074896296),
])
def test_serra2018_worked_examples(n0, widths, expected):
    value = serra2018(n0, widths)
    assert type(value) is int and value == expected


def brute_serra(n0, widths, ranks=None):
    """Theorem 1 (rank-aware form) by enumerating every tuple (j_1..j_L): tiny cases only."""
    ranks = widths if ranks is None else ranks
    total = 0
    for js in itertools.product(*(range(n + 1) for n in widths)):
        ok = all(js[l] <= min([n0] + [widths[k] - js[k] for k in range(l)] + list(ranks[:l + 1]))
                 for l in range(len(widths)))
        total += ok * prod(comb(n, j) for n, j in zip(widths, js))
    return total


def test_serra2018_dp_matches_tuple_enumeration():
    rng = np.random.default_rng(1)
    for _ in range(60):
        widths = [int(w) for w in rng.integers(1, 7, size=rng.integers(1, 4))]
        n0 = int(rng.integers(1, 6))
        ranks = [int(rng.integers(0, min(w, prev) + 1)) for w, prev in zip(widths, [n0] + widths[:-1])]
        assert serra2018(n0, widths) == brute_serra(n0, widths)
        assert serra2018(n0, widths, ranks=ranks) == brute_serra(n0, widths, ranks)
        assert serra2018(n0, widths, ranks=ranks) <= serra2018(n0, widths)


def test_upper_bound_chain_on_random_architectures():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n0 = int(rng.integers(1, 40))
        widths = [int(w) for w in rng.integers(1, 60, size=rng.integers(1, 6))]
        b = mlp_bounds(n0, widths)
        assert b["serra2018"] <= b["montufar2017"] <= b["raghu2017"] <= b["activation_patterns"]
        for key in ("montufar2014_lower", "serra2018_lower"):
            assert b[key] is None or b[key] <= b["serra2018"]
        assert all(type(v) is int for k, v in b.items() if v is not None and not k.endswith("_note"))


def test_serra2018_exact_for_one_input():
    rng = np.random.default_rng(2)
    for _ in range(20):
        widths = [int(w) for w in rng.integers(1, 30, size=rng.integers(1, 6))]
        assert serra2018(1, widths) == prod(n + 1 for n in widths)


def test_small_closed_forms():
    assert activation_patterns([3, 4]) == 2 ** 7
    assert one_layer_max(2, 5) == 1 + 5 + 10
    assert one_layer_max(9, 4) == 16
    assert raghu2017(2, [3, 5]) == (1 + 3 + 3) * (1 + 5 + 10 + 10)
    assert montufar2017(2, [3, 5]) == (1 + 3 + 3) * (1 + 5 + 10)
    assert montufar2017(3, [2, 5]) == 4 * (1 + 5 + 10)
    assert montufar2014_lower(2, [4, 6, 5]) == 2 ** 2 * 3 ** 2 * (1 + 5 + 10)
    assert montufar2014_lower(2, [1, 5]) is None
    assert serra2018_lower(2, [6, 7, 6]) == 4 ** 2 * 4 ** 2 * (1 + 6 + 15)
    assert serra2018_lower(2, [5, 6]) is None


def test_mlp_bounds_keys_and_types():
    b = mlp_bounds(784, [22, 10])
    assert set(b) == {"activation_patterns", "one_layer_max", "raghu2017", "montufar2017", "serra2018",
                      "montufar2014_lower", "serra2018_lower", "montufar2014_lower_note", "serra2018_lower_note"}
    assert "784" in b["montufar2014_lower_note"] and "2352" in b["serra2018_lower_note"]  # why n/a
    assert b["montufar2017"] == b["activation_patterns"] == 2 ** 32
    # Serra: once all 22 units of layer 1 are counted (j1 = 22) no dimension is left for layer 2.
    assert b["serra2018"] == sum(comb(22, j1) * sum(comb(10, j2) for j2 in range(min(22 - j1, 10) + 1))
                                 for j1 in range(23)) < 2 ** 32
    assert b["montufar2014_lower"] is None and b["serra2018_lower"] is None
    assert bounds_for_arch([784, 22, 10]) == b
    ranked = mlp_bounds(4, [6, 5], ranks=[2, 2])
    assert ranked["serra2018_rank"] < ranked["serra2018"]
    assert all(type(v) is int for k, v in ranked.items() if v is not None and not k.endswith("_note"))


@pytest.mark.parametrize("bad", [lambda: mlp_bounds(0, [3]), lambda: mlp_bounds(3, []),
                                 lambda: serra2018(3, [4, 4], ranks=[5, 4]), lambda: bounds_for_arch([3]),
                                 lambda: serra2018(3, [4, 4], ranks=[3])])
def test_bad_arguments_raise(bad):
    with pytest.raises(ValueError):
        bad()


def test_serra2018_lower_attained_by_sawtooth():
    """For n0 = 1 and widths (3, 3) the lower bound 16 is reached (and equals the upper bound).

    Layer 1 builds s(x) = 2 relu(x) - 2 relu(1 - x) + 3 relu(2 - x), whose four linear pieces each
    cover (4, 5); layer 2 cuts each piece at 4.25, 4.5 and 4.75.  Regions are intervals, counted as
    runs of equal activation patterns on a fine grid.
    """
    l1 = Dense(np.array([[1.0], [-1.0], [-1.0]]), np.array([0.0, 1.0, 2.0]))
    l2 = Dense(np.array([[2.0, -2.0, 3.0]] * 3), -np.array([4.25, 4.5, 4.75]))
    net = Network([l1, l2, Dense(np.ones((1, 3)), np.zeros(1), relu=False)], (1,))
    pats = net.patterns(np.linspace(-20, 20, 400001)[:, None])
    runs = 1 + int(np.any(pats[1:] != pats[:-1], axis=1).sum())
    assert runs == serra2018_lower(1, [3, 3]) == serra2018(1, [3, 3]) == 16


# --- one ReLU layer: exact count ----------------------------------------------------------------

@pytest.mark.parametrize("n0, n1", [(2, 5), (3, 7), (4, 9), (5, 11), (6, 6)])
def test_one_layer_max_equals_exact_on_generic_dense_nets(n0, n1):
    for seed in range(3):
        net = random_mlp([n0, n1, 1], seed=seed, last_relu=False)
        assert one_layer_exact(net) == one_layer_max(n0, n1)


def lp_cases():
    rng = np.random.default_rng(3)
    cases = []
    for n0, n1 in [(2, 3), (2, 4), (2, 6), (3, 4), (3, 5)]:
        cases.append((f"generic-{n0}-{n1}", rng.normal(size=(n1, n0)), rng.normal(size=n1)))
    W = rng.normal(size=(4, 2))
    W = np.vstack([W, W[0], -2.5 * W[1]])  # a duplicate and an anti-parallel normal
    cases.append(("parallel-2", W, rng.normal(size=6)))
    W = rng.normal(size=(4, 3))
    W = np.vstack([W, W[0] - 2 * W[1]])  # a dependent triple in R^3
    cases.append(("dependent-3", W, rng.normal(size=5)))
    W = rng.normal(size=(4, 3))
    W[2] = 0.0  # a constant neuron: no hyperplane
    cases.append(("zero-row-3", W, rng.normal(size=4)))
    return cases


@pytest.mark.parametrize("name, W, b", lp_cases(), ids=[c[0] for c in lp_cases()])
def test_one_layer_exact_matches_lp_oracle(name, W, b):
    exact = one_layer_exact(one_layer_net(W, b))
    assert type(exact) is int and exact == lp_region_count(W, b)


def test_one_layer_exact_rank_deficient_meets_rank_aware_bound():
    rng = np.random.default_rng(4)
    W = rng.normal(size=(6, 2)) @ rng.normal(size=(2, 4))  # 6 neurons of rank 2 in R^4
    net = one_layer_net(W, rng.normal(size=6))
    b = bounds_for_network(net)
    assert b["one_layer_exact"] == b["serra2018_rank"] == one_layer_max(2, 6) == 22
    assert b["serra2018"] == one_layer_max(4, 6)


def test_one_layer_exact_refuses_large_and_deep_nets():
    with pytest.raises(InputError, match="too many"):
        one_layer_exact(random_mlp([10, 30, 1], last_relu=False))
    with pytest.raises(InputError):
        one_layer_exact(random_mlp([2, 3, 3, 1], last_relu=False))


# --- CNNs ---------------------------------------------------------------------------------------

def test_xiong2020_two_by_two_filters():
    assert xiong2020(input_shape=(1, 3, 3), kernel=(2, 2), filters=2, stride=1, padding=0) == 256
    for seed in range(4):
        net = one_layer_cnn((1, 3, 3), (2, 2), 2, seed=seed)
        assert one_layer_exact(net) == 255


def test_xiong2020_reference_case():
    assert xiong2020(input_shape=(1, 1, 4), kernel=(1, 2), filters=3, stride=1) == 217
    if not (CASES / "cnn-1x1x4-k1x2-d3.npz").exists():
        pytest.skip("shared cases not beside the project")
    from lrmilp.loaders.npz import load_npz
    net = load_npz(CASES / "cnn-1x1x4-k1x2-d3.npz")
    assert one_layer_exact(net) == 217
    b = cnn_bounds(net)
    assert b == {"activation_patterns": 2 ** 9, "xiong2020": 217, "one_layer_exact": 217}
    full = bounds_for_network(net)
    assert full["xiong2020"] == 217 and full["montufar2014_lower"] is None  # 256 only for dense nets


def brute_xiong(net: Network) -> int:
    """Theorem 2 by enumerating every t, with receptive fields read off the lowered conv matrix."""
    conv = net.layers[0]
    d, oh, ow = conv.out_shape
    support = (conv.matrix.toarray() != 0)[: oh * ow]  # filter 0 at each position: its input variables
    m = oh * ow
    subsets = np.array(list(itertools.product([0, 1], repeat=m)), dtype=bool)[1:]  # (2^m - 1, m)
    caps = np.array([support[s].any(axis=0).sum() for s in subsets])
    ts = np.array(list(itertools.product(range(d + 1), repeat=m)))
    ok = np.all(ts @ subsets.T <= caps, axis=1)
    weights = np.array([comb(d, t) for t in range(d + 1)], dtype=object)
    return int(sum(prod(weights[t]) for t in ts[ok]))


@pytest.mark.parametrize("shape, kernel, d, stride, padding", [
    ((1, 3, 3), (2, 2), 2, 1, 0), ((1, 1, 5), (1, 2), 3, 1, 0), ((1, 4, 4), (2, 2), 2, 1, 0),
    ((1, 2, 2), (2, 2), 2, 1, 1), ((2, 3, 4), (2, 2), 5, 1, 0), ((1, 5, 5), (3, 3), 2, 2, 1),
    ((1, 1, 7), (1, 3), 3, 2, 1),  # padding rows: positions that see no input at all
])
def test_xiong2020_matches_brute_force_and_bounds_exact(shape, kernel, d, stride, padding):
    net = one_layer_cnn(shape, kernel, d, stride=stride, padding=padding)
    value = xiong2020(input_shape=shape, kernel=kernel, filters=d, stride=stride, padding=padding)
    assert type(value) is int
    assert value == brute_xiong(net)
    exact = one_layer_exact(net, max_subsets=2 ** 16) if net.neurons <= 16 else None
    assert exact is None or exact <= value


def test_cnn_bounds_too_large_to_enumerate_gives_none_and_why():
    # 26 x 26 positions of 3x3 fields: the sweep's boundary (two rows of positions and more) is over the
    # limit; 2 * 676 hyperplanes in R^784 with dependent rows are too many to enumerate.
    b = cnn_bounds(one_layer_cnn((1, 28, 28), (3, 3), 2))
    assert b["activation_patterns"] == 2 ** 1352 and b["xiong2020"] is None and b["one_layer_exact"] is None
    assert "boundary" in b["xiong2020_note"] and "too many" in b["one_layer_exact_note"]
    with pytest.raises(InputError):
        cnn_bounds(random_mlp([2, 3, 1], last_relu=False))


def test_xiong2020_three_by_three_grid_is_an_exact_int():
    # Timing is measured in benchmarks, not asserted here; this checks the 3x3 grid case completes
    # (a naive subset sum would not) and gives an exact integer below 2^N.
    value = xiong2020(input_shape=(3, 5, 5), kernel=3, filters=16)
    assert type(value) is int and value < activation_patterns([16 * 9])


def test_deep_cnn_upper_bound():
    rng = np.random.default_rng(5)
    conv = Conv2d(rng.normal(size=(2, 1, 2, 2)), rng.normal(size=2), (1, 3, 3))
    net = Network([conv, Dense(rng.normal(size=(4, 8)), rng.normal(size=4)),
                   Dense(rng.normal(size=(1, 4)), np.zeros(1), relu=False)], (1, 3, 3))
    deep = xiong2020_deep_bounds(input_shape=(1, 3, 3), kernel=2, filters=2, later_widths=[4])
    assert deep == {"upper": 256 * 2 ** 4}
    b = bounds_for_network(net)
    assert b["xiong2020_upper"] == deep["upper"]
    assert "xiong2020" not in b and "one_layer_exact" not in b
    assert b["serra2018_rank"] <= b["serra2018"] <= b["montufar2017"]
    assert all(type(v) is int for k, v in b.items() if v is not None and not k.endswith(("_note", "_scope")))
    # A dense ReLU layer after the convolution: not an L-layer ReLU CNN, so no Theorem 5, and it says why.
    assert b["xiong2020_lower"] is None and "L-layer ReLU CNN" in b["xiong2020_lower_note"]


def test_bounds_for_network_on_mlp():
    net = random_mlp([3, 6, 1], seed=0, last_relu=False)
    b = bounds_for_network(net)
    assert b["one_layer_exact"] == b["serra2018"] == b["serra2018_rank"] == 42
    assert "xiong2020" not in b
    deep = bounds_for_network(random_mlp([3, 5, 4, 1], seed=0, last_relu=False))
    assert "one_layer_exact" not in deep and deep["serra2018"] == serra2018(3, [5, 4])


def test_bounds_for_network_multiplies_linear_layers_into_ranks():
    rng = np.random.default_rng(6)
    net = Network([Dense(rng.normal(size=(2, 4)), rng.normal(size=2), relu=False),  # a 2-d bottleneck
                   Dense(rng.normal(size=(6, 2)), rng.normal(size=6)),
                   Dense(rng.normal(size=(1, 6)), np.zeros(1), relu=False)], (4,))
    b = bounds_for_network(net)
    assert b["serra2018"] == one_layer_max(4, 6) and b["serra2018_rank"] == one_layer_max(2, 6) == 22
    assert "one_layer_exact" not in b
