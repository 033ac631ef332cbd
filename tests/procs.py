"""Helpers for tests that signal or kill a running ``lrmilp`` process.

Nothing here depends on machine speed: a test waits until the child has demonstrably started its
search (a progress line on stderr) before signalling, and every wait below only bounds a hang.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

HANG_SECONDS = 180.0
"""Longest any wait here lasts: only a hang (or a machine stalled for minutes) reaches it."""


class Child:
    """``python -m lrmilp ARGS`` with stdout and stderr collected by threads (so waiting on stderr
    never blocks on a full stdout pipe)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "lrmilp", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.out = bytearray()
        self.err = bytearray()
        self._threads = [threading.Thread(target=self._pump, args=(s, b), daemon=True)
                         for s, b in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, buf: bytearray) -> None:
        for chunk in iter(lambda: os.read(stream.fileno(), 65536), b""):
            buf.extend(chunk)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for_stderr(self, needle: "bytes | re.Pattern[bytes]", *, count: int = 1) -> None:
        """Block until stderr holds ``needle`` (bytes, or a compiled regex) ``count`` times (AssertionError
        if the child exits first or after :data:`HANG_SECONDS`)."""
        end = time.monotonic() + HANG_SECONDS
        seen = ((lambda: len(needle.findall(bytes(self.err)))) if isinstance(needle, re.Pattern)
                else (lambda: bytes(self.err).count(needle)))
        while seen() < count:
            assert self.proc.poll() is None, f"child exited early: {bytes(self.err)[-500:]!r}"
            assert time.monotonic() < end, f"no {needle!r} on stderr: {bytes(self.err)[-500:]!r}"
            time.sleep(0.05)

    def finish(self) -> tuple[int, str, str]:
        """Wait for the child to exit and its pipes to close; (returncode, stdout, stderr)."""
        self.proc.wait(timeout=HANG_SECONDS)
        for t in self._threads:
            t.join(HANG_SECONDS)
            assert not t.is_alive(), "a pipe of the child stayed open (a surviving grandchild?)"
        return self.proc.returncode, bytes(self.out).decode(), bytes(self.err).decode()


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux /proc)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def alive(pid: int) -> bool:
    """Is ``pid`` a running (not zombie) process?"""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_gone(pids: list[int], seconds: float = HANG_SECONDS) -> list[int]:
    """Wait until none of ``pids`` runs; the survivors after ``seconds``."""
    end = time.monotonic() + seconds
    while any(alive(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]
