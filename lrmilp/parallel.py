"""Parallel one-tree enumeration: subtree tasks on local processes or a Dask cluster, with checkpoints.

**Tasks.**  A task is a node of the search tree entering layer k, named by the states of the ReLU
neurons before layer k (its *prefix*): pure data, rebuilt on the worker by
:meth:`~lrmilp.enumeration.TreeEnumerator.run_prefix`.  The root task (k = 0) is the whole search.

**Dynamic splitting.**  A task runs for at most ``budget`` seconds as an ordinary depth-first search;
after that, every node it reaches at a layer boundary below its own layer is returned as a new task
instead of explored.  So no task holds a worker much longer than the budget plus one layer's walk,
large subtrees are cut up exactly when they turn out to be large, and no messages pass between
workers.  (Splits happen at layer boundaries only: one layer's own cells are explored by one task.)
The subtrees partition the tree, so the count equals a serial run's.

**Engines.**  ``jobs`` local processes (fork), or Dask distributed: ``dask="local"`` starts a
LocalCluster with ``jobs`` workers, ``dask="tcp://host:port"`` uses a running scheduler (its workers
need lrmilp installed).

**Checkpoints.**  With ``checkpoint``, each finished task is journalled (one JSON line: key, counts,
the tasks it handed out) after a header that fingerprints the network, domain and tol.  A run
restarted with the same file skips every journalled task and ends with the same count as an
uninterrupted run; a file of another problem is refused.

Memory: the parent holds the pending tasks' prefixes and one finished task's regions at a time;
a worker holds its task's search path.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bounds import Bounds, default_jobs  # noqa: F401  (default_jobs: lrmilp.parallel's public API)
from .domains import Domain
from .enumeration import CountResult, RegionWriter, TreeEnumerator, TreeStats, choose_geometry, tree_result
from .errors import InputError
from .network import Network, pack_pattern, unpack_pattern
from .tolerance import Tolerance

DEFAULT_BUDGET = 2.0
"""Seconds a task searches before it hands out the rest of its subtree as new tasks."""


@dataclass(frozen=True)
class _Context:
    """What every task of one count shares (sent to each worker once)."""

    net: Network
    domain: Domain
    bounds: Bounds
    tol: Tolerance
    geometry: str
    collect: bool
    deadline: float | None  # wall clock (time.time())
    token: str


_WORKER: dict = {}


def _enumerator(ctx: _Context) -> tuple[TreeEnumerator, list, list]:
    """This worker's enumerator for ``ctx`` (built once; its warm LP is reused across tasks)."""
    if _WORKER.get("token") != ctx.token:
        found: list = []
        children: list = []
        enum = TreeEnumerator(ctx.net, ctx.domain, tol=ctx.tol, bounds=ctx.bounds, geometry=ctx.geometry,
                              on_region=(lambda p, u, r: found.append((pack_pattern(p), u, r))) if ctx.collect
                              else None,
                              on_split=lambda k, prefix: children.append(_key(k, prefix)))
        _WORKER.update(token=ctx.token, enum=enum, found=found, children=children)
    return _WORKER["enum"], _WORKER["found"], _WORKER["children"]


def _key(k: int, prefix: np.ndarray) -> str:
    return f"{k}:{pack_pattern(prefix).hex()}"


def run_task(ctx: _Context, key: str, budget: float) -> dict:
    """Run one task on this process: its counts, regions (if collected) and the tasks it handed out."""
    enum, found, children = _enumerator(ctx)
    found.clear()
    children.clear()
    k_str, hexbits = key.split(":")
    prefix = unpack_pattern(bytes.fromhex(hexbits), ctx.net.neurons)
    enum.stats = TreeStats()
    enum.stopped = None
    enum.deadline = ctx.deadline
    enum.split_after = time.perf_counter() + budget
    enum.run_prefix(int(k_str), prefix)
    return {"key": key, "stats": enum.stats.to_dict(), "stopped": enum.stopped, "children": list(children),
            "regions": list(found)}


# --- engines -----------------------------------------------------------------------------------------

class _Inline:
    """Tasks run one by one in this process (jobs = 1 with a checkpoint)."""

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.queue: list = []

    def submit(self, key: str, budget: float):
        self.queue.append((key, budget))
        return key

    def wait(self, pending: set) -> tuple[set, dict]:
        key, budget = self.queue.pop()
        return {key}, {key: run_task(self.ctx, key, budget)}

    def drain(self, pending: set, timeout: float) -> list:
        return []  # the interrupted task ran in this process and has already returned

    def close(self) -> None:
        pass


def _ignore_sigint() -> None:
    """Workers ignore Ctrl-C between tasks (an idle worker killed by it would break the pool); during a
    task the enumerator's own handler stops the search and returns the partial count."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Local:
    """``jobs`` forked worker processes."""

    def __init__(self, ctx: _Context, jobs: int) -> None:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context
        self.ctx = ctx
        self.pool = ProcessPoolExecutor(jobs, mp_context=get_context("fork"), initializer=_ignore_sigint)

    def submit(self, key: str, budget: float):
        return self.pool.submit(run_task, self.ctx, key, budget)

    def wait(self, pending: set) -> tuple[set, dict]:
        from concurrent.futures import FIRST_COMPLETED, wait
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        return done, {f: f.result() for f in done}

    def drain(self, pending: set, timeout: float) -> list:
        from concurrent.futures import wait
        return _finished(wait(pending, timeout=timeout).done)

    def close(self) -> None:
        # A stopped count must not wait for running subtrees: terminate the workers (the executor
        # keeps them in a private dict; shutdown() alone would wait for running tasks).
        procs = list((getattr(self.pool, "_processes", None) or {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.terminate()
        for p in procs:
            p.join()


def connect_dask(address: str, *, jobs: int):
    """(client, cluster): a new LocalCluster of ``jobs`` single-threaded workers for "local" (cluster
    to close after the client), else a client of the running scheduler at ``address`` (cluster None)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--dask needs dask[distributed] (pip install 'lrmilp[dask]')") from None
    if address == "local":
        # One thread per worker: each runs its own HiGHS model and numpy loop.
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster), cluster
    try:
        return Client(address, timeout=10), None
    except OSError as e:
        raise InputError(f"cannot reach the Dask scheduler at {address}: {e}") from None


class _Dask:
    """Dask distributed: a LocalCluster of ``jobs`` single-threaded workers, or a running scheduler."""

    def __init__(self, ctx: _Context, jobs: int, address: str) -> None:
        self.client, self.cluster = connect_dask(address, jobs=jobs)
        self.ctx = self.client.scatter(ctx, broadcast=True)

    def submit(self, key: str, budget: float):
        return self.client.submit(run_task, self.ctx, key, budget, key=f"lrmilp-{key}-{time.time_ns()}", pure=False)

    def wait(self, pending: set) -> tuple[set, dict]:
        from distributed import wait
        done = wait(list(pending), return_when="FIRST_COMPLETED").done
        return set(done), {f: f.result() for f in done}

    def drain(self, pending: set, timeout: float) -> list:
        from distributed import wait
        try:
            return _finished(wait(list(pending), timeout=timeout).done)
        except Exception:  # noqa: BLE001  (the wait timed out: nothing more to collect)
            return [f.result() for f in pending if f.status == "finished"]

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _finished(futures) -> list:
    """Results of the futures that ended with one (an interrupted pool may have broken some)."""
    out = []
    for f in futures:
        try:
            out.append(f.result())
        except Exception:  # noqa: BLE001  (a worker killed by the interrupt: its subtree is lost)
            pass
    return out


# --- checkpoints ---------------------------------------------------------------------------------------

def fingerprint(net: Network, domain: Domain, tol: float | Tolerance) -> str:
    """A hash of everything a count depends on: weights, biases, ReLU flags, the domain and tol."""
    h = hashlib.sha256()
    for layer in net.layers:
        M = layer.matrix
        dense = M.toarray() if hasattr(M, "toarray") else np.asarray(M)
        h.update(np.ascontiguousarray(dense, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(layer.bias, dtype=np.float64).tobytes())
        h.update(b"R" if layer.relu else b"L")
    h.update(json.dumps(domain.describe(), sort_keys=True, default=str).encode())
    for arr in (domain.lo, domain.hi, domain.A_ub, domain.b_ub, domain.origin, domain.basis):
        if arr is not None:
            h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    h.update(repr(float(tol.tol if isinstance(tol, Tolerance) else tol)).encode())
    return h.hexdigest()


class Journal:
    """The checkpoint file: a header, then one line per finished task (appended, flushed, fsynced).

    Constructing it reads and checks an existing file; :meth:`open` creates or appends, so a run that
    fails before it starts leaves no file behind.
    """

    def __init__(self, path: str | Path, fp: str) -> None:
        self.path, self.fp = Path(path), fp
        self.fh = None
        self.done: dict[str, dict] = {}
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open() as fh:
                try:
                    header = json.loads(fh.readline())
                except json.JSONDecodeError:
                    raise InputError(f"checkpoint {self.path} is not an lrmilp checkpoint") from None
                if header.get("lrmilp_checkpoint") != 1 or header.get("fingerprint") != fp:
                    raise InputError(f"checkpoint {self.path} belongs to another network, domain or tol")
                for line in fh:
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        break  # a line cut short by a kill: that task runs again
                    self.done[rec["key"]] = rec

    def open(self) -> None:
        fresh = not self.done and not (self.path.exists() and self.path.stat().st_size)
        try:
            self.fh = self.path.open("w" if fresh else "a")
        except OSError as e:
            raise InputError(f"cannot write checkpoint {self.path}: {e.strerror}") from None
        if fresh:
            self._write({"lrmilp_checkpoint": 1, "fingerprint": self.fp})

    def _write(self, obj: dict) -> None:
        self.fh.write(json.dumps(obj) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def record(self, result: dict) -> None:
        self._write({"key": result["key"], "stats": result["stats"], "children": result["children"]})

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


# --- the coordinator -----------------------------------------------------------------------------------

def count_parallel(net: Network, domain: Domain, *, tol: Tolerance, jobs: int, bounds: Bounds,
                   time_limit: float | None = None, max_regions: int | None = None,
                   regions_out: str | Path | None = None, progress: bool = False, t0: float | None = None,
                   dask: str | None = None, checkpoint: str | Path | None = None,
                   budget: float | None = None) -> CountResult:
    """Count with ``jobs`` workers (local processes, or Dask when ``dask`` is "local" or an address).

    Same result as the serial enumerator (module docstring).  Polygon geometry (d <= 2, fast anyway)
    always runs serially: its nodes are not rebuilt from prefixes.  With ``checkpoint``,
    ``regions_out`` receives the regions of the tasks run in this invocation only.
    """
    t0 = time.perf_counter() if t0 is None else t0
    geometry = choose_geometry(domain)
    if geometry == "polygon" or (jobs <= 1 and dask is None and checkpoint is None):
        if checkpoint is not None:
            raise InputError("--checkpoint needs an input dimension of at least 3 (2-D counts run serially)")
        from .counting import count_tree
        return count_tree(net, domain, tol=tol, jobs=1, time_limit=time_limit, max_regions=max_regions,
                          regions_out=regions_out, progress=progress)
    budget = DEFAULT_BUDGET if budget is None else float(budget)
    if not budget > 0:
        raise InputError("--task-budget must be positive")
    deadline = None if time_limit is None else time.time() + time_limit - (time.perf_counter() - t0)
    fp = fingerprint(net, domain, tol)
    ctx = _Context(net, domain, bounds, tol, geometry, regions_out is not None, deadline, fp[:16])
    journal = Journal(checkpoint, fp) if checkpoint is not None else None
    writer = None
    totals = TreeStats()
    resumed = 0
    to_run: list[str] = []
    # Walk the journal from the root: finished tasks add their counts, their unfinished children run.
    stack = [_key(0, np.zeros(net.neurons, dtype=bool))]  # the root task: the whole search
    while stack:
        key = stack.pop()
        rec = journal.done.get(key) if journal else None
        if rec is None:
            to_run.append(key)
        else:
            resumed += 1
            totals.add(TreeStats.from_dict(rec["stats"]))
            stack.extend(rec["children"])
    if dask is not None:
        engine = _Dask(ctx, jobs, dask)
    elif jobs > 1:
        engine = _Local(ctx, jobs)
    else:
        engine = _Inline(ctx)
    pending: set = set()
    # Tasks wait here, not in the engine's queue: an interrupted pool with thousands of queued calls
    # could hang on shutdown, and a short queue keeps the order depth first.
    backlog: list = []
    stopped = None
    tasks_done = 0

    def top_up() -> None:
        while backlog and len(pending) < 4 * max(jobs, 1):
            pending.add(engine.submit(backlog.pop(), budget))

    def absorb(res: dict, resubmit: bool) -> None:
        nonlocal stopped, tasks_done, pending
        tasks_done += 1
        totals.add(TreeStats.from_dict(res["stats"]))
        if res["stopped"] is not None:
            stopped = stopped or res["stopped"]
        if writer:
            for bits, u, r in res["regions"]:
                writer.write(unpack_pattern(bits, net.neurons), u, r)
        if res["stopped"] is None:
            if journal:
                journal.record(res)
            if resubmit:
                backlog.extend(reversed(res["children"]))

    try:
        # Files are created only once the engine runs: a failed start writes nothing.
        if journal:
            journal.open()
        writer = RegionWriter(regions_out, neurons=net.neurons, domain=domain) if regions_out else None
        # A count that takes less than the budget stays one task; a longer one is cut up as it goes.
        backlog.extend(reversed(to_run))
        top_up()
        while pending:
            done, results = engine.wait(pending)
            pending -= done
            for res in results.values():
                absorb(res, resubmit=True)
                if progress:
                    el = time.perf_counter() - t0
                    print(f"\r[lrmilp] tasks {tasks_done:,} done, {len(pending):,} pending  regions {totals.regions:,}"
                          f"  LPs {totals.lps:,}  {el:,.0f}s", end="", file=sys.stderr, flush=True)
            if max_regions is not None and totals.regions >= max_regions:
                stopped = "max_regions"
            if stopped is not None:
                break
            top_up()
    except KeyboardInterrupt:
        stopped = "interrupted"
        # Ctrl-C reached the workers too: each stops its subtree and returns what it counted.
        for res in engine.drain(pending, timeout=10.0):
            absorb(res, resubmit=False)
    finally:
        engine.close()
        if journal:
            journal.close()
        if writer:
            writer.close()
    if progress:
        print(file=sys.stderr)
    return tree_result(totals, stopped=stopped, seconds=time.perf_counter() - t0, tolerance=tol, geometry=geometry,
                       bounds=bounds, domain=domain, jobs=jobs, engine="dask" if dask else "local",
                       tasks=tasks_done, resumed_tasks=resumed, budget=budget)
