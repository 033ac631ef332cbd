"""Counting under the user's own linear constraints (lrmilp.constraints, count_regions(constraints=...),
lrmilp count --constraints / --class-wins).

The oracle is a brute force over every activation pattern written here from scratch with plain numpy and
scipy.optimize.linprog: a pattern counts iff the set of inputs of the box that have the pattern and
satisfy the constraints holds a Euclidean ball of radius > tol.  The tree and the solver peers are
compared with it, and with each other, on the patterns themselves (regions files), not just numbers.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog

from lrmilp import Dense, InputError, Network, load_network, random_mlp
from lrmilp.constraints import Constraint, ConstraintSet, class_wins, load_constraints, parse_constraints
from lrmilp.counting import count_regions
from lrmilp.counting.model import layer_scales
from lrmilp.domains import Box, from_options
from lrmilp.network import balanced
from lrmilp.regions import read_regions

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-6


# --- the oracle --------------------------------------------------------------------------------------

def brute_force(net: Network, lo: float, hi: float, rows: list[tuple[str, int | None, np.ndarray, float]],
                tol: float = TOL) -> set[tuple[bool, ...]]:
    """Patterns whose inputs in [lo, hi]^d satisfying ``rows`` hold a ball of radius > tol.

    ``rows`` are (on, layer (1-based ReLU layer), a, b) meaning a @ q <= b, with q the input, that ReLU
    layer's pre-activations or the output.  Dense layers only; one LP per pattern.
    """
    d = net.input_dim
    n = sum(layer.W.shape[0] for layer in net.layers if layer.relu)
    found = set()
    for bits in itertools.product([False, True], repeat=n):
        M, m = np.eye(d), np.zeros(d)  # the current layer's input as M x + m
        lhs, rhs, pre, pos, ok = [], [], [], 0, True
        for layer in net.layers:
            A, c = layer.W @ M, layer.W @ m + layer.b
            if layer.relu:
                s = np.array(bits[pos:pos + A.shape[0]])
                pos += A.shape[0]
                pre.append((A, c))
                for i in range(A.shape[0]):
                    nrm = np.linalg.norm(A[i])
                    if nrm < 1e-12:
                        ok &= bool((c[i] > 0) == s[i])
                        continue
                    sg = 1.0 if s[i] else -1.0
                    lhs.append(np.append(-sg * A[i] / nrm, 1.0))  # sg (A x + c) >= nrm t
                    rhs.append(sg * c[i] / nrm)
                M, m = A * s[:, None], c * s
            else:
                M, m = A, c
        if not ok:
            continue
        for on, k, a, b in rows:
            P, p = (np.eye(d), np.zeros(d)) if on == "input" else (M, m) if on == "output" else pre[k - 1]
            g, const = a @ P, a @ p
            nrm = np.linalg.norm(g)
            if nrm < 1e-12:
                ok &= bool(const <= b)
                continue
            lhs.append(np.append(g / nrm, 1.0))
            rhs.append((b - const) / nrm)
        if not ok:
            continue
        for i in range(d):
            for sgn, side in ((1.0, hi), (-1.0, -lo)):
                e = np.zeros(d + 1)
                e[i], e[d] = sgn, 1.0
                lhs.append(e)
                rhs.append(side)
        res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.array(lhs), b_ub=np.array(rhs),
                      bounds=[(None, None)] * d + [(None, 10.0)], method="highs")
        if res.status == 0 and -res.fun > tol:
            found.add(tuple(bool(v) for v in bits))
    return found


def as_rows(cs: ConstraintSet) -> list:
    return [(c.on, c.layer, *c.as_le()) for c in cs.constraints]


def counted(net, dom, tmp_path, name, **kw) -> tuple[object, set]:
    """A count with its regions file read back: (result, patterns).  Every point written must realise its
    pattern and satisfy the constraints."""
    path = tmp_path / f"{name}.jsonl"
    res = count_regions(net, dom, regions_out=path, **kw)
    pats = set()
    cs = kw.get("constraints")
    for rec in read_regions(path):
        x = rec["point"]
        assert (net.patterns(x[None])[0] == rec["pattern"]).all()
        if cs is not None:
            pre = net.preactivations(x[None])
            for con in cs.constraints:
                q = x if con.on == "input" else net.forward(x[None])[0] if con.on == "output" else \
                    pre[net.relu_layers[con.layer - 1]][0]
                a, b = con.as_le()
                assert a @ q <= b + 1e-9
        pats.add(tuple(bool(v) for v in rec["pattern"]))
    assert len(pats) == res.regions
    return res, pats


def kinds(net: Network, seed: int) -> dict[str, ConstraintSet]:
    """One constraint set per target, and a mixed one, with random coefficients that cut the box."""
    rng = np.random.default_rng(seed)
    d, widths, k = net.input_dim, net.widths, net.output_dim
    sets = {
        "input": [Constraint("input", rng.standard_normal(d), 0.3)],
        "layer": [Constraint("layer", rng.standard_normal(widths[-1]), 0.2, ">=", layer=len(widths))],
        "output": [Constraint("output", rng.standard_normal(k), 0.1)],
        "mixed": [Constraint("input", rng.standard_normal(d), -0.5, ">="),
                  Constraint("layer", rng.standard_normal(widths[0]), 1.0, layer=1),
                  Constraint("output", rng.standard_normal(k), 0.5)],
    }
    return {name: ConstraintSet(rows, net, source=name) for name, rows in sets.items()}


NETS = [([2, 4, 3, 2], 0), ([3, 4, 3, 3], 3), ([2, 4, 4, 3], 8)]


@pytest.mark.parametrize("widths,seed", NETS, ids=lambda v: str(v))
def test_tree_matches_brute_force_for_input_layer_and_output_constraints(widths, seed, tmp_path):
    net = random_mlp(widths, seed=seed, last_relu=False)
    dom = Box(-1, 1, widths[0])
    free, all_pats = counted(net, dom, tmp_path, "free", tol=TOL)
    assert all_pats == brute_force(net, -1, 1, [])
    for name, cs in kinds(net, seed).items():
        res, pats = counted(net, dom, tmp_path, name, tol=TOL, constraints=cs)
        want = brute_force(net, -1, 1, as_rows(cs))
        assert pats == want, name
        assert res.complete and res.extra["regions_unconstrained"] == free.regions
        assert res.extra["constraints"]["rows"] == len(cs)
        assert pats <= all_pats
    # The cuts bite: at least one kind keeps some regions and drops others.
    assert any(0 < count_regions(net, dom, tol=TOL, constraints=cs).regions < free.regions
               for cs in kinds(net, seed).values())


@pytest.mark.parametrize("widths,seed", NETS + [([3, 5, 4, 3], 11)], ids=lambda v: str(v))
def test_scip_peer_matches_tree_under_constraints(widths, seed, tmp_path):
    pytest.importorskip("pyscipopt")
    net = random_mlp(widths, seed=seed, last_relu=False)
    dom = Box(-1, 1, widths[0])
    sets = {**kinds(net, seed + 1), **{f"wins{c}": class_wins(net, c) for c in range(net.output_dim)}}
    for name, cs in sets.items():
        tree, tp = counted(net, dom, tmp_path, f"t-{name}", constraints=cs)
        scip, sp_ = counted(net, dom, tmp_path, f"s-{name}", method="scip", constraints=cs)
        assert tp == sp_, name
        assert scip.complete and scip.extra["constraint_rows"] == len(cs)


def test_milp_peer_matches_tree_under_constraints(tmp_path):
    net = random_mlp([2, 4, 3, 3], seed=5, last_relu=False)
    dom = Box(-1, 1, 2)
    cs = kinds(net, 5)["mixed"] + class_wins(net, 1)
    tree, tp = counted(net, dom, tmp_path, "t", constraints=cs)
    milp, mp = counted(net, dom, tmp_path, "m", method="milp", constraints=cs)
    assert tp == mp and milp.complete


def test_class_wins_covers_every_region_on_a_random_net(tmp_path):
    net = random_mlp([2, 6, 5, 4], seed=2, last_relu=False)
    dom = Box(-1, 1, 2)
    free, all_pats = counted(net, dom, tmp_path, "free", tol=TOL)
    union, total = set(), 0
    for c in range(4):
        cs = class_wins(net, c)
        res, pats = counted(net, dom, tmp_path, f"c{c}", tol=TOL, constraints=cs)
        union |= pats
        total += res.regions
    assert union == all_pats and total >= free.regions


def test_every_geometry_filters_the_same_regions(tmp_path):
    """The filter sits in the search's on_region hook: the polygon, vertex, lp, batch and dual (numba)
    geometries all emit through it and keep the same patterns."""
    for widths, geometries in (([2, 5, 4, 3], ("polygon", "vertex", "lp", "batch", "dual")),
                               ([7, 5, 4, 3], ("lp", "dual"))):
        net = random_mlp(widths, seed=3, last_relu=False)
        dom = Box(-1, 1, widths[0])
        # The class winning at the centre, and an input row the centre meets: a non-empty constrained set.
        cs = class_wins(net, int(np.argmax(net.forward(np.zeros(widths[0]))[0]))) + kinds(net, 3)["input"]
        found = {g: counted(net, dom, tmp_path, g, geometry=g, constraints=cs)[1] for g in geometries}
        first = found[geometries[0]]
        assert first and all(p == first for p in found.values()), {g: len(p) for g, p in found.items()}


def test_rebalanced_network_keeps_its_constraints():
    """Rows with entries beyond 2^64 are rescaled by powers of two before counting; constraints on that
    layer and on the outputs must still mean the network as given, in the tree and in the MILP."""
    base = random_mlp([2, 4, 3, 2], seed=4, last_relu=False)
    big = 2.0 ** 80
    L0, L1, L2 = base.layers
    net = Network([Dense(L0.W * big, L0.b * big), Dense(L1.W / big, L1.b), Dense(L2.W, L2.b, relu=False)], (2,))
    scales = layer_scales(net, balanced(net))
    assert np.all(np.log2(scales[0]) <= -60) and np.all(np.log2(scales[0]) % 1 == 0)  # rescaled by 2^-k
    assert np.allclose(scales[1], 1.0)  # the layer after was compensated in its columns only
    dom = Box(-1, 1, 2)
    rows = [Constraint("layer", np.array([1.0, -1.0, 0.5, 0.0]) / big, 0.1, layer=1),
            Constraint("output", np.array([1.0, -2.0]), 0.0)]
    cs = ConstraintSet(rows, net)
    want = brute_force(base, -1, 1, [("layer", 1, rows[0].coef * big, 0.1), ("output", None, rows[1].coef, 0.0)])
    assert count_regions(net, dom, tol=TOL, constraints=cs).regions == len(want) > 0
    assert count_regions(net, dom, method="milp", tol=TOL, constraints=cs).regions == len(want)


def test_max_regions_and_regions_out_count_constrained_regions(tmp_path):
    net = random_mlp([2, 6, 5, 3], seed=1, last_relu=False)
    dom = Box(-1, 1, 2)
    cs = class_wins(net, 2)
    full = count_regions(net, dom, constraints=cs)
    assert full.regions >= 3
    res, pats = counted(net, dom, tmp_path, "cut", constraints=cs, max_regions=2)
    assert res.regions == 2 and not res.complete and res.stopped == "max_regions"


# --- the acceptance case: "class c wins" on a digits MLP ---------------------------------------------

def test_digits_class_wins_tree_and_scip_agree_and_cover_every_region(tmp_path):
    pytest.importorskip("pyscipopt")
    net = load_network(str(ROOT / "models" / "digits-mlp-64-2-20-10.npz"))
    dom = from_options(net.input_dim, model_lo=net.lo, model_hi=net.hi)
    # The lp geometry: HiGHS cells, no numba engine to compile (the constrained filter is the same for all).
    free, all_pats = counted(net, dom, tmp_path, "free", geometry="lp")
    assert free.regions == 73
    union, counts, times = set(), [], []
    for c in range(10):
        cs = class_wins(net, c)
        t0 = time.perf_counter()
        tree, tp = counted(net, dom, tmp_path, f"t{c}", constraints=cs, geometry="lp")
        t1 = time.perf_counter()
        scip, sp_ = counted(net, dom, tmp_path, f"s{c}", method="scip", constraints=cs)
        times.append((round(t1 - t0, 2), round(time.perf_counter() - t1, 2)))
        assert tp == sp_, c
        assert tree.complete and scip.complete
        union |= tp
        counts.append(tree.regions)
    print(f"\ndigits-mlp-64-2-20-10 class-wins counts {counts}, sum {sum(counts)}, unconstrained {free.regions}; "
          f"seconds (tree, scip) {times}")
    assert union == all_pats
    assert sum(counts) >= free.regions


# --- validation ----------------------------------------------------------------------------------------

NET = random_mlp([2, 3, 2], seed=0, last_relu=False)


@pytest.mark.parametrize("row,needle", [
    ({"on": "input", "coef": [1, 2], "rhs": 0, "color": 1}, "unknown key(s) color"),
    ({"on": "input", "coef": [1, 2]}, "constraints[0].rhs: missing"),
    ({"on": "input", "coef": [1], "rhs": 0}, "constraints[0].coef: expected 2 entries (the network inputs)"),
    ({"on": "output", "coef": [1, 2, 3], "rhs": 0}, "expected 2 entries (the outputs)"),
    ({"on": "layer", "layer": 1, "coef": [1, 2], "rhs": 0}, "expected 3 entries (the neurons in ReLU layer 1)"),
    ({"on": "layer", "layer": 2, "coef": [1, 2], "rhs": 0}, "constraints[0].layer: expected a ReLU layer number 1..1"),
    ({"on": "layer", "coef": [1, 2, 3], "rhs": 0}, "layer number 1..1, got None"),
    ({"on": "input", "layer": 1, "coef": [1, 2], "rhs": 0}, "only a constraint on 'layer' takes a layer"),
    ({"on": "hidden", "coef": [1, 2], "rhs": 0}, "constraints[0].on: expected one of input, layer, output"),
    ({"on": "input", "coef": [1, 2], "rhs": 0, "sense": "=="}, "sense: expected '<=' or '>='"),
    ({"on": "input", "coef": [1, True], "rhs": 0}, "coef: expected a non-empty list of numbers"),
    ({"on": "input", "coef": [1, 1e400], "rhs": 0}, "coef: entries must be finite"),
    ({"on": "input", "coef": [1, 2], "rhs": "0"}, "rhs: expected a number"),
    ({"on": "layer", "layer": 1.0, "coef": [1, 2, 3], "rhs": 0}, "layer: expected an integer"),
])
def test_bad_constraint_rows_are_refused_naming_the_field(row, needle):
    with pytest.raises(InputError) as e:
        parse_constraints({"constraints": [row]}, NET, source="c.json")
    assert str(e.value).startswith("c.json: ") and needle in str(e.value)


def test_bad_constraint_files_and_options_are_refused(tmp_path):
    for text, needle in (('{"constraints": []}', "no constraints given"), ('{"rows": []}', "one key 'constraints'"),
                         ('{"constraints": [{"on": "input", "coef": [NaN, 1], "rhs": 0}]}', "not a finite number"),
                         ("{", "cannot read constraints file")):
        path = tmp_path / "c.json"
        path.write_text(text)
        with pytest.raises(InputError, match="c.json") as e:
            load_constraints(path, NET)
        assert needle in str(e.value)
    for c in (-1, 2, True):
        with pytest.raises(InputError, match="expected a class 0..1"):
            class_wins(NET, c)
    with pytest.raises(InputError, match="at least two outputs"):
        class_wins(random_mlp([2, 3, 1], seed=0, last_relu=False), 0)
    with pytest.raises(InputError, match="drop jobs"):
        count_regions(NET, Box(-1, 1, 2), constraints=class_wins(NET, 0), jobs=2)
    with pytest.raises(InputError, match="expected 3 entries"):  # a set for another network is re-checked
        count_regions(random_mlp([3, 3, 2], seed=0, last_relu=False), Box(-1, 1, 3), constraints=class_wins(NET, 0)
                      + ConstraintSet([Constraint("input", np.ones(2), 0.0)], NET))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lrmilp.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)


def test_cli_constraints_and_class_wins(tmp_path):
    net = random_mlp([2, 5, 4, 3], seed=6, last_relu=False)
    model = tmp_path / "net.npz"
    np.savez(model, **{f"W{i}": layer.W for i, layer in enumerate(net.layers)},
             **{f"b{i}": layer.b for i, layer in enumerate(net.layers)})
    loaded = load_network(str(model))
    assert [lay.relu for lay in loaded.layers] == [True, True, False]
    spec = tmp_path / "c.json"
    spec.write_text(json.dumps({"constraints": [{"on": "output", "coef": [1.0, -1.0, 0.0], "rhs": 0.0, "sense": ">="},
                                                {"on": "input", "coef": [1.0, 0.5], "rhs": 0.25}]}))
    want_file = count_regions(net, Box(-1, 1, 2), constraints=load_constraints(spec, net)).regions
    want_wins = count_regions(net, Box(-1, 1, 2), constraints=class_wins(net, 1)).regions
    r = cli("count", str(model), "--box", "-1", "1", "--constraints", str(spec), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["regions"] == want_file and out["constraints"]["rows"] == 2 and out["jobs"] == 1
    r = cli("count", str(model), "--box", "-1", "1", "--class-wins", "1", "--json")
    assert json.loads(r.stdout)["regions"] == want_wins
    r = cli("count", str(model), "--box", "-1", "1", "--class-wins", "1")
    assert r.returncode == 0 and "under 2 constraint rows (class_wins(1))" in r.stdout
    spec.write_text(json.dumps({"constraints": [{"on": "output", "coef": [1.0, -1.0], "rhs": 0.0}]}))
    for args, needle in (((("--constraints", str(spec))), f"{spec}: constraints[0].coef: expected 3 entries"),
                         (("--class-wins", "3"), "--class-wins: expected a class 0..2"),
                         (("--class-wins", "1", "--jobs", "2"), "drop --jobs")):
        r = cli("count", str(model), "--box", "-1", "1", *args)
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
