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
