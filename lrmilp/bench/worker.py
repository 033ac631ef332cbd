"""One bench run in its own process: ``python -m lrmilp.bench.worker RUN.json OUT.json``.

The parent keeps this process's stdin open; when it closes (the parent died, even by SIGKILL) the
worker removes the run's scratch folder and kills its whole process group, so no run outlives its
batch and nothing of it is left behind.  The outcome is written to
OUT.json (``status``, ``result``, ``error``) by rename, so the parent never reads half a file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

SCRATCH_PREFIX = "lrmilp-bench-"  # the runner's per-run scratch folders (tempfile.mkdtemp prefix)
MIN_TASK_SECONDS = 0.05  # a task whose limit was used up by start-up still gets this much, to stop cleanly


def _watch_parent(scratch: Path) -> None:
    """Block on stdin; EOF means the batch is gone: remove the run's scratch folder (the batch cannot
    any more) and kill the whole process group."""
    # Read a duplicate of the descriptor, not sys.stdin: a thread blocked in sys.stdin's buffered read
    # holds its lock, and a process forked meanwhile (a count's worker pool) would hang closing stdin.
    fd = os.dup(sys.stdin.fileno())
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass
    if scratch.name.startswith(SCRATCH_PREFIX):  # never anything but the folder the runner made
        shutil.rmtree(scratch, ignore_errors=True)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def make_domain(net, spec: dict):
    from ..domains import Box, Unbounded, from_options
    from ..errors import InputError
    kind = spec["kind"]
    if kind == "model":
        if net.lo is None or net.hi is None:
            raise InputError("the model file has no lo/hi box (domain kind 'model')")
        return Box(net.lo, net.hi, net.input_dim)
    if kind == "box":
        return Box(spec["lo"], spec["hi"], net.input_dim)
    if kind == "unbounded":
        return Unbounded(net.input_dim)
    return from_options(net.input_dim, box_file=spec["file"])


def execute(payload: dict) -> dict:
    """Run the payload's task; the outcome dict (never raises for a failing task)."""
    from ..jsonout import jsonable
    from ..errors import InputError, SolverUnavailable
    from ..loaders import load_network
    from .tasks import TaskKind, call_task
    sys.path[:0] = payload.get("sys_path", [])
    kind = TaskKind(**payload["kind"])
    t0 = time.perf_counter()
    try:
        net = load_network(payload["model"])
        domain = make_domain(net, payload["domain"]) if kind.uses_domain else None
        # The limit counts from the spawn: start-up and loading use part of it.
        left = max(payload["time_limit"] - (time.time() - payload.get("started", time.time())), MIN_TASK_SECONDS)
        result = jsonable(call_task(kind, net, domain, payload["options"], time_limit=left))
    except ImportError as e:
        return {"status": "unavailable", "result": None, "error": f"{type(e).__name__}: {e}"}
    except SolverUnavailable as e:
        return {"status": "unavailable", "result": None, "error": str(e)}
    except InputError as e:
        return {"status": "error", "result": None, "error": str(e)}
    except Exception as e:  # a bug in a task must be a recorded error, not a lost batch
        traceback.print_exc()
        return {"status": "error", "result": None, "error": f"{type(e).__name__}: {e}"}
    # A task that stopped itself at the time limit reports a partial result (e.g. a lower bound).
    status = "timeout" if result.get("stopped") == "time_limit" else "ok"
    return {"status": status, "result": result, "error": None, "task_seconds": time.perf_counter() - t0}


def main(argv: list[str]) -> None:
    threading.Thread(target=_watch_parent, args=(Path(argv[0]).resolve().parent,), daemon=True).start()
    payload = json.loads(Path(argv[0]).read_text())
    out = execute(payload)
    tmp = Path(argv[1] + ".tmp")
    tmp.write_text(json.dumps(out, allow_nan=False))
    tmp.replace(argv[1])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: a solver thread or a worker pool must not hold us


if __name__ == "__main__":
    main(sys.argv[1:])
