"""The cell geometries behind one interface: each counts the same regions as brute force, serially and
as parallel tasks; each refuses a domain it cannot handle with one line; a name is checked once."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lrmilp import InputError, random_mlp, save_npz
from lrmilp.cells import GEOMETRIES, NAMES, choose_geometry, geometry_class
from lrmilp.counting import count_regions
from lrmilp.domains import Box, Polytope, Unbounded
from lrmilp.regions import read_regions
from lrmilp.search import TreeSearch

from oracles import box_rows, brute_force_count


def _layers(net):
    return [(np.asarray(layer.matrix), layer.bias, layer.relu) for layer in net.layers]


def _patterns(net, dom, geometry):
    seen = []
    TreeSearch(net, dom, geometry=geometry, on_region=lambda p, u, r: seen.append(p.tobytes())).run()
    return seen


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_every_geometry_finds_the_brute_force_regions(geometry):
    n0 = 2 if geometry == "polygon" else 3
    net = random_mlp([n0, 6, 5, 1], seed=5, last_relu=False)
    dom = Box(-1, 1, n0)
    A, b = box_rows(dom.lo, dom.hi)
    truth = brute_force_count(_layers(net), origin=np.zeros(n0), basis=np.eye(n0), A_dom=A, b_dom=b)
    seen = _patterns(net, dom, geometry)
    assert len(seen) == len(set(seen)) and {tuple(np.frombuffer(p, dtype=bool)) for p in seen} == truth


@pytest.mark.parametrize("geometry", [name for name, cls in sorted(GEOMETRIES.items()) if cls.prefixes])
def test_parallel_tasks_work_with_every_geometry_that_makes_them(geometry, tmp_path):
    net = random_mlp([4, 7, 6, 5], seed=2)
    dom = Box(-1, 1, 4)
    serial = count_regions(net, dom, geometry=geometry)
    out = tmp_path / "r.jsonl"
    par = count_regions(net, dom, geometry=geometry, jobs=2, task_budget=1e-3, regions_out=out)
    pats = [np.asarray(r["pattern"], dtype=bool).tobytes() for r in read_regions(out)]
    assert par.complete and par.regions == serial.regions == len(set(pats)) == len(pats)
    assert par.extra["geometry"] == serial.extra["geometry"] == geometry and par.extra["tasks"] > 1


def test_serial_and_parallel_results_have_the_same_keys():
    net, dom = random_mlp([4, 6, 6], seed=0), Box(-1, 1, 4)
    serial, par = count_regions(net, dom), count_regions(net, dom, jobs=2, task_budget=1e-3)
    assert set(serial.to_dict()) == set(par.to_dict())
    assert serial.extra["engine"] == "serial" and par.extra["engine"] == "local"
    assert serial.regions == par.regions


def test_an_unknown_geometry_names_the_parameter_and_the_value():
    net = random_mlp([3, 4], seed=0)
    with pytest.raises(InputError, match="geometry 'foo'") as e:
        count_regions(net, Box(-1, 1, 3), geometry="foo")
    assert e.value.param == ("geometry",) and "foo" in str(e.value)
    with pytest.raises(InputError, match="geometry"):
        TreeSearch(net, Box(-1, 1, 3), geometry="foo")


@pytest.mark.parametrize("geometry,domain", [
    ("polygon", Box(-1, 1, 3)),
    ("polygon", Polytope(np.ones((1, 2)), np.ones(1), 2, lo=-1, hi=1)),
    ("vertex", Unbounded(3)),
    ("batch", Unbounded(3)),
    ("dual", Unbounded(3)),
    ("dual", Polytope(np.ones((1, 3)), np.ones(1), 3, lo=-1, hi=1)),
])
def test_a_geometry_refuses_a_domain_it_cannot_handle_in_one_line(geometry, domain):
    net = random_mlp([domain.dim, 4], seed=0)
    with pytest.raises(InputError) as e:
        count_regions(net, domain, geometry=geometry)
    message = str(e.value)
    assert e.value.param == ("geometry",) and f"'{geometry}'" in message and "\n" not in message


def test_auto_is_the_choice_by_dimension_and_xor_searches_fall_back_to_lp():
    poly = Polytope(np.ones((1, 9)), [1.0], 9, lo=-1.0, hi=1.0)
    assert [choose_geometry(d) for d in (Box(-1, 1, 2), Box(-1, 1, 5), Box(-1, 1, 9), poly, Unbounded(9))] == [
        "polygon", "vertex", "dual", "batch", "lp"]
    assert set(NAMES) == {"auto", *GEOMETRIES}
    assert geometry_class("batch", Box(-1, 1, 9), parity=True).name == "lp"
    assert geometry_class("dual", Box(-1, 1, 9), parity=True).name == "dual"  # XORs inside the compiled search
    assert geometry_class("vertex", Box(-1, 1, 4), parity=True).name == "vertex"


def test_geometry_is_a_tree_option(tmp_path):
    path = tmp_path / "n.npz"
    save_npz(random_mlp([3, 5, 4], seed=0), path)
    run = lambda *a: subprocess.run([sys.executable, "-m", "lrmilp", "count", str(path), "--box", "-1", "1",  # noqa: E731
                                     "--json", *a], capture_output=True, text=True, timeout=300)
    good = run("--geometry", "lp", "--jobs", "1")
    assert good.returncode == 0 and '"geometry": "lp"' in good.stdout
    for args, needles in [(("--geometry", "foo"), ("--geometry", "foo")),
                          (("--geometry", "polygon"), ("--geometry", "polygon")),
                          (("--geometry", "lp", "--method", "milp"), ("--geometry", "--method"))]:
        bad = run(*args)
        assert bad.returncode == 2 and bad.stdout == "" and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert all(n in bad.stderr for n in needles), bad.stderr


def test_auto_does_not_compile_under_a_short_time_limit(monkeypatch, tmp_path):
    """On a machine where the compiled kernels are not built yet, a time-limited search runs ``batch``
    instead of compiling (about two minutes) past its limit; without a limit, or once built, ``dual``."""
    import os

    from lrmilp.cells import COLD_COMPILE_SECONDS, dual
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}  # an empty cache: a new machine, for numba
    probe = ("from lrmilp.cells import choose_geometry; from lrmilp.cells.dualsplit import ready; "
             "from lrmilp.domains import Box; b = Box(-1, 1, 8); "
             "print(ready(), choose_geometry(b, time_limit=10), choose_geometry(b))")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["False", "batch", "dual"], out.stderr
    net, box = random_mlp([8, 6, 6], seed=0), Box(-1, 1, 8)
    monkeypatch.setattr(dual.DualCells, "ready", staticmethod(lambda: False))
    cold = count_regions(net, box, time_limit=60)
    assert cold.extra["geometry"] == "batch" and cold.complete
    assert count_regions(net, box, time_limit=2 * COLD_COMPILE_SECONDS).extra["geometry"] == "dual"
    warm = count_regions(net, box)
    assert warm.extra["geometry"] == "dual" and warm.regions == cold.regions
