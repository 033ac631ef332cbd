"""Limits and stop reports (issue 17): --max-regions under parallel runs, --time-limit bounding whole
commands (faces, distance, sample, tighten --method milp), faces in 2-D from exact polygons, and Ctrl-C
of lower-bound.

Nothing here depends on machine speed: time limits are either tiny (the command must stop at once and
say so) or generous, and the signal test waits for a progress line before it signals.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lrmilp import random_mlp, save_npz
from lrmilp.counting import count_regions
from lrmilp.domains import Box
from lrmilp.regions import read_regions
from procs import HANG_SECONDS, Child

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "random-4-12-12-s0.npz"  # 4 inputs, 24 neurons, box [-1, 1]^4, 4229 regions
MODEL_REGIONS = 4229


def cli_json(*args) -> dict:
    r = subprocess.run([sys.executable, "-m", "lrmilp", *map(str, args), "--json"], capture_output=True, text=True,
                       timeout=HANG_SECONDS, cwd=ROOT)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    return json.loads(r.stdout)


# --- max_regions ---------------------------------------------------------------------------------

def test_max_regions_cli_default_jobs_reports_exactly_n_and_a_finished_count_is_complete():
    res = cli_json("count", MODEL, "--max-regions", 50)
    assert res["regions"] == 50 and res["complete"] is False and res["stopped"] == "max_regions"
    res = cli_json("count", MODEL, "--max-regions", 10000)
    assert res["regions"] == MODEL_REGIONS and res["complete"] is True and res["stopped"] is None


@pytest.mark.parametrize("jobs", [1, 2])
def test_max_regions_at_the_exact_total_is_complete_and_one_less_is_not(tmp_path, jobs):
    net, dom = random_mlp([3, 8, 8], seed=2), Box(-1, 1, 3)
    total = count_regions(net, dom).regions
    for n, complete in ((total, True), (total + 1, True), (total - 1, False), (7, False)):
        out = tmp_path / f"r{n}.jsonl"
        # a tiny task budget cuts the count into many tasks, whose results overshoot without the cap
        res = count_regions(net, dom, jobs=jobs, max_regions=n, regions_out=out, task_budget=0.001)
        assert res.regions == min(n, total) and res.complete is complete, (n, res.regions, res.stopped)
        assert res.stopped == (None if complete else "max_regions")
        assert sum(1 for _ in read_regions(out)) == res.regions


# --- faces: exact polygons in 2-D, and a time limit over the whole command --------------------------

@pytest.mark.parametrize("widths,seed", [([2, 5], 0), ([2, 8, 8], 1), ([2, 10, 10, 10], 2), ([2, 6, 6, 6], 3)])
def test_faces_from_polygons_equal_the_lp_method_in_2d(widths, seed):
    from lrmilp.geometry.faces import region_faces
    net, dom = random_mlp(widths, seed=seed), Box(-1, 1, 2)
    poly, lp = region_faces(net, dom, method="polygon"), region_faces(net, dom, method="lp")
    assert poly.extra["facet_method"] == "polygon" and poly.lps == 0 and lp.lps > 0
    assert np.array_equal(poly.neuron_facets, lp.neuron_facets) and np.array_equal(poly.domain_facets, lp.domain_facets)
    assert region_faces(net, dom).extra["facet_method"] == "polygon"  # auto picks polygons in 2-D


def test_faces_from_polygons_on_a_plane_through_a_higher_dimensional_net():
    from lrmilp.domains import plane
    from lrmilp.geometry.faces import region_faces
    net = random_mlp([4, 8, 8], seed=4)
    dom = plane(np.zeros(4), np.eye(4)[0], np.eye(4)[1], -1.0, 1.0)
    poly, lp = region_faces(net, dom, method="polygon"), region_faces(net, dom, method="lp")
    assert poly.lps == 0 and len(poly.facets) > 10
    assert np.array_equal(poly.neuron_facets, lp.neuron_facets) and np.array_equal(poly.domain_facets, lp.domain_facets)


def test_polygon_method_is_refused_outside_the_plane():
    from lrmilp.errors import InputError
    from lrmilp.geometry.faces import region_faces
    with pytest.raises(InputError, match="method"):
        region_faces(random_mlp([3, 4], seed=0), Box(-1, 1, 3), method="polygon")


def test_faces_time_limit_bounds_the_facet_phase_and_reports_what_it_covered():
    """The whole faces of MODEL takes minutes; its enumeration about a second: a limit of a few seconds
    stops the run in one of its phases, and the result says which regions it covers."""
    res = cli_json("faces", MODEL, "--time-limit", 2)
    assert res["complete"] is False and res["stopped"] == "time_limit" and res["time_limit"] == 2
    assert res["regions"] < MODEL_REGIONS and sum(res["histogram"].values()) == res["regions"]
    assert res["regions"] <= res["regions_found"]
    assert res["seconds"] < 2 + 60  # the limit covers both phases (60: a stalled machine, not the facet LPs)


def test_faces_max_regions_at_the_total_is_complete():
    from lrmilp.geometry.faces import region_faces
    net, dom = random_mlp([3, 5, 5], seed=0), Box(-1, 1, 3)
    total = count_regions(net, dom).regions
    full = region_faces(net, dom, max_regions=total).to_dict()
    assert full["complete"] is True and full["regions"] == total and full["stopped"] is None
    cut = region_faces(net, dom, max_regions=total - 1).to_dict()
    assert cut["complete"] is False and cut["regions"] == total - 1 and cut["stopped"] == "max_regions"


# --- tighten --method milp: a limit on the whole command, and an honest account ------------------------

def _inside(b, X, net) -> bool:
    lo, hi = b.flat()
    Z = np.concatenate([z for k, z in enumerate(net.preactivations(X)) if k in b.relu_layers], axis=1)
    return bool(np.all(Z >= lo - 1e-9) and np.all(Z <= hi + 1e-9))


def test_tighten_milp_total_time_limit_keeps_valid_bounds_and_says_what_it_left():
    from lrmilp.bounds import tighten
    net, dom = random_mlp([4, 10, 10, 10], seed=1), Box(-1, 1, 4)
    X = dom.sample(2000, np.random.default_rng(0))
    lp = tighten(net, dom, method="lp")
    cut = tighten(net, dom, method="milp", total_time_limit=1e-3)  # over before the first MILP ends
    d = cut.to_dict()
    assert d["complete"] is False and d["stopped"] == "time_limit" and d["time_limit"] == 1e-3
    assert d["passes"]["milp"]["skipped"] + d["passes"]["lp"]["skipped"] > 0
    assert _inside(cut, X, net)  # skipped neurons keep cheaper bounds, which are still bounds
    net, dom = random_mlp([3, 8, 8], seed=1), Box(-1, 1, 3)
    lp = tighten(net, dom, method="lp")
    full = tighten(net, dom, method="milp", time_limit=30).to_dict()
    assert full["complete"] is True and full["stopped"] is None
    m = full["passes"]["milp"]
    assert full["milps"] == 2 * m["neurons"] > 0 and m["skipped"] == 0 and 0 <= m["tightened"] <= m["neurons"]
    assert full["lps"] == lp.lps  # LPs and MILPs are counted apart
    w = full["mean_width"]
    assert w["milp"] <= w["lp"] <= w["interval"]


def test_tighten_cli_milp_has_a_default_total_limit_and_says_what_it_solved():
    r = subprocess.run([sys.executable, "-m", "lrmilp", "tighten", "--help"], capture_output=True, text=True,
                       timeout=HANG_SECONDS, cwd=ROOT)
    assert "default: 60 with --method milp" in " ".join(r.stdout.split())
    res = cli_json("tighten", MODEL, "--method", "milp")
    assert res["time_limit"] == 60 and res["milp_time_limit"] == 10
    assert res["milps"] == 2 * res["passes"]["milp"]["neurons"] and res["lps"] == 2 * res["passes"]["lp"]["neurons"]
    assert res["complete"] is True and set(res["mean_width"]) == {"interval", "lp", "milp"}


# --- Ctrl-C of lower-bound -------------------------------------------------------------------------

@pytest.mark.parametrize("as_json", [True, False])
def test_ctrl_c_of_lower_bound_reports_interrupted(tmp_path, as_json):
    """SIGINT (Ctrl-C) once the progress shows a level: the partial result says "interrupted", never a
    failed trial."""
    net = random_mlp([5, 16, 16, 16], seed=0)
    net.lo, net.hi = np.full(5, -1.0), np.full(5, 1.0)
    save_npz(net, tmp_path / "lb.npz")
    child = Child("lower-bound", str(tmp_path / "lb.npz"), "--trials", "2000", "--progress",
                  *(["--json"] if as_json else []))
    child.wait_for_stderr(b"level ")  # a level's trials are running, whatever the machine's load
    child.proc.send_signal(signal.SIGINT)
    code, out, err = child.finish()
    assert code == 0 and "Traceback" not in err, err
    if as_json:
        res = json.loads(out)
        assert res["stopped"] == "interrupted" and res["complete"] is False
    else:
        assert "stopped: interrupted" in out and "failed_trial" not in out


# --- sample and distance: --time-limit ---------------------------------------------------------------

def test_sample_time_limit_stops_with_the_samples_drawn():
    from lrmilp.sampling import sample_patterns
    net, dom = random_mlp([4, 12, 12], seed=0), Box(-1, 1, 4)
    res = sample_patterns(net, dom, samples=10**9, batch=1000, time_limit=0.2).to_dict()
    assert res["complete"] is False and res["stopped"] == "time_limit"
    assert 0 < res["samples"] < 10**9 and res["distinct_patterns"] > 0
    assert sample_patterns(net, dom, samples=1000, time_limit=600).to_dict()["complete"] is True


def test_distance_time_limit_reports_the_first_points():
    from lrmilp.geometry.distance import boundary_distance
    net, dom = random_mlp([4, 12, 12], seed=0), Box(-1, 1, 4)
    X = dom.sample(200_000, np.random.default_rng(0))
    cut = boundary_distance(net, X, domain=dom, chunk=64, time_limit=0.05)
    d = cut.to_dict(per_point=True)
    assert d["complete"] is False and d["stopped"] == "time_limit" and d["points_given"] == len(X)
    assert d["points"] < len(X) and len(d["distances"]) == d["points"]
    if d["points"]:  # (a stalled machine may pass the limit before the first chunk)
        full = boundary_distance(net, X[:d["points"]], domain=dom)
        assert np.array_equal(full.distances, cut.distances)  # the points it covers, exactly
    res = cli_json("distance", MODEL, "--samples", 100, "--time-limit", 600, "--summary-only")
    assert res["complete"] is True and res["points"] == 100
