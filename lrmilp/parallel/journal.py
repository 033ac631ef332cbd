"""Checkpoints of a parallel count: a journal of finished tasks that a rerun resumes from.

With ``checkpoint``, each finished task is journalled (one fsynced JSON line: key, counts, the tasks it
handed out, and its regions when the count writes a regions file) after a header that fingerprints
the network, domain and tol.  A run restarted with the same file skips every journalled task and ends
with the same count as an uninterrupted run, and its regions file holds every region of the whole
count (the journalled tasks' regions, then this run's).  A last line cut short by a crash is dropped;
any other malformed file, or a file of another problem, is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..domains import Domain
from ..errors import InputError
from ..network import Network
from ..outputs import check_writable, open_append, oserror, write_text
from ..search import TreeStats
from ..tolerance import Tolerance


def fingerprint(net: Network, domain: Domain, tol: float | Tolerance) -> str:
    """A hash of everything a count depends on: weights, biases, ReLU flags, the domain and tol.

    Parameters
    ----------
    net : Network
        The network.
    domain : Domain
        The domain.
    tol : float or Tolerance
        The count's tolerance.

    Returns
    -------
    str
        Hex SHA-256.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> len(fingerprint(random_mlp([2, 3]), Box(-1, 1, 2), 1e-9))
    64
    """
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
