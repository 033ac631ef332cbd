"""The one-tree search core: every full-dimensional linear region of a ReLU network over a domain.

One depth-first search over activation states, layer by layer, never restarted.  A *node* is a cell of
the domain (in its parameters u) entering layer k: the set where the earlier ReLU neurons have the
node's states.  The core walks the layers — a linear layer passes the cell on, a ReLU layer hands it to
the cell geometry (:mod:`lrmilp.cells`), which enumerates its sub-cells cut by the layer's
hyperplanes that hold a ball of radius > tol — and owns what is the same in every geometry: the
pattern, the XOR parity of lower-bound trials, limits and progress, statistics, emitting regions, and
splitting the search into tasks (:mod:`lrmilp.parallel`).

A region is counted iff its polytope contains a ball of radius > ``tol`` (Euclidean, in parameter
space; :mod:`lrmilp.tolerance`); every geometry certifies such a ball for each region it emits.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable

import numpy as np

from ..blas import single_blas_thread
from ..bounds import Bounds, interval_bounds
from ..cells import Cells, Hyperplanes, LayerCut, TreeStats, geometry_class
from ..cells.base import ZERO_TOL
from ..domains import Domain, domain_rows
from ..interrupts import stop_signals
from ..network import Network
from ..parity import ParityState
from ..progress import Progress
from ..tolerance import Tolerance, resolve_tolerance

OnRegion = Callable[[np.ndarray, np.ndarray, float], None]


class Stop(Exception):
    """Unwinds the search when a limit is hit or a stop signal arrives (``TreeSearch.stopped`` says why)."""


class ParityPath:
    """The XOR constraints along the search path (:class:`~lrmilp.parity.ParityState` is immutable, so
    going back up is restoring a saved state)."""

    __slots__ = ("state", "initial")

    def __init__(self, state: ParityState) -> None:
        self.state = self.initial = state

    def forced(self, neuron: int) -> int | None:
        """The state the XORs imply for ``neuron`` given the decisions so far, or None."""
        return self.state.forced(neuron)

    def decide(self, neuron: int, state: bool) -> bool:
        """Record a decision; False (and no change) when the XORs forbid it."""
        new = self.state.assign(neuron, int(state))
        if new is None:
            return False
        self.state = new
        return True

    def mark(self) -> ParityState:
        return self.state

    def undo(self, mark: ParityState) -> None:
        self.state = mark


class _Visit:
    """The core's :class:`~lrmilp.cells.base.Visit` for one node's split."""

    __slots__ = ("search", "layer", "parity", "bulk")

    def __init__(self, search: "TreeSearch", layer: LayerCut) -> None:
        self.search, self.layer = search, layer
        self.parity = search.parity
        self.bulk = layer.last and search.on_region is None and search.max_regions is None and search.parity is None

    def child(self, states: np.ndarray, cell: Any) -> None:
        layer, search = self.layer, self.search
        search.pattern[layer.offset:layer.offset + len(states)] = states
        if layer.last:
            ball = search.cells.witness(cell)
            if ball is not None:
                search.emit(*ball)
            return
        A, c = layer.planes.A, layer.planes.c
        search.enter(layer.k + 1, A * states[:, None], c * states, cell)

    def region(self, states: np.ndarray, center: np.ndarray, radius: float) -> None:
        off = self.layer.offset
        self.search.pattern[off:off + len(states)] = states
        self.search.emit(center, radius)

    def regions(self, count: int, min_radius: float) -> None:
        stats = self.search.stats
        stats.regions += count
        stats.min_margin = min(stats.min_margin, min_radius)


class TreeSearch:
    """Depth-first enumeration of the regions of ``net`` over ``domain`` (module docstring).

    Parameters
    ----------
    net : Network
        Should be :func:`~lrmilp.network.balanced` (and ``bounds`` computed on it): the public
        counting functions do that.
    domain : Domain
        The domain, in its parameters u.
    tol : float or Tolerance, optional
        The tolerance (:mod:`lrmilp.tolerance`): a Tolerance, an absolute tol, or None for the
        relative default.
    bounds : Bounds, optional
        Pre-activation bounds over the domain (default: interval bounds).
    geometry : str
        A name of :data:`lrmilp.cells.NAMES` (``"auto"``: :func:`~lrmilp.cells.choose_geometry`).
    parity : ParityState, optional
        XOR constraints: only the regions satisfying them are visited.
    on_region : callable, optional
        ``on_region(pattern, point_u, margin)`` sees each region as it is found.
    time_limit : float, optional
        Seconds (wall clock, shared with the tasks of a parallel count through :attr:`deadline`).
    max_regions : int, optional
        Stop after this many regions.
    progress : bool or None
        Show a progress line on stderr (:mod:`lrmilp.progress`).
    on_split : callable, optional
        ``on_split(k, prefix)`` receives the nodes handed out as tasks once ``perf_counter()`` passes
        :attr:`split_after` (set by :mod:`lrmilp.parallel`).

    Raises
    ------
    InputError
        An unknown ``geometry``, or one that cannot handle ``domain``; a tol that cannot be certified.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> search = TreeSearch(random_mlp([2, 5], seed=0), Box(-1, 1, 2))
    >>> search.run().regions, search.geometry
    (7, 'polygon')
    """

    def __init__(self, net: Network, domain: Domain, *, tol: "float | Tolerance | None" = None,
                 bounds: Bounds | None = None, geometry: str = "auto", parity: ParityState | None = None,
                 on_region: OnRegion | None = None, time_limit: float | None = None, max_regions: int | None = None,
                 progress: bool | None = False, on_split: Callable[[int, np.ndarray], None] | None = None) -> None:
        cls = geometry_class(geometry, domain, parity=parity is not None, time_limit=time_limit)
        self.tolerance = tol if isinstance(tol, Tolerance) else resolve_tolerance(net, domain, tol)
        self.net, self.domain, self.tol = net, domain, self.tolerance.tol
        self.noise = self.tolerance.noise  # radii at or below this are flat, not thin
        self.cap = self.tolerance.cap
        self.bounds = bounds if bounds is not None else interval_bounds(net, domain)
        self.on_region, self.max_regions, self.on_split = on_region, max_regions, on_split
        self.split_after: float | None = None
        self.start_layer = 0
        self.stats = TreeStats()
        self.stopped: str | None = None
        self.parity = None if parity is None else ParityPath(parity)
        # Layers up to the last ReLU layer create regions; later linear layers add none.
        relu = net.relu_layers
        self.layers = net.layers[:relu[-1] + 1] if relu else []
        self.mats = [layer.matrix for layer in self.layers]
        self.absmats = [abs(m) for m in self.mats]
        self.offsets = net.relu_offsets
        self.pattern = np.zeros(net.neurons, dtype=bool)
        self.box = (domain.lo, domain.hi) if domain.bounded else None
        self.rows, self.rhs = domain_rows(domain)
        self.progress = Progress("count", progress=progress)
        self.t0 = time.perf_counter()
        self.deadline = None if time_limit is None else time.time() + time_limit
        d = domain.dim  # the network input as M u + m of the domain parameters u, shared by every task
        self._in_map = ((_frozen(np.eye(d)), _frozen(np.zeros(d))) if domain.basis is None
                        else (_frozen(domain.basis), _frozen(domain.origin)))
        self._first: Hyperplanes | None = None  # layer 0's hyperplanes over the input map
        self.cells: Cells = cls(self)
        self.geometry = cls.name

    # --- the walk: limits, progress, regions ---------------------------------------------------------
    def check(self) -> None:
        """Stop at the time limit (raises :class:`Stop`); redraw the progress line when it is due."""
        if self.deadline is not None and time.time() > self.deadline:
            self.stopped = "time_limit"
            raise Stop
        if self.progress.due():
            el = time.perf_counter() - self.t0
            s = self.stats
            self.progress.show(f"regions {s.regions:,}  nodes {s.nodes:,}  LPs {s.lps:,} ({s.lps / el:,.0f}/s)")

    def thin(self, radius: float) -> None:
        """A candidate cell whose largest ball has radius ``radius`` <= tol is not counted: note it as
        thin when it exists at all (radius above rounding noise)."""
        if radius > self.noise:
            self.stats.thin_dropped += 1

    def emit(self, center: np.ndarray, radius: float) -> None:
        """Count the region of the current pattern, certified by the ball (center, radius)."""
        s = self.stats
        s.regions += 1
        if radius < s.min_margin:
            s.min_margin = radius
        if not s.regions & 63:
            self.check()
        if self.on_region is not None:
            self.on_region(self.pattern.copy(), center, radius)
        if self.max_regions is not None and s.regions >= self.max_regions:
            self.stopped = "max_regions"
            raise Stop

    # --- entry ------------------------------------------------------------------------------------------
    def run(self) -> TreeStats:
        """Enumerate the whole tree: the root node, no neuron decided.  Returns :attr:`stats`."""
        try:
            return self.run_prefix(0, self.pattern)
        finally:
            self.progress.close()

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

        The node is rebuilt from the prefix alone (the geometry's root cell of those states), so a task
        is pure data: the same regions as the node a search reaches with that prefix.  Counts add to
        :attr:`stats`.
        """
        n = self._prefix_len(k)
        prefix = prefix[:n].copy()
        self.pattern[:] = False
        self.pattern[:n] = prefix
        if self.parity is not None:
            self.parity.state = self.parity.initial
        M, m = self._in_map
        rows = []  # (unit normal, offset, state) of every non-constant neuron the prefix decides
        for j in range(k):
            if not self.layers[j].relu:
                M, m = self.affine(j, M, m)
                continue
            A, c, norms, _, const = self.hyperplanes(j, M, m)
            states = self.pattern[self.offsets[j]:self.offsets[j] + A.shape[0]]
            for i in np.flatnonzero(~const):
                rows.append((A[i] / norms[i], c[i] / norms[i], bool(states[i])))
            M, m = A * states[:, None], c * states
        self.start_layer = k
        try:
            with _stops(self), single_blas_thread():
                self.check()
                cell = self.cells.root(rows)
                if cell is not None:
                    self.enter(k, M, m, cell)
        except Stop:
            pass
        finally:
            self.cells.reset()
            self.start_layer = 0
        return self.stats

    # --- the layers -------------------------------------------------------------------------------------
    def enter(self, k: int, M: np.ndarray, m: np.ndarray, cell: Any) -> None:
        """Enumerate layers k.. below the node ``cell``, whose input to layer k is M u + m."""
        if k == len(self.layers):
            ball = self.cells.witness(cell)
            if ball is not None:
                self.emit(*ball)
            return
        if self.split_after is not None and self._split_here(k):
            return
        self.stats.nodes += 1
        self.check()
        if not self.layers[k].relu:
            self.enter(k + 1, *self.affine(k, M, m), cell)
            return
        layer = LayerCut(k, self.offsets[k], self.hyperplanes(k, M, m), (self.bounds.lower[k], self.bounds.upper[k]),
                         self.box, k + 1 == len(self.layers))
        self.cells.split(cell, layer, _Visit(self, layer))

    def _split_here(self, k: int) -> bool:
        """Hand this node (entering layer k) out as a task instead of exploring it?"""
        if k <= self.start_layer or time.perf_counter() < self.split_after:
            return False
        self.on_split(k, self.prefix_of(k))
        return True

    def affine(self, k: int, M: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Layer k's pre-activations as A u + c, given its input as M u + m."""
        return np.asarray(self.mats[k] @ M), np.asarray(self.mats[k] @ m).reshape(-1) + self.layers[k].bias

    def hyperplanes(self, k: int, M: np.ndarray, m: np.ndarray) -> Hyperplanes:
        """Layer k's hyperplanes under the node's pattern (its input is M u + m)."""
        if k == 0 and M is self._in_map[0] and m is self._in_map[1]:
            # The first layer's hyperplanes are the same at every node: at d = 784 recomputing them (a d x d
            # product) was a third of a small task's time.
            if self._first is None:
                self._first = Hyperplanes(*(_frozen(a) for a in self._hyperplanes(0, M, m)))
            return self._first
        return self._hyperplanes(k, M, m)

    def _hyperplanes(self, k: int, M: np.ndarray, m: np.ndarray) -> Hyperplanes:
        A, c = self.affine(k, M, m)
        norms = np.sqrt(np.einsum("ij,ij->i", A, A))
        scale = np.asarray(self.absmats[k] @ np.sqrt(np.einsum("ij,ij->i", M, M))).reshape(-1)
        const = norms <= ZERO_TOL * np.maximum(scale, 1e-300)
        return Hyperplanes(A, c, norms, np.where(const, 1.0, norms), const)


def _frozen(a: np.ndarray) -> np.ndarray:
    """``a``, read-only: shared by every node, so a cell that wrote into it would corrupt the others."""
    a = np.asarray(a).view()  # a view: the caller's own array stays writable
    a.setflags(write=False)
    return a


@contextmanager
def _stops(search: TreeSearch):
    """SIGINT or SIGTERM ends the search with a valid lower bound instead of a traceback; a second
    signal while it stops is ignored (lrmilp.interrupts: a signal arriving while a region is written
    and counted takes effect once both are done)."""
    def stop(signum: int) -> BaseException | None:
        if search.stopped is not None:
            return None
        search.stopped = "interrupted"
        return Stop()

    with stop_signals(stop):
        yield
