"""The activation-based bound (after Serra & Ramalingam 2020): exact count <= serra2020 <= serra2018."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lrmilp import random_mlp
from lrmilp.counting import count_regions
from lrmilp.domains import Box, from_options
from lrmilp.empirical import activation_bound, layer_activity, serra2020
from lrmilp.errors import InputError
from lrmilp.loaders import load_network
from lrmilp.network import Dense, Network
from lrmilp.sampling import sample_patterns
from lrmilp.theory import serra2018

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "models" / "digits-mlp-64-11-11-10.npz"
DIGITS_EXACT = 288_256  # regions of digits-mlp-64-11-11-10 over [0, 1]^64 (benchmarks/results/study-serra.jsonl)


def exact(net: Network, domain) -> int:
    # Input dim <= 6: polygon/vertex cells, no compiled engine needed.
    res = count_regions(net, domain, geometry="auto" if domain.dim <= 2 else "vertex", jobs=1)
    assert res.complete
    return res.regions


# --- the combinatorial part ----------------------------------------------------------------------

@pytest.mark.parametrize("n0", [1, 2, 3, 5])
def test_no_information_gives_theorem_1(n0):
    """All neurons unstable, all able to be active together and inactive together: ICML 2018 Theorem 1."""
    for depth in (1, 2, 3):
        for widths in itertools.product([1, 2, 3, 5], repeat=depth):
            ws = list(widths)
            assert activation_bound(n0, ws, max_active=ws, max_inactive=ws) == serra2018(n0, ws)


def test_never_above_theorem_1_for_any_admissible_quantities():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n0 = int(rng.integers(1, 6))
        ws = [int(w) for w in rng.integers(1, 7, size=rng.integers(1, 4))]
        sp, sm, A, I = [], [], [], []
        for n in ws:
            p = int(rng.integers(0, n + 1))
            m = int(rng.integers(0, n - p + 1))
            a = int(rng.integers(p, n - m + 1))
            i = int(rng.integers(max(m, n - a), n - p + 1))
            sp.append(p), sm.append(m), A.append(a), I.append(i)
        value = activation_bound(n0, ws, max_active=A, max_inactive=I, stable_active=sp, stable_inactive=sm)
        assert 1 <= value <= serra2018(n0, ws)


def test_monotone_in_the_quantities():
    """Knowing less (larger A or I, fewer stable neurons) never lowers the bound."""
    base = activation_bound(3, [4, 4], max_active=[2, 3], max_inactive=[3, 4], stable_active=[1, 0],
                            stable_inactive=[1, 1])
    assert base <= activation_bound(3, [4, 4], max_active=[3, 3], max_inactive=[3, 4], stable_active=[1, 0],
                                    stable_inactive=[1, 1])
    assert base <= activation_bound(3, [4, 4], max_active=[2, 3], max_inactive=[3, 4], stable_active=[0, 0],
                                    stable_inactive=[1, 1])


def test_inconsistent_quantities_are_input_errors():
    with pytest.raises(InputError, match="inconsistent"):
        activation_bound(2, [3], max_active=[1], max_inactive=[1])  # no region has <= 1 active and <= 1 inactive
    with pytest.raises(InputError, match="inconsistent"):
        activation_bound(2, [3], max_active=[0], max_inactive=[3], stable_active=[1])
    with pytest.raises(InputError, match="max_active"):
        activation_bound(2, [3, 3], max_active=[3], max_inactive=[3, 3])
    with pytest.raises(InputError, match="widths"):
        activation_bound(2, [], max_active=[], max_inactive=[])


# --- a hand-worked example -----------------------------------------------------------------------

def tiny_net() -> Network:
    """2 inputs, ReLU 2-2; only x1 matters.

    Layer 1: g1 = x1 - 0.5, g2 = -x1 - 0.5 on [-1, 1]^2: never both active (x1 >= 0.5 and x1 <= -0.5), both
    inactive for |x1| < 0.5, so A_1 = 1, I_1 = 2.  Layer 2: g3 = h1 + h2 - 0.25, g4 = h1 - h2 + 0.1: both
    active for x1 > 0.75, both inactive for -0.75 < x1 < -0.6, so A_2 = I_2 = 2; none stable.
    Regions along x1: (-1,-.75) (-.75,-.6) (-.6,-.5) | (-.5,.5) | (.5,.75) (.75,1): exactly 6.
    Bound: layer 2 gives G_2(1) = C(2,2) + C(2,1) = 3 (budget 1 + 2 = 3) and G_2(0) = 1; layer 1 has
    k <= 1 active with budget 4: C(2,1) = 2 pieces of dimension 1 and C(2,0) = 1 of dimension 0, so
    G_1(2) = 2 * 3 + 1 * 1 = 7.  Theorem 1 (ICML 2018) for 2-2-2 gives 1*4 + 2*3 + 1*1 = 11.
    """
    W1, b1 = np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([-0.5, -0.5])
    W2, b2 = np.array([[1.0, 1.0], [1.0, -1.0]]), np.array([-0.25, 0.1])
    return Network([Dense(W1, b1), Dense(W2, b2)], (2,))


def test_hand_worked_example():
    net, dom = tiny_net(), Box(-1, 1, 2)
    r = serra2020(net, dom)
    assert [(a.max_active, a.max_inactive) for a in r.layers] == [(1, 2), (2, 2)]
    assert [(a.stable_active, a.stable_inactive) for a in r.layers] == [(0, 0), (0, 0)]
    assert all(a.max_active_optimal and a.max_inactive_optimal for a in r.layers) and r.dual_bound_used == 0
    assert r.value == 7
    assert activation_bound(2, [2, 2], max_active=[1, 2], max_inactive=[2, 2]) == 7
    assert serra2018(2, [2, 2]) == 11
    assert exact(net, dom) == 6


def test_stable_layer_counts_once():
    """A layer that is stably inactive over the domain does not split anything."""
    W1, b1 = np.eye(2), np.zeros(2)
    W2, b2 = np.ones((2, 2)), np.array([-3.0, -3.0])  # h1 + h2 <= 2 < 3 on [-1, 1]^2
    net, dom = Network([Dense(W1, b1), Dense(W2, b2)], (2,)), Box(-1, 1, 2)
    r = serra2020(net, dom)
    assert (r.layers[1].stable_inactive, r.layers[1].unstable) == (2, 0)
    assert r.value == 4 == exact(net, dom)


# --- random MLPs: exact <= serra2020 <= serra2018 ------------------------------------------------

@pytest.mark.parametrize("shape", [[2, 6, 6], [3, 5, 5, 5], [4, 8, 4], [5, 4, 4, 4], [2, 3, 3, 3]])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_between_exact_count_and_theorem_1(shape, seed):
    net, dom = random_mlp(shape, seed=seed), Box(-1, 1, shape[0])
    r = serra2020(net, dom)
    assert isinstance(r.value, int)
    assert exact(net, dom) <= r.value <= serra2018(shape[0], shape[1:])
    for a in r.layers:
        assert a.stable_active <= a.max_active <= a.width - a.stable_inactive
        assert a.stable_inactive <= a.max_inactive <= a.width - a.stable_active


def test_over_a_shifted_box_and_interval_bounds():
    net, dom = random_mlp([3, 5, 5], seed=4), Box(0, 2, 3)
    for method in ("interval", "lp", "milp"):
        r = serra2020(net, dom, bound_method=method)
        assert exact(net, dom) <= r.value <= serra2018(3, [5, 5])


def test_time_limit_stop_keeps_an_upper_bound():
    """MILPs stopped almost at once: dual bounds (or the trivial ones) are used, never incumbents."""
    net, dom = random_mlp([4, 8, 8, 8], seed=1), Box(-1, 1, 4)
    stopped = serra2020(net, dom, time_limit=1e-4)
    assert stopped.dual_bound_used >= 1
    assert any(not (a.max_active_optimal and a.max_inactive_optimal) for a in stopped.layers)
    full = serra2020(net, dom, time_limit=60)
    assert full.dual_bound_used == 0
    assert exact(net, dom) <= full.value <= stopped.value <= serra2018(4, [8, 8, 8])
    for s, f in zip(stopped.layers, full.layers):
        assert s.max_active >= f.max_active and s.max_inactive >= f.max_inactive


def test_scip_agrees_with_highs():
    pytest.importorskip("pyscipopt")
    net, dom = random_mlp([3, 5, 5], seed=2), Box(-1, 1, 3)
    h, s = serra2020(net, dom), serra2020(net, dom, solver="scip")
    assert [(a.max_active, a.max_inactive) for a in h.layers] == [(a.max_active, a.max_inactive) for a in s.layers]
    assert h.value == s.value


def test_bad_options_name_the_parameter():
    net, dom = random_mlp([2, 3], seed=0), Box(-1, 1, 2)
    for kwargs, name in [({"solver": "cplex"}, "solver"), ({"time_limit": 0}, "time_limit"),
                         ({"bound_method": "exact"}, "bound_method"), ({"integrality_tol": 0.5}, "integrality_tol"),
                         ({"integrality_tol": -1}, "integrality_tol")]:
        with pytest.raises(InputError) as e:
            serra2020(net, dom, **kwargs)
        assert name in e.value.param
    from lrmilp.domains import Unbounded
    with pytest.raises(InputError, match="bounded"):
        layer_activity(net, Unbounded(2))


# --- a shipped digits MLP ------------------------------------------------------------------------

def test_digits_mlp_between_sampled_patterns_and_theorem_1():
    net = load_network(DIGITS)
    dom = from_options(net.input_dim, model_lo=net.lo, model_hi=net.hi)
    t0 = time.perf_counter()
    r = serra2020(net, dom)
    seconds = time.perf_counter() - t0
    assert seconds < 60, seconds
    sampled = sample_patterns(net, dom, samples=20_000, seed=0).distinct_patterns
    assert sampled <= DIGITS_EXACT <= r.value <= serra2018(net.input_dim, net.widths)


# --- command line --------------------------------------------------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lrmilp.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_bounds_empirical_json(tmp_path):
    from lrmilp import save_npz
    path = tmp_path / "net.npz"
    save_npz(random_mlp([3, 5, 5], seed=0), path)
    r = cli("bounds", str(path), "--box", "-1", "1", "--empirical", "--time-limit", "5", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    d = out["serra2020_details"]
    assert out["serra2020"] == d["value"] <= out["serra2018"]
    assert d["solver"] == "highs" and d["time_limit"] == 5.0 and d["domain"]["kind"] == "box"
    assert [layer["width"] for layer in d["layers"]] == [5, 5]
    assert {"max_active", "max_inactive", "stable_active", "stable_inactive", "max_active_optimal",
            "max_inactive_optimal", "unstable"} <= set(d["layers"][0])
    plain = json.loads(cli("bounds", str(path), "--json").stdout)
    assert "serra2020" not in plain and {k: v for k, v in out.items() if not k.startswith("serra2020")} == plain
    text = cli("bounds", str(path), "--box", "-1", "1", "--empirical")
    assert text.returncode == 0 and "serra2020" in text.stdout and "these weights over this domain" in text.stdout


def test_cli_empirical_with_arch_is_an_error():
    r = cli("bounds", "--arch", "2,3,3", "--empirical")
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--empirical" in lines[0] and "Traceback" not in r.stderr
