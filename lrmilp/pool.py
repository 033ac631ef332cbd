"""Local worker processes: a fork pool whose workers hold a per-worker context and die with their parent.

Every lower module that runs work elsewhere takes a :class:`concurrent.futures.Executor`; this module
makes the local one (:func:`fork_pool`), and :mod:`lrmilp.parallel` adds Dask's.  A task that needs
shared state (a network, an oracle) gets it as its first argument through a *reference*
(:func:`in_context`): None on a fork pool, whose initializer stored the context in each worker once
(:func:`worker_context`), or the object itself (a Dask future the scheduler resolves, or this
process's own object).
"""

from __future__ import annotations

import os
import signal
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Callable

from .interrupts import worker_init

JOIN_SECONDS = 5.0
"""Most seconds :func:`kill_pool` waits for each killed worker to be reaped."""


class WorkerContext:
    """What the tasks of one pool share, set in each worker by the pool's initializer."""

    value: Any = None


def _init(parent_pid: int, ignore_stop: bool, context: Any) -> None:
    worker_init(parent_pid, ignore_stop)
    WorkerContext.value = context


def worker_context() -> Any:
    """The context this worker's pool was made with.

    Returns
    -------
    Any
        What :func:`fork_pool` was given (None outside a fork pool's worker).

    Examples
    --------
    >>> worker_context() is None
    True
    """
    return WorkerContext.value


def fork_pool(jobs: int, context: Any = None, *, ignore_stop: bool = True) -> ProcessPoolExecutor:
    """``jobs`` forked worker processes that die with this one, each holding ``context``.

    Parameters
    ----------
    jobs : int
        Worker processes.
    context : Any
        Stored in every worker at its start (inherited through fork, never pickled):
        :func:`worker_context`, or :func:`in_context` with the reference None.
    ignore_stop : bool
        Workers ignore SIGINT and SIGTERM between tasks (the parent decides when they stop: a task
        that handles them installs its own handler); False: a stop signal ends the worker's task.

    Returns
    -------
    concurrent.futures.ProcessPoolExecutor
        Close it with :func:`kill_pool` when a run is stopped (``shutdown`` would wait for running
        tasks).

    Examples
    --------
    >>> pool = fork_pool(1, context=21)
    >>> pool.submit(in_context, max, None, 2).result()  # max(21, 2) in the worker
    21
    >>> kill_pool(pool)
    """
    return ProcessPoolExecutor(jobs, mp_context=get_context("fork"), initializer=_init,
                               initargs=(os.getpid(), ignore_stop, context))


def in_context(fn: Callable, ref: Any, *args) -> Any:
    """``fn(context, *args)`` in a worker: the context is ``ref``, or the worker's own when ``ref`` is None.

    Parameters
    ----------
    fn : callable
        The task (picklable: a module-level function).
    ref : Any
        The context, or None for the one :func:`fork_pool`'s initializer stored.
    *args
        The task's own arguments.

    Returns
    -------
    Any
        What ``fn`` returns.

    Examples
    --------
    >>> in_context(max, 3, 5)
    5
    """
    return fn(WorkerContext.value if ref is None else ref, *args)


def pool_processes(executor: Executor) -> list:
    """The worker processes of a local pool.

    Parameters
    ----------
    executor : concurrent.futures.Executor
        Any executor.

    Returns
    -------
    list of multiprocessing.Process
        None for an executor that is not a :class:`~concurrent.futures.ProcessPoolExecutor`.

    Examples
    --------
    >>> pool_processes(InlineExecutor())
    []
    """
    if not isinstance(executor, ProcessPoolExecutor):
        return []
    return list((getattr(executor, "_processes", None) or {}).values())


def signal_pool(executor: Executor, signum: int = signal.SIGINT) -> None:
    """Send ``signum`` to every worker of a local pool: a running task that handles stop signals stops
    and returns its partial result; an idle worker ignores it.

    Parameters
    ----------
    executor : concurrent.futures.Executor
        The pool (any other executor: nothing happens).
    signum : int
        The signal.

    Examples
    --------
    >>> signal_pool(InlineExecutor())  # no processes: nothing to signal
    """
    for p in pool_processes(executor):
        try:
            os.kill(p.pid, signum)
        except (ProcessLookupError, TypeError):
            pass


def kill_pool(executor: Executor) -> None:
    """Shut ``executor`` down at once: queued tasks are cancelled, a local pool's workers killed.

    A stopped run must not wait for running tasks (the executor keeps its workers in a private dict;
    ``shutdown()`` alone would wait for them), and calls still in the queue's pipe must not hold the
    interpreter's exit either.

    Parameters
    ----------
    executor : concurrent.futures.Executor
        The pool.

    Examples
    --------
    >>> kill_pool(fork_pool(1))
    """
    procs = pool_processes(executor)
    queue = getattr(executor, "_call_queue", None)
    if queue is not None:
        queue.cancel_join_thread()
    executor.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.kill()
    for p in procs:
        p.join(JOIN_SECONDS)


class InlineExecutor(Executor):
    """Runs each task in this process when it is submitted (a count with one job and a checkpoint).

    An exception of the task is its future's; a BaseException (a stop signal) propagates to the caller.
    """

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        f: Future = Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except Exception as e:  # noqa: BLE001  (the task's failure is its future's)
            f.set_exception(e)
        return f
