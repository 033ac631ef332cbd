"""The regions file (``--regions-out``): one JSON line per region after a header line.

Header ``{"neurons": N, "domain": {...}}``; then per region ``{"pattern": HEX, "point": [...],
"margin": r}``: the activation pattern as hex of packed bits (numpy bit order), an interior point
(network input) and its margin (the radius of a ball inside the region, in domain parameters).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterator

import numpy as np

from .domains import Domain
from .interrupts import deferred
from .jsonout import dumps
from .network import pack_pattern, unpack_pattern
from .outputs import AtomicFile


def region_record(domain: Domain, pattern: np.ndarray | bytes, point_u: np.ndarray, margin: float) -> dict:
    """The regions file's line object for a region.

    Parameters
    ----------
    domain : Domain
        The count's domain (maps the point to a network input).
    pattern : numpy.ndarray or bytes
        The activation pattern, as booleans or packed bits.
    point_u : numpy.ndarray
        An interior point, in the domain's parameters.
    margin : float
        The radius of a ball inside the region (null in the file when not finite).

    Returns
    -------
    dict
        ``{"pattern": hex, "point": [...], "margin": r}``.
    """
    bits = pattern if isinstance(pattern, bytes) else pack_pattern(pattern)
    x = domain.to_input(point_u)[0]
    m = float(margin)
    return {"pattern": bits.hex(), "point": x.tolist(), "margin": m if math.isfinite(m) else None}


class RegionWriter:
    """Streams regions to a JSON-lines file, whole or not at all.

    The lines go to a temporary file beside ``path``; :meth:`close` renames it into place, also when
    the run stopped early (the file then holds exactly the regions written: :attr:`count`);
    :meth:`discard` (or leaving a ``with`` block by an exception) removes it.  Each line is written and
    counted inside a :class:`~lrmilp.interrupts.deferred` section, so a stop signal never separates
    the two.  Write errors (a full disk) raise InputError naming the path.
    """

    def __init__(self, path: str | Path, *, neurons: int, domain: Domain, param: str = "regions_out") -> None:
        self.out = AtomicFile(path, param)
        self.path = self.out.path
        self.domain = domain
        self.neurons = neurons
        self.count = 0
        self.out.write(dumps({"neurons": neurons, "domain": domain.describe()}) + "\n")

    def write(self, pattern: np.ndarray | bytes, point_u: np.ndarray, margin: float) -> None:
        """Write one region (the enumerator's ``on_region`` signature)."""
        self.write_record(region_record(self.domain, pattern, point_u, margin))

    def write_record(self, rec: dict) -> None:
        """Write one region given as its line's object (:func:`region_record`)."""
        line = json.dumps(rec, allow_nan=False) + "\n"
        with deferred():
            self.out.write(line)
            self.count += 1

    def close(self) -> None:
        """Move the file into place: it holds the :attr:`count` regions written."""
        self.out.commit()

    def discard(self) -> None:
        """Remove the temporary file; nothing appears at the path."""
        self.out.discard()

    def __enter__(self) -> "RegionWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


class RegionCap:
    """The ``on_region`` of a count with ``max_regions`` that looks for one region more (only then is it
    incomplete): hands the first ``max_regions`` regions to the writer (if any) and keeps their smallest
    margin; a region beyond them only proves that the count is incomplete.

    Parameters
    ----------
    max_regions : int
        How many regions may be reported.
    writer : RegionWriter, optional
        The regions file.
    """

    def __init__(self, max_regions: int, writer: "RegionWriter | None") -> None:
        self.max_regions, self.writer = max_regions, writer
        self.seen = 0
        self.min_margin = math.inf

    def __call__(self, pattern: np.ndarray | bytes, point_u: np.ndarray, margin: float) -> None:
        self.seen += 1
        if self.seen > self.max_regions:
            return
        self.min_margin = min(self.min_margin, float(margin))
        if self.writer is not None:
            self.writer.write(pattern, point_u, margin)


def read_regions(path: str | Path) -> Iterator[dict]:
    """Iterate the regions of a file written by :class:`RegionWriter`.

    Parameters
    ----------
    path : str or Path
        The regions file.

    Yields
    ------
    dict
        One per region: ``pattern`` (bool array), ``point`` (array), ``margin``.
    """
    with Path(path).open(encoding="utf-8") as fh:
        header = json.loads(fh.readline())
        n = header["neurons"]
        for line in fh:
            rec = json.loads(line)
            rec["pattern"] = unpack_pattern(bytes.fromhex(rec["pattern"]), n)
            rec["point"] = np.array(rec["point"])
            yield rec
