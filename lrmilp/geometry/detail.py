"""Each region's geometry for a regions file: its inequalities, its affine output map and its inradius.

A count's regions file (:mod:`lrmilp.regions`) names each region by its activation pattern and an
interior point.  :func:`add_geometry_detail` streams such a file (line by line, constant memory) and
adds to every region:

* ``inequalities``: ``{"A": ..., "b": ...}`` with ``A x <= b`` on the closure of the region, one row per
  ReLU neuron in the pattern's flat order (row i is neuron i's pre-activation, negated when the neuron
  is active), ``x`` the network input.  Together with the domain (the file's header) they describe the
  region; rows may be redundant, and a row of zeros belongs to a neuron whose pre-activation is constant
  on the region.
* ``affine``: ``{"W": ..., "b": ...}``, the network's output ``W x + b`` on the region.
* ``inradius`` and ``inradius_center``: the largest ball inside the region and the domain (Euclidean, in
  the domain's parameters, as ``margin`` is; the centre as a network input), from one LP per region.
  ``margin`` is a certificate (some ball); ``inradius`` is the largest, so ``inradius >= margin``.  On an
  unbounded domain a region that holds a ball of radius :data:`UNBOUNDED_RADIUS` gets ``null``.

The file is rewritten whole or not at all: a pass stopped by its time limit or a signal leaves the
regions file as the count wrote it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..counting.model import pattern_ball
from ..domains import Domain, chebyshev_radius
from ..errors import InputError
from ..interrupts import stop_signals
from ..network import Network, unpack_pattern
from ..outputs import AtomicFile
from ..progress import Progress
from ..validation import optional_positive_finite

UNBOUNDED_RADIUS = 1e9
"""On an unbounded domain, the inradius LP is capped here; a region that reaches it is reported as
unbounded (inradius null)."""

MEANING = {
    "inequalities": "A x <= b on the closure of the region: one row per ReLU neuron (pattern order), x the "
                    "network input; the domain's own constraints are in the header",
    "affine": "the network output is W x + b on the region",
    "inradius": "radius of the largest ball inside the region and the domain (Euclidean, in the domain's "
                "parameters, like margin); null: unbounded",
    "inradius_center": "the centre of that ball, as a network input",
}


def region_detail(net: Network, domain: Domain, pattern: np.ndarray) -> dict:
    """The geometry of the region of ``pattern`` (module docstring: the keys and their meaning).

    Parameters
    ----------
    net : Network
        The network.
    domain : Domain
        The domain the region was counted in.
    pattern : numpy.ndarray
        The activation pattern (booleans, ``net.neurons`` entries).

    Returns
    -------
    dict
        ``inequalities``, ``affine``, ``inradius``, ``inradius_center`` (plain lists and floats).

    Examples
    --------
    >>> import numpy as np
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> net = random_mlp([1, 2], seed=0)
    >>> d = region_detail(net, Box(-1, 1, 1), net.patterns(np.zeros((1, 1)))[0])
    >>> sorted(d), len(d["inequalities"]["b"])
    (['affine', 'inequalities', 'inradius', 'inradius_center'], 2)
    """
    return _Detailer(net, domain)(pattern)


class _Detailer:
    """:func:`region_detail` for many regions of one network and domain (the radius cap computed once)."""

    def __init__(self, net: Network, domain: Domain) -> None:
        self.net, self.domain = net, domain
        # Within a box a region's ball is at most the box's own; elsewhere the LP needs a cap to be bounded.
        self.cap = chebyshev_radius(domain) if domain.bounded else UNBOUNDED_RADIUS

    def __call__(self, pattern: np.ndarray) -> dict:
        pattern = np.asarray(pattern, dtype=bool).reshape(-1)
        sign = np.where(pattern, -1.0, 1.0)  # active: -(a x + c) <= 0; inactive: a x + c <= 0
        A, c, W, w = self.net.region_map(pattern)
        # The counting rule's own LP: the largest ball in the region and the domain, in the domain's parameters.
        radius, center = pattern_ball(self.net, self.domain, pattern, cap=self.cap)
        bounded = self.domain.bounded or radius < self.cap * (1 - 1e-12)
        return {"inequalities": {"A": (sign[:, None] * A).tolist(), "b": (-sign * c).tolist()},
                "affine": {"W": W.tolist(), "b": w.tolist()},
                "inradius": float(radius) if bounded and math.isfinite(radius) else None,
                "inradius_center": None if center is None else self.domain.to_input(center)[0].tolist()}


@dataclass
class DetailResult:
    """What :func:`add_geometry_detail` did: ``regions`` detailed of ``total``; ``stopped`` None when the
    file was rewritten with every region's detail, else why it was left as it was."""

    regions: int
    total: int
    seconds: float
    stopped: str | None

    def to_dict(self) -> dict:
        return {"regions": self.regions, "total": self.total, "seconds": round(self.seconds, 6),
                "complete": self.stopped is None, "stopped": self.stopped, "meaning": MEANING}


class _Stop(Exception):
    pass


def add_geometry_detail(net: Network, domain: Domain, path: str | Path, *, time_limit: float | None = None,
                        progress: bool | None = False) -> DetailResult:
    """Add each region's geometry (:func:`region_detail`) to the regions file at ``path``, in place.

    Parameters
    ----------
    net : Network
        The network the file's regions belong to.
    domain : Domain
        The domain they were counted in.
    path : str or Path
        A regions file (:class:`lrmilp.regions.RegionWriter`).
    time_limit : float, optional
        Seconds for the pass; when they run out the file stays as it was (``stopped: "time_limit"``).
    progress : bool, optional
        A progress line on stderr.

    Returns
    -------
    DetailResult

    Raises
    ------
    InputError
        A file that is not a regions file of this network.
    """
    time_limit = optional_positive_finite("time_limit", time_limit)
    path = Path(path)
    t0 = time.perf_counter()
    with path.open(encoding="utf-8") as fh:
        total = sum(1 for _ in fh) - 1
    out = AtomicFile(path, "regions_out")
    bar = Progress("geometry detail", progress=progress)
    done, stopped = 0, None
    try:
        with stop_signals(lambda signum: _Stop()), path.open(encoding="utf-8") as fh:
            header = json.loads(fh.readline())
            if header.get("neurons") != net.neurons:
                raise InputError(f"{path} is not a regions file of this network ({header.get('neurons')} "
                                 f"neurons, the network has {net.neurons})", param="regions_out")
            out.write(json.dumps({**header, "geometry_detail": MEANING}) + "\n")
            detail = _Detailer(net, domain)
            for line in fh:
                if time_limit is not None and time.perf_counter() - t0 > time_limit:
                    stopped = "time_limit"
                    break
                rec = json.loads(line)
                pattern = unpack_pattern(bytes.fromhex(rec["pattern"]), net.neurons)
                out.write(json.dumps({**rec, **detail(pattern)}, allow_nan=False) + "\n")
                done += 1
                if bar.due():
                    bar.show(f"{done:,}/{total:,} regions")
            if stopped is None:
                out.commit()
    except _Stop:
        stopped = "interrupted"
    finally:
        out.discard()  # nothing once committed; else the count's file stays as it was
        bar.close()
    return DetailResult(done, total, time.perf_counter() - t0, stopped)
