"""Parallel one-tree enumeration on local processes.

The parent runs the search down to the cells of the first ReLU layer and hands each cell out as an
independent subtree task (network, domain and bounds are shared at fork; a task is the pattern
prefix, the affine map into the next layer and the node: a ball and the path's rows in LP geometry,
the cell's vertices in vertex geometry).  Workers enumerate their
subtrees with their own warm LP and stream regions back per task; the parent merges the counts and
the region file.  The count is the same as a serial run's: the subtrees partition the search tree.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from multiprocessing import get_context
from pathlib import Path

from .bounds import Bounds
from .domains import Domain
from .enumeration import CountResult, RegionWriter, TreeEnumerator, TreeStats, choose_geometry, tree_result
from .network import Network

_WORKER: dict = {}


def _init(net: Network, domain: Domain, bounds: Bounds, tol: float, collect: bool, geometry: str) -> None:
    found: list = []
    _WORKER["found"] = found
    _WORKER["enum"] = TreeEnumerator(net, domain, tol=tol, bounds=bounds, geometry=geometry,
                                     on_region=(lambda p, u, r: found.append((p, u, r))) if collect else None)


def _run_task(task) -> tuple[TreeStats, list, str | None]:
    """One subtree on this worker's enumerator (its warm LP is reused across tasks)."""
    enum: TreeEnumerator = _WORKER["enum"]
    found: list = _WORKER["found"]
    found.clear()
    *node, deadline = task
    enum.stats = TreeStats()
    enum.stopped = None
    enum.deadline = deadline
    enum.run_subtree(*node)
    return enum.stats, list(found), enum.stopped


def count_parallel(net: Network, domain: Domain, *, tol: float, jobs: int, bounds: Bounds,
                   time_limit: float | None = None, max_regions: int | None = None,
                   regions_out: str | Path | None = None, progress: bool = False, t0: float | None = None) -> CountResult:
    """Count with ``jobs`` worker processes; same result as the serial enumerator.

    Nets with one ReLU layer, and polygon geometry (d <= 2, fast anyway), run serially.
    """
    t0 = time.perf_counter() if t0 is None else t0
    relu = net.relu_layers
    if len(relu) < 2 or choose_geometry(domain) == "polygon":
        from .counting import count_tree
        return count_tree(net, domain, tol=tol, jobs=1, time_limit=time_limit, max_regions=max_regions,
                          regions_out=regions_out, progress=progress)
    deadline = None if time_limit is None else time.time() + time_limit - (time.perf_counter() - t0)
    tasks: queue.Queue = queue.Queue()
    parent = TreeEnumerator(net, domain, tol=tol, bounds=bounds, split_layer=relu[1],
                            on_task=lambda *a: tasks.put(a + (deadline,)), time_limit=time_limit)
    produced = [0]

    def produce() -> None:
        # The parent's own search (down to the first layer's cells) runs beside the workers, so they
        # start on the first cell at once instead of waiting for the whole first layer.
        try:
            parent.run()
        finally:
            tasks.put(None)

    def task_stream():
        while (task := tasks.get()) is not None:
            produced[0] += 1
            yield task

    writer = RegionWriter(regions_out, neurons=net.neurons, domain=domain) if regions_out else None
    # Fork the workers before the producer thread exists: a fork while another thread holds a lock
    # (inside HiGHS, BLAS or the interpreter) leaves that lock held forever in the child.
    pool = get_context("fork").Pool(jobs, initializer=_init,
                                    initargs=(net, domain, bounds, tol, writer is not None, parent.geometry))
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    totals = TreeStats()
    stopped = None
    done = 0
    try:
        for stats, found, st in pool.imap_unordered(_run_task, task_stream(), chunksize=1):
            done += 1
            totals.add(stats)
            if writer:
                for p, u, r in found:
                    writer.write(p, u, r)
            stopped = stopped or st
            if progress:
                el = time.perf_counter() - t0
                print(f"\r[lrmilp] subtrees {done}/{produced[0]}  regions {totals.regions:,}  "
                      f"LPs {totals.lps:,} ({totals.lps / el:,.0f}/s)  {el:,.0f}s", end="", file=sys.stderr, flush=True)
            if max_regions is not None and totals.regions >= max_regions:
                stopped = "max_regions"
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        if stopped is not None:
            parent.deadline = 0.0  # stop the parent's search at its next check
        pool.terminate()
        pool.join()
        producer.join()
        totals.add(parent.stats)
        stopped = stopped or parent.stopped
        if writer:
            writer.close()
    if progress:
        print(file=sys.stderr)
    return tree_result(totals, stopped=stopped, seconds=time.perf_counter() - t0, tol=tol, geometry=parent.geometry,
                       bounds=bounds, domain=domain, jobs=jobs, subtrees=done)
