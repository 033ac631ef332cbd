"""Run a bench spec: every run in a killable process, results appended as they finish, resume.

Guarantees of :func:`run_bench`:

* every run executes in a fresh process (its own process group) that is killed, with everything
  it started, once the run exceeds its time limit plus a grace (:attr:`Run.hard_limit`); such a run
  is recorded as ``timeout``.  A task that stops itself at the limit is ``timeout`` too, with its
  partial result;
* each finished run is appended to the JSON lines and CSV at once (flushed), so killing the batch
  loses only the runs in flight;
* a rerun skips every run whose latest record is final: ``ok``, ``error`` (unless
  ``retry_errors``), ``timeout`` under a time limit at least the current one, and ``unavailable``
  while its task kind still is;
* ``jobs`` runs execute in parallel; records are the same as with one job (order aside);
* SIGINT or SIGTERM kills the runs in flight and returns the summary of what finished
  (``complete: false``, ``stopped: "interrupted"``); a rerun resumes.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

from .. import __version__
from ..interrupts import stop_signals
from ..jsonout import jsonable
from ..outputs import check_distinct
from ..progress import Progress
from ..validation import int_at_least
from .spec import BenchSpec, Run, domain_payload, resolve_paths
from .store import ResultStore
from .worker import SCRATCH_PREFIX

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # so the worker imports this very lrmilp


class _Live:
    """Process groups in flight, so an interrupted batch can kill them all."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: set[subprocess.Popen] = set()
        self.stopping = False

    def add(self, p: subprocess.Popen) -> None:
        with self.lock:
            self.procs.add(p)
            if self.stopping:
                _kill_group(p)

    def discard(self, p: subprocess.Popen) -> None:
        with self.lock:
            self.procs.discard(p)

    def kill_all(self) -> None:
        with self.lock:
            self.stopping = True
            for p in self.procs:
                _kill_group(p)


def _kill_group(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def is_final(rec: dict | None, run: Run, *, unavailable: str | None, retry_errors: bool) -> bool:
    """Does the earlier record ``rec`` settle ``run``, so that a rerun skips it?"""
    if rec is None:
        return False
    status = rec.get("status")
    if status == "ok":
        return True
    if status == "error":
        return not retry_errors
    if status == "timeout":
        return float(rec.get("time_limit") or 0) >= run.time_limit
    return status == "unavailable" and unavailable is not None


def execute_run(run: Run, base: Path, live: _Live) -> dict:
    """Run one task in a worker process; the outcome (status, result, error) plus wall seconds."""
    tmp = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    payload = {"model": str(run.model_path), "domain": domain_payload(run.domain_spec, base),
               "kind": asdict(run.kind), "options": resolve_paths(run, base), "time_limit": run.time_limit,
               "sys_path": [str(base)], "started": time.time()}
    (tmp / "run.json").write_text(json.dumps(payload))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")])))
    t0 = time.perf_counter()
    try:
        with open(tmp / "log.txt", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "lrmilp.bench.worker", str(tmp / "run.json"),
                                     str(tmp / "out.json")], stdin=subprocess.PIPE, stdout=log, stderr=log,
                                    env=env, start_new_session=True)
            live.add(proc)
            try:
                proc.wait(timeout=run.hard_limit)
                killed = False
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.wait()
                killed = True
            finally:
                live.discard(proc)
                proc.stdin.close()
        seconds = time.perf_counter() - t0
        if killed:
            return {"status": "timeout", "result": None, "seconds": seconds,
                    "error": f"killed after {run.hard_limit:g}s (time limit {run.time_limit:g}s)"}
        out = tmp / "out.json"
        if out.exists():
            return {**json.loads(out.read_text()), "seconds": seconds}
        tail = (tmp / "log.txt").read_text(errors="replace").strip().splitlines()[-1:] or [""]
        return {"status": "error", "result": None, "seconds": seconds,
                "error": f"worker exited with status {proc.returncode}: {tail[0]}"}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def make_record(run: Run, outcome: dict) -> dict:
    result = outcome.get("result")
    value = result.get(run.kind.value) if result and run.kind.value else None
    complete = result.get("complete") if result else None
    return jsonable({"run_id": run.run_id, "model": run.model, "model_sha256": run.model_sha256,
                     "domain": run.domain, "domain_spec": run.domain_spec, "task": run.task, "options": run.options,
                     "status": outcome["status"], "value": value if isinstance(value, (int, float, str)) else None,
                     "complete": complete, "seconds": round(outcome.get("seconds", 0.0), 3),
                     "time_limit": run.time_limit, "error": outcome.get("error"), "result": result,
                     "finished": datetime.datetime.now().isoformat(timespec="seconds"), "lrmilp": __version__})


def run_bench(spec: BenchSpec, *, jobs: int | None = None, retry_errors: bool = False, log=None,
              progress: bool | None = None) -> dict:
    """Execute ``spec`` (see the module doc); the summary: counts and one entry per run, in spec order.

    An interrupted batch (SIGINT, SIGTERM) returns the summary of what finished, with ``stopped:
    "interrupted"``; a rerun resumes.

    Parameters
    ----------
    spec : BenchSpec
        The parsed spec (:func:`lrmilp.bench.load_spec`).
    jobs : int, optional
        Runs at a time (default: the spec's ``jobs``).
    retry_errors : bool
        Run again the runs recorded as errors.
    log : callable, optional
        ``log(line)`` receives a line per finished run (default: stderr, above the progress line).
    progress : bool or None
        A progress line on stderr (None: when stderr is a terminal).

    Returns
    -------
    dict
        ``runs``, ``executed``, ``skipped``, ``statuses``, ``results`` (one entry per run), ``stopped``,
        ``complete`` and the result files.

    Raises
    ------
    InputError
        A bad ``jobs``, or result files that name an input.

    Examples
    --------
    >>> from lrmilp.bench import load_spec
    >>> summary = run_bench(load_spec("bench.toml"), jobs=2)  # doctest: +SKIP
    """
    jobs = spec.jobs if jobs is None else int_at_least("jobs", jobs, 1)
    base = spec.path.resolve().parent
    live = _Live()
    unavailable = {k.name: k.unavailable() for k in {r.kind.name: r.kind for r in spec.runs}.values()}
    executed = 0
    stopped = None
    store = ResultStore(spec.output)
    inputs = {"spec": spec.path, **{f"model {r.model}": r.model_path for r in spec.runs}}
    check_distinct({"results file": store.jsonl, "results CSV": store.csv}, inputs)
    with store:
        todo, done = [], 0
        for run in spec.runs:
            if is_final(store.records.get(run.run_id), run, unavailable=unavailable[run.kind.name],
                        retry_errors=retry_errors):
                done += 1
            else:
                todo.append(run)
        bar = Progress("bench", progress=progress, total=len(todo), unit="runs")
        log = log or bar.write
        log(f"[bench] {len(spec.runs)} runs: {done} already in {store.jsonl}, {len(todo)} to run"
            + (f", {jobs} at a time" if jobs > 1 and todo else ""))
        for run in [r for r in todo if unavailable[r.kind.name]]:
            store.append(make_record(run, {"status": "unavailable", "error": unavailable[run.kind.name]}))
            executed += 1
        todo = [r for r in todo if not unavailable[r.kind.name]]
        pool = ThreadPoolExecutor(max_workers=jobs)
        futures = {}
        try:
            # SIGTERM (timeout, SLURM, Kubernetes) stops the batch as Ctrl-C does: the runs in flight are
            # killed, every finished one is already saved.
            with stop_signals(lambda signum: KeyboardInterrupt()):
                futures = {pool.submit(execute_run, run, base, live): run for run in todo}
                for n, fut in enumerate(as_completed(futures), 1):
                    run = futures[fut]
                    rec = make_record(run, fut.result())
                    store.append(rec)
                    executed += 1
                    log(f"[bench] {n}/{len(todo)} {rec['status']:<7} {run.label()} {_fmt_value(rec)} "
                        f"{rec['seconds']:.1f}s" + (f" ({rec['error']})" if rec["error"] else ""))
                    bar.show(f"{executed:,} saved", n=executed)
        except KeyboardInterrupt:
            live.kill_all()
            for fut in futures:
                fut.cancel()
            stopped = "interrupted"
            log(f"[bench] interrupted: {executed} runs saved in {store.jsonl}; rerun to resume")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        out = summarize(spec, store, executed=executed)
        out["stopped"] = stopped
        out["complete"] = stopped is None
        return out


def dry_run(spec: BenchSpec, *, retry_errors: bool = False) -> dict:
    """The summary :func:`run_bench` would start from, with status ``todo`` for runs it would execute."""
    store = ResultStore(spec.output)
    for rec in store.read():
        store.records[rec["run_id"]] = rec
    unavailable = {r.kind.name: r.kind.unavailable() for r in spec.runs}
    for run in spec.runs:
        if not is_final(store.records.get(run.run_id), run, unavailable=unavailable[run.kind.name],
                        retry_errors=retry_errors):
            store.records.pop(run.run_id, None)
    out = summarize(spec, store, executed=0)
    out["statuses"] = {("todo" if k == "missing" else k): v for k, v in out["statuses"].items()}
    for row in out["results"]:
        row["status"] = "todo" if row["status"] == "missing" else row["status"]
    out["skipped"] = sum(row["status"] != "todo" for row in out["results"])  # recorded before, would be skipped
    return out


def _fmt_value(rec: dict) -> str:
    v = rec.get("value")
    if v is None:
        return "-"
    s = f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else (f"{v:.6g}" if isinstance(v, float) else str(v))
    return (">=" + s) if rec.get("complete") is False else s


def summarize(spec: BenchSpec, store: ResultStore, *, executed: int) -> dict:
    """Counts per status and, per run of the spec, its latest record's headline fields."""
    rows, statuses = [], {}
    for run in spec.runs:
        rec = store.records.get(run.run_id)
        status = rec["status"] if rec else "missing"
        statuses[status] = statuses.get(status, 0) + 1
        rows.append({"run_id": run.run_id, "model": run.model, "domain": run.domain, "task": run.task,
                     "options": run.options, "status": status, "value": rec.get("value") if rec else None,
                     "complete": rec.get("complete") if rec else None,
                     "seconds": rec.get("seconds") if rec else None, "error": rec.get("error") if rec else None})
    return {"spec": str(spec.path), "jsonl": str(store.jsonl), "csv": str(store.csv), "runs": len(spec.runs),
            "executed": executed, "skipped": len(spec.runs) - executed, "statuses": statuses, "results": rows}


def summary_table(summary: dict) -> str:
    """The summary as an aligned text table, one row per run, then the status counts."""
    head = ("model", "domain", "task", "options", "status", "value", "seconds")
    rows = [(Path(r["model"]).stem, r["domain"] or "-", r["task"],
             ",".join(f"{k}={v}" for k, v in r["options"].items()) or "-", r["status"], _fmt_value(r),
             "-" if r["seconds"] is None else f"{r['seconds']:.1f}") for r in summary["results"]]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    right = {5, 6}
    fmt = lambda row: "  ".join(str(x).rjust(w) if i in right else str(x).ljust(w)  # noqa: E731
                                for i, (x, w) in enumerate(zip(row, widths))).rstrip()
    lines = [fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    counts = ", ".join(f"{v} {k}" for k, v in sorted(summary["statuses"].items()))
    lines.append(f"{summary['runs']} runs ({counts}); {summary['executed']} run now, {summary['skipped']} from "
                 f"earlier; results in {summary['jsonl']} and {summary['csv']}")
    return "\n".join(lines)
