"""A subtree task on a worker: the search rebuilt from a prefix, run for a time budget.

A task is a node of the search tree entering layer k, named by the states of the ReLU neurons
before layer k (its *prefix*): pure data (:func:`task_key`), rebuilt on the worker by
:meth:`lrmilp.search.TreeSearch.run_prefix`.  The root task (k = 0) is the whole search.
"""

from __future__ import annotations

import time

import numpy as np

from ..bounds import Bounds
from ..domains import Domain
from ..network import Network, pack_pattern, unpack_pattern
from ..search import TreeSearch, TreeStats
from ..tolerance import Tolerance


class TaskContext:
    """What every task of one count shares: sent to each worker once (a fork pool's initializer, or one
    Dask scatter).  The worker's search is built on first use and kept with the context, so its warm
    LP serves every task the worker runs."""

    def __init__(self, net: Network, domain: Domain, bounds: Bounds, tol: Tolerance, geometry: str, collect: bool,
                 deadline: float | None, token: str, max_regions: int | None = None) -> None:
        self.net, self.domain, self.bounds, self.tol, self.geometry = net, domain, bounds, tol, geometry
        self.collect = collect  # hand each task's regions back (a regions file or a journal keeps them)
        self.deadline = deadline  # wall clock (time.time())
        self.token = token
        # A task that alone finds this many regions stops: the count has more than it may report anyway.
        self.max_regions = max_regions
        self._search: tuple | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_search": None}  # a search holds solver state: each worker builds its own

    def search(self) -> tuple[TreeSearch, list, list]:
        """(search, regions found, tasks handed out) of this worker, made once."""
        if self._search is None:
            found: list = []
            children: list = []
            search = TreeSearch(self.net, self.domain, tol=self.tol, bounds=self.bounds, geometry=self.geometry,
                                on_region=(lambda p, u, r: found.append((pack_pattern(p), u, r))) if self.collect
                                else None,
                                on_split=lambda k, prefix: children.append(task_key(k, prefix)),
                                max_regions=self.max_regions)
            self._search = (search, found, children)
        return self._search


def task_key(k: int, prefix: np.ndarray) -> str:
    """The name of the task entering layer k below ``prefix``: ``"k:hex of the packed prefix"``.

    Parameters
    ----------
    k : int
        The layer the task's node enters.
    prefix : numpy.ndarray
        The pattern (entries of layer k and later are False).

    Returns
    -------
    str

    Examples
    --------
    >>> import numpy as np
    >>> task_key(1, np.array([True, False, True]))
    '1:a0'
    """
    return f"{k}:{pack_pattern(prefix).hex()}"


def run_task(ctx: TaskContext, key: str, budget: float) -> dict:
    """Run one task in this process: its counts, regions (if collected) and the tasks it handed out.

    The search stops exploring after ``budget`` seconds: every node it reaches after that at a layer
    boundary below its own layer is handed out as a new task instead.

    Parameters
    ----------
    ctx : TaskContext
        The count's shared context (its search is built once per worker).
    key : str
        The task (:func:`task_key`).
    budget : float
        Seconds before the rest of the subtree is handed out.

    Returns
    -------
    dict
        ``key``, ``stats`` (:meth:`TreeStats.to_dict`), ``stopped``, ``children`` (task keys) and
        ``regions`` ((packed pattern, point, margin) when collected).

    Examples
    --------
    >>> import numpy as np
    >>> from lrmilp import random_mlp
    >>> from lrmilp.bounds import interval_bounds
    >>> from lrmilp.domains import Box
    >>> from lrmilp.tolerance import resolve_tolerance
    >>> net, dom = random_mlp([3, 4, 4], seed=0), Box(-1, 1, 3)
    >>> ctx = TaskContext(net, dom, interval_bounds(net, dom), resolve_tolerance(net, dom), "lp", False, None, "t")
    >>> run_task(ctx, task_key(0, np.zeros(8, dtype=bool)), 60.0)["stats"]["regions"]
    21
    """
    search, found, children = ctx.search()
    found.clear()
    children.clear()
    k_str, hexbits = key.split(":")
    prefix = unpack_pattern(bytes.fromhex(hexbits), ctx.net.neurons)
    search.stats = TreeStats()
    search.stopped = None
    search.deadline = ctx.deadline
    search.split_after = time.perf_counter() + budget
    search.run_prefix(int(k_str), prefix)
    return {"key": key, "stats": search.stats.to_dict(), "stopped": search.stopped, "children": list(children),
            "regions": list(found)}
