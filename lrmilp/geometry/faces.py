"""Facets of every linear region (Fan et al. 2023), neuron facets and domain facets apart.

Each region the one-tree enumerator finds is the polyhedron {u : n_i . u <= r_i} of its pattern's
neuron hyperplanes (unit rows, signs from the pattern) and the domain's rows.  A row is a *facet* iff
the region's face on it holds a (d-1)-ball of radius > ``tol`` — the facet analogue of the region
tolerance of :mod:`lrmilp.tolerance`.  Decided per row, cheapest first:

1. rows whose hyperplane misses the domain's bounding box are redundant (no LP);
2. ray shooting from the region's interior point p, towards each row's hyperplane and in random
   directions: the first row a ray hits is a facet when the hit point is > tol from every other
   row's hyperplane (a ball of that radius around it, within the hyperplane, lies on the face);
3. the rest by one LP each: max t s.t. n_j u + t <= r_j (j != i), n_i u = r_i, t <= 1; a facet iff
   t > tol.  All LPs of a region run on one warm highspy model.

In the plane (a 2-D box of parameters, where the enumerator's cells are exact polygons) no LP is
needed: each region's polygon is clipped from its rows, every edge keeping its row, and a row is a
facet iff its edge is longer than 2 tol (:func:`polygon_facets`).  ``time_limit`` bounds the whole run,
enumeration and facets; a stopped run reports the regions whose facets it decided.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import highspy
import numpy as np

from ..domains import Domain
from ..lp.chebyshev import RADIUS_CAP
from ..domains import domain_rows
from ..search import TreeSearch
from ..network import balanced
from ..tolerance import resolve_tolerance
from ..errors import InputError
from ..formulations.highs import quiet_highs
from ..interrupts import stop_signals
from ..network import Network
from ..progress import Progress
from ..validation import int_at_least, one_of, optional_int_at_least, optional_positive_finite

TOL_MEANING = ("a region counts iff it holds a ball of radius > tol; a row is a facet iff the region's "
               "face on its hyperplane holds a (d-1)-ball of radius > tol (Euclidean, domain parameters)")
DUPLICATE_TOL = 1e-9
"""Rows whose unit normals and offsets agree to this tolerance are one hyperplane (one facet)."""
RAYS = 16
"""Random directions shot from each region's interior point, besides one towards each row."""
INF = highspy.kHighsInf
FACET_METHODS = ("auto", "polygon", "lp")
"""How facets are decided: ``polygon`` clips each region's exact polygon (2-D boxes, no LP), ``lp`` uses
bounding-box pruning, rays and one LP per remaining row; ``auto`` takes ``polygon`` where it applies."""


@dataclass
class FacesResult:
    """Facets per region: ``neuron_facets[k]`` and ``domain_facets[k]`` for region k."""

    neuron_facets: np.ndarray
    domain_facets: np.ndarray
    lps: int
    ray_certified: int
    pruned: int
    complete: bool
    tol: float
    seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def facets(self) -> np.ndarray:
        return self.neuron_facets + self.domain_facets

    def to_dict(self) -> dict:
        def hist(v):
            return {int(k): int(c) for k, c in sorted(Counter(v.tolist()).items())}

        n = len(self.facets)
        mean = (lambda v: float(v.mean()) if n else 0.0)
        return {"regions": n, "histogram": hist(self.facets), "mean_faces": mean(self.facets),
                "neuron_histogram": hist(self.neuron_facets), "mean_neuron_faces": mean(self.neuron_facets),
                "domain_histogram": hist(self.domain_facets), "mean_domain_faces": mean(self.domain_facets),
                "lps": int(self.lps), "ray_certified": int(self.ray_certified), "pruned": int(self.pruned),
                "complete": self.complete, "tol": self.tol, "tol_meaning": TOL_MEANING,
                "seconds": round(self.seconds, 6), **self.extra}


def region_faces(net: Network, domain: Domain, *, tol: float | None = None, rays: int = RAYS, seed: int = 0,
                 time_limit: float | None = None, max_regions: int | None = None,
                 progress: bool | None = None, method: str = "auto") -> FacesResult:
    """Facets of every region of ``net`` over ``domain``, counted separately for neuron and domain rows.

    Guarantees: the regions are those of ``count_regions(net, domain, tol=tol)``; each facet is decided
    exactly (polygon clipping in 2-D, else ray certificates or LP) with the tolerance meaning in
    ``TOL_MEANING``; several rows on one hyperplane count once (as a neuron facet if any of them is a
    neuron's).  SIGINT, SIGTERM or the time limit stop either phase at once (``stopped:
    "interrupted"`` or ``"time_limit"``, ``complete: false``): the result then covers the regions whose
    facets were computed (none if the enumeration was stopped), of ``regions_found``.

    Parameters
    ----------
    net : Network
        The network.
    domain : Domain
        The domain.
    tol : float, optional
        The region (and facet) tolerance; default 1e-9 of the domain's scale.
    rays : int
        Random rays per region for the LP-free facet certificates.
    seed : int
        Seed of the rays.
    time_limit : float, optional
        Seconds for the whole run (enumeration and facets).
    max_regions : int, optional
        Enumerate at most this many regions (the run is complete if the domain has no more).
    progress : bool or None
        Progress lines on stderr for both phases (None: when stderr is a terminal).
    method : {"auto", "polygon", "lp"}
        How facets are decided (:data:`FACET_METHODS`).

    Returns
    -------
    FacesResult

    Raises
    ------
    InputError
        A bad option; method ``polygon`` outside a 2-D box.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> region_faces(random_mlp([2, 3], seed=0), Box(-1, 1, 2)).to_dict()["regions"]
    4
    """
    t0 = time.perf_counter()
    if domain.input_dim != net.input_dim:
        raise InputError(f"domain has {domain.input_dim} inputs, network has {net.input_dim}")
    rays = int_at_least("rays", rays, 0)
    seed = int_at_least("seed", seed, 0)
    time_limit = optional_positive_finite("time_limit", time_limit)
    max_regions = optional_int_at_least("max_regions", max_regions, 1)
    one_of("method", method, FACET_METHODS, what="facet method")
    exact_polygons = _polygon_domain(domain)
    if method == "polygon" and not exact_polygons:
        raise InputError("facet method 'polygon' needs a 2-D box (or a plane's window)", param="method")
    use_polygons = exact_polygons and method != "lp"
    deadline = None if time_limit is None else t0 + time_limit  # the whole command, both phases
    net = balanced(net)  # the same regions; no overflow in norms
    tol = resolve_tolerance(net, domain, optional_positive_finite("tol", tol)).tol
    regions: list[tuple[np.ndarray, np.ndarray]] = []
    # One region more than max_regions is looked for: only a count that has more is incomplete.
    enum = TreeSearch(net, domain, tol=tol, time_limit=_left(deadline), progress=progress,
                      max_regions=None if max_regions is None else max_regions + 1,
                      on_region=lambda p, u, r: regions.append((p, u)))
    enum.run()
    stopped = enum.stopped
    if max_regions is not None and len(regions) > max_regions:
        del regions[max_regions:]
    dom_rows, dom_rhs = domain_rows(domain)
    rng = np.random.default_rng(seed)
    stats = Counter()
    nf, df = np.zeros(len(regions), dtype=int), np.zeros(len(regions), dtype=int)
    origin = domain.origin if domain.basis is not None else None
    done = 0
    if stopped not in ("interrupted", "time_limit"):  # a stopped user wants the partial result now
        try:
            with stop_signals(lambda signum: KeyboardInterrupt()), \
                    Progress("faces", progress=progress, total=len(regions), unit="regions") as bar:
                for k, (pattern, point) in enumerate(regions):
                    if deadline is not None and time.perf_counter() > deadline:
                        raise _TimeUp
                    if bar.due():
                        bar.show(f"{stats['lps']:,} LPs" if not use_polygons else "exact polygons, no LP", n=k)
                    A, c, _, _ = net.region_map(pattern, origin=origin, basis=domain.basis)
                    rows, rhs, is_dom = _h_rep(A, c, pattern, dom_rows, dom_rhs)
                    if use_polygons:
                        facet = polygon_facets(rows, rhs, domain.lo, domain.hi, tol)
                        stats["polygon"] += int(facet.sum())
                    else:
                        facet = _facets(rows, rhs, point, domain, tol, rng.normal(size=(rays, domain.dim)), stats,
                                        deadline)
                    nf[k] = int(np.count_nonzero(facet & ~is_dom))
                    df[k] = int(np.count_nonzero(facet & is_dom))
                    done = k + 1
        except KeyboardInterrupt:
            stopped = "interrupted"
        except _TimeUp:
            stopped = "time_limit"
    return FacesResult(nf[:done], df[:done], stats["lps"], stats["ray"], stats["pruned"], stopped is None, tol,
                       time.perf_counter() - t0,
                       {"stopped": stopped, "regions_found": len(regions), "enumeration_complete": enum.stopped is None
                        or (enum.stopped == "max_regions" and max_regions is not None and len(regions) < max_regions),
                        "facet_method": "polygon" if use_polygons else "lp", "polygon_facets": stats["polygon"],
                        "time_limit": time_limit})


class _TimeUp(Exception):
    """The time limit of :func:`region_faces` passed during the facet phase."""


def _left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (perf_counter), at least a millisecond; None without one."""
    return None if deadline is None else max(deadline - time.perf_counter(), 1e-3)


def _polygon_domain(domain: Domain) -> bool:
    """Are the regions polygons clipped from a 2-D box of parameters (the polygon geometry's case)?"""
    return domain.dim == 2 and domain.bounded and domain.A_ub.shape[0] == 0


def polygon_facets(rows: np.ndarray, rhs: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float) -> np.ndarray:
    """Facets of the polygon {u : rows u <= rhs} inside the 2-D box [lo, hi], exactly, with no LP.

    The polygon is clipped from a square around the box by every row in turn, each edge keeping the
    row it lies on; row i is a facet iff its edge is longer than 2 tol (a 1-ball of radius > tol lies on
    it: the facet rule of ``TOL_MEANING`` in the plane).

    Parameters
    ----------
    rows, rhs : numpy.ndarray
        The polygon's half-planes ``rows[i] . u <= rhs[i]`` (the box's own rows among them).
    lo, hi : numpy.ndarray
        The box (the clipping starts from a square holding it).
    tol : float
        The facet tolerance.

    Returns
    -------
    numpy.ndarray
        ``facet[i]`` for every row.

    Examples
    --------
    >>> import numpy as np
    >>> rows = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [1.0, 1.0]])
    >>> polygon_facets(rows, np.array([1.0, 1.0, 1.0, 1.0, 5.0]), -np.ones(2), np.ones(2), 1e-9).tolist()
    [True, True, True, True, False]
    """
    centre, half = (lo + hi) / 2.0, (hi - lo)  # twice the box: no edge of the start square survives
    poly = centre + half * np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    label = np.full(4, -1)  # label[j]: the row of the edge from vertex j to vertex j + 1
    left = np.arange(len(rows))
    while len(left) and len(poly):
        slack = rhs[left] - poly @ rows[left].T  # (vertices, rows left)
        deepest = slack.min(axis=0)
        # A row that cuts nothing off now never will (the polygon only shrinks): drop it.  Clipping the
        # deepest cut first shrinks the polygon fastest, so few rounds remain.
        j = int(np.argmin(deepest))
        if deepest[j] >= 0:
            break
        poly, label = _clip(poly, label, slack[:, j], int(left[j]))
        keep = deepest < 0
        keep[j] = False
        left = left[keep]
    facet = np.zeros(len(rows), dtype=bool)
    if len(poly) >= 3:
        lengths = np.linalg.norm(np.roll(poly, -1, axis=0) - poly, axis=1)
        facet[label[(label >= 0) & (lengths > 2.0 * tol)]] = True
    return facet


def _clip(poly: np.ndarray, label: np.ndarray, slack: np.ndarray, row: int) -> tuple[np.ndarray, np.ndarray]:
    """Sutherland-Hodgman step: the part of ``poly`` where ``slack >= 0``, with its edges' labels (the
    new edge, along the clipping line, gets ``row``)."""
    out, lab = [], []
    n = len(poly)
    for j in range(n):
        q = (j + 1) % n
        sp, sq = slack[j], slack[q]
        if sp >= 0:
            out.append(poly[j])
            lab.append(label[j])
        if (sp >= 0) != (sq >= 0):
            out.append(poly[j] + (poly[q] - poly[j]) * (sp / (sp - sq)))
            lab.append(row if sp >= 0 else label[j])  # leaving: along the clip line; entering: rest of edge j
    return np.array(out).reshape(-1, 2), np.array(lab, dtype=int)


def _h_rep(A, c, pattern, dom_rows, dom_rhs):
    """Unit rows n u <= r of the region (neurons first, then domain rows), one row per hyperplane."""
    norms = np.linalg.norm(A, axis=1)
    live = norms > 1e-12 * max(float(norms.max(initial=0.0)), 1e-300)  # constant neurons bound nothing
    s = np.where(pattern, 1.0, -1.0)[live]
    rows = np.concatenate([-(s[:, None] * A[live]) / norms[live, None], dom_rows])
    rhs = np.concatenate([s * c[live] / norms[live], dom_rhs])
    is_dom = np.r_[np.zeros(int(live.sum()), dtype=bool), np.ones(len(dom_rhs), dtype=bool)]
    key = np.round(np.c_[rows, rhs] / DUPLICATE_TOL).astype(np.int64)
    _, first = np.unique(key, axis=0, return_index=True)
    first = np.sort(first)  # neuron rows come first, so a shared hyperplane is a neuron's
    return rows[first], rhs[first], is_dom[first]


def _facets(rows, rhs, point, domain, tol, random_dirs, stats, deadline=None) -> np.ndarray:
    m = len(rows)
    facet = np.zeros(m, dtype=bool)
    undecided = np.ones(m, dtype=bool)
    if domain.bounded:  # hyperplanes missing the domain's box are implied by the box rows
        lo, hi = domain.lo, domain.hi
        high_end = np.where(rows > 0, rows * hi, rows * lo).sum(axis=1)
        miss = high_end < rhs  # the whole box is strictly inside: the box rows imply this row
        undecided &= ~miss
        stats["pruned"] += int(miss.sum())
    # ray shooting: first hyperplane hit along each direction
    slack = rhs - rows @ point
    dirs = np.concatenate([rows[undecided], random_dirs])
    speed = dirs @ rows.T  # (dirs, rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(speed > 0, slack / speed, np.inf)
    first = np.argmin(t, axis=1)
    tf = t[np.arange(len(dirs)), first]
    hit = np.isfinite(tf)
    left = slack[None, :] - tf[:, None] * speed  # slack of every row at the hit point
    left[np.arange(len(dirs)), first] = np.inf
    sure = hit & (left.min(axis=1, initial=np.inf) > tol)
    certified = np.unique(first[sure])
    certified = certified[undecided[certified]]
    facet[certified] = True
    undecided[certified] = False
    stats["ray"] += len(certified)
    todo = np.flatnonzero(undecided)
    if len(todo):
        facet[todo] = _facet_lps(rows, rhs, todo, tol, deadline, stats)
    return facet


def _facet_lps(rows: np.ndarray, rhs: np.ndarray, todo: np.ndarray, tol: float, deadline: float | None,
               stats: Counter) -> np.ndarray:
    """One LP per row in ``todo`` on one warm model: is the face on row i (d-1)-dimensional beyond tol?
    Raises :class:`_TimeUp` once ``deadline`` (perf_counter) passes: a region of many rows takes many LPs."""
    m, d = rows.shape
    h = quiet_highs(presolve=False)
    h.addVars(d + 1, np.r_[np.full(d, -INF), -INF], np.r_[np.full(d, INF), RADIUS_CAP])
    h.changeColCost(d, 1.0)
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    idx = np.arange(d + 1, dtype=np.int32)
    for a, r in zip(rows, rhs):
        h.addRow(-INF, float(r), d + 1, idx, np.r_[a, 1.0])
    out = np.zeros(len(todo), dtype=bool)
    for k, i in enumerate(todo):
        if deadline is not None and time.perf_counter() > deadline:
            raise _TimeUp
        stats["lps"] += 1
        h.changeCoeff(int(i), d, 0.0)
        h.changeRowBounds(int(i), float(rhs[i]), float(rhs[i]))
        h.run()
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kOptimal:
            out[k] = h.getInfo().objective_function_value > tol
        elif status != highspy.HighsModelStatus.kInfeasible:
            raise RuntimeError(f"HiGHS failed on a facet LP: {h.modelStatusToString(status)}")
        h.changeCoeff(int(i), d, 1.0)
        h.changeRowBounds(int(i), -INF, float(rhs[i]))
    return out
