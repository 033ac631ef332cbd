"""The interface of a cell geometry, and what the search core hands it.

The search core (:mod:`lrmilp.search`) walks the network layer by layer and owns the pattern, the XOR
parity, limits, statistics, emitting and the splitting into tasks.  A *cell geometry* only knows how
to represent a cell of the domain (a polytope in the domain's parameters u) and how to split it by one
ReLU layer's hyperplanes: :meth:`Cells.split` enumerates the sub-cells that hold a ball of radius
> tol (the counting rule of :mod:`lrmilp.tolerance`) and hands each to the core's :class:`Visit`.

Per layer, the core gives the geometry a :class:`LayerCut`: the layer's pre-activations a_j u + c_j
under the node's pattern (:class:`Hyperplanes`), their bounds over the node, and whether the layer
is the last ReLU layer (its sub-cells are regions).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, Protocol

import numpy as np

from ..domains import Domain
from ..errors import InputError

ZERO_TOL = 1e-10
"""A pre-activation is constant on a node when |a_j| <= ZERO_TOL * sum_i |W_ji| |a_i(prev)|, i.e. its
gradient is zero up to the rounding of the products that formed it."""

PrefixRow = tuple[np.ndarray, float, bool]
"""A decided neuron of a task's prefix: (unit normal, offset, active) of its hyperplane."""


@dataclass
class TreeStats:
    """The counters of a tree search (the core's and every geometry's); they add up across tasks."""

    regions: int = 0
    nodes: int = 0
    lps: int = 0
    lps_empty: int = 0  # LPs whose other side turned out empty: the waste to drive down
    ball_splits: int = 0  # both children certified by the ball, no LP
    bound_skips: int = 0  # neurons decided by bounds or constancy, no LP
    bank_hits: int = 0  # far sides certified by a banked ball, no LP
    lp_fallbacks: int = 0  # LPs a compiled or batched simplex could not certify, re-solved by HiGHS
    lp_retries: int = 0  # HiGHS LPs re-solved from a cold start after a non-optimal status
    thin_dropped: int = 0  # candidate cells that exist (radius > noise) but hold no ball > tol
    min_margin: float = math.inf  # smallest certified ball radius of a counted region

    def add(self, other: "TreeStats") -> None:
        """Add ``other``'s counters to these (the minimum of ``min_margin``)."""
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
        """The inverse of :meth:`to_dict` (counters missing from ``d`` are 0)."""
        d = dict(d)
        d["min_margin"] = math.inf if d.get("min_margin") is None else float(d["min_margin"])
        return cls(**d)


class Hyperplanes(NamedTuple):
    """One layer's pre-activations a_j u + c_j as functions of the domain parameters u, under a node's
    pattern (the states of the layers before)."""

    A: np.ndarray  # (n, d)
    c: np.ndarray  # (n,)
    norms: np.ndarray  # |a_j|
    safe: np.ndarray  # norms, 1 where the neuron is constant (safe to divide by)
    const: np.ndarray  # bool: the pre-activation is constant on the node (its gradient is rounding)


def domain_box_range(A: np.ndarray, c: np.ndarray, box: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The exact range of A u + c over the box lo <= u <= hi."""
    lo, hi = box
    Ap, An = np.maximum(A, 0.0), np.minimum(A, 0.0)
    return Ap @ lo + An @ hi + c, Ap @ hi + An @ lo + c


@dataclass(eq=False)
class LayerCut:
    """What the core hands a geometry to split one node's cell by ReLU layer ``k``.

    ``offset`` is the pattern index of the layer's first neuron; ``bounds`` the global pre-activation
    bounds of the layer over the domain and ``box`` the domain's parameter box (None when unbounded):
    :meth:`node_bounds` meets them.  ``last``: the layer is the last ReLU layer, so the sub-cells are
    regions.
    """

    k: int
    offset: int
    planes: Hyperplanes
    bounds: tuple[np.ndarray, np.ndarray]
    box: tuple[np.ndarray, np.ndarray] | None
    last: bool
    _node_bounds: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def width(self) -> int:
        return len(self.planes.c)

    def node_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on the layer's pre-activations valid on the whole node: the global bounds met with
        the range over the domain's box (computed once)."""
        if self._node_bounds is None:
            lo_b, hi_b = self.bounds
            if self.box is not None:
                blo, bhi = domain_box_range(self.planes.A, self.planes.c, self.box)
                lo_b, hi_b = np.maximum(lo_b, blo), np.minimum(hi_b, bhi)
            self._node_bounds = (lo_b, hi_b)
        return self._node_bounds


def settled_by_bounds(setup: Hyperplanes, node_bounds: tuple[np.ndarray, np.ndarray], tol: float, noise: float = 0.0
                      ) -> tuple[np.ndarray, np.ndarray, int]:
    """Which neurons of a layer the bounds settle on the whole node.

    Parameters
    ----------
    setup : Hyperplanes
        The layer's hyperplanes under the node's pattern.
    node_bounds : tuple of numpy.ndarray
        (lower, upper) bounds on the pre-activations valid on the node (:meth:`LayerCut.node_bounds`).
    tol : float
        The count's tolerance: a side thinner than tol holds no region.
    noise : float
        Radii at or below this are rounding, not thin cells.

    Returns
    -------
    fixed : numpy.ndarray
        Per neuron 1/0 when its sign is settled by constancy or by the bounds (the other side thinner
        than tol), -1 otherwise.
    row : numpy.ndarray
        Whether a settled neuron keeps its row (a sliver of the other side may exist, so children must
        never stray into it).
    thin : int
        How many such slivers may be thicker than ``noise`` (thin candidates).

    Examples
    --------
    >>> import numpy as np
    >>> planes = Hyperplanes(np.eye(2), np.zeros(2), np.ones(2), np.ones(2), np.zeros(2, dtype=bool))
    >>> settled_by_bounds(planes, (np.array([0.5, -1.0]), np.array([1.0, 1.0])), 1e-9)[0].tolist()
    [1, -1]
    """
    _, c, _, safe, const = setup
    lo_b, hi_b = node_bounds
    fixed = np.full(len(c), -1, dtype=np.int8)
    fixed[const] = np.where(c[const] > 0, 1, 0)
    inact = ~const & (hi_b <= tol * safe)
    act = ~const & ~inact & (-lo_b <= tol * safe)
    fixed[inact], fixed[act] = 0, 1
    row = (inact & (hi_b > 0)) | (act & (lo_b < 0))
    thin = int(np.sum((inact & (hi_b > noise * safe)) | (act & (-lo_b > noise * safe))))
    return fixed, row, thin


def chebyshev_row(a: np.ndarray, c: float, nrm: float, active: bool) -> tuple[np.ndarray, float]:
    """The row of the Chebyshev LP (unit u-part, t coefficient 1 implied) keeping a ball on side
    ``active`` of a u + c = 0: active a u + c >= nrm t, i.e. (-a/nrm) u + t <= c/nrm; inactive
    (a/nrm) u + t <= -c/nrm."""
    if active:
        return -a / nrm, c / nrm
    return a / nrm, -c / nrm


class ParityPath(Protocol):
    """The XOR constraints along the search path, owned by the core (:class:`lrmilp.search.ParityPath`)."""

    def forced(self, neuron: int) -> int | None: ...

    def decide(self, neuron: int, state: bool) -> bool: ...

    def mark(self) -> Any: ...

    def undo(self, mark: Any) -> None: ...


class Visit(Protocol):
    """What the core does with the sub-cells a split finds (one object per split node).

    ``child(states, cell)``: the sub-cell where the layer's neurons have ``states`` (copied at once, so
    the geometry may reuse the array) goes on to the next layer, or is a region at the last layer.
    ``region(states, center, radius)``: a last layer's sub-cell given by its ball alone.
    ``regions(count, min_radius)``: ``count`` regions at once, allowed only when ``bulk`` is true (the
    last layer, and nobody needs the regions one by one).  ``parity`` is None without XOR constraints.
    """

    parity: ParityPath | None
    bulk: bool

    def child(self, states: np.ndarray, cell: Any) -> None: ...

    def region(self, states: np.ndarray, center: np.ndarray, radius: float) -> None: ...

    def regions(self, count: int, min_radius: float) -> None: ...


class Walk(Protocol):
    """The core as a geometry sees it for the whole search: the tolerance, the domain as unit rows
    ``rows u <= rhs``, the counters, and two calls: ``check()`` (time limit, progress; raises the
    core's stop) and ``thin(radius)`` (a candidate cell holding no ball > tol)."""

    domain: Domain
    tol: float
    noise: float
    cap: float
    rows: np.ndarray
    rhs: np.ndarray
    stats: TreeStats

    def check(self) -> None: ...

    def thin(self, radius: float) -> None: ...


class Cells(abc.ABC):
    """A cell geometry: cells of the domain and how one ReLU layer splits them.

    A subclass sets ``name``, whether it follows XOR parity decisions (``parity``: else the registry
    uses the ``lp`` geometry for XOR-constrained searches) and builds a root from a task's prefix
    (``prefixes``: else counts with it run serially), refuses the domains it cannot handle in
    :meth:`check`, and implements :meth:`root`, :meth:`split` and :meth:`witness`.
    """

    name: ClassVar[str]
    parity: ClassVar[bool] = True
    prefixes: ClassVar[bool] = True

    def __init__(self, walk: Walk) -> None:
        self.walk = walk

    @classmethod
    def check(cls, domain: Domain) -> None:
        """Raise a one-line :class:`~lrmilp.errors.InputError` (``param="geometry"``) for a domain this
        geometry cannot handle."""

    @classmethod
    def refuse(cls, domain: Domain, needs: str) -> InputError:
        """The error of :meth:`check`: this geometry ``needs`` something ``domain`` lacks."""
        return InputError(f"geometry '{cls.name}' needs {needs}; this domain is a {domain.dim}-dimensional "
                          f"{_kind(domain)} (use geometry 'auto' or 'lp')", param="geometry")

    @abc.abstractmethod
    def root(self, rows: list[PrefixRow]) -> Any | None:
        """The cell of the domain cut by a task prefix's ``rows``; None when it holds no ball > tol."""

    @abc.abstractmethod
    def split(self, cell: Any, layer: LayerCut, visit: Visit) -> None:
        """Enumerate the sub-cells of ``cell`` cut by ``layer``'s hyperplanes that hold a ball > tol,
        handing each to ``visit`` (with the layer's states); decisions go through ``visit.parity``."""

    @abc.abstractmethod
    def witness(self, cell: Any) -> tuple[np.ndarray, float] | None:
        """A ball (centre in domain parameters, radius > tol) inside ``cell``, or None if it holds none."""

    def reset(self) -> None:
        """Forget the state of a search that stopped or ended (LP rows of its path); counters the
        geometry kept aside go to ``walk.stats``."""


def _kind(domain: Domain) -> str:
    if not domain.bounded:
        return "unbounded domain" if domain.A_ub.shape[0] == 0 else "polytope without a finite box"
    return "polytope" if domain.A_ub.shape[0] else "box"

