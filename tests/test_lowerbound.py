"""XOR-parity lower bounds: propagation against brute force, validity against exact counts from
closed forms, and the three feasibility back ends against each other."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from fractions import Fraction
from statistics import median

import numpy as np
import pytest
from oracles import sawtooth, zaslavsky_general

from lrmilp import random_mlp, save_npz
from lrmilp.counting import count_regions
from lrmilp.domains import Box, Unbounded
from lrmilp.search import TreeSearch
from lrmilp.lowerbound import FEASIBLE, INFEASIBLE, floor_pow2, lower_bound, make_oracle, next_level
from lrmilp.parity import ParityState, XorSystem


# --- the algebra -----------------------------------------------------------------------------------

def _solutions(system: XorSystem, n: int) -> np.ndarray:
    """Every assignment of n bits satisfying the system, by brute force (numpy, no GF(2) algebra)."""
    M, b = system.matrix(n)
    X = np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.int64)
    return X[np.all((X @ M.T.astype(np.int64)) % 2 == b, axis=1)]


@pytest.mark.parametrize("seed", range(40))
def test_propagation_is_complete_and_sound(seed):
    """Along a random decision order: assign() fails exactly when no solution extends the prefix,
    and forced() names a value exactly when every extending solution agrees on it."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 9))
    k = int(rng.integers(1, n + 3))
    system = XorSystem.draw(rng, np.arange(n), k, density=float(rng.choice([0.3, 0.5, 0.8])))
    sols = _solutions(system, n)
    state = ParityState.of(system)
    assert (state is None) == (len(sols) == 0)
    if state is None:
        return
    order = rng.permutation(n)
    values = rng.integers(0, 2, size=n)
    for step, var in enumerate(order):
        ext = sols[np.all(sols[:, order[:step]] == values[order[:step]], axis=1)]
        implied = set(ext[:, var].tolist())
        expect_forced = implied.pop() if len(implied) == 1 else None
        assert state.forced(var) == expect_forced
        new = state.assign(var, int(values[var]))
        ok = bool(np.any(ext[:, var] == values[var]))
        assert (new is not None) == ok
        if new is None:
            return
        state = new


def test_satisfied_matches_matrix():
    rng = np.random.default_rng(0)
    system = XorSystem.draw(rng, np.array([0, 3, 5, 64, 70, 129]), 5)
    M, b = system.matrix(130)
    for _ in range(50):
        p = rng.random(130) < 0.5
        assert system.satisfied(p) == bool(np.all((M.astype(int) @ p.astype(int)) % 2 == b))


def test_floor_pow2_is_a_floor():
    for n in (0, 1, 5, 17, 63, 64, 65, 200):
        for alpha in (0.01, 0.3321928, 0.6643856, 1.0, 2.5):
            got = floor_pow2(n, alpha)
            # exact comparison with 2^(n - alpha) through 2^alpha as a fraction of high precision
            two_alpha = Fraction(2 ** alpha).limit_denominator(10**15)
            assert got * two_alpha <= 2**n * (1 + Fraction(1, 10**12))
            assert (got + 1) * two_alpha > 2**n * (1 - Fraction(1, 10**9))


# --- the tree with parity propagation --------------------------------------------------------------

@pytest.mark.parametrize("widths,geometry", [((2, 6, 5), "polygon"), ((3, 6, 5), "vertex"), ((3, 6, 5), "lp"),
                                             ((7, 6, 6), "lp")])
def test_tree_visits_exactly_the_regions_satisfying_the_xors(widths, geometry):
    net = random_mlp(widths, seed=3)
    dom = Box(-1, 1, widths[0])

    def regions(parity=None):
        out: list[bytes] = []
        TreeSearch(net, dom, geometry=geometry, parity=parity,
                       on_region=lambda p, u, r: out.append(p.tobytes())).run()
        return out

    everything = regions()
    rng = np.random.default_rng(1)
    for k in (1, 2, 3, 4, 6):
        system = XorSystem.draw(rng, np.arange(net.neurons), k)
        state = ParityState.of(system)
        want = {r for r in everything if system.satisfied(np.frombuffer(r, dtype=bool))}
        got = regions(state) if state is not None else []
        assert len(got) == len(set(got))
        assert set(got) == want


# --- validity: the certified bound never exceeds the exact count -----------------------------------

CASES = {
    # exact counts from closed forms, no enumeration: a generic layer over all of R^n0 ...
    "one-layer-16-16": (lambda: random_mlp([16, 16], seed=0), lambda: Unbounded(16), zaslavsky_general(16, 16)),
    # ... and the tent-map sawtooth on [0, 1]
    "sawtooth-14": (lambda: sawtooth(14), lambda: Box(0, 1, 1), 2**14),
    "one-layer-4-9": (lambda: random_mlp([4, 9], seed=1), lambda: Unbounded(4), zaslavsky_general(4, 9)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_certified_bound_never_exceeds_exact_count(case):
    make_net, make_dom, exact = CASES[case]
    net, dom = make_net(), make_dom()
    assert exact >= 100
    bounds = []
    for seed in range(30 if os.environ.get("LRMILP_SLOW") else 8):  # LRMILP_SLOW=1: more seeds
        res = lower_bound(net, dom, seed=seed, confidence=0.99)
        assert res.target_confidence == 0.99
        assert res.lower_bound <= exact, (seed, res.to_dict())
        assert res.certain_lower_bound <= res.lower_bound
        bounds.append(res.lower_bound)
    # Not trivially valid: the typical bound is within a small factor of the count.
    assert median(bounds) >= exact / 64


def test_bound_on_an_enumerated_net_and_rule_fields():
    net = random_mlp([5, 8, 8], seed=4)
    dom = Box(-1, 1, 5)
    exact = count_regions(net, dom).regions
    res = lower_bound(net, dom, seed=0, trials=7, confidence=0.95, schedule="upward")
    # the union over tested wrong levels: 2^(-alpha r) / (1 - 2^-r) = 1 - p
    assert res.alpha == pytest.approx((math.log2(20) - math.log2(1 - 2 ** -7)) / 7)
    assert res.lower_bound <= exact
    assert res.level is not None and res.lower_bound == max(floor_pow2(res.level, res.alpha), res.certain_lower_bound)
    assert [lv["xors"] for lv in res.levels] == list(range(1, len(res.levels) + 1))
    assert all(lv["certified"] for lv in res.levels[:-1])
    d = res.to_dict()
    assert isinstance(d["lower_bound"], int) and "rule" in d and d["tol"] > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_search_schedule_claims_the_highest_passed_level_below_every_failure(seed):
    net = random_mlp([5, 8, 8], seed=4)
    dom = Box(-1, 1, 5)
    exact = count_regions(net, dom).regions
    res = lower_bound(net, dom, seed=seed, confidence=0.99)
    assert res.lower_bound <= exact
    tested = {lv["xors"]: lv["certified"] for lv in res.levels}
    assert len(tested) == len(res.levels)  # no level twice
    # no trials spent on a level whose claim could not beat the certain bound when it was chosen
    assert all(floor_pow2(lv["xors"], res.alpha, res.threshold) > lv["certain_before"] for lv in res.levels)
    assert res.stopped in ("failed_trial", "max_level", "certain_bound")
    if res.level is None:  # the lowest level worth testing failed: the certain bound is the claim
        assert res.lower_bound == res.certain_lower_bound and res.confidence == 1.0
        assert res.stopped == "certain_bound" or tested[min(tested)] is False
        assert not tested or floor_pow2(min(tested) - 1, res.alpha, res.threshold) <= res.certain_lower_bound
    else:
        assert res.level == max(k for k, ok in tested.items() if ok)
        # the claim is pinned down: the level above it was tested and failed (or is the last level)
        assert tested.get(res.level + 1) is False or res.stopped == "max_level"


def test_next_level_never_goes_below_a_risen_first_level():
    # found regions raised the lowest level worth testing past the passed 11: bisection stays above it
    assert next_level({11: True, 15: False}, first=13, last=30, probe=11) == 13
    assert next_level({11: True, 13: False}, first=14, last=30, probe=11) is None  # 13 failed: nothing to pin


def test_next_level_schedules():
    # upward: consecutive until the first failure
    assert next_level({}, first=3, last=9, probe=6, schedule="upward") == 3
    assert next_level({3: True, 4: False}, first=3, last=9, probe=6, schedule="upward") is None
    # search: the probe, steps 2, 4, 8 up, then bisection; down from a failed probe
    seq, tested = [], {}
    truth = 13  # levels <= 13 pass
    while (k := next_level(tested, first=1, last=30, probe=5)) is not None:
        seq.append(k)
        tested[k] = k <= truth
    assert seq == [5, 7, 11, 19, 15, 13, 14] and max(k for k, ok in tested.items() if ok) == truth
    seq, tested = [], {}
    while (k := next_level(tested, first=1, last=30, probe=12)) is not None:
        seq.append(k)
        tested[k] = k <= 4
    assert seq == [12, 6, 3, 4, 5]
    assert next_level({30: True}, first=1, last=30, probe=30) is None


def test_fixed_level_and_alpha():
    net = random_mlp([4, 8, 8], seed=1)
    dom = Box(-1, 1, 4)
    res = lower_bound(net, dom, xors=3, trials=4, alpha=1.0)
    assert res.confidence in (1.0, pytest.approx(1 - 2 ** -4))
    assert [lv["xors"] for lv in res.levels] == [3]
    assert res.level == 3 and res.lower_bound >= floor_pow2(3, 1.0)


# --- the back ends agree ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_tree_and_milp_backends_agree_on_feasibility(seed):
    net = random_mlp([3, 6, 6], seed=seed)
    dom = Box(-1, 1, 3)
    exact = count_regions(net, dom).regions
    methods = ["tree", "milp"]
    try:
        import pyscipopt  # noqa: F401
        methods.append("scip")
    except ImportError:
        pass
    oracles = {m: make_oracle(net, dom, method=m) for m in methods}
    rng = np.random.default_rng(seed)
    centre = max(1, round(math.log2(exact)))
    outcomes = []
    for _ in range(16):
        k = int(rng.integers(centre - 1, centre + 3))
        system = XorSystem.draw(rng, np.arange(net.neurons), k)
        results = {m: o(system) for m, o in oracles.items()}
        statuses = {m: r[0] for m, r in results.items()}
        assert len(set(statuses.values())) == 1, statuses
        for status, pattern in results.values():
            if status == FEASIBLE:
                assert system.satisfied(pattern)
        outcomes.append(statuses["tree"])
    assert FEASIBLE in outcomes and INFEASIBLE in outcomes  # both answers were exercised


# --- CLI -------------------------------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "lrmilp", *args], capture_output=True, text=True)


def test_cli_lower_bound_json(tmp_path):
    path = tmp_path / "n.npz"
    save_npz(random_mlp([3, 6, 6], seed=0), path)
    p = _cli("lower-bound", str(path), "--box", "-1", "1", "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert isinstance(r["lower_bound"], int) and r["lower_bound"] >= 1
    assert 0 < r["confidence"] <= 1 and r["seconds"] >= 0
    exact = json.loads(_cli("count", str(path), "--box", "-1", "1", "--json").stdout)["regions"]
    assert r["lower_bound"] <= exact


@pytest.mark.parametrize("args,message", [(["--confidence", "1.5"], "--confidence"),
                                          (["--alpha", "1", "--confidence", "0.9"], "not both"),
                                          (["--density", "0"], "--density"),
                                          (["--method", "nope"], "method"),
                                          (["--threshold", "0"], "--threshold"),
                                          (["--threshold", "4", "--method", "milp"], "--threshold"),
                                          (["--xor-layers", "2"], "--xor-layers")])
def test_cli_lower_bound_bad_input(tmp_path, args, message):
    path = tmp_path / "n.npz"
    save_npz(random_mlp([3, 4], seed=0), path)
    p = _cli("lower-bound", str(path), "--box", "-1", "1", *args)
    assert p.returncode == 2
    assert p.stdout == "" and len(p.stderr.strip().splitlines()) == 1 and message in p.stderr


@pytest.mark.parametrize("engine", ["jobs", "dask"])
def test_parallel_trials_certify_the_same_level(engine):
    if engine == "dask":
        pytest.importorskip("distributed")
    net = random_mlp([5, 8, 8], seed=4)
    dom = Box(-1, 1, 5)
    # no sampled witnesses: every level's claim is worth testing, so the XOR levels decide the bound
    serial = lower_bound(net, dom, seed=2, witness_samples=0)
    par = lower_bound(net, dom, seed=2, witness_samples=0, jobs=2, dask="local" if engine == "dask" else None)
    assert serial.level is not None
    assert par.level == serial.level and par.lower_bound >= floor_pow2(serial.level, serial.alpha)
    assert [lv["xors"] for lv in par.levels] == [lv["xors"] for lv in serial.levels]


def test_parallel_trials_with_cells_of_several_regions_certify_the_same_level():
    net = random_mlp([4, 8, 8, 8], seed=1)
    dom = Box(-1, 1, 4)
    serial = lower_bound(net, dom, seed=3, witness_samples=0)
    par = lower_bound(net, dom, seed=3, witness_samples=0, jobs=2)
    assert serial.threshold == par.threshold == 8 and serial.level is not None
    assert par.level == serial.level and par.lower_bound >= floor_pow2(serial.level, serial.alpha, 8)


def test_sampled_witnesses_are_regions_that_satisfy_the_xors():
    """Every pattern Witnesses hands a trial is a brute-force region (one scipy LP a pattern, no shared
    code) that satisfies the trial's XORs; and a system no region satisfies gets none."""
    from oracles import box_rows, brute_force_count

    from lrmilp.lowerbound import Witnesses
    from lrmilp.tolerance import resolve_tolerance
    net = random_mlp([3, 5, 4], seed=3)
    dom = Box(-1, 1, 3)
    tolerance = resolve_tolerance(net, dom, None)
    A, b = box_rows(dom.lo, dom.hi)
    layers = [(layer.W, layer.b, layer.relu) for layer in net.layers]
    regions = {tuple(p) for p in brute_force_count(layers, origin=np.zeros(3), basis=np.eye(3), A_dom=A, b_dom=b,
                                                    tol=tolerance.tol, cap=10.0)}
    witnesses = Witnesses(net, dom, tolerance, samples=20_000, seed=0)
    assert 0 < len(witnesses) <= len(regions)
    rng = np.random.default_rng(7)
    several = 0
    for k in (1, 2, 3):  # several witnesses a trial: t distinct regions satisfying the XORs, or None
        for t in (2, 3, 5):
            system = XorSystem.draw(rng, np.arange(net.neurons), k)
            many = witnesses.find_many(system, t)
            satisfying = {p for p in regions if system.satisfied(np.array(p, dtype=bool))}
            if many is None:
                continue
            several += 1
            got = [tuple(bool(v) for v in p) for p in many]
            assert len(got) == len(set(got)) == t and set(got) <= satisfying
    assert several >= 5
    assert witnesses.find_many(XorSystem.draw(rng, np.arange(net.neurons), 1), len(regions) + 1) is None
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(40):
        system = XorSystem.draw(rng, np.arange(net.neurons), int(rng.integers(1, 6)))
        pattern = witnesses.find(system)
        if pattern is None:
            continue
        hits += 1
        assert tuple(bool(v) for v in pattern) in regions and system.satisfied(pattern)
    assert hits > 10
    everyone = XorSystem((1, 1), (0, 1))  # neuron 0 both even and odd: no pattern satisfies it
    assert witnesses.find(everyone) is None


@pytest.mark.parametrize("case", ["box", "slice", "cnn"])
def test_certified_sampled_patterns_are_brute_force_regions(case):
    """certify_all's vectorised margins certify only brute-force regions (no shared code), agree with the
    one-pattern-at-a-time rule, and the certain lower bound of lower_bound includes them."""
    from oracles import box_rows, brute_force_count

    from lrmilp.domains import AffineSlice
    from lrmilp.lowerbound import Witnesses
    from lrmilp.tolerance import resolve_tolerance
    if case == "cnn":
        from lrmilp.network import Conv2d, Dense, Network
        rng = np.random.default_rng(1)
        conv = Conv2d(rng.normal(size=(2, 1, 2, 2)), 0.5 * rng.normal(size=2), in_shape=(1, 3, 3))
        net = Network([conv, Dense(rng.normal(size=(1, conv.out_size)), rng.normal(size=1), relu=False,
                                   in_shape=conv.out_shape)], (1, 3, 3))
    else:
        net = random_mlp([3, 5, 4], seed=7)
    n0 = net.input_dim
    if case == "slice":
        origin = np.full(n0, 0.1)
        basis = np.random.default_rng(2).normal(size=(n0, 2))
        dom = AffineSlice(origin, basis, -1, 1)
        A, b = box_rows(dom.lo, dom.hi)
    else:
        dom = Box(-1, 1, n0)
        origin, basis = np.zeros(n0), np.eye(n0)
        A, b = box_rows(dom.lo, dom.hi)
    tolerance = resolve_tolerance(net, dom, None)
    layers = [(np.asarray(layer.matrix.toarray() if hasattr(layer.matrix, "toarray") else layer.matrix),
               layer.bias, layer.relu) for layer in net.layers]
    regions = brute_force_count(layers, origin=origin, basis=basis, A_dom=A, b_dom=b, tol=tolerance.tol, cap=10.0)
    w = Witnesses(net, dom, tolerance, samples=20_000, seed=1)
    n = w.certify_all()
    got = {tuple(bool(v) for v in np.frombuffer(p, dtype=bool)) for p in w.certified_patterns()}
    assert n == len(got) > 0 and got <= regions
    one_by_one = Witnesses(net, dom, tolerance, samples=20_000, seed=1)
    assert n == sum(one_by_one._certified(i) for i in range(len(one_by_one)))
    res = lower_bound(net, dom, seed=0, xors=1)
    assert res.certain_lower_bound >= n


def test_time_limit_covers_the_whole_call_and_keeps_the_certain_bound():
    """The level search stops early enough (FINISH_SHARE) that collecting the certain bound still ends
    within the limit; the sampled patterns certified before the ladder stay in the bound."""
    net = random_mlp([6, 10, 10, 10], seed=0)
    dom = Box(-1, 1, 6)
    # XORs over all 30 neurons, one region a trial, no witnesses to skip levels: its levels run for 5-7 s on
    # an idle machine, so the limit surely ends them
    res = lower_bound(net, dom, seed=0, time_limit=2.0, witness_samples=0, xor_layers=3, threshold=1)
    assert res.stopped == "time_limit" and res.seconds <= 2.0
    assert res.lower_bound >= res.certain_lower_bound > 0
    # the sampled patterns certified before the levels stay in the certain bound
    sampled = lower_bound(net, dom, seed=0, time_limit=2.0, xor_layers=3, threshold=1)
    assert sampled.seconds <= 2.0 and sampled.certain_lower_bound >= sampled.witness_patterns // 2 > 0


def test_floor_pow2_with_a_threshold_is_exact_from_below():
    for n, a, t in [(10, 1.0, 8), (0, 0.6645, 3), (17, 0.3, 64), (5, 2.5, 1)]:
        v = floor_pow2(n, a, t)
        assert v <= t * 2 ** (n - a) < v + 1 + 1e-9 * t * 2 ** n
    assert floor_pow2(9, 0.0, 8) == 4095  # 2^-0 is stored a hair below 1: never above the true 4096


def test_prefix_xor_cells_hold_exactly_the_brute_force_regions_that_satisfy_them():
    """XORs over the first two of three ReLU layers: the tree's cell (parity pruning on the decided
    layers) is the set of brute-force regions (one scipy LP a pattern, no shared code) satisfying them."""
    from oracles import box_rows, brute_force_count

    from lrmilp.lowerbound import TreeOracle
    from lrmilp.network import balanced
    net = balanced(random_mlp([2, 4, 3, 3], seed=5))
    dom = Box(-1, 1, 2)
    oracle = TreeOracle(net, dom)
    A, b = box_rows(dom.lo, dom.hi)
    regions = brute_force_count([(layer.W, layer.b, layer.relu) for layer in net.layers], origin=np.zeros(2),
                                basis=np.eye(2), A_dom=A, b_dom=b, tol=oracle.tol, cap=10.0)
    assert len(regions) >= 12
    prefix = np.arange(7)  # the 4 + 3 neurons of the first two ReLU layers
    rng = np.random.default_rng(0)
    sizes = []
    for k in (1, 2, 3):
        for _ in range(6):
            system = XorSystem.draw(rng, prefix, k)
            want = {p for p in regions if system.satisfied(np.array(p, dtype=bool))}
            status, got = oracle.cell(system, at_least=10**6)
            assert status == INFEASIBLE  # fewer than 10^6: all of them were counted
            assert {tuple(bool(v) for v in p) for p in got} == want and len(got) == len(want)
            sizes.append(len(want))
            capped = oracle.cell(system, at_least=3)
            assert capped[0] == (FEASIBLE if len(want) >= 3 else INFEASIBLE)
    assert max(sizes) > 1  # regions that share the prefix share a cell


@pytest.mark.parametrize("seed", range(6))
def test_threshold_bound_over_the_first_layers_never_exceeds_the_count(seed):
    """The default for three ReLU layers: XORs over the first two, cells of 8 regions; with no sampled
    witnesses the XOR levels alone make the claim."""
    net = random_mlp([4, 8, 8, 8], seed=1)
    dom = Box(-1, 1, 4)
    exact = count_regions(net, dom).regions
    res = lower_bound(net, dom, seed=seed, witness_samples=0)
    assert (res.xor_layers, res.threshold) == (2, 8)
    assert res.candidates <= 16
    assert res.level is not None and res.lower_bound == floor_pow2(res.level, res.alpha, 8)
    assert exact / 16 <= res.lower_bound <= exact
    assert res.to_dict()["threshold"] == 8 and "t = threshold" in res.to_dict()["rule"]


def test_threshold_and_xor_layers_options_are_checked():
    from lrmilp.errors import InputError
    net = random_mlp([3, 6, 6], seed=0)
    dom = Box(-1, 1, 3)
    two = lower_bound(net, dom, seed=0)
    assert (two.xor_layers, two.threshold) == (2, 1)  # two ReLU layers: every neuron, one region a trial
    with pytest.raises(InputError, match="threshold"):
        lower_bound(net, dom, threshold=4, method="milp")
    with pytest.raises(InputError, match="xor_layers"):
        lower_bound(net, dom, xor_layers=3)
    with pytest.raises(InputError, match="threshold"):
        lower_bound(net, dom, threshold=0)
