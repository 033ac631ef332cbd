"""The coordinator of a parallel count: subtree tasks on :class:`~lrmilp.parallel.workers.Workers`.

**Dynamic splitting.**  A task runs for at most ``budget`` seconds as an ordinary depth-first search;
after that, every node it reaches at a layer boundary below its own layer is returned as a new task
instead of explored (:mod:`lrmilp.parallel.tasks`).  So no task holds a worker much longer than the
budget plus one layer's walk, large subtrees are cut up exactly when they turn out to be large, and no
messages pass between workers.  The subtrees partition the tree, so the count equals a serial run's.

**Stopping.**  SIGINT and SIGTERM stop a count the same way (:mod:`lrmilp.interrupts`): the coordinator
asks its workers to stop their subtrees, collects their partial results for at most
:data:`DRAIN_SECONDS`, and kills them; workers also die with the parent when it is killed.  A stopped
count reports exactly the regions it wrote to the regions file.

Memory: the coordinator holds the pending tasks' prefixes and one finished task's regions at a time;
a worker holds its task's search path.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

import numpy as np

from ..bounds import Bounds
from ..domains import Domain
from ..errors import InputError
from ..interrupts import deferred, stop_signals
from ..network import Network
from ..progress import Progress
from ..regions import RegionWriter, region_record
from ..search import CountResult, TreeStats, tree_result
from ..tolerance import Tolerance
from .journal import Journal, fingerprint
from .tasks import TaskContext, run_task, task_key
from .workers import Workers

DEFAULT_BUDGET = 2.0
"""Seconds a task searches before it hands out the rest of its subtree as new tasks."""
DRAIN_SECONDS = 10.0
"""Most seconds a stopped count waits for its workers' partial results before killing them."""
DRAIN_POLL_SECONDS = 0.5
"""While draining, workers are asked again this often to stop (a queued task may start meanwhile)."""


class _Interrupted(BaseException):
    """A stop signal reached the coordinator (BaseException: no ``except Exception`` swallows it)."""


def count_parallel(net: Network, domain: Domain, *, tol: Tolerance, jobs: int, bounds: Bounds, geometry: str,
                   time_limit: float | None = None, max_regions: int | None = None,
                   regions_out: str | Path | None = None, progress: bool | None = False, t0: float | None = None,
                   dask: str | None = None, checkpoint: str | Path | None = None,
                   budget: float | None = None) -> CountResult:
    """Count with ``jobs`` workers (local processes, or Dask when ``dask`` is "local" or an address;
    one job with a checkpoint runs the tasks in this process).

    Parameters
    ----------
    net, domain, tol, bounds
        The balanced network, the domain, the resolved tolerance and the search's bounds.
    jobs : int
        Workers.
    geometry : str
        A geometry that builds cells from prefixes (every one but ``polygon``), already checked.
    time_limit, max_regions, regions_out, progress, dask, checkpoint
        As for :func:`lrmilp.counting.count_regions`.
    t0 : float, optional
        ``time.perf_counter()`` when the count started (the time limit runs from there).
    budget : float, optional
        Seconds a task searches before splitting (:data:`DEFAULT_BUDGET`).

    Returns
    -------
    CountResult
        The same count as a serial run; ``regions_out`` ends holding exactly the ``regions`` reported:
        with ``checkpoint``, those of the whole count (journalled tasks included).

    Raises
    ------
    InputError
        A checkpoint of another problem, or not a checkpoint; a ``regions_out`` resuming a checkpoint
        started without one; an unreachable Dask scheduler.
    """
    t0 = time.perf_counter() if t0 is None else t0
    budget = DEFAULT_BUDGET if budget is None else float(budget)
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
    # With max_regions, tasks hand their regions back, so that the count stops at exactly max_regions
    # regions (and their smallest margin is known) however the last task's regions are cut.
    collect = regions_out is not None or journal_regions or max_regions is not None
    ctx = TaskContext(net, domain, bounds, tol, geometry, collect, deadline, fp[:16],
                      None if max_regions is None else max_regions + 1)
    totals = TreeStats()
    resumed: list[str] = []
    to_run: list[str] = []
    # Walk the journal from the root: finished tasks add their counts, their unfinished children run.
    stack = [task_key(0, np.zeros(net.neurons, dtype=bool))]  # the root task: the whole search
    while stack:
        key = stack.pop()
        rec = journal.done.get(key) if journal else None
        if rec is None:
            to_run.append(key)
        else:
            resumed.append(key)
            totals.add(TreeStats.from_dict(rec["stats"]))
            stack.extend(rec["children"])
    # The root task runs here: a count that ends within its first budget never forks a worker.
    workers = Workers(jobs, dask=dask, context=ctx, inline=True, first_inline=True)
    run = _Run(workers, journal, totals, budget, domain, collect, max_regions)
    bar = Progress("count", progress=progress)
    try:
        run.go(to_run, resumed, regions_out, net.neurons, journal_regions, max_regions, bar, t0)
    finally:
        bar.close()
        workers.close()
        if journal:
            journal.close()
    return tree_result(totals, stopped=run.stopped, seconds=time.perf_counter() - t0, tolerance=tol,
                       geometry=geometry, bounds=bounds, domain=domain, jobs=jobs, engine=workers.kind,
                       tasks=run.tasks_done, resumed_tasks=len(resumed), budget=budget)


class _Run:
    """The task loop of one parallel count: tasks waiting, running and finished."""

    def __init__(self, workers: Workers, journal: Journal | None, totals: TreeStats, budget: float,
                 domain: Domain, collect: bool, max_regions: int | None = None) -> None:
        self.workers, self.journal, self.totals, self.budget = workers, journal, totals, budget
        self.domain, self.collect, self.max_regions = domain, collect, max_regions
        self.pending: set = set()
        # Tasks wait here, not in the executor's queue: an interrupted pool with thousands of queued calls
        # could hang on shutdown, and a short queue keeps the order depth first.
        self.backlog: list[str] = []
        self.writer: RegionWriter | None = None
        self.stopped: str | None = None
        self.tasks_done = 0
        self.stopping = False

    def on_signal(self, signum: int) -> BaseException | None:
        if self.stopping:
            return None  # already collecting the partial results: a second signal changes nothing
        self.stopping = True
        return _Interrupted()

    def top_up(self) -> None:
        """Hand tasks to the workers (outside deferred sections: an inline task runs right here, one at
        a time, so a stop it reports ends the count before the next starts)."""
        cap = 1 if self.workers.kind == "inline" else 4 * self.workers.size
        while self.backlog and len(self.pending) < cap:
            self.pending.add(self.workers.submit(run_task, self.backlog.pop(), self.budget))

    def absorb(self, res: dict, resubmit: bool) -> None:
        """Journal, write and count one task's result (called in a deferred section: a stop signal
        never separates the three)."""
        stats = TreeStats.from_dict(res["stats"])
        recs = None
        if self.collect:
            recs = [region_record(self.domain, bits, u, r) for bits, u, r in res["regions"]]
            if res["stopped"] is None and len(recs) != stats.regions:
                raise RuntimeError(f"internal error: task {res['key']} counted {stats.regions} regions, "
                                   f"handed over {len(recs)}")
            # A stopped task may have counted a region it had not handed over yet: count what is written.
            stats.regions = len(recs)
        if res["stopped"] is None and self.journal:
            self.journal.record(res, recs)  # the whole task: a resumed count may ask for more regions
        if self.max_regions is not None and self.totals.regions + stats.regions > self.max_regions:
            # More regions exist than may be reported: keep the first ones, and the count is incomplete.
            # A count that ends with exactly max_regions regions never gets here, so it stays complete.
            keep = self.max_regions - self.totals.regions
            stats.regions = keep
            if recs is not None:
                recs = recs[:keep]
                stats.min_margin = min((float(r) for _, _, r in res["regions"][:keep]), default=math.inf)
            self.stopped = self.stopped or "max_regions"
            resubmit = False
        if self.writer:
            for rec in recs:
                self.writer.write_record(rec)
        self.totals.add(stats)
        self.tasks_done += 1
        if res["stopped"] is not None:
            # A task stopped by max_regions found more regions than may be reported (cut above).
            self.stopped = self.stopped or res["stopped"]
        elif resubmit:
            self.backlog.extend(reversed(res["children"]))

    def go(self, to_run: list[str], resumed: list[str], regions_out, neurons: int, journal_regions: bool,
           max_regions: int | None, bar: Progress, t0: float) -> None:
        """Run every task (and the tasks they hand out) to the end, a limit or a stop signal."""
        journal, totals = self.journal, self.totals
        try:
            with stop_signals(self.on_signal):
                try:
                    # Files are created only once the workers run: a failed start writes nothing.
                    with deferred():
                        if journal:
                            journal.open(regions=journal_regions)
                        if regions_out:
                            self.writer = RegionWriter(regions_out, neurons=neurons, domain=self.domain)
                        if self.writer and resumed:
                            held = 0
                            for rec in journal.regions_of(resumed):
                                held += 1
                                if max_regions is None or held <= max_regions:
                                    self.writer.write_record(rec)
                            if held != totals.regions:
                                raise InputError(f"checkpoint {journal.path} holds {held:,} regions "
                                                 f"for tasks that counted {totals.regions:,}; give another file to "
                                                 "start a new count", param="checkpoint")
                        if max_regions is not None and totals.regions > max_regions:
                            totals.regions, self.stopped = max_regions, "max_regions"  # the journal has more
                        else:
                            # A count that takes less than the budget stays one task; a longer one is cut up
                            # as it goes.
                            self.backlog.extend(reversed(to_run))
                    self.top_up()
                    while self.pending:
                        done, _ = wait(self.pending, return_when=FIRST_COMPLETED)  # where a stop signal lands
                        with deferred():
                            self.pending -= done
                            for f in done:
                                self.absorb(f.result(), resubmit=True)
                            if bar.due():
                                bar.show(f"tasks {self.tasks_done:,} done, {len(self.pending):,} pending  "
                                         f"regions {totals.regions:,}  LPs {totals.lps:,}")
                            if self.stopped is not None:
                                break
                        self.top_up()
                except _Interrupted:
                    self.stopped = "interrupted"
                    self.stopping = True
                    # Busy workers are asked to stop their subtrees and return what they counted.
                    for res in self._drain(DRAIN_SECONDS):
                        with deferred():
                            self.absorb(res, resubmit=False)
        except BaseException:
            if self.writer:
                self.writer.discard()  # a failed count leaves no regions file
            raise
        if self.writer:
            self.writer.close()
            if self.writer.count != totals.regions:
                raise RuntimeError(f"internal error: {self.writer.count} regions written, {totals.regions} counted")

    def _drain(self, timeout: float) -> list[dict]:
        """The results of the pending tasks that finish within ``timeout`` seconds of being asked to stop
        (queued ones never start)."""
        self.workers.cancel_queued(self.pending)
        out, left, end = [], set(self.pending), time.monotonic() + timeout
        while left and time.monotonic() < end:
            self.workers.interrupt()
            done, left = wait(left, timeout=min(DRAIN_POLL_SECONDS, max(end - time.monotonic(), 0.0)))
            out.extend(_finished(done))
        return out


def _finished(futures) -> list:
    """Results of the futures that ended with one (an interrupted pool may have broken some, and
    cancelled ones have none)."""
    out = []
    for f in futures:
        if f.cancelled():
            continue
        try:
            out.append(f.result())
        except Exception:  # noqa: BLE001  (a worker killed by the interrupt: its subtree is lost)
            pass
    return out
