"""Stopping a run on SIGINT or SIGTERM, and worker processes that never outlive their parent.

CONTRACT.md §3: SIGINT and SIGTERM end a run the same way (partial result, ``stopped:
"interrupted"``), and no worker process outlives the command.

* :func:`stop_signals` installs one handler for both signals while a run is interruptible; the handler
  decides what a signal does (raise an exception that unwinds the run, or ignore a repeated signal).
* :class:`deferred` marks a critical section (a region line written and counted, a finished task
  journalled and counted): a stop signal arriving inside it takes effect at its end, so a stopped run's
  count and its files always agree.
* :func:`worker_init` is the initializer of every worker pool: workers ignore both signals between
  tasks (the parent decides when they stop), get SIGKILL when their parent dies (Linux
  ``prctl(PR_SET_PDEATHSIG)``), and also watch ``os.getppid()`` from a daemon thread (other platforms,
  and a parent that died before ``prctl`` ran).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PARENT_POLL_SECONDS = 0.5
"""How often a worker's watcher thread checks that its parent is alive (the fallback to prctl)."""
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class _Gate:
    """Critical-section depth of the main thread and the stop exception waiting for its end."""

    depth = 0
    pending: BaseException | None = None


class deferred:
    """Context manager: a stop signal arriving inside takes effect when the outermost section ends
    (its exception is raised there), unless the section ends with an exception of its own."""

    __slots__ = ()

    def __enter__(self) -> None:
        _Gate.depth += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        _Gate.depth -= 1
        if _Gate.depth == 0 and _Gate.pending is not None:
            pending, _Gate.pending = _Gate.pending, None
            if exc_type is None:
                raise pending


@contextmanager
def stop_signals(on_signal: Callable[[int], BaseException | None]) -> Iterator[None]:
    """Context manager: while active, SIGINT and SIGTERM call ``on_signal(signum)``.

    The exception it returns is raised at once, or at the end of the current :class:`deferred`
    section; None ignores the signal.  The previous handlers are restored afterwards, and a stop still
    waiting for a section's end is dropped.  Outside the main thread (where Python cannot set
    handlers) this does nothing.

    Parameters
    ----------
    on_signal : callable
        ``on_signal(signum) -> BaseException | None``; it may record the stop (``stopped =
        "interrupted"``) before returning the exception that unwinds the run.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def handler(signum, frame):
        exc = on_signal(signum)
        if exc is None:
            return
        if _Gate.depth:
            _Gate.pending = _Gate.pending or exc
            return
        raise exc

    try:
        for s in STOP_SIGNALS:
            signal.signal(s, handler)
    except ValueError:  # an embedded interpreter without signal support
        yield
        return
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        _Gate.pending = None  # a stop requested of this run must not stop a later one


def terminate_as_interrupt() -> None:
    """Make SIGTERM raise KeyboardInterrupt, as SIGINT does (for code that handles Ctrl-C only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_POLL_SECONDS)
        if os.getppid() != parent_pid:  # re-parented: the parent is gone
            _kill_self()


def die_with_parent(parent_pid: int, *, prctl: bool = True) -> None:
    """Make this process die (SIGKILL) as soon as ``parent_pid``, its parent, dies, by any means.

    Parameters
    ----------
    parent_pid : int
        The parent's pid, taken in the parent (``os.getpid()`` when the pool is made): if the parent
        is already gone when this runs, the process kills itself at once.
    prctl : bool
        Use Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; False leaves only the watcher thread that polls
        ``os.getppid()`` every :data:`PARENT_POLL_SECONDS` (what other platforms get).
    """
    if prctl and sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no libc prctl: the watcher thread below still works
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        _kill_self()
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="lrmilp-parent-watch").start()


def worker_init(parent_pid: int, ignore_stop: bool = True) -> None:
    """Initializer of lrmilp's worker pools (module docstring).

    Parameters
    ----------
    parent_pid : int
        The pool owner's pid (:func:`die_with_parent`).
    ignore_stop : bool
        Ignore SIGINT and SIGTERM between tasks (the parent forwards a stop when it wants partial
        results; a task that handles them installs its own handler).  False: a stop signal ends the
        worker's task (KeyboardInterrupt) or the worker (SIGTERM).
    """
    if ignore_stop:
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # the fork happened inside held_stop_signals(): the child inherited the held mask
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    die_with_parent(parent_pid)


class held_stop_signals:
    """Hold SIGINT and SIGTERM for the body: a stop that arrives while a pool forks would otherwise raise
    inside the fork's at-fork hooks, where Python ignores the exception ("Exception ignored in
    _releaseLock") and the stop is lost.  The signals are blocked in this thread, and the body is a
    :class:`deferred` section (another thread may still take a process signal, and Python then runs
    the handler in the main thread wherever it is): either way the stop's exception is raised when the
    body ends, in plain code.  Used around every submit to a fork pool (it forks workers on demand)."""

    def __enter__(self) -> "held_stop_signals":
        self.before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        self.gate = deferred()
        self.gate.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self.before)  # a held signal is handled here, gated
        self.gate.__exit__(exc_type, exc, tb)
