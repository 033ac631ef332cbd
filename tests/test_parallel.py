"""Parallel and resumable counts equal serial ones: local processes, Dask, checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lrmilp import load_network, random_mlp, save_npz
from lrmilp.counting import count_regions
from lrmilp.domains import Box, from_options
from lrmilp.regions import read_regions
from lrmilp.network import pack_pattern
from procs import HANG_SECONDS

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "cases"

NETS = [([3, 8, 8, 6], 1), ([5, 7, 7, 7], 1), ([8, 6, 6], 2), ([4, 6, 5, 5], 3)]


def _patterns(path):
    return {pack_pattern(r["pattern"]) for r in read_regions(path)}


@pytest.mark.parametrize("widths,seed", NETS)
def test_jobs_and_splitting_give_the_serial_count_and_regions(widths, seed, tmp_path):
    net = random_mlp(widths, seed=seed)
    dom = Box(-1, 1, widths[0])
    serial = count_regions(net, dom, regions_out=tmp_path / "a.jsonl")
    # A tiny task budget forces splits at every layer boundary.
    par = count_regions(net, dom, jobs=2, task_budget=1e-3, regions_out=tmp_path / "b.jsonl")
    assert par.complete and par.regions == serial.regions
    assert par.extra["tasks"] > 1
    assert _patterns(tmp_path / "a.jsonl") == _patterns(tmp_path / "b.jsonl")


@pytest.mark.skipif(not SHARED.exists(), reason="shared cases not present")
def test_shared_cases_with_two_jobs():
    expected = json.loads((SHARED / "expected.json").read_text())
    for name, case in expected.items():
        net = load_network(SHARED / f"{name}.npz")
        args = case["domain"]
        box = (float(args[1]), float(args[2])) if args[:1] == ["--box"] else None
        dom = from_options(net.input_dim, box=box, box_file=None, unbounded="--unbounded" in args,
                           model_lo=net.lo, model_hi=net.hi)
        res = count_regions(net, dom, jobs=2, task_budget=1e-3)
        assert res.complete and res.regions == case["regions"], name


def test_checkpoint_resume_after_a_stop(tmp_path):
    net = random_mlp([5, 7, 7, 7], seed=1)
    dom = Box(-1, 1, 5)
    exact = count_regions(net, dom).regions
    ck = tmp_path / "ck.jsonl"
    first = count_regions(net, dom, checkpoint=ck, task_budget=1e-3, max_regions=exact // 3)
    assert not first.complete
    lines = ck.read_text().splitlines()
    assert len(lines) > 2
    second = count_regions(net, dom, checkpoint=ck, task_budget=1e-3, jobs=2)
    assert second.complete and second.regions == exact
    assert second.extra["resumed_tasks"] > 0
    third = count_regions(net, dom, checkpoint=ck)  # everything journalled: nothing runs again
    assert third.regions == exact and third.extra["tasks"] == 0


def test_checkpoint_survives_a_kill(tmp_path):
    net = random_mlp([6, 8, 8, 8], seed=0)
    path = tmp_path / "n.npz"
    save_npz(net, path)
    exact = count_regions(net, Box(-1, 1, 6)).regions
    ck = tmp_path / "ck.jsonl"
    cmd = [sys.executable, "-m", "lrmilp", "count", str(path), "--box", "-1", "1", "--checkpoint", str(ck),
           "--jobs", "1", "--task-budget", "0.001", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = time.monotonic() + HANG_SECONDS  # bounds a hang only: the kill waits for journalled tasks
    while not (ck.exists() and len(ck.read_text().splitlines()) > 20):
        assert proc.poll() is None and time.monotonic() < end, "the count ended or hung before journalling"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    journalled = len(ck.read_text().splitlines()) - 1
    assert journalled > 0
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["complete"] and res["regions"] == exact
    assert res["resumed_tasks"] >= min(journalled, 1)


def test_checkpoint_of_another_problem_is_refused(tmp_path):
    ck = tmp_path / "ck.jsonl"
    count_regions(random_mlp([3, 5, 5], seed=0), Box(-1, 1, 3), checkpoint=ck)
    path = tmp_path / "other.npz"
    save_npz(random_mlp([3, 5, 5], seed=1), path)
    p = subprocess.run([sys.executable, "-m", "lrmilp", "count", str(path), "--box", "-1", "1", "--checkpoint", str(ck)],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "another network" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_dask_local_cluster_gives_the_serial_count():
    pytest.importorskip("distributed")
    net = random_mlp([4, 6, 5, 5], seed=3)
    dom = Box(-1, 1, 4)
    serial = count_regions(net, dom).regions
    res = count_regions(net, dom, jobs=2, dask="local", task_budget=1e-3)
    assert res.complete and res.regions == serial and res.extra["engine"] == "dask"


def test_failed_start_writes_nothing(tmp_path):
    path = tmp_path / "n.npz"
    save_npz(random_mlp([3, 5, 5], seed=0), path)
    regions = tmp_path / "r.jsonl"
    p = subprocess.run([sys.executable, "-m", "lrmilp", "count", str(path), "--box", "-1", "1", "--jobs", "2",
                        "--checkpoint", str(tmp_path / "no" / "ck.jsonl"), "--regions-out", str(regions)],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "--checkpoint: cannot write" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [path]
