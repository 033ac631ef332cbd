"""The naive reference enumerator (benchmarks/naive.py) against a brute force over every pattern.

The brute force shares nothing with the search but the margin rule: for each of the 2^N full
activation patterns it builds every row s_i (a_i u + c_i) / ||a_i|| >= t from the pattern itself,
solves max t over the box with one scipy ``linprog``, and counts the pattern iff t > tol.
"""
from __future__ import annotations

import importlib.util
import json
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog

from lrmilp import Conv2d, Dense, Network, random_mlp

NAIVE_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "naive.py"


def _load_naive():
    if not NAIVE_PATH.is_file():
        pytest.skip("benchmarks/naive.py is not available (installed package without the source tree)",
                    allow_module_level=True)
    name = "lrmilp_benchmarks_naive"
    spec = importlib.util.spec_from_file_location(name, NAIVE_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    except ImportError as e:
        del sys.modules[name]
        pytest.skip(f"benchmarks/naive.py is not importable: {e}", allow_module_level=True)
    return module


naive = _load_naive()


def brute_force(net: Network, lo: float, hi: float, tol: float) -> int:
    n0 = net.input_dim
    t_cap = naive.T_CAP_FACTOR * 0.5 * (hi - lo)
    relu = [k for k, layer in enumerate(net.layers) if layer.relu]
    widths = [net.layers[k].out_size for k in relu]
    count = 0
    for bits in itertools.product((False, True), repeat=sum(widths)):
        pattern, rows, rhs, consistent = np.array(bits), [], [], True
        M, m, start = np.eye(n0), np.zeros(n0), 0
        for k in range(relu[-1] + 1):
            W, b = net.layers[k].matrix, net.layers[k].bias
            A, c = np.asarray(W @ M), np.asarray(W @ m) + b
            if not net.layers[k].relu:
                M, m = A, c
                continue
            size = np.asarray(abs(W) @ np.linalg.norm(M, axis=1)).reshape(-1)
            on = pattern[start:start + len(c)]
            start += len(c)
            for i in range(len(c)):
                norm = np.linalg.norm(A[i])
                if norm <= naive.ZERO_ROW_RTOL * size[i]:
                    consistent &= bool(on[i]) == bool(c[i] > 0)
                    continue
                s = 1.0 if on[i] else -1.0
                rows.append(np.r_[-s * A[i] / norm, 1.0])  # s (a u + c) / ||a|| >= t
                rhs.append(s * c[i] / norm)
            M, m = A * on[:, None], c * on
        if not consistent:
            continue
        res = linprog(np.r_[np.zeros(n0), -1.0], A_ub=np.array(rows), b_ub=np.array(rhs),
                      bounds=[(lo, hi)] * n0 + [(None, t_cap)], method="highs")
        assert res.status == 0, res.message
        count += -res.fun > tol
    return count


def _check(net: Network, lo: float = -1.0, hi: float = 1.0) -> None:
    res = naive.count_naive(net, lo, hi)
    assert res.complete
    assert res.regions == brute_force(net, lo, hi, naive.DEFAULT_TOL)


# 2^N LPs per net at about 2 ms each: N = 10 keeps the file near 10 s.  2-5-5 seed 0 (12 regions)
# has layer-2 neurons made constant by an all-inactive layer 1; the others have 60 and 121 regions.
@pytest.mark.parametrize("widths,seed", [((2, 5, 5), 0), ((2, 5, 5), 3), ((3, 5, 5), 1)])
def test_random_mlp_matches_brute_force(widths, seed):
    _check(random_mlp(list(widths), seed=seed))


def test_affine_last_layer_and_other_box_match_brute_force():
    # A digits-style net: the final layer has no ReLU and cuts nothing; box [0, 1]^n0.
    _check(random_mlp([3, 4, 4, 2], seed=3, last_relu=False), 0.0, 1.0)


def test_constant_neurons_match_brute_force():
    # Neuron 1 of layer 1 is zero (constant, inactive) and neuron 2 constant active; layer 2's
    # neuron 0 reads only neuron 1 (always constant) and neuron 1 reads neurons 0 and 2 (constant
    # exactly where neuron 0 is inactive).  Neuron 3 passes through the box centre, the root's
    # witness, so both of its sides need an LP.
    W1 = np.array([[1.0, -0.5], [0.0, 0.0], [0.0, 0.0], [0.3, 1.0], [-1.0, 0.4]])
    b1 = np.array([0.1, -0.2, 0.7, 0.0, 0.3])
    W2 = np.array([[0.0, 1.0, 0.0, 0.0, 0.0], [2.0, 0.0, -1.0, 0.0, 0.0], [1.0, 0.5, 0.2, -1.0, 1.0]])
    b2 = np.array([0.5, 0.4, -0.1])
    net = Network([Dense(W1, b1), Dense(W2, b2)], (2,))
    _check(net)
    assert naive.count_naive(net, -1.0, 1.0).regions > 1


def test_conv_net_matches_brute_force():
    # Sparse (lowered conv) layer matrices: 2 filters 2x2 over a 1x3x3 input = 8 neurons, then 1 dense.
    rng = np.random.default_rng(0)
    conv = Conv2d(rng.normal(size=(2, 1, 2, 2)), rng.normal(0, 0.5, 2), in_shape=(1, 3, 3))
    net = Network([conv, Dense(rng.normal(size=(1, 8)), rng.normal(0, 0.5, 1))], (1, 3, 3))
    _check(net)


def test_time_limit_gives_a_lower_bound():
    net = random_mlp([3, 8, 8], seed=0)
    full = naive.count_naive(net, -1.0, 1.0)
    stopped = naive.count_naive(net, -1.0, 1.0, time_limit=1e-3)
    assert full.complete and not stopped.complete
    assert stopped.regions < full.regions


def test_cli_json(capsys):
    assert naive.main(["--random", "2-5-5", "--seed", "1", "--json", "--box", "-2", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["complete"] and out["regions"] == naive.count_naive(random_mlp([2, 5, 5], seed=1), -2.0, 2.0).regions
    assert out["lps"] > 0 and out["tol"] == naive.DEFAULT_TOL
