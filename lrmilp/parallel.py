"""Parallel one-tree enumeration: subtree tasks on local processes or a Dask cluster, with checkpoints.

**Tasks.**  A task is a node of the search tree entering layer k, named by the states of the ReLU
neurons before layer k (its *prefix*): pure data, rebuilt on the worker by
:meth:`~lrmilp.search.TreeSearch.run_prefix`.  The root task (k = 0) is the whole search.

**Dynamic splitting.**  A task runs for at most ``budget`` seconds as an ordinary depth-first search;
after that, every node it reaches at a layer boundary below its own layer is returned as a new task
instead of explored.  So no task holds a worker much longer than the budget plus one layer's walk,
large subtrees are cut up exactly when they turn out to be large, and no messages pass between
workers.  (Splits happen at layer boundaries only: one layer's own cells are explored by one task.)
The subtrees partition the tree, so the count equals a serial run's.

**Engines.**  ``jobs`` local processes (fork), or Dask distributed: ``dask="local"`` starts a
LocalCluster with ``jobs`` workers, ``dask="tcp://host:port"`` uses a running scheduler (its workers
need lrmilp installed).

**Checkpoints.**  With ``checkpoint``, each finished task is journalled (one fsynced JSON line: key,
counts, the tasks it handed out, and its regions when the count writes a regions file) after a
header that fingerprints the network, domain and tol.  A run restarted with the same file skips
every journalled task and ends with the same count as an uninterrupted run, and its regions file
holds every region of the whole count (the journalled tasks' regions, then this run's).  A last line
cut short by a crash is dropped; any other malformed file, or a file of another problem, is refused.

**Stopping.**  SIGINT and SIGTERM stop a count the same way (:mod:`lrmilp.interrupts`): the parent
asks its workers to stop their subtrees, collects their partial results for at most
:data:`DRAIN_SECONDS`, and kills them; workers also die with the parent when it is killed.  A stopped
count reports exactly the regions it wrote to the regions file.

Memory: the parent holds the pending tasks' prefixes and one finished task's regions at a time;
a worker holds its task's search path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .bounds import Bounds, default_jobs  # noqa: F401  (default_jobs: lrmilp.parallel's public API)
from .domains import Domain
from .cells import choose_geometry
from .search import CountResult, TreeSearch, TreeStats, tree_result
from .errors import InputError
from .interrupts import deferred, stop_signals, worker_init
from .network import Network, pack_pattern, unpack_pattern
from .outputs import check_writable, open_append, oserror, write_text
from .regions import RegionWriter, region_record
from .tolerance import Tolerance
from .validation import dask_address

DEFAULT_BUDGET = 2.0
"""Seconds a task searches before it hands out the rest of its subtree as new tasks."""
DRAIN_SECONDS = 10.0
"""Most seconds a stopped count waits for its workers' partial results before killing them."""
DRAIN_POLL_SECONDS = 0.5
"""While draining, workers are asked again this often to stop (a queued task may start meanwhile)."""
JOIN_SECONDS = 5.0
"""Most seconds the pool's shutdown waits for each killed worker to be reaped."""


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


def _enumerator(ctx: _Context) -> tuple[TreeSearch, list, list]:
    """This worker's enumerator for ``ctx`` (built once; its warm LP is reused across tasks)."""
    # Keyed by the problem and by whether regions are collected: a count that writes regions must not
    # reuse an enumerator built without the callback that collects them.
    if _WORKER.get("token") != (ctx.token, ctx.collect):
        found: list = []
        children: list = []
        enum = TreeSearch(ctx.net, ctx.domain, tol=ctx.tol, bounds=ctx.bounds, geometry=ctx.geometry,
                              on_region=(lambda p, u, r: found.append((pack_pattern(p), u, r))) if ctx.collect
                              else None,
                              on_split=lambda k, prefix: children.append(_key(k, prefix)))
        _WORKER.update(token=(ctx.token, ctx.collect), enum=enum, found=found, children=children)
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


class _Local:
    """``jobs`` forked worker processes (they ignore stop signals between tasks and die with this
    process: :func:`lrmilp.interrupts.worker_init`)."""

    def __init__(self, ctx: _Context, jobs: int) -> None:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context
        self.ctx = ctx
        self.pool = ProcessPoolExecutor(jobs, mp_context=get_context("fork"), initializer=worker_init,
                                        initargs=(os.getpid(),))

    def submit(self, key: str, budget: float):
        return self.pool.submit(run_task, self.ctx, key, budget)

    def wait(self, pending: set) -> tuple[set, dict]:
        from concurrent.futures import FIRST_COMPLETED, wait
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        return done, {f: f.result() for f in done}

    def _processes(self) -> list:
        return list((getattr(self.pool, "_processes", None) or {}).values())

    def _signal_workers(self) -> None:
        """SIGINT to every worker: a running subtree stops and returns its partial count; an idle worker
        ignores it."""
        for p in self._processes():
            try:
                os.kill(p.pid, signal.SIGINT)
            except (ProcessLookupError, TypeError):
                pass

    def drain(self, pending: set, timeout: float) -> list:
        from concurrent.futures import wait
        for f in pending:
            f.cancel()  # queued calls not yet handed to a worker never start
        out, left, end = [], set(pending), time.monotonic() + timeout
        while left and time.monotonic() < end:
            self._signal_workers()
            done, left = wait(left, timeout=min(DRAIN_POLL_SECONDS, max(end - time.monotonic(), 0.0)))
            out.extend(_finished(done))
        return out

    def close(self) -> None:
        # A stopped count must not wait for running subtrees: kill the workers (the executor keeps
        # them in a private dict; shutdown() alone would wait for running tasks).  Calls still in the
        # queue's pipe must not hold the interpreter's exit either.
        procs = self._processes()
        queue = getattr(self.pool, "_call_queue", None)
        if queue is not None:
            queue.cancel_join_thread()
        self.pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.kill()
        for p in procs:
            p.join(JOIN_SECONDS)


def connect_dask(address: str, *, jobs: int):
    """(client, cluster): a new LocalCluster of ``jobs`` single-threaded workers for "local" (cluster
    to close after the client), else a client of the running scheduler at ``address`` (cluster None).
    InputError for an address that is not "local" or ``scheme://host:port``, or that cannot be reached."""
    dask_address("dask", address)
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
    except (OSError, ValueError, TypeError) as e:  # unreachable, or an address Dask cannot parse
        raise InputError(f"cannot reach the Dask scheduler at {address}: {e}", param="dask") from None


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


CHECKPOINT_VERSION = 1
MAX_HEADER_BYTES = 4096
"""A checkpoint's header line is shorter than this; a file whose first line is not is no checkpoint."""
_TASK_KEY = re.compile(r"^\d+:[0-9a-f]*$")
_STATS = frozenset(f.name for f in dataclasses.fields(TreeStats))


class Journal:
    """The checkpoint file: a header, then one line per finished task (appended, flushed, fsynced).

    Constructing it reads and checks an existing file: its header must be an lrmilp checkpoint of the
    same problem (``fp``), every line a task record; a last line without its newline (a crash while
    appending) is dropped, and cut off when :meth:`open` appends.  Anything else raises InputError.
    :meth:`open` creates or appends, so a run that fails before it starts leaves no file behind.
    ``regions`` (from the header) says whether each record holds its task's regions.
    """

    def __init__(self, path: str | Path, fp: str) -> None:
        self.path, self.fp = check_writable(path, "checkpoint"), fp
        self.fh = None
        self.done: dict[str, dict] = {}  # key -> {"stats", "children", "offset" of its line}
        self.regions = False
        self.torn_at: int | None = None  # offset of a last line cut short by a crash
        if self.path.exists() and self.path.stat().st_size:
            self._read()

    def _bad(self, what: str) -> InputError:
        return InputError(f"checkpoint {self.path} {what}; give another file to start a new count",
                          param="checkpoint")

    def _read(self) -> None:
        try:
            with self.path.open("rb") as fh:
                head = fh.readline(MAX_HEADER_BYTES)
                header = self._json(head)
                if not (isinstance(header, dict) and header.get("lrmilp_checkpoint") == CHECKPOINT_VERSION
                        and isinstance(header.get("fingerprint"), str)):
                    raise self._bad("is not an lrmilp journal")
                if header["fingerprint"] != self.fp:
                    raise InputError(f"checkpoint {self.path} belongs to another network, domain or tol",
                                     param="checkpoint")
                self.regions = header.get("regions") is True
                pos, n = len(head), 1
                for line in fh:
                    n += 1
                    if not line.endswith(b"\n"):  # only the last line can lack it: a torn append
                        self.torn_at = pos
                        break
                    rec = self._json(line)
                    if not self._valid(rec):
                        raise self._bad(f"has a malformed line {n}")
                    self.done[rec["key"]] = {"stats": rec["stats"], "children": rec["children"], "offset": pos}
                    pos += len(line)
        except OSError as e:
            raise InputError(f"cannot read checkpoint {self.path}: {e.strerror or e}", param="checkpoint") from None

    def _json(self, line: bytes):
        if not line.endswith(b"\n"):
            raise self._bad("is not an lrmilp journal")
        try:
            return json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise self._bad("is not an lrmilp journal") from None

    def _valid(self, rec) -> bool:
        if not (isinstance(rec, dict) and isinstance(rec.get("key"), str) and _TASK_KEY.match(rec["key"])):
            return False
        stats, children = rec.get("stats"), rec.get("children")
        # Counters are numbers (a minimum may be a float, or None while undefined); regions an int >= 0.
        if not (isinstance(stats, dict) and set(stats) <= _STATS
                and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                        for v in stats.values())
                and isinstance(stats.get("regions", 0), int) and stats.get("regions", 0) >= 0):
            return False
        if not (isinstance(children, list) and all(isinstance(c, str) and _TASK_KEY.match(c) for c in children)):
            return False
        return not self.regions or (isinstance(rec.get("regions"), list)
                                    and len(rec["regions"]) == stats.get("regions", 0))

    def open(self, *, regions: bool) -> None:
        """Start appending: a new file (header saying whether records hold ``regions``) when nothing is
        journalled yet, else after the last whole line of the existing one."""
        if not self.done:
            self.regions = regions
            header = {"lrmilp_checkpoint": CHECKPOINT_VERSION, "fingerprint": self.fp, "regions": regions}
            write_text(self.path, json.dumps(header) + "\n", "checkpoint")
        elif self.torn_at is not None:
            try:
                with open_append(self.path, "checkpoint") as fh:
                    os.ftruncate(fh.fileno(), self.torn_at)
                    os.fsync(fh.fileno())
            except OSError as e:
                raise oserror(self.path, "checkpoint", e) from None
            self.torn_at = None
        self.fh = open_append(self.path, "checkpoint")

    def regions_of(self, keys: Iterable[str]) -> Iterator[dict]:
        """The regions journalled for the tasks ``keys`` (their lines' objects, in file order)."""
        offsets = sorted(self.done[k]["offset"] for k in keys)
        with self.path.open("rb") as fh:
            for off in offsets:
                fh.seek(off)
                yield from json.loads(fh.readline().decode("utf-8"))["regions"]

    def record(self, result: dict, regions: list[dict] | None) -> None:
        """Journal a finished task (with its regions' line objects when the journal holds regions)."""
        rec = {"key": result["key"], "stats": result["stats"], "children": result["children"]}
        if self.regions:
            rec["regions"] = regions
        try:
            self.fh.write((json.dumps(rec, allow_nan=False) + "\n").encode())
            self.fh.flush()
            os.fsync(self.fh.fileno())
        except OSError as e:
            raise oserror(self.path, "checkpoint", e) from None

    def close(self) -> None:
        if self.fh is not None:
            try:
                self.fh.close()
            except OSError:
                pass
            self.fh = None


class _Interrupted(BaseException):
    """A stop signal reached the coordinator (BaseException: no ``except Exception`` swallows it)."""


# --- the coordinator -----------------------------------------------------------------------------------

def count_parallel(net: Network, domain: Domain, *, tol: Tolerance, jobs: int, bounds: Bounds,
                   time_limit: float | None = None, max_regions: int | None = None,
                   regions_out: str | Path | None = None, progress: bool = False, t0: float | None = None,
                   dask: str | None = None, checkpoint: str | Path | None = None,
                   budget: float | None = None) -> CountResult:
    """Count with ``jobs`` workers (local processes, or Dask when ``dask`` is "local" or an address).

    Same result as the serial enumerator (module docstring).  Polygon geometry (d <= 2, fast anyway)
    always runs serially: its nodes are not rebuilt from prefixes.  ``regions_out`` ends holding
    exactly the ``regions`` reported: with ``checkpoint``, those of the whole count (journalled tasks
    included), which needs a checkpoint started with ``regions_out`` (InputError otherwise).
    """
    t0 = time.perf_counter() if t0 is None else t0
    geometry = choose_geometry(domain)
    if geometry == "polygon" or (jobs <= 1 and dask is None and checkpoint is None):
        if checkpoint is not None:
            raise InputError("checkpoint needs an input dimension of at least 3 (2-D counts run serially)",
                             param="checkpoint")
        from .counting import count_tree
        return count_tree(net, domain, tol=tol, jobs=1, time_limit=time_limit, max_regions=max_regions,
                          regions_out=regions_out, progress=progress)
    budget = DEFAULT_BUDGET if budget is None else float(budget)
    if not (budget > 0 and np.isfinite(budget)):
        raise InputError(f"task_budget must be a positive finite number, got {budget}", param="task_budget")
    deadline = None if time_limit is None else time.time() + time_limit - (time.perf_counter() - t0)
    fp = fingerprint(net, domain, tol)
    journal = Journal(checkpoint, fp) if checkpoint is not None else None
    if journal is not None and journal.done and regions_out is not None and not journal.regions:
        raise InputError(f"checkpoint {journal.path} was started without regions_out, so it does not hold the "
                         f"regions of its {len(journal.done):,} finished tasks; resume without regions_out, or "
                         "give a new checkpoint", param=("checkpoint", "regions_out"))
    # Records hold their regions when this count writes them, or when the journal already does (so a
    # later resume with a regions file still finds every region).
    journal_regions = journal is not None and (journal.regions if journal.done else regions_out is not None)
    collect = regions_out is not None or journal_regions
    ctx = _Context(net, domain, bounds, tol, geometry, collect, deadline, fp[:16])
    writer = None
    totals = TreeStats()
    resumed: list[str] = []
    to_run: list[str] = []
    # Walk the journal from the root: finished tasks add their counts, their unfinished children run.
    stack = [_key(0, np.zeros(net.neurons, dtype=bool))]  # the root task: the whole search
    while stack:
        key = stack.pop()
        rec = journal.done.get(key) if journal else None
        if rec is None:
            to_run.append(key)
        else:
            resumed.append(key)
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
    stopping = False

    def on_signal(signum: int) -> BaseException | None:
        nonlocal stopping
        if stopping:
            return None  # already collecting the partial results: a second signal changes nothing
        stopping = True
        return _Interrupted()

    def top_up() -> None:
        while backlog and len(pending) < 4 * max(jobs, 1):
            pending.add(engine.submit(backlog.pop(), budget))

    def absorb(res: dict, resubmit: bool) -> None:
        """Journal, write and count one task's result (called in a deferred section: a stop signal
        never separates the three)."""
        nonlocal stopped, tasks_done
        stats = TreeStats.from_dict(res["stats"])
        recs = None
        if collect:
            recs = [region_record(domain, bits, u, r) for bits, u, r in res["regions"]]
            if res["stopped"] is None and len(recs) != stats.regions:
                raise RuntimeError(f"internal error: task {res['key']} counted {stats.regions} regions, "
                                   f"handed over {len(recs)}")
            # A stopped task may have counted a region it had not handed over yet: count what is written.
            stats.regions = len(recs)
        if res["stopped"] is None and journal:
            journal.record(res, recs)
        if writer:
            for rec in recs:
                writer.write_record(rec)
        totals.add(stats)
        tasks_done += 1
        if res["stopped"] is not None:
            stopped = stopped or res["stopped"]
        elif resubmit:
            backlog.extend(reversed(res["children"]))

    try:
        with stop_signals(on_signal):
            try:
                # Files are created only once the engine runs: a failed start writes nothing.
                with deferred():
                    if journal:
                        journal.open(regions=journal_regions)
                    writer = RegionWriter(regions_out, neurons=net.neurons, domain=domain) if regions_out else None
                    if writer and resumed:
                        for rec in journal.regions_of(resumed):
                            writer.write_record(rec)
                        if writer.count != totals.regions:
                            raise InputError(f"checkpoint {journal.path} holds {writer.count:,} regions for tasks "
                                             f"that counted {totals.regions:,}; give another file to start a new "
                                             "count", param="checkpoint")
                    # A count that takes less than the budget stays one task; a longer one is cut up as it goes.
                    backlog.extend(reversed(to_run))
                    top_up()
                while pending:
                    done, results = engine.wait(pending)  # the one place a stop signal lands at once
                    with deferred():
                        pending -= done
                        for res in results.values():
                            absorb(res, resubmit=True)
                            if progress:
                                el = time.perf_counter() - t0
                                print(f"\r[lrmilp] tasks {tasks_done:,} done, {len(pending):,} pending  "
                                      f"regions {totals.regions:,}  LPs {totals.lps:,}  {el:,.0f}s", end="",
                                      file=sys.stderr, flush=True)
                        if max_regions is not None and totals.regions >= max_regions:
                            stopped = "max_regions"
                        if stopped is not None:
                            break
                        top_up()
            except _Interrupted:
                stopped = "interrupted"
                stopping = True
                # Busy workers are asked to stop their subtrees and return what they counted.
                for res in engine.drain(pending, timeout=DRAIN_SECONDS):
                    with deferred():
                        absorb(res, resubmit=False)
    except BaseException:
        if writer:
            writer.discard()  # a failed count leaves no regions file
        raise
    finally:
        engine.close()
        if journal:
            journal.close()
    if writer:
        writer.close()
        if writer.count != totals.regions:
            raise RuntimeError(f"internal error: {writer.count} regions written, {totals.regions} counted")
    if progress:
        print(file=sys.stderr)
    return tree_result(totals, stopped=stopped, seconds=time.perf_counter() - t0, tolerance=tol, geometry=geometry,
                       bounds=bounds, domain=domain, jobs=jobs, engine="dask" if dask else "local",
                       tasks=tasks_done, resumed_tasks=len(resumed), budget=budget)
