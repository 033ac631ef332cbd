"""Where tasks run: local fork workers, a Dask cluster, or this process — one interface.

:class:`Workers` wraps a :class:`concurrent.futures.Executor` (:func:`lrmilp.pool.fork_pool`, Dask's
``Client.get_executor()``, or :class:`lrmilp.pool.InlineExecutor`) and the context every task shares:
``submit(fn, *args)`` runs ``fn(context, *args)`` on a worker.  Dask is imported here only.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, Future
from typing import Any, Callable

from ..errors import InputError
from ..interrupts import held_stop_signals
from ..pool import InlineExecutor, fork_pool, in_context, kill_pool, signal_pool
from ..validation import dask_address


def default_jobs() -> int:
    """The cores this process may use.

    Returns
    -------
    int

    Examples
    --------
    >>> default_jobs() >= 1
    True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def connect_dask(address: str, *, jobs: int):
    """A Dask client: of a new LocalCluster of ``jobs`` single-threaded workers for "local", else of the
    running scheduler at ``address``.

    Parameters
    ----------
    address : str
        ``"local"`` or ``scheme://host:port``.
    jobs : int
        LocalCluster workers.

    Returns
    -------
    tuple
        (client, cluster): the cluster (to close after the client) for "local", else None.

    Raises
    ------
    InputError
        An address that is not "local" or ``scheme://host:port``, that cannot be reached, or Dask is not
        installed.

    Examples
    --------
    >>> client, cluster = connect_dask("local", jobs=1)  # doctest: +SKIP
    """
    dask_address("dask", address)
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("a Dask cluster needs the distributed package (pip install 'lrmilp[dask]')") from None
    if address == "local":
        # One thread per worker: each runs its own HiGHS model and numpy loop.
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster), cluster
    try:
        return Client(address, timeout=10), None
    except (OSError, ValueError, TypeError) as e:  # unreachable, or an address Dask cannot parse
        raise InputError(f"cannot reach the Dask scheduler at {address}: {e}", param="dask") from None


class Workers:
    """Tasks ``fn(context, *args)`` on ``size`` workers of one kind: ``local`` (forked processes that
    die with this one, each holding the context), ``dask`` (the context scattered to every worker
    once), or ``inline`` (this process, each task run as it is submitted).

    Parameters
    ----------
    jobs : int
        Local processes, or LocalCluster workers with ``dask="local"``; with a scheduler address, at
        least the cluster's worker count is used.
    dask : str, optional
        ``"local"`` or a scheduler address (``tcp://host:8786``).
    context : Any
        What every task receives first.
    inline : bool
        With one job and no Dask, run the tasks in this process rather than in one worker.
    first_inline : bool
        Local workers only: the first task runs in this process, and the workers are forked when the
        second is submitted, so work that ends within its first task never starts a process (forking
        and reaping a pool costs more than a small count).

    Examples
    --------
    >>> with Workers(2, context=10) as w:
    ...     w.submit(max, 3).result()
    10
    """

    def __init__(self, jobs: int, *, dask: str | None = None, context: Any = None, inline: bool = False,
                 first_inline: bool = False) -> None:
        self.client = self.cluster = None
        self.context = context
        self.first_inline = False
        if dask is not None:
            self.client, self.cluster = connect_dask(dask, jobs=jobs)
            self.kind = "dask"
            self.size = jobs if dask == "local" else max(jobs, len(self.client.scheduler_info()["workers"]))
            self.ref = None if context is None else self.client.scatter(context, broadcast=True)
            self.executor: Executor = self.client.get_executor(pure=False)
        elif inline and jobs <= 1:
            self.kind, self.size, self.ref, self.executor = "inline", 1, context, InlineExecutor()
        else:
            self.kind, self.size, self.ref = "local", jobs, None  # the context lives in each worker
            self.first_inline = first_inline
            self.executor = InlineExecutor() if first_inline else fork_pool(jobs, context)

    def submit(self, fn: Callable, *args) -> Future:
        """Run ``fn(context, *args)`` on a worker (at once, in this process, when inline or the first task
        of ``first_inline`` workers)."""
        if self.first_inline:
            self.first_inline = False
            return self.executor.submit(in_context, fn, self.context, *args)
        if self.kind != "local":
            return self.executor.submit(in_context, fn, self.ref, *args)
        with held_stop_signals():  # a local pool may fork now: a stop must not land inside the fork
            if isinstance(self.executor, InlineExecutor):
                self.executor = fork_pool(self.size, self.context)  # the second task: now the workers start
            return self.executor.submit(in_context, fn, self.ref, *args)

    def cancel_queued(self, futures) -> None:
        """Local workers: the tasks not yet handed to a worker never start."""
        if self.kind == "local":
            for f in futures:
                f.cancel()

    def interrupt(self) -> None:
        """Ask the running tasks to stop and return what they have (SIGINT to local workers; Dask tasks
        run out their budget)."""
        signal_pool(self.executor)

    def close(self) -> None:
        """Stop at once: local workers are killed, a Dask client (and its LocalCluster) closed."""
        if self.client is not None:
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()
        else:
            kill_pool(self.executor)

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
