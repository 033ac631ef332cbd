"""lrmilp bench: specs run end to end, results append, reruns resume, time limits kill, bad specs exit 2.

Tiny random nets in tmp_path; every run is a real worker process, so time limits are small.
"""

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

from lrmilp import random_mlp, save_npz
from lrmilp.bench import TASKS, TaskKind, load_spec, run_bench
from lrmilp.bench.runner import is_final
from lrmilp.counting import count_regions
from lrmilp.domains import Box
from lrmilp.errors import InputError
from procs import HANG_SECONDS, wait_gone

ROOT = Path(__file__).resolve().parents[1]
SLOW_PLUGIN = '''
import os, time
def run(net, domain, *, seconds: float = 60.0, pidfile: str = ""):
    if pidfile:
        open(pidfile, "w").write(str(os.getpid()))
    time.sleep(seconds)
    return {"slept": seconds}
'''


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "lrmilp", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=env)


def bench_json(spec: Path, *args: str) -> dict:
    r = cli("bench", str(spec), "--json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def bench(spec: Path, *, out: Path | None = None, jobs: int | None = None) -> dict:
    """The batch in this process (its runs still in worker processes): faster than the CLI.  Trusted:
    the specs of these tests name the plugin slow.py beside them."""
    return run_bench(load_spec(spec, output=out, trust=True), jobs=jobs, log=lambda line: None)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for seed in (0, 1):
        net = random_mlp([2, 6, 6], seed=seed)
        net.lo, net.hi = np.full(2, -1.0), np.full(2, 1.0)
        save_npz(net, tmp_path / f"net{seed}.npz")
    (tmp_path / "slow.py").write_text(SLOW_PLUGIN)
    return tmp_path


SPEC = '''
time_limit = 30
models = ["net*.npz"]
[domains.own]
kind = "model"
[domains.wide]
kind = "box"
lo = -3
hi = 3
[[tasks]]
kind = "count"
[[tasks]]
kind = "bounds"
'''


def test_spec_runs_appends_and_resumes(folder):
    spec = folder / "s.toml"
    spec.write_text(SPEC)
    out = bench_json(spec, "--jobs", "2")
    # 2 models x (count on 2 domains + bounds)
    assert out["runs"] == 6 and out["executed"] == 6 and out["statuses"] == {"ok": 6}
    jsonl, csv = folder / "results" / "s.jsonl", folder / "results" / "s.csv"
    recs = records(jsonl)
    assert len(recs) == 6 and len(csv.read_text().splitlines()) == 7
    for rec in recs:
        if rec["task"] == "count":  # oracle: the library on the same net and domain
            net = __import__("lrmilp").load_network(folder / rec["model"])
            lo, hi = (-1.0, 1.0) if rec["domain"] == "own" else (-3.0, 3.0)
            assert rec["value"] == count_regions(net, Box(lo, hi, 2)).regions
            assert rec["complete"] is True
        if rec["task"] == "bounds":
            assert rec["domain"] is None and rec["value"] == rec["result"]["serra2018"]
    # rerun: nothing executes, nothing is appended
    again = bench(spec)
    assert again["executed"] == 0 and again["skipped"] == 6
    assert records(jsonl) == recs
    # a new task in the spec: only its runs execute
    spec.write_text(SPEC + '[[tasks]]\nkind = "sample"\nsamples = 500\nmodels = ["net0.npz"]\n')
    more = bench(spec)
    assert more["runs"] == 8 and more["executed"] == 2
    new = records(jsonl)
    assert new[:6] == recs and len(new) == 8
    assert len({r["run_id"] for r in new}) == 8  # no run recorded twice


def test_unfinished_last_line_is_dropped(folder):
    spec = folder / "s.toml"
    spec.write_text('models = ["net0.npz"]\n[[tasks]]\nkind = "bounds"\n')
    bench(spec)
    jsonl = folder / "results" / "s.jsonl"
    good = jsonl.read_text()
    jsonl.write_text(good + '{"run_id": "abc", "sta')  # a batch killed mid-line
    out = bench(spec)
    assert out["executed"] == 0
    assert jsonl.read_text() == good


def test_time_limit_kills_and_records_timeout(folder):
    spec = folder / "t.toml"
    spec.write_text('time_limit = 0.5\ngrace = 0.5\nmodels = ["net0.npz"]\n[[tasks]]\nkind = "slow:run"\n')
    t0 = time.perf_counter()
    out = bench_json(spec, "--trust")
    assert time.perf_counter() - t0 < 20
    row = out["results"][0]
    assert row["status"] == "timeout" and row["value"] is None and "killed" in row["error"]
    assert bench(spec)["executed"] == 0  # a timeout under the same limit is final


def test_task_stopping_at_its_limit_is_a_timeout_with_a_partial_result(folder):
    save_npz(random_mlp([6, 10, 10, 10], seed=0), folder / "big.npz")  # ~10 s to count
    spec = folder / "g.toml"
    spec.write_text('time_limit = 2\ngrace = 20\nmodels = ["big.npz"]\n[domains.c]\nkind = "box"\nlo = -1\nhi = 1\n'
                    '[[tasks]]\nkind = "count"\n')
    bench(spec)
    rec = records(folder / "results" / "g.jsonl")[0]
    assert rec["status"] == "timeout" and rec["complete"] is False
    assert rec["result"]["stopped"] == "time_limit" and rec["value"] == rec["result"]["regions"] >= 1


def test_resume_rules():
    net = TaskKind("count", "lrmilp.counting:count_regions", "regions")
    from lrmilp.bench.spec import Run
    run = Run("m.npz", Path("m.npz"), "0", "d", {"kind": "model"}, "count", net, {}, time_limit=10.0)
    final = lambda rec, **kw: is_final(rec, run, **{"unavailable": None, "retry_errors": False, **kw})  # noqa: E731
    assert not final(None)
    assert final({"status": "ok"})
    assert final({"status": "error"}) and not final({"status": "error"}, retry_errors=True)
    assert final({"status": "timeout", "time_limit": 10.0}) and not final({"status": "timeout", "time_limit": 5.0})
    assert not final({"status": "unavailable"}) and final({"status": "unavailable"}, unavailable="still missing")


def test_killed_batch_leaves_no_worker_and_resumes(folder):
    spec = folder / "k.toml"
    pidfile = folder / "worker.pid"
    spec.write_text(f'time_limit = 60\nmodels = ["net*.npz"]\n[[tasks]]\nkind = "bounds"\n'
                    f'[[tasks]]\nkind = "slow:run"\nmodels = ["net1.npz"]\npidfile = "{pidfile}"\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "lrmilp", "bench", str(spec), "--trust"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    jsonl = folder / "results" / "k.jsonl"
    deadline = time.monotonic() + HANG_SECONDS  # bounds a hang only
    while not (jsonl.exists() and len(jsonl.read_text().splitlines()) == 2 and pidfile.exists()
               and pidfile.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, "the batch ended or hung early"
        time.sleep(0.1)
    worker = int(pidfile.read_text())
    run_file = Path(Path(f"/proc/{worker}/cmdline").read_bytes().split(b"\0")[3].decode())  # python -m MOD RUN OUT
    assert run_file.name == "run.json" and run_file.parent.is_dir()
    proc.kill()  # SIGKILL: the batch cannot clean up; its worker must notice on its own
    proc.wait()
    if wait_gone([worker]):  # bounds a hang only: the worker sees its stdin close at once
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its killed batch")
    assert not run_file.parent.exists()  # and it removed the run's scratch folder
    done = records(jsonl)
    assert {r["task"] for r in done} == {"bounds"} and len(done) == 2
    spec.write_text(spec.read_text().replace("kind = \"slow:run\"", "kind = \"slow:run\"\nseconds = 0.1"))
    out = bench(spec)
    assert out["executed"] == 1 and out["statuses"] == {"ok": 3}
    assert records(jsonl)[:2] == done


def test_jobs_two_gives_the_same_results_as_one(folder):
    spec = folder / "p.toml"
    spec.write_text('models = ["net*.npz"]\n[[tasks]]\nkind = "count"\n'
                    '[[tasks]]\nkind = "lower-bound"\ntrials = 2\nmodels = ["net1.npz"]\n')

    def untimed(obj):
        if isinstance(obj, dict):
            return {k: untimed(v) for k, v in obj.items() if "second" not in k}
        return [untimed(v) for v in obj] if isinstance(obj, list) else obj

    def essence(out_stem: str, jobs: int) -> dict:
        bench(spec, out=folder / out_stem, jobs=jobs)
        return {r["run_id"]: (r["status"], r["value"], untimed(r["result"]))
                for r in records(folder / f"{out_stem}.jsonl")}

    one, two = essence("one", 1), essence("two", 2)
    assert one == two and len(one) == 3


def test_unavailable_kind_is_recorded_not_fatal(folder, monkeypatch):
    monkeypatch.setitem(TASKS, "ghost", TaskKind("ghost", "lrmilp.counting:count_regions", "regions",
                                                 requires=("lrmilp_no_such_module",)))
    spec = folder / "u.toml"
    spec.write_text('models = ["net0.npz"]\n[[tasks]]\nkind = "ghost"\nanything = 1\n')
    out = run_bench(load_spec(spec), log=lambda line: None)
    assert out["statuses"] == {"unavailable": 1} and "lrmilp_no_such_module" in out["results"][0]["error"]
    assert run_bench(load_spec(spec), log=lambda line: None)["executed"] == 0  # still unavailable: not redone


def test_sweeps_and_filters_expand(folder):
    spec = folder / "w.toml"
    spec.write_text('models = ["net*.npz"]\n[domains.a]\nkind = "model"\n[domains.b]\nkind = "unbounded"\n'
                    '[[tasks]]\nkind = "lower-bound"\nsweep = { xors = [1, 2], seed = [0, 1, 2] }\n'
                    'domains = ["a"]\nmodels = ["net1.*"]\n'
                    '[[tasks]]\nkind = "count"\n[[tasks]]\nkind = "count"\n')  # a repeated task is one run
    runs = load_spec(spec).runs
    lb = [r for r in runs if r.task == "lower-bound"]
    assert len(lb) == 6 and {r.model for r in lb} == {"net1.npz"} and {r.domain for r in lb} == {"a"}
    assert sorted((r.options["xors"], r.options["seed"]) for r in lb) == [(x, s) for x in (1, 2) for s in (0, 1, 2)]
    assert len([r for r in runs if r.task == "count"]) == 4
    assert len({r.run_id for r in runs}) == len(runs)


BAD = {
    "invalid TOML": ("models = [", "invalid toml"),
    "unknown key": ('modles = ["net0.npz"]\n[[tasks]]\nkind = "count"\n', "unknown key 'modles'"),
    "no models": ('models = ["nothing*.npz"]\n[[tasks]]\nkind = "count"\n', "matches no file"),
    "missing model": ('models = ["gone.npz"]\n[[tasks]]\nkind = "count"\n', "no such file"),
    "no tasks": ('models = ["net0.npz"]\n', "tasks"),
    "unknown kind": ('models = ["net0.npz"]\n[[tasks]]\nkind = "cont"\n', "unknown task kind 'cont'"),
    "unknown option": ('models = ["net0.npz"]\n[[tasks]]\nkind = "count"\nmethd = "tree"\n', "no option 'methd'"),
    "option type": ('models = ["net0.npz"]\n[[tasks]]\nkind = "lower-bound"\ntrials = "many"\n', "trials"),
    "bench option": ('models = ["net0.npz"]\n[[tasks]]\nkind = "count"\nprogress = true\n', "progress"),
    "time limit": ('time_limit = -1\nmodels = ["net0.npz"]\n[[tasks]]\nkind = "count"\n', "time_limit"),
    "domain kind": ('models = ["net0.npz"]\n[domains.x]\nkind = "ball"\n[[tasks]]\nkind = "count"\n', "domains.x"),
    "box keys": ('models = ["net0.npz"]\n[domains.x]\nkind = "box"\nlo = 0\n[[tasks]]\nkind = "count"\n', "domains.x"),
    "unknown domain": ('models = ["net0.npz"]\n[[tasks]]\nkind = "count"\ndomains = ["y"]\n', "no domain named 'y'"),
    "sweep clash": ('models = ["net0.npz"]\n[[tasks]]\nkind = "lower-bound"\nseed = 1\nsweep = { seed = [1] }\n',
                    "both fixed and swept"),
    "plugin": ('models = ["net0.npz"]\n[[tasks]]\nkind = "nomod:run"\n', "allow it with trust"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_spec_exits_2_with_one_line(folder, case):
    text, needle = BAD[case]
    spec = folder / "bad.toml"
    spec.write_text(text)
    with pytest.raises(InputError, match="(?i)" + needle.replace("(", r"\(").replace("[", r"\[")):
        load_spec(spec)
    assert not (folder / "results").exists()


def test_trusted_plugin_that_does_not_import(folder):
    spec = folder / "bad.toml"
    spec.write_text('models = ["net0.npz"]\n[[tasks]]\nkind = "nomod:run"\n')
    with pytest.raises(InputError, match="does not import"):
        load_spec(spec, trust=True)


def test_bad_spec_on_the_command_line(folder):
    spec = folder / "bad.toml"
    spec.write_text(BAD["unknown option"][0])
    r = cli("bench", str(spec), "--json")
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "methd" in lines[0] and "bad.toml" in lines[0]
    assert not (folder / "results").exists()
    r = cli("bench", str(folder / "missing.toml"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_dry_run_lists_todo(folder):
    spec = folder / "d.toml"
    spec.write_text('models = ["net*.npz"]\n[[tasks]]\nkind = "bounds"\n')
    out = bench_json(spec, "--dry-run")
    assert out["statuses"] == {"todo": 2} and not (folder / "results" / "d.jsonl").exists()


def test_random_lines_against_dense_sampling(monkeypatch):
    pytest.importorskip("lrmilp.geometry.lines")
    from lrmilp.bench.adapters import random_lines
    net = random_mlp([2, 5, 5], seed=3)
    dom = Box(-1, 1, 2)
    out = random_lines(net, dom, lines=4, seed=7)
    rng = np.random.default_rng(7)
    P = dom.sample(8, rng)  # the same draw as the adapter's
    t = np.linspace(0, 1, 200001)[:, None]
    for k in range(4):
        pats = net.patterns(P[k] + t * (P[4 + k] - P[k]))
        pieces = 1 + int(np.any(pats[1:] != pats[:-1], axis=1).sum())
        assert out["regions"][k] == pieces
    assert out["mean_regions"] == pytest.approx(np.mean(out["regions"]))
    assert out["neurons"] == 10 and out["mean_regions_per_neuron"] == pytest.approx(out["mean_regions"] / 10)


def test_slice_faces_is_region_faces_on_the_slice_through_the_points(tmp_path):
    pytest.importorskip("lrmilp.geometry.faces")
    from lrmilp.bench.adapters import slice_faces
    from lrmilp.domains import plane
    from lrmilp.geometry.faces import region_faces
    net = random_mlp([5, 6, 6], seed=4)
    X = np.random.default_rng(0).uniform(-1, 1, (6, 5))
    np.save(tmp_path / "pts.npy", X)
    out = slice_faces(net, points=str(tmp_path / "pts.npy"), rows=[3, 1, 4], lo=-1.0, hi=2.0)
    ref = region_faces(net, plane(X[3], X[1], X[4], lo=-1.0, hi=2.0)).to_dict()
    assert out["slice_dim"] == 2 and out["rows"] == [3, 1, 4]
    assert out["regions"] == count_regions(net, plane(X[3], X[1], X[4], lo=-1.0, hi=2.0)).regions == ref["regions"]
    assert out["histogram"] == ref["histogram"] and out["neuron_histogram"] == ref["neuron_histogram"]
    out3 = slice_faces(net, points=str(tmp_path / "pts.npy"), rows=[0, 1, 2, 5])
    assert out3["slice_dim"] == 3 and out3["regions"] >= 1
    with pytest.raises(InputError):
        slice_faces(net, points=str(tmp_path / "pts.npy"), rows=[0, 0])
    assert TASKS["slice-faces"].unavailable() is None


def test_a_count_on_workers_inside_a_run_finishes(tmp_path):
    """A count task with jobs = 2 forks a worker pool inside the run's process, where a thread sits in
    a read of stdin (the parent-death watch): the pool must still start.  A buffered read of sys.stdin
    held its lock, and the forked workers hung closing stdin; the run then hit its time limit."""
    net = random_mlp([4, 7, 6], seed=2)
    net.lo, net.hi = np.full(4, -1.0), np.full(4, 1.0)
    save_npz(net, tmp_path / "n.npz")
    spec = tmp_path / "w.toml"
    spec.write_text('time_limit = 60\nmodels = ["n.npz"]\n[[tasks]]\nkind = "count"\njobs = 2\ntask_budget = 0.001\n')
    bench(spec, out=tmp_path / "w")
    (run,) = records(tmp_path / "w.jsonl")
    assert run["status"] == "ok", run
    assert run["value"] == count_regions(net, Box(-1, 1, 4), jobs=1).regions and run["result"]["tasks"] > 1
