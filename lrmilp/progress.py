"""The one progress channel: a line on stderr (tqdm) that every long command updates.

A :class:`Progress` is shown when stderr is a terminal, or when the caller asks for it
(``progress=True``, ``--progress``); ``progress=False`` (``--no-progress``) hides it.  Updates are cheap
to ask for: :meth:`Progress.due` says whether a second has passed since the line was last drawn.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

INTERVAL = 1.0
"""Seconds between two redraws of a progress line."""


class _Bar(tqdm):
    monitor_interval = 0  # no monitor thread: workers are forked from processes that show progress


def wanted(progress: bool | None) -> bool:
    """Whether to show progress: as asked, or (None) when stderr is a terminal.

    Parameters
    ----------
    progress : bool or None
        The caller's choice; None leaves it to :func:`sys.stderr.isatty`.

    Returns
    -------
    bool

    Examples
    --------
    >>> wanted(False), wanted(True)
    (False, True)
    """
    if progress is None:
        try:
            return sys.stderr.isatty()
        except (AttributeError, ValueError):  # a replaced or closed stderr
            return False
    return bool(progress)


class Progress:
    """One run's progress line: ``lrmilp WHAT: TEXT [elapsed]``, or a bar when the total is known.

    Parameters
    ----------
    what : str
        The command (``count``, ``lower-bound``, ...).
    progress : bool or None
        Show it (see :func:`wanted`).
    total : int, optional
        The number of steps, for a bar with a percentage and an estimate of the time left.
    unit : str
        What a step is (shown after the counts of a bar: ``samples``).

    Examples
    --------
    >>> with Progress("count", progress=False) as p:
    ...     if p.due():
    ...         p.show("regions 10")
    """

    def __init__(self, what: str, *, progress: bool | None = None, total: int | None = None, unit: str = "") -> None:
        self.shown = wanted(progress)
        self.what, self.total, self.unit = f"lrmilp {what}", total, unit
        self.start = time.time()
        self.next = time.perf_counter() + INTERVAL  # a run shorter than that draws nothing
        self.bar: tqdm | None = None
        self.closed = False

    @property
    def enabled(self) -> bool:
        return self.shown and not self.closed

    def due(self) -> bool:
        """Shown, and a redraw is due (:data:`INTERVAL` seconds since the start or the last one)."""
        return self.shown and not self.closed and time.perf_counter() >= self.next

    def show(self, text: str = "", n: int | None = None) -> None:
        """Draw the line with ``text`` (and ``n`` steps done, for a bar)."""
        if not self.enabled:
            return
        self.next = time.perf_counter() + INTERVAL
        if self.bar is None:
            if self.total is None:  # the text goes in the description: a postfix would start with a comma
                self.bar = _Bar(desc=f"{self.what}: {text}", bar_format="{desc} [{elapsed}]", **self._common())
            else:
                fmt = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} " + self.unit + " [{elapsed}<{remaining}]{postfix}"
                self.bar = _Bar(desc=self.what, total=self.total, initial=n or 0, postfix=text or None, bar_format=fmt,
                                **self._common())
            self.bar.start_t = self.start  # elapsed time counts from the run's start
            return
        if n is not None:
            self.bar.n = n
        if self.total is None:
            self.bar.set_description_str(f"{self.what}: {text}", refresh=False)
        else:
            self.bar.set_postfix_str(text, refresh=False)
        self.bar.refresh()

    @staticmethod
    def _common() -> dict:
        return {"file": sys.stderr, "leave": True, "dynamic_ncols": True, "mininterval": INTERVAL}

    def write(self, line: str) -> None:
        """A line of its own on stderr (above the progress line when one is shown)."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        """End the line (a newline on stderr, if one was drawn); later calls draw nothing."""
        self.closed = True
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
