"""Solver-based counting ("milp", "scip", "gurobi") against the one-tree enumerator and the shared cases.

The tree enumerator and the solver methods share only the network and the bounds: the tree works on
polytopes and inscribed balls, the solvers on the big-M MILP.  Agreement on the same patterns, not
only the same numbers, is the oracle; the shared reference cases add counts from closed forms.
Set LRMILP_SLOW=1 to run the milp method on every shared case too (about 40 s more).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
from math import comb
from pathlib import Path

import numpy as np
import pytest

from lrmilp import Dense, InputError, Network, SolverUnavailable, load_network, random_mlp
from lrmilp.counting import count_regions
from lrmilp.counting.model import auto_radius
from lrmilp.domains import Box, Polytope, Unbounded, from_options, plane
from lrmilp.regions import read_regions

CASES = Path(__file__).resolve().parents[2] / "shared" / "cases"
HAVE_SCIP = importlib.util.find_spec("pyscipopt") is not None
HAVE_GUROBI = importlib.util.find_spec("gurobipy") is not None
SLOW = os.environ.get("LRMILP_SLOW") == "1"


def _domain(kind: str, n0: int):
    if kind == "box":
        return Box(-1.0, 1.0, n0)
    if kind == "unbounded":
        return Unbounded(n0)
    if kind == "plane":
        return plane(np.zeros(n0), np.eye(n0)[0], np.eye(n0)[1], -1.0, 1.0)
    return Polytope([[1.0, 1.0], [-1.0, 0.0], [0.0, -1.0]], [1.0, 0.5, 0.5], n0)


# (widths, seed, domain): small enough that the milp loop stays around a second each.
NETS = [([2, 5, 4, 1], 0, "box"), ([2, 8, 1], 2, "box"), ([2, 6, 6, 1], 4, "box"), ([3, 4, 3, 3, 1], 5, "box"),
        ([3, 5, 1], 6, "unbounded"), ([3, 5, 4, 1], 8, "plane"), ([2, 6, 4, 1], 9, "polytope")]


@pytest.fixture(scope="module", params=NETS, ids=lambda p: f"{'-'.join(map(str, p[0]))}-s{p[1]}-{p[2]}")
def net_case(request):
    widths, seed, kind = request.param
    net = random_mlp(widths, seed=seed, last_relu=False)
    dom = _domain(kind, widths[0])
    return net, dom, count_regions(net, dom)


def _patterns(path: Path, net) -> set[bytes]:
    pats = set()
    for rec in read_regions(path):
        # the interior point written with each region realises its pattern
        assert (net.patterns(rec["point"][None])[0] == rec["pattern"]).all()
        pats.add(rec["pattern"].tobytes())
    return pats


@pytest.mark.parametrize("method", ["milp", pytest.param("scip", marks=pytest.mark.skipif(
    not HAVE_SCIP, reason="pyscipopt not installed"))])
def test_solver_matches_tree_region_by_region(net_case, method, tmp_path):
    net, dom, ref = net_case
    assert ref.complete
    tree_file, solver_file = tmp_path / "tree.jsonl", tmp_path / f"{method}.jsonl"
    count_regions(net, dom, regions_out=tree_file)
    res = count_regions(net, dom, method=method, regions_out=solver_file)
    assert res.complete and res.stopped is None
    assert res.regions == ref.regions
    assert _patterns(solver_file, net) == _patterns(tree_file, net)
    # Same rule, same tolerance as the tree.
    assert res.method == method and res.tol == ref.tol and res.tol_meaning == ref.tol_meaning
    assert res.extra["formulation"] == "bigm-two-sided" and res.extra["bound_method"] == "lp"
    # A radius is needed only where the domain itself is unbounded (a polytope's rows may bound it).
    assert ("radius" in res.extra) == (dom.kind == "unbounded")


@pytest.mark.skipif(not HAVE_SCIP, reason="pyscipopt not installed")
def test_scip_count_is_what_its_counter_counted(net_case):
    """SCIP's own counter counted exactly the patterns the observer saw; on these generic nets every one
    of them is a region by the rule."""
    net, dom, ref = net_case
    res = count_regions(net, dom, method="scip")
    assert res.complete and res.regions == ref.regions and res.extra["scip_status"] == "infeasible"
    assert res.extra["scip_counted"] == res.extra["patterns_seen"] == res.regions


# --- the shared reference cases ------------------------------------------------------------------

def _shared_cases():
    if not (CASES / "expected.json").exists():
        return []
    return sorted(json.loads((CASES / "expected.json").read_text()).items())


def _case_domain(net, opts: list[str]):
    if opts and opts[0] == "--box":
        return from_options(net.input_dim, box=[float(opts[1]), float(opts[2])])
    if opts == ["--unbounded"]:
        return from_options(net.input_dim, unbounded=True)
    assert not opts, f"unexpected domain options {opts}"
    return from_options(net.input_dim, model_lo=net.lo, model_hi=net.hi)


def _case_params():
    out = []
    for name, case in _shared_cases():
        out.append(pytest.param(name, case, "scip", id=f"{name}-scip",
                                marks=pytest.mark.skipif(not HAVE_SCIP, reason="pyscipopt not installed")))
        slow = case["regions"] > 50  # the milp loop needs one MILP per region: ~10-20 s on these
        out.append(pytest.param(name, case, "milp", id=f"{name}-milp",
                                marks=pytest.mark.skipif(slow and not SLOW, reason="slow; set LRMILP_SLOW=1")))
    return out


@pytest.mark.parametrize("name,case,method", _case_params())
def test_shared_reference_cases(name, case, method):
    net = load_network(CASES / f"{name}.npz")
    res = count_regions(net, _case_domain(net, case["domain"]), method=method)
    assert res.complete
    assert res.regions == case["regions"]


# --- unbounded domains ---------------------------------------------------------------------------

def test_auto_radius_contains_every_vertex():
    net = random_mlp([2, 7, 1], seed=11, last_relu=False)
    R, note = auto_radius(net, Unbounded(2))
    assert note is None
    W, b = net.layers[0].W, net.layers[0].b
    for i, j in itertools.combinations(range(7), 2):
        v = np.linalg.solve(W[[i, j]], -b[[i, j]])
        assert np.linalg.norm(v) <= (R - 1) / 2 + 1e-9
    # a generic one-layer arrangement in R^n0 has sum_{k <= n0} C(n1, k) regions (Zaslavsky)
    res = count_regions(net, Unbounded(2), method="milp")
    assert res.regions == sum(comb(7, k) for k in range(3))
    assert res.extra["radius"] == pytest.approx(R) and "every region" in res.extra["radius_note"]


def test_auto_radius_falls_back_when_too_many_subsets():
    net = random_mlp([3, 30, 1], seed=0, last_relu=False)
    R, note = auto_radius(net, Unbounded(3), max_subsets=100)
    assert R == 100.0 and "exceed" in note


def test_deeper_unbounded_net_says_what_it_may_miss():
    net = random_mlp([2, 4, 4, 1], seed=3, last_relu=False)
    res = count_regions(net, Unbounded(2), method="milp")
    assert "missed" in res.extra["radius_note"] and res.extra["radius"] > 1
    assert res.regions <= count_regions(net, Unbounded(2)).regions
    given = count_regions(net, Unbounded(2), method="milp", radius=5.0)
    assert given.extra["radius"] == 5.0 and "given" in given.extra["radius_note"]


# --- limits, options and errors ------------------------------------------------------------------

@pytest.mark.parametrize("method", ["milp", pytest.param("scip", marks=pytest.mark.skipif(
    not HAVE_SCIP, reason="pyscipopt not installed"))])
def test_max_regions_gives_lower_bound(method, tmp_path):
    net = random_mlp([2, 6, 6, 1], seed=4, last_relu=False)
    res = count_regions(net, Box(-1, 1, 2), method=method, max_regions=7, regions_out=tmp_path / "r.jsonl")
    assert not res.complete and res.stopped == "max_regions" and res.regions == 7
    assert len(list(read_regions(tmp_path / "r.jsonl"))) == 7


@pytest.mark.parametrize("method", ["milp", pytest.param("scip", marks=pytest.mark.skipif(
    not HAVE_SCIP, reason="pyscipopt not installed"))])
def test_max_regions_at_the_exact_total_is_a_complete_count(method, tmp_path):
    """A solver count that finds every region before max_regions runs out is complete, not stopped."""
    net, dom = random_mlp([2, 5, 4], seed=1), Box(-1, 1, 2)
    total = count_regions(net, dom).regions  # the tree: another method
    for n, complete in ((total, True), (total - 1, False)):
        out = tmp_path / f"r{n}.jsonl"
        res = count_regions(net, dom, method=method, max_regions=n, regions_out=out)
        assert (res.regions, res.complete, res.stopped) == (min(n, total), complete, None if complete else "max_regions")
        written = [r["margin"] for r in read_regions(out)]
        assert len(written) == res.regions and res.min_margin == min(written)  # of the reported regions only


def test_time_limit_gives_lower_bound():
    net = random_mlp([3, 12, 12, 1], seed=0, last_relu=False)
    res = count_regions(net, Box(-1, 1, 3), method="milp", time_limit=0.5)
    assert not res.complete and res.stopped == "time_limit"
    assert res.seconds < 5.0 and 0 <= res.regions


def test_network_without_relu_has_one_region():
    net = Network([Dense(np.ones((1, 2)), np.zeros(1), relu=False)], (2,))
    res = count_regions(net, Box(-1, 1, 2), method="milp")
    assert res.regions == 1 and res.complete


def test_bad_options_raise_input_error():
    net = random_mlp([2, 3, 1], seed=0, last_relu=False)
    with pytest.raises(InputError):
        count_regions(net, Box(-1, 1, 2), method="milp", tol=0.0)
    with pytest.raises(InputError):
        count_regions(net, Unbounded(2), method="milp", radius=-1.0)
    with pytest.raises(InputError):
        count_regions(net, Box(-1, 1, 2), method="cplex")


def test_gurobi_counts_or_is_unavailable():
    net = random_mlp([2, 5, 4, 1], seed=0, last_relu=False)
    if not HAVE_GUROBI:
        with pytest.raises(SolverUnavailable, match="gurobipy"):
            count_regions(net, Box(-1, 1, 2), method="gurobi")
        return
    try:
        res = count_regions(net, Box(-1, 1, 2), method="gurobi")
    except SolverUnavailable as e:  # no licence at all on this machine
        pytest.skip(str(e))
    assert res.complete and res.regions == count_regions(net, Box(-1, 1, 2)).regions
