"""The one-tree enumerator: every full-dimensional linear region of a ReLU network over a domain.

One depth-first search over activation states, layer by layer, neuron by neuron, never restarted.
A node is the polytope P of a partial pattern in parameter space u (see :mod:`lrmilp.domains`):
each decided neuron i contributes s_i (a_i u + c_i) >= 0, with a_i u + c_i its pre-activation under
the earlier layers' fixed states.  Every node carries a *ball certificate* (centre, radius): a ball
inside P of radius > ``tol``.  A region is counted iff its polytope contains a ball of radius > tol
(Euclidean, in parameter space) — the meaning of ``tol`` in every result.

Deciding neuron j at a node, cheapest test first:

1. its sign is fixed on the whole domain (bounds from :mod:`lrmilp.bounds`), or its pre-activation
   is constant under the current pattern (a_j = 0), or its range over the domain's bounding box
   leaves the other side thinner than tol: one child, no LP;
2. the hyperplane a_j u + c_j = 0 cuts the node's ball so that both parts hold a ball of radius
   > tol: both children exist, each gets a smaller ball, no LP;
3. otherwise the side holding the ball's centre exists (no LP) and one LP — maximise the margin t
   of a ball inside P and the other side — decides the other child and gives it an exact ball.

Rows for hyperplanes that provably miss P are never added, so LPs stay small.  All LPs run on one
warm-started highspy model whose rows follow the search path (added on the way down, deleted on the
way up).  That is the ``lp`` geometry, for any domain.  Low dimensions decide every hyperplane
exactly without LPs (:func:`choose_geometry`): ``polygon`` (d <= 2 over a box) carries each node's
polygon (interval in 1-D); ``vertex`` (3 <= d <= VERTEX_MAX_DIM, bounded) carries each node's
vertices (:class:`_VertexCell`).  Higher-dimensional bounded domains use ``batch``
(:mod:`lrmilp.frontier`): the same tests, but inside a node a layer's neurons are decided for all of
the node's sub-cells at once, with the LPs of one step solved together by a vectorised dense dual
simplex (:func:`lrmilp.chebyshev.solve_batch`); XOR-constrained searches (lower bounds) and unbounded
domains use ``lp``.
"""

from __future__ import annotations

import math
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .bounds import Bounds, interval_bounds
from . import frontier
from .blas import single_blas_thread
from .chebyshev import HighsChebyshevLP, chebyshev_ball
from .domains import Domain
from .interrupts import stop_signals
from .network import Network
from .parity import ParityState
from .regions import RegionWriter, read_regions  # noqa: F401  (re-exported: they lived here)
from .tolerance import Tolerance, resolve_tolerance

ZERO_TOL = 1e-10
"""A pre-activation is constant on a node when |a_j| <= ZERO_TOL * sum_i |W_ji| |a_i(prev)|, i.e. its
gradient is zero up to the rounding of the products that formed it."""
BALL_SLACK = 1e-9
"""Banked balls are shrunk by this relative amount, so LP optima that touch constraints up to
solver tolerance still certify a ball strictly inside."""
VERTEX_MAX_DIM = 6
"""Bounded domains of dimension 3..VERTEX_MAX_DIM use vertex geometry: every node holds its cell's
vertices, so every hyperplane test is exact arithmetic and LPs are needed only for thin cells."""
_BITS = [np.uint64(1 << b) for b in range(64)]  # row bit masks, made once: np.uint64() per split is not free



class _Stop(Exception):
    """Unwinds the search when a limit is hit."""


@dataclass
class TreeStats:
    regions: int = 0
    nodes: int = 0
    lps: int = 0
    lps_empty: int = 0  # LPs whose other side turned out empty: the waste to drive down
    ball_splits: int = 0  # both children certified by the ball, no LP
    bound_skips: int = 0  # neurons decided by bounds or constancy, no LP
    bank_hits: int = 0  # far sides certified by a banked ball, no LP
    lp_fallbacks: int = 0  # batched LPs the dense simplex could not certify, re-solved by HiGHS
    thin_dropped: int = 0  # candidate cells that exist (radius > noise) but hold no ball > tol
    min_margin: float = math.inf  # smallest certified ball radius of a counted region

    def add(self, other: "TreeStats") -> None:
        for key, value in vars(other).items():
            if key == "min_margin":
                self.min_margin = min(self.min_margin, value)
            else:
                setattr(self, key, getattr(self, key) + value)

    def to_dict(self) -> dict:
        """The counters as plain JSON values (min_margin None while no region was counted)."""
        out = vars(self).copy()
        out["min_margin"] = None if math.isinf(self.min_margin) else float(self.min_margin)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "TreeStats":
        d = dict(d)
        d["min_margin"] = math.inf if d.get("min_margin") is None else float(d["min_margin"])
        return cls(**d)


@dataclass
class CountResult:
    """The outcome of a count; ``regions`` is exact when ``complete``, else a valid lower bound."""

    regions: int
    complete: bool
    method: str
    seconds: float
    lps: int
    tol: float
    tol_meaning: str
    stopped: str | None = None
    nodes: int = 0
    extra: dict = field(default_factory=dict)
    thin_dropped: int = 0
    """Candidate cells met that exist (radius above rounding noise) but hold no ball of radius > tol:
    0 means the count does not depend on tol; > 0 means a smaller tol would count more."""
    min_margin: float | None = None
    """The smallest certified ball radius of a counted region (None if none was counted)."""

    def to_dict(self) -> dict:
        out = {"regions": int(self.regions), "complete": bool(self.complete), "method": self.method,
               "seconds": round(self.seconds, 6), "lps": int(self.lps), "tol": self.tol,
               "tol_meaning": self.tol_meaning, "nodes": int(self.nodes), "stopped": self.stopped,
               "thin_dropped": int(self.thin_dropped), "min_margin": self.min_margin}
        if self.regions:
            out["lps_per_region"] = round(self.lps / self.regions, 4)
        out.update(self.extra)
        return out


def tree_result(stats: TreeStats, *, stopped: str | None, seconds: float, tolerance: Tolerance, geometry: str,
                bounds: Bounds, domain: Domain, **extra) -> CountResult:
    """The CountResult of a (serial or parallel) tree search."""
    tinfo = tolerance.describe()
    return CountResult(stats.regions, stopped is None, "tree", seconds, stats.lps, tolerance.tol, tinfo["tol_meaning"],
                       stopped, stats.nodes,
                       extra={"geometry": geometry, "tol_scale": tinfo["tol_scale"], "tol_source": tinfo["tol_source"],
                              "lps_empty": stats.lps_empty, "ball_splits": stats.ball_splits,
                              "bound_skips": stats.bound_skips, "bank_hits": stats.bank_hits,
                              "lp_fallbacks": stats.lp_fallbacks,
                              "bound_method": bounds.method, "bound_lps": bounds.lps, "domain": domain.describe(),
                              **extra},
                       thin_dropped=stats.thin_dropped,
                       min_margin=None if math.isinf(stats.min_margin) else float(stats.min_margin))


def domain_rows(domain: Domain) -> tuple[np.ndarray, np.ndarray]:
    """The domain as unit-normal rows a u <= r (box faces and A_ub rows)."""
    d = domain.dim
    rows, rhs = [], []
    eye = np.eye(d)
    for i in range(d):
        if np.isfinite(domain.hi[i]):
            rows.append(eye[i]); rhs.append(domain.hi[i])
        if np.isfinite(domain.lo[i]):
            rows.append(-eye[i]); rhs.append(-domain.lo[i])
    for a, b in zip(domain.A_ub, domain.b_ub):
        nrm = np.linalg.norm(a)
        if nrm > 0:
            rows.append(a / nrm); rhs.append(b / nrm)
    return np.array(rows).reshape(-1, d), np.array(rhs)


def choose_geometry(domain: Domain) -> str:
    """``polygon`` (d <= 2, box), ``vertex`` (d <= VERTEX_MAX_DIM, bounded), ``dual`` (a box of higher
    dimension), ``batch`` (another bounded domain) or ``lp``."""
    if domain.dim <= 2 and domain.bounded and domain.A_ub.shape[0] == 0:
        return "polygon"
    if domain.dim <= VERTEX_MAX_DIM and domain.bounded:
        return "vertex"
    if domain.bounded and domain.A_ub.shape[0] == 0:
        return "dual"
    return "batch" if domain.bounded else "lp"


def settled_by_bounds(setup, node_bounds: tuple[np.ndarray, np.ndarray], tol: float, noise: float = 0.0
                      ) -> tuple[np.ndarray, np.ndarray, int]:
    """Per neuron of a layer (``setup`` from ``TreeEnumerator._layer_setup``): 1/0 when its sign is
    settled on the whole node by constancy or by ``node_bounds`` (the other side thinner than tol), -1
    otherwise; whether a settled neuron keeps its row (a sliver of the other side may exist, so
    children must never stray into it); and how many such slivers may be thicker than ``noise`` (thin
    candidates: the bounds do not say whether they exist)."""
    A, c, _, safe, const = setup
    lo_b, hi_b = node_bounds
    fixed = np.full(A.shape[0], -1, dtype=np.int8)
    fixed[const] = np.where(c[const] > 0, 1, 0)
    inact = ~const & (hi_b <= tol * safe)
    act = ~const & ~inact & (-lo_b <= tol * safe)
    fixed[inact], fixed[act] = 0, 1
    row = (inact & (hi_b > 0)) | (act & (lo_b < 0))
    thin = int(np.sum((inact & (hi_b > noise * safe)) | (act & (-lo_b > noise * safe))))
    return fixed, row, thin


class _LayerPlan:
    """Per layer entry: neurons fixed on the whole cell, and a bank of balls certified inside it.

    ``fixed[j]`` is 1/0 for a neuron whose sign is settled on the cell (``row[j]``: a sliver of the
    other side exists, so its row is still added), -1 for a neuron the cell's sub-cells must decide.
    Bank balls are kept with their signed distances to every hyperplane of the layer, so "is this
    ball inside the current sub-cell and beyond hyperplane j" is a few vector comparisons.
    """

    __slots__ = ("A", "c", "safe", "fixed", "row", "centers", "radii", "dist", "path", "order")

    def __init__(self, A: np.ndarray, c: np.ndarray, safe: np.ndarray, center: np.ndarray, radius: float) -> None:
        n = A.shape[0]
        self.A, self.c, self.safe = A, c, safe
        self.fixed = np.full(n, -1, dtype=np.int8)
        self.row = np.zeros(n, dtype=bool)
        self.centers = center[None, :].copy()
        self.radii = np.array([radius * (1 - BALL_SLACK)])
        self.dist = ((A @ center + c) / safe)[None, :]
        self.path: list[tuple[int, float]] = []  # (neuron, sign) of this layer's rows on the search path
        self.order = np.arange(n)  # the order the layer's neurons are branched in

    def add(self, center: np.ndarray, radius: float) -> None:
        self.centers = np.vstack([self.centers, center])
        self.radii = np.append(self.radii, radius * (1 - BALL_SLACK))
        self.dist = np.vstack([self.dist, (self.A @ center + self.c) / self.safe])

    def find(self, j: int, side: bool, path: list[tuple[int, float]] | None) -> tuple[np.ndarray, float] | None:
        """A banked ball inside the sub-cell of ``path`` and on side ``side`` of hyperplane j."""
        r = self.radii
        ok = (self.dist[:, j] if side else -self.dist[:, j]) >= r
        if not ok.any():
            return None
        if path:
            cand = np.flatnonzero(ok)
            idx = [i for i, _ in path]
            sg = np.array([s for _, s in path])
            inside = np.all(self.dist[np.ix_(cand, idx)] * sg >= r[cand, None], axis=1)
            if not inside.any():
                return None
            ok = np.zeros_like(ok)
            ok[cand[inside]] = True
        b = int(np.argmax(np.where(ok, r, -1.0)))
        return self.centers[b], float(r[b])


class TreeEnumerator:
    """Depth-first enumeration of the regions of ``net`` over ``domain`` (see the module docstring).

    Call :meth:`run`; ``on_region(pattern, point_u, margin)`` sees each region as it is found.
    ``tol`` is a :class:`~lrmilp.tolerance.Tolerance`, an absolute tol, or None for the relative default
    (:mod:`lrmilp.tolerance`).  ``net`` should be :func:`~lrmilp.network.balanced` (and ``bounds``
    computed on it): the public counting functions do that.
    """

    def __init__(self, net: Network, domain: Domain, *, tol: "float | Tolerance | None" = None,
                 bounds: Bounds | None = None,
                 on_region: Callable[[np.ndarray, np.ndarray, float], None] | None = None,
                 time_limit: float | None = None, max_regions: int | None = None,
                 progress: bool = False, geometry: str = "auto", parity: "ParityState | None" = None,
                 on_split: Callable[[int, np.ndarray], None] | None = None) -> None:
        self.tolerance = tol if isinstance(tol, Tolerance) else resolve_tolerance(net, domain, tol)
        self.net, self.domain, self.tol = net, domain, self.tolerance.tol
        self.noise = self.tolerance.noise  # radii at or below this are flat, not thin
        self.cap = self.tolerance.cap
        # Points within rounding noise of a hyperplane lie on it when a cell is clipped (far below tol,
        # so a ball certified inside a cell is off by a negligible part of tol at most).
        eps = self.noise
        self.vertex_eps = eps
        self._on_plane = np.array([-eps, np.nextafter(eps, np.inf)])  # searchsorted cuts: below | on | above
        self.bounds = bounds if bounds is not None else interval_bounds(net, domain)
        self.on_region = on_region
        self.max_regions = max_regions
        self.progress = progress
        # Work splitting (lrmilp.parallel): once perf_counter() passes split_after, every node that
        # enters a layer below the start layer is handed to on_split(k, prefix) instead of explored.
        self.on_split = on_split
        self.split_after: float | None = None
        self._start_layer = 0
        self.stats = TreeStats()
        self.stopped: str | None = None
        # XOR constraints on the pattern (lrmilp.parity): only regions satisfying them are visited;
        # the state follows the search path, so the recursion saves and restores it.
        self.par = parity
        d = domain.dim
        # Layers up to the last ReLU layer create regions; later linear layers add none.
        relu = net.relu_layers
        self.layers = net.layers[:relu[-1] + 1] if relu else []
        self.mats = [layer.matrix for layer in self.layers]
        self.absmats = [abs(m) for m in self.mats]
        self.offsets = net.relu_offsets
        self.pattern = np.zeros(net.neurons, dtype=bool)
        self.box_lo, self.box_hi = (domain.lo, domain.hi) if domain.bounded else (None, None)
        self.geometry = choose_geometry(domain) if geometry == "auto" else geometry
        if self.geometry == "batch" and parity is not None:
            self.geometry = "lp"  # XOR propagation follows one path at a time
        if self.geometry in ("batch", "dual") and not domain.bounded:
            raise ValueError(f"{self.geometry} geometry needs a bounded domain")
        if self.geometry == "dual" and domain.A_ub.shape[0]:
            raise ValueError("dual geometry needs a box domain (no polytope rows)")
        self._skip: tuple[int, int, set] | None = None  # (offset, width, layer states) a fallback must not count again
        self.rows, self.rhs = domain_rows(domain)
        self.lp = HighsChebyshevLP(d, self.rows, self.rhs, cap=self.cap) if self.geometry == "lp" else None
        self._t0 = time.perf_counter()
        self._next_report = self._t0 + 1.0
        self.deadline = None if time_limit is None else time.time() + time_limit  # wall clock, shared with workers

    # --- limits and progress ------------------------------------------------------------------
    def _check(self) -> None:
        now = time.perf_counter()
        if self.deadline is not None and time.time() > self.deadline:
            self.stopped = "time_limit"
            raise _Stop
        if self.progress and now >= self._next_report:
            el = now - self._t0
            s = self.stats
            print(f"\r[lrmilp] regions {s.regions:,}  nodes {s.nodes:,}  LPs {s.lps:,} ({s.lps / el:,.0f}/s)  "
                  f"{el:,.0f}s", end="", file=sys.stderr, flush=True)
            self._next_report = now + 1.0

    def _parity(self, neuron: int, state: bool) -> bool:
        """Record a decided neuron in the XOR state; False when the XORs forbid that state."""
        if self.par is None:
            return True
        new = self.par.assign(neuron, int(state))
        if new is None:
            return False
        self.par = new
        return True

    def _follow(self, neuron: int, state: bool, explore: Callable, *args) -> None:
        """``explore(*args)``, the child where ``neuron`` has ``state``, unless the XORs forbid that
        state; the XOR state is the caller's again afterwards."""
        par = self.par
        if self._parity(neuron, state):
            explore(*args)
        self.par = par

    def _thin(self, radius: float) -> None:
        """A candidate cell whose largest ball has radius ``radius`` <= tol is not counted: note it as
        thin when it exists at all (radius above rounding noise)."""
        if radius > self.noise:
            self.stats.thin_dropped += 1

    def _emit(self, center: np.ndarray, radius: float) -> None:
        if self._skip is not None:
            off, n, seen = self._skip
            if self.pattern[off:off + n].tobytes() in seen:
                return  # counted already by the search this fallback redoes
        self.stats.regions += 1
        if radius < self.stats.min_margin:
            self.stats.min_margin = radius
        if not self.stats.regions & 63:
            self._check()
        if self.on_region is not None:
            self.on_region(self.pattern.copy(), center, radius)
        if self.max_regions is not None and self.stats.regions >= self.max_regions:
            self.stopped = "max_regions"
            raise _Stop

    # --- entry --------------------------------------------------------------------------------
    def run(self) -> TreeStats:
        """Enumerate the whole tree: the root node, no neuron decided."""
        if self.geometry == "polygon":
            try:
                with _sigint_stops(self), single_blas_thread():
                    cell = _box_polygon(self.domain.lo, self.domain.hi)
                    if _inradius_polygon(cell, self.tol) > self.tol:
                        self._layer_poly(0, *self._input_map(), cell)
            except _Stop:
                pass
        else:
            self.run_prefix(0, self.pattern)
        if self.progress:
            print(file=sys.stderr)
        return self.stats

    def _input_map(self) -> tuple[np.ndarray, np.ndarray]:
        """The network input as M u + m of the domain parameters u."""
        d = self.domain.dim
        if self.domain.basis is None:
            return np.eye(d), np.zeros(d)
        return self.domain.basis, self.domain.origin

    def prefix_of(self, k: int) -> np.ndarray:
        """The current pattern with every neuron of layer k and later cleared: a node's task key."""
        p = self.pattern.copy()
        p[self._prefix_len(k):] = False
        return p

    def _prefix_len(self, k: int) -> int:
        """How many pattern entries the ReLU layers before layer k hold."""
        return sum(layer.out_size for layer in self.layers[:k] if layer.relu)

    def run_prefix(self, k: int, prefix: np.ndarray) -> TreeStats:
        """Enumerate the subtree of the node entering layer k whose earlier ReLU neurons have the
        states ``prefix`` (pattern order; entries of layer k and later are ignored).

        The node is rebuilt from the prefix alone — the polytope of those states, with a fresh ball
        (one LP) or vertex set — so a task is pure data: the same regions as the node a search
        reaches with that prefix.  Counts add to ``stats``.
        """
        if self.geometry == "polygon":
            raise ValueError("prefix tasks need LP or vertex geometry")
        M, m = self._input_map()
        self.pattern[:] = False
        n = self._prefix_len(k)
        self.pattern[:n] = prefix[:n]
        hyper = []  # (unit normal, offset, state) of every non-constant neuron decided by the prefix
        for j in range(k):
            if not self.layers[j].relu:
                M, m = self._affine(j, M, m)
                continue
            A, c, norms, safe, const = self._layer_setup(j, M, m)
            states = self.pattern[self.offsets[j]:self.offsets[j] + A.shape[0]]
            for i in np.flatnonzero(~const):
                hyper.append((A[i] / norms[i], c[i] / norms[i], bool(states[i])))
            M, m = A * states[:, None], c * states
        self._start_layer = k
        try:
            with _sigint_stops(self), single_blas_thread():
                self._check()
                if self.geometry == "lp":
                    for unit, cu, st in hyper:
                        self.lp.push(*self._row(unit, cu, 1.0, st))
                    t, u = self.lp.solve()
                    self.stats.lps += 1
                    if t > self.tol:
                        self._layer(k, M, m, u, t)
                elif self.geometry == "batch":
                    node = frontier.root_node(self, hyper)
                    if node is not None:
                        self._layer_batch(k, M, m, node)
                elif self.geometry == "dual":
                    node = self._dual().root(hyper)
                    if node is not None:
                        self._layer_dual(k, M, m, node)
                else:
                    box = (self.domain.lo, self.domain.hi) if self.domain.A_ub.shape[0] == 0 else None
                    cell = _VertexCell.of_domain(self.rows, self.rhs, box)
                    for unit, cu, st in hyper:
                        if cell is None:
                            break
                        h = np.append(unit, cu)  # homogeneous row: h (u, 1) = unit u + cu
                        cell = cell.clip(h, st, cell.V @ h, self._on_plane)
                    if cell is not None and self._cell_ball(cell)[1] > self.tol:
                        self._layer_vert(k, M, m, cell)
        except _Stop:
            pass
        while self.lp is not None and self.lp.stack:  # a stopped search leaves its path's rows behind
            self.lp.pop()
        self._start_layer = 0
        return self.stats

    def _split_here(self, k: int) -> bool:
        """Hand this node (entering layer k) out as a task instead of exploring it?"""
        if (self.split_after is None or k <= self._start_layer or k >= len(self.layers)
                or time.perf_counter() < self.split_after):
            return False
        self.on_split(k, self.prefix_of(k))
        return True

    # --- LP geometry ----------------------------------------------------------------------------
    def _affine(self, k: int, M: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Layer k's pre-activations as A u + c, given its input as M u + m."""
        return np.asarray(self.mats[k] @ M), np.asarray(self.mats[k] @ m).reshape(-1) + self.layers[k].bias

    def _layer_setup(self, k: int, M: np.ndarray, m: np.ndarray):
        """Layer k's hyperplanes under the node's pattern: (A, c, norms, safe norms, constant mask)."""
        A, c = self._affine(k, M, m)
        norms = np.sqrt(np.einsum("ij,ij->i", A, A))
        scale = np.asarray(self.absmats[k] @ np.sqrt(np.einsum("ij,ij->i", M, M))).reshape(-1)
        const = norms <= ZERO_TOL * np.maximum(scale, 1e-300)
        return A, c, norms, np.where(const, 1.0, norms), const

    def _node_bounds(self, k: int, A: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on layer k's pre-activations valid on the whole node: the global bounds (indexed by
        network layer; self.layers is a prefix of net.layers), met with the range over the domain's
        bounding box."""
        lo_b, hi_b = self.bounds.lower[k], self.bounds.upper[k]
        if self.box_lo is not None:
            Ap, An = np.maximum(A, 0.0), np.minimum(A, 0.0)
            lo_b = np.maximum(lo_b, Ap @ self.box_lo + An @ self.box_hi + c)
            hi_b = np.minimum(hi_b, Ap @ self.box_hi + An @ self.box_lo + c)
        return lo_b, hi_b

    def _layer(self, k: int, M: np.ndarray, m: np.ndarray, center: np.ndarray, radius: float) -> None:
        """Enumerate layers k.. below a node whose ball is (center, radius)."""
        if k == len(self.layers):
            self._emit(center, radius)
            return
        if self.split_after is not None and self._split_here(k):
            return
        self.stats.nodes += 1
        self._check()
        layer = self.layers[k]
        if not layer.relu:
            self._layer(k + 1, *self._affine(k, M, m), center, radius)
            return
        setup = self._layer_setup(k, M, m)
        plan = self._plan_layer(setup, self._node_bounds(k, *setup[:2]), center, radius)
        self._neuron(k, 0, setup, plan, np.zeros(layer.out_size, dtype=bool), center, radius)

    def _layer_batch(self, k: int, M: np.ndarray, m: np.ndarray, node: "frontier.Node") -> None:
        """Enumerate layers k.. below ``node`` in batch geometry (:mod:`lrmilp.frontier`)."""
        if k == len(self.layers):
            self._emit(node.center, node.radius)
            return
        if self.split_after is not None and self._split_here(k):
            return
        self.stats.nodes += 1
        self._check()
        if not self.layers[k].relu:
            self._layer_batch(k + 1, *self._affine(k, M, m), node)
            return
        frontier.explore(self, k, M, m, node)

    def _dual(self):
        """The compiled search of the ``dual`` geometry (built on first use: it imports numba)."""
        if getattr(self, "_dual_search", None) is None:
            from .dualgeom import DualSearch
            self._dual_search = DualSearch(self)
        return self._dual_search

    def _layer_dual(self, k: int, M: np.ndarray, m: np.ndarray, node) -> None:
        """Enumerate layers k.. below ``node`` in dual geometry (:mod:`lrmilp.dualgeom`)."""
        if k == len(self.layers):
            self._emit(node.w, node.t)
            return
        if self.split_after is not None and self._split_here(k):
            return
        self.stats.nodes += 1
        self._check()
        if not self.layers[k].relu:
            self._layer_dual(k + 1, *self._affine(k, M, m), node)
            return
        from .dualgeom import explore
        explore(self, self._dual(), k, M, m, node)

    def _redo_with_highs(self, k: int, M: np.ndarray, m: np.ndarray, node, emitted: set) -> None:
        """Redo a node the compiled search could not finish with the ``lp`` geometry (HiGHS), counting
        only the children of layer k it had not emitted yet."""
        if self.lp is None:
            self.lp = HighsChebyshevLP(self.domain.dim, self.rows, self.rhs, cap=self.cap)
        for i in range(node.m):
            self.lp.push(node.S.G[i].copy(), float(node.S.r[i]))
        saved = self._skip
        self._skip = (self.offsets[k], self.layers[k].out_size, emitted)
        try:
            t, u = self.lp.solve()
            self.stats.lps += 1
            if t > self.tol:
                self._layer(k, M, m, u, t)
        finally:
            self._skip = saved
            if self.stopped is None:
                for _ in range(node.m):
                    self.lp.pop()

    def _plan_layer(self, setup, node_bounds, center: np.ndarray, radius: float) -> "_LayerPlan":
        """Decide, once for the node's whole cell P, every neuron of the layer that P does not split.

        A hyperplane that misses P would otherwise cost one LP in every sub-cell the layer's other
        neurons cut P into; here it costs at most one.  The far-side balls found are banked.
        """
        A, c, norms, safe, const = setup
        tol = self.tol
        plan = _LayerPlan(A, c, safe, center, radius)
        plan.fixed[:], plan.row[:], thin = settled_by_bounds(setup, node_bounds, tol, self.noise)
        self.stats.thin_dropped += thin
        fixed = plan.fixed
        self.stats.bound_skips += int(np.sum(fixed >= 0))
        live = np.flatnonzero(fixed < 0)
        delta = (A[live] @ center + c[live]) / norms[live]
        for j, dl in zip(live, delta):
            dist = abs(dl)
            s_center = bool(dl > 0)
            if dist < radius and (radius - dist) / 2 > tol:
                continue  # the ball proves both sides
            if plan.find(j, not s_center, None) is not None:
                continue
            row, rhs = self._row(A[j], c[j], norms[j], not s_center)
            self.lp.push(row, rhs)
            t, u = self.lp.solve()
            self.lp.pop()
            self.stats.lps += 1
            if t > tol:
                plan.add(u, t)
            else:
                self.stats.lps_empty += 1
                self._thin(t)
                fixed[j] = 1 if s_center else 0
                plan.row[j] = t > 0
        # Branch on peripheral hyperplanes first: one far from the cell's centre cuts few sub-cells,
        # so deciding it early tests it on fewer of them (fewer LPs that only prove a miss).
        live = np.flatnonzero(fixed < 0)
        far_first = live[np.argsort(-np.abs(plan.dist[0, live]))]
        plan.order = np.concatenate([np.flatnonzero(fixed >= 0), far_first])
        return plan

    def _neuron(self, k: int, pos: int, setup, plan: "_LayerPlan", states: np.ndarray, center: np.ndarray,
                radius: float) -> None:
        """Decide the layer's neurons from position ``pos`` of ``plan.order`` on."""
        par0 = self.par  # decisions below change it; the caller's path needs it back
        try:
            A, c, norms = setup[:3]
            n = A.shape[0]
            off = self.offsets[k]
            tol = self.tol
            fixed, order = plan.fixed, plan.order
            # Walk neurons the plan decided without recursion.
            while pos < n and fixed[order[pos]] >= 0:
                j = order[pos]
                s = bool(fixed[j])
                if plan.row[j]:
                    self._descend(k, pos, setup, plan, states, s, center, radius)
                    return
                states[j] = s
                self.pattern[off + j] = s
                if not self._parity(off + j, s):
                    return
                pos += 1
            if pos == n:
                self._layer(k + 1, A * states[:, None], c * states, center, radius)
                return
            j = order[pos]
            a, nrm = A[j], norms[j]
            delta = (a @ center + c[j]) / nrm  # signed distance of the ball centre to the hyperplane
            s_center = bool(delta > 0)
            dist = abs(delta)
            want = None if self.par is None else self.par.forced(off + j)  # a state the XORs imply
            if dist < radius and (radius - dist) / 2 > tol:
                # The hyperplane cuts the ball: both sides hold a ball, no LP needed.
                self.stats.ball_splits += 1
                if want is None or want == s_center:
                    self._descend(k, pos, setup, plan, states, s_center, center, radius)
                if want is None or want != s_center:
                    self._descend(k, pos, setup, plan, states, not s_center, center, radius)
                return
            if want is not None and want == s_center:
                # The XORs rule the far side out: no need to decide whether it exists.
                self._descend(k, pos, setup, plan, states, s_center, center, radius)
                return
            # The far side: a banked ball inside this cell and beyond the hyperplane, else one LP.
            # far: 1 = holds a ball > tol, 0 = at most a sliver, -1 = empty.
            hit = plan.find(j, not s_center, plan.path)
            row, rhs = self._row(a, c[j], nrm, not s_center)
            self.lp.push(row, rhs)
            if hit is not None:
                self.stats.bank_hits += 1
                far, u, t = 1, hit[0], hit[1]
            else:
                t, u = self.lp.solve()
                self.stats.lps += 1
                far = 1 if t > tol else (0 if t > 0 else -1)
                if far == 1:
                    plan.add(u, t)
                else:
                    self.stats.lps_empty += 1
                    self._thin(t)
            if far == 1:
                self._enter(k, pos, setup, plan, states, not s_center, u, t, pushed=True)
            else:
                self.lp.pop()
            if want is not None:
                return  # the XORs rule the centre's side out
            if far >= 0 or dist < radius:
                self._descend(k, pos, setup, plan, states, s_center, center, radius)
            else:
                # The far side is empty: the hyperplane misses the cell and its row would be redundant.
                self._enter(k, pos, setup, plan, states, s_center, center, radius, pushed=False)
        finally:
            self.par = par0

    @staticmethod
    def _row(a: np.ndarray, c: float, nrm: float, active: bool) -> tuple[np.ndarray, float]:
        # active: a u + c >= nrm t  <=>  (-a/nrm) u + t <= c/nrm; inactive: (a/nrm) u + t <= -c/nrm
        if active:
            return -a / nrm, c / nrm
        return a / nrm, -c / nrm

    def _descend(self, k, pos, setup, plan, states, s, center, radius) -> None:
        """Enter the child where neuron j has state s, with its row, and a ball inside the child.

        The ball is the largest one inside the old ball on side s; when that is not above tol, one
        LP gives the child's exact ball (or proves the child holds none).
        """
        A, c, norms = setup[:3]
        j = plan.order[pos]
        a, nrm = A[j], norms[j]
        row, rhs = self._row(a, c[j], nrm, s)
        self.lp.push(row, rhs)
        depth = (a @ center + c[j]) / nrm * (1.0 if s else -1.0)  # > 0: centre on side s
        if depth < radius:
            new_r = (radius + depth) / 2
            center = center + (a / nrm) * ((1.0 if s else -1.0) * (new_r - depth))
            radius = new_r
            if radius <= self.tol:
                radius, center = self.lp.solve()
                self.stats.lps += 1
                if radius <= self.tol:
                    self.stats.lps_empty += 1
                    self._thin(radius)
                    self.lp.pop()
                    return
                plan.add(center, radius)
        self._enter(k, pos, setup, plan, states, s, center, radius, pushed=True)

    def _enter(self, k, pos, setup, plan, states, s, center, radius, *, pushed) -> None:
        j = plan.order[pos]
        # No need to restore states afterwards: a path rewrites every neuron's state before it is read.
        states[j] = s
        self.pattern[self.offsets[k] + j] = s
        if pushed:
            plan.path.append((j, 1.0 if s else -1.0))
        try:
            self._follow(self.offsets[k] + j, s, self._neuron, k, pos + 1, setup, plan, states, center, radius)
        finally:
            if pushed and self.stopped is None:
                plan.path.pop()
                self.lp.pop()

    # --- vertex geometry (3 <= d <= VERTEX_MAX_DIM, bounded) ------------------------------------
    def _cell_ball(self, cell: "_VertexCell") -> tuple[np.ndarray, float]:
        """An interior point of the cell (homogeneous) and a ball radius certified there; exact (one
        LP) only when the certified radius does not already exceed tol."""
        p = cell.centroid()
        r = -float(cell.rows.dot(p).max())
        if r > self.tol:
            return p, r
        t, u = chebyshev_ball(cell.rows[:, :-1], -cell.rows[:, -1], self.cap)
        self.stats.lps += 1
        if t <= self.tol:
            self.stats.lps_empty += 1
            self._thin(t)
        return np.append(u, 1.0), t

    def _part_ball(self, cell: "_VertexCell", h: np.ndarray, vals: np.ndarray, active: bool,
                   part: "_VertexCell") -> tuple[np.ndarray, float]:
        """A ball in ``part``, the side ``active`` of hyperplane h (``vals``: h at the cell's points).

        Derived from the cell's ball B(p, r) in O(d), without the part's rows: if p is in the part at
        distance g from h, B(p, min(r, g)); else the hull of B(p, r) and the part's deepest point v
        (depth e) lies in the cell and holds B(p + lam (v - p), (1 - lam) r), lam = (r + |g|) / (r +
        |g| + e), which touches h from the part's side.  Only when that is not > tol: _cell_ball.
        """
        if cell.ball is None:
            cell.ball = self._cell_ball(cell)
        p, r = cell.ball
        g = float(h.dot(p)) if active else -float(h.dot(p))
        if g >= 0:
            q, rho = p, min(r, g)
        else:
            i = vals.argmax() if active else vals.argmin()
            e = abs(float(vals[i]))
            rho = r * e / (r - g + e)
            q = p + (cell.V[i] - p) * ((r - g) / (r - g + e))
        return (q, rho) if rho > self.tol else self._cell_ball(part)

    def _layer_vert(self, k: int, M: np.ndarray, m: np.ndarray, cell: "_VertexCell") -> None:
        if k == len(self.layers):
            p, r = self._cell_ball(cell) if cell.ball is None else cell.ball
            if r > self.tol:  # a cell clipped by a sliver on the way has no certified ball yet
                self._emit(p[:-1], r)
            return
        if self.split_after is not None and self._split_here(k):
            return
        self.stats.nodes += 1
        self._check()
        layer = self.layers[k]
        if not layer.relu:
            self._layer_vert(k + 1, *self._affine(k, M, m), cell)
            return
        setup = self._layer_setup(k, M, m)
        A, c, norms, safe, const = setup
        units = np.concatenate([A, c[:, None]], axis=1) / safe[:, None]  # (u, 1) -> signed distance
        # Branch on hyperplanes far from the cell's centre first (fewer sub-cells to test them on).
        dist = np.abs(units.dot(cell.centroid()))
        order = np.argsort(-np.where(const, np.inf, dist)).tolist()
        self._neuron_vert(k, 0, (*setup, units), order, np.zeros(layer.out_size, dtype=bool), cell)

    def _neuron_vert(self, k: int, pos: int, setup, order: list[int], states: np.ndarray,
                     cell: "_VertexCell") -> None:
        A, c, norms, safe, const, units = setup
        n = A.shape[0]
        off = self.offsets[k]
        tol = self.tol
        par0 = self.par  # decisions below change it; the caller's path needs it back
        D = units.dot(cell.V.T)  # D[j]: signed distances of the cell's points to hyperplane j
        while pos < n:
            j = order[pos]
            if const[j]:
                s = bool(c[j] > 0)
            else:
                vals = D[j]
                hi, lo = vals.max(), vals.min()
                if hi <= tol:
                    s = False
                    if hi > self.vertex_eps:  # a sliver of the active side: cut it off
                        self._thin(hi)
                        cell = cell.clip(units[j], False, vals, self._on_plane)
                        D = units.dot(cell.V.T)
                elif lo >= -tol:
                    s = True
                    if lo < -self.vertex_eps:
                        self._thin(-lo)
                        cell = cell.clip(units[j], True, vals, self._on_plane)
                        D = units.dot(cell.V.T)
                else:
                    break
                self.stats.bound_skips += 1
            states[j] = s
            self.pattern[off + j] = s
            if not self._parity(off + j, s):
                self.par = par0
                return
            pos += 1
        if pos == n:
            self._layer_vert(k + 1, A * states[:, None], c * states, cell)
            self.par = par0
            return
        want = None if self.par is None else self.par.forced(off + j)  # a state the XORs imply
        parts = cell.split(units[j], vals, self._on_plane)
        for s, part in zip((True, False), parts):
            if part is None or (want is not None and want != s):
                continue
            p, r = self._part_ball(cell, units[j], vals, s, part)
            if r <= tol:
                continue
            part.ball = (p, r)
            states[j] = s  # later states are rewritten on every path before they are read
            self.pattern[off + j] = s
            self._follow(off + j, s, self._neuron_vert, k, pos + 1, setup, order, states, part)
        self.par = par0

    # --- polygon geometry (d <= 2, bounded box) -------------------------------------------------
    def _layer_poly(self, k: int, M: np.ndarray, m: np.ndarray, cell: np.ndarray) -> None:
        if k == len(self.layers):
            self._emit(*_polygon_ball(cell, self.tol))
            return
        self.stats.nodes += 1
        self._check()
        layer = self.layers[k]
        if not layer.relu:
            self._layer_poly(k + 1, *self._affine(k, M, m), cell)
            return
        setup = self._layer_setup(k, M, m)
        self._neuron_poly(k, 0, setup, np.zeros(layer.out_size, dtype=bool), cell)

    def _neuron_poly(self, k: int, j: int, setup, states: np.ndarray, cell: np.ndarray) -> None:
        A, c, norms, safe, const = setup
        n = A.shape[0]
        off = self.offsets[k]
        tol = self.tol
        par0 = self.par  # decisions below change it; the caller's path needs it back
        while j < n:
            if const[j]:
                s = bool(c[j] > 0)
            else:
                vals = (cell @ A[j] + c[j]) / norms[j]
                hi, lo = vals.max(), vals.min()
                if hi <= tol:
                    s = False
                    if hi > 0:
                        self._thin(hi)
                        cell = _clip(cell, A[j], c[j], False)  # drop the thin active sliver
                elif lo >= -tol:
                    s = True
                    if lo < 0:
                        self._thin(-lo)
                        cell = _clip(cell, A[j], c[j], True)
                else:
                    break
            states[j] = s
            self.pattern[off + j] = s
            if not self._parity(off + j, s):
                self.par = par0
                return
            j += 1
        if j == n:
            self._layer_poly(k + 1, A * states[:, None], c * states, cell)
            self.par = par0
            return
        want = None if self.par is None else self.par.forced(off + j)  # a state the XORs imply
        for s in (True, False):
            if want is not None and want != s:
                continue
            part = _clip(cell, A[j], c[j], s)
            r = _inradius_polygon(part, tol)
            if r <= tol:
                self._thin(r)
            else:
                states[j] = s  # later states are rewritten on every path before they are read
                self.pattern[off + j] = s
                self._follow(off + j, s, self._neuron_poly, k, j + 1, setup, states, part)
        self.par = par0


class _VertexCell:
    """A bounded convex cell held by a superset of its vertices, in homogeneous coordinates.

    A point u is stored as (u, 1) and a row as (a, -b) for a u <= b, so the cell is
    {x : rows x <= 0, x[-1] = 1} and every affine function of u is one dot product (the arrays are
    tiny: the number of numpy calls sets the cost).  ``V`` holds every vertex of the cell (and
    possibly extra points of the cell: crossings of pairs that share d-1 tight rows without being an
    edge, which only happens at degenerate vertices).  So max/min of any affine function over V
    equal those over the cell, exactly.  Bit i of ``T[p]`` (packed in uint64 words) says point p
    lies on row i.  Clipping needs no LP and no convex hull: points on the kept side stay, and each
    pair across the hyperplane sharing >= d-1 tight rows (every true edge among them) adds its
    crossing point.
    """

    __slots__ = ("V", "T", "rows", "ball")
    MAX_POINTS = 20_000

    def __init__(self, V, T, rows):
        self.V, self.T, self.rows = V, T, rows
        self.ball = None

    @classmethod
    def of_domain(cls, rows: np.ndarray, rhs: np.ndarray, box: tuple[np.ndarray, np.ndarray] | None = None
                  ) -> "_VertexCell | None":
        """The cell {u : rows u <= rhs} of the domain: a box's corners directly, any other polytope's
        vertices by qhull."""
        if box is not None:
            lo, hi = box
            V = np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(len(lo), -1).T
        else:
            from scipy.spatial import HalfspaceIntersection, QhullError
            t, u = chebyshev_ball(rows, rhs)
            if t <= 0:
                return None
            try:
                V = HalfspaceIntersection(np.c_[rows, -rhs], u).intersections
            except QhullError as e:
                raise RuntimeError(f"vertex geometry: qhull failed on the domain ({e}); use geometry='lp'") from None
        slack = rhs[None, :] - V @ rows.T
        scale = 1.0 + np.abs(rhs)[None, :] + np.abs(V) @ np.abs(rows).T
        return cls(np.c_[V, np.ones(len(V))], _pack_rows(np.abs(slack) <= 1e-9 * scale), np.c_[rows, -rhs])

    def centroid(self) -> np.ndarray:
        """The mean of the points, homogeneous (last entry 1)."""
        return self.V.sum(axis=0) / len(self.V)

    def clip(self, h: np.ndarray, active: bool, vals: np.ndarray, on_plane: np.ndarray) -> "_VertexCell | None":
        """The part where h x >= 0 (active) or <= 0, as a new cell (None if empty)."""
        return self.split(h, vals, on_plane)[0 if active else 1]

    def split(self, h: np.ndarray, vals: np.ndarray, on_plane: np.ndarray) -> tuple["_VertexCell | None", ...]:
        """Both parts, (h x >= 0, h x <= 0); ``vals`` are the points' values h x; ``on_plane`` = [-eps,
        next float above eps]: values within eps of 0 count as lying on the hyperplane.

        The points sorted by value are [below | on | above] the hyperplane, so each part is a slice
        plus the crossing points, which lie on the hyperplane and are computed once for both
        (``take``, not fancy indexing: it is several times cheaper on arrays this small).
        """
        perm = vals.argsort()
        vs = vals.take(perm)
        lo, hi = vs.searchsorted(on_plane).tolist()  # below: [:lo], on: [lo:hi], above: [hi:]
        V, T = self.V.take(perm, axis=0), self.T.take(perm, axis=0)
        word, bit = divmod(len(self.rows), 64)  # the bit of the hyperplane's row
        if word == T.shape[1]:
            T = np.concatenate([T, np.zeros((len(T), 1), dtype=np.uint64)], axis=1)
        mask = _BITS[bit]
        n, d = V.shape[0], V.shape[1] - 1
        if lo and hi < n:
            # rows shared by each pair across the hyperplane: popcount of the AND of packed bits
            if T.shape[1] == 1:
                both = T[hi:] & T[:lo, 0]  # (above, 1) & (below,) -> (above, below)
                f = (np.bitwise_count(both) >= d - 1).ravel().nonzero()[0]  # flat: 2-D nonzero is slow
                TX = (both.ravel().take(f) | mask)[:, None]
                ip, iq = np.divmod(f, lo)
            else:
                both = T[hi:, None, :] & T[None, :lo, :]
                ip, iq = np.nonzero(np.bitwise_count(both).sum(axis=2) >= d - 1)
                TX = both[ip, iq]
                TX[:, word] |= mask
            ip += hi
            P, vp = V.take(ip, axis=0), vs.take(ip)
            X = P + (V.take(iq, axis=0) - P) * (vp / (vp - vs.take(iq)))[:, None]
        else:
            X, TX = V[:0], T[:0]
        if n + len(X) > self.MAX_POINTS:
            raise RuntimeError("vertex geometry: too many points; use geometry='lp'")
        if hi > lo:
            T[lo:hi, word] |= mask
        return (_VertexCell(np.concatenate([V[lo:], X]), np.concatenate([T[lo:], TX]),
                            np.concatenate([self.rows, -h[None]])) if hi < n else None,
                _VertexCell(np.concatenate([V[:hi], X]), np.concatenate([T[:hi], TX]),
                            np.concatenate([self.rows, h[None]])) if lo else None)


def _pack_rows(B: np.ndarray) -> np.ndarray:
    """Boolean (n, m) -> (n, ceil(m/64)) uint64 words, bit i of row p = B[p, i]."""
    words = max(1, (B.shape[1] + 63) // 64)
    P = np.packbits(B, axis=1, bitorder="little")
    P = np.pad(P, ((0, 0), (0, words * 8 - P.shape[1])))
    return np.ascontiguousarray(P).view(np.uint64)


def _box_polygon(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    if lo.size == 1:
        # 1-D: an interval embedded as a degenerate-free 2-D strip is avoided; use a segment polygon
        return np.array([[lo[0]], [hi[0]]])
    return np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])


def _clip(poly: np.ndarray, a: np.ndarray, c: float, active: bool) -> np.ndarray:
    """The part of a convex polygon (or 1-D interval) on one side of a u + c = 0 (closed)."""
    v = poly @ a + c
    if not active:
        v = -v
    if poly.shape[1] == 1:
        lo, hi = poly[0, 0], poly[1, 0]
        # 1-D: the interval [lo, hi] where v >= 0, v linear from v[0] at lo to v[1] at hi
        if v[0] >= 0 and v[1] >= 0:
            return poly
        if v[0] < 0 and v[1] < 0:
            return poly[:0]
        x = lo + (hi - lo) * v[0] / (v[0] - v[1])
        return np.array([[lo], [x]]) if v[0] >= 0 else np.array([[x], [hi]])
    out = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        vp, vq = v[i], v[(i + 1) % n]
        if vp >= 0:
            out.append(p)
        if (vp >= 0) != (vq >= 0):
            out.append(p + (q - p) * (vp / (vp - vq)))
    return np.array(out).reshape(-1, poly.shape[1])


def _outward_normals(poly: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit outward normals n_i and offsets r_i of a convex polygon's edges: n_i . x <= r_i inside."""
    edges = np.roll(poly, -1, axis=0) - poly
    lens = np.sqrt(np.einsum("ij,ij->i", edges, edges))
    keep = lens > 0
    normals = np.stack([edges[keep, 1], -edges[keep, 0]], axis=1) / lens[keep, None]
    inside = poly.mean(axis=0)
    flip = np.einsum("ij,ij->i", normals, inside - poly[keep]) > 0
    normals[flip] *= -1
    return normals, np.einsum("ij,ij->i", normals, poly[keep])


def _distance_to_boundary(poly: np.ndarray, point: np.ndarray) -> float:
    if poly.shape[1] == 1:
        return float(min(point[0] - poly[0, 0], poly[-1, 0] - point[0]))
    normals, rhs = _outward_normals(poly)
    return float(np.min(rhs - normals @ point))


def _polygon_ball(poly: np.ndarray, tol: float) -> tuple[np.ndarray, float]:
    """A ball inside a convex polygon (interval in 1-D) of radius > tol when its inradius exceeds tol:
    centred at the vertex mean when that is deep enough, else the exact largest ball (one LP)."""
    point = poly.mean(axis=0)
    r = _distance_to_boundary(poly, point)
    if r > tol or poly.shape[1] == 1:
        return point, r
    from scipy.optimize import linprog
    normals, rhs = _outward_normals(poly)
    res = linprog([0, 0, -1], A_ub=np.c_[normals, np.ones(len(normals))], b_ub=rhs,
                  bounds=[(None, None)] * 3, method="highs")
    return (res.x[:2], float(-res.fun)) if res.status == 0 else (point, r)


def _inradius_polygon(poly: np.ndarray, tol: float) -> float:
    """Radius of the largest ball in a convex polygon (half-length for an interval), exact where it
    matters: only its comparison with ``tol`` is used.

    For a convex polygon area/perimeter <= r <= 2 area/perimeter, which decides most comparisons;
    in between, one 3-variable LP gives r.
    """
    if poly.shape[1] == 1:
        return float(poly[-1, 0] - poly[0, 0]) / 2 if len(poly) == 2 else 0.0
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    edges = np.roll(poly, -1, axis=0) - poly
    per = float(np.sqrt(np.einsum("ij,ij->i", edges, edges)).sum())
    if per <= 0 or area <= 0:
        return 0.0
    if area / per > tol or 2 * area / per <= tol:
        return 2 * area / per if area / per > tol else area / per
    from scipy.optimize import linprog
    normals, rhs = _outward_normals(poly)
    res = linprog([0, 0, -1], A_ub=np.c_[normals, np.ones(len(normals))], b_ub=rhs,
                  bounds=[(None, None)] * 3, method="highs")
    return float(-res.fun) if res.status == 0 else 0.0


@contextmanager
def _sigint_stops(enum: TreeEnumerator):
    """SIGINT or SIGTERM ends the search with a valid lower bound instead of a traceback; a second
    signal while it stops is ignored (lrmilp.interrupts: a signal arriving while a region is written
    and counted takes effect once both are done)."""
    def stop(signum: int) -> BaseException | None:
        if enum.stopped is not None:
            return None
        enum.stopped = "interrupted"
        return _Stop()

    with stop_signals(stop):
        yield
