"""Cell geometries behind one interface (:class:`~lrmilp.cells.base.Cells`), and their registry.

==========  =====================================================================================
name        cells and how one ReLU layer splits them
==========  =====================================================================================
polygon     d <= 2 over a box: exact polygons (intervals in 1-D) clipped by each hyperplane, no LP
vertex      bounded: each cell's vertex set; hyperplane tests are exact arithmetic on the points
lp          any domain: a ball certificate per cell, one warm HiGHS Chebyshev LP per hard decision
batch       bounded: a layer's sub-cells decided together, LPs batched in a dense dual simplex
dual        bounded box: the layer split compiled with numba on a bounded-variable dual simplex
==========  =====================================================================================

:func:`geometry_class` is the one place a geometry name is checked: ``"auto"`` is
:func:`choose_geometry`'s choice; an unknown name, or a geometry that cannot handle the domain, raises
one :class:`~lrmilp.errors.InputError` naming ``geometry``.
"""

from __future__ import annotations

from ..domains import Domain
from ..validation import one_of
from .base import Cells, Hyperplanes, LayerCut, TreeStats, Visit, Walk, settled_by_bounds
from .batch import BatchCells
from .dual import DualCells
from .lp import LpCells
from .polygon import PolygonCells
from .vertex import VERTEX_MAX_DIM, VertexCells

GEOMETRIES: dict[str, type[Cells]] = {cls.name: cls for cls in
                                      (PolygonCells, VertexCells, LpCells, BatchCells, DualCells)}
"""Every geometry by name."""
NAMES = ("auto", *GEOMETRIES)
"""The names a user may give: ``auto`` and every geometry."""

__all__ = ["COLD_COMPILE_SECONDS", "Cells", "GEOMETRIES", "Hyperplanes", "LayerCut", "NAMES", "TreeStats", "VERTEX_MAX_DIM", "Visit", "Walk",
           "choose_geometry", "geometry_class", "settled_by_bounds"]


COLD_COMPILE_SECONDS = 300.0
"""What ``auto`` allows for the compiled engine's first compile (about two minutes on a 2-core machine,
once per machine): a search with a shorter time limit, on a machine where the ``dual`` kernels are not
compiled yet, runs the uncompiled ``batch`` geometry (the same regions) instead of spending its time
compiling."""


def choose_geometry(domain: Domain, *, time_limit: float | None = None) -> str:
    """The geometry ``"auto"`` means for ``domain``.

    Parameters
    ----------
    domain : Domain
        The domain to count over.
    time_limit : float, optional
        The search's time limit: below :data:`COLD_COMPILE_SECONDS`, a box of dimension > 2 gets
        ``batch`` while the compiled ``dual`` kernels are not ready on this machine.

    Returns
    -------
    str
        ``polygon`` (d <= 2, a box), ``vertex`` (d <= VERTEX_MAX_DIM, bounded), ``dual`` (a box of
        higher dimension), ``batch`` (another bounded domain: a polytope) or ``lp`` (unbounded).

    Examples
    --------
    >>> from lrmilp.domains import Box, Unbounded
    >>> choose_geometry(Box(-1, 1, 2)), choose_geometry(Box(-1, 1, 4)), choose_geometry(Box(-1, 1, 8))
    ('polygon', 'vertex', 'dual')
    >>> choose_geometry(Unbounded(3))
    'lp'
    """
    if domain.dim <= 2 and domain.bounded and domain.A_ub.shape[0] == 0:
        return "polygon"
    if domain.dim <= VERTEX_MAX_DIM and domain.bounded:
        return "vertex"
    if domain.bounded and domain.A_ub.shape[0] == 0:
        if time_limit is not None and time_limit < COLD_COMPILE_SECONDS and not DualCells.ready():
            return "batch"
        return "dual"
    return "batch" if domain.bounded else "lp"


def geometry_class(name: str, domain: Domain, *, parity: bool = False,
                   time_limit: float | None = None) -> type[Cells]:
    """The geometry a search over ``domain`` uses when asked for ``name``.

    Parameters
    ----------
    name : str
        ``"auto"`` (:func:`choose_geometry`) or a key of :data:`GEOMETRIES`.
    domain : Domain
        The domain to count over.
    parity : bool
        The search follows XOR constraints: a geometry that cannot (``batch``) gives way to
        ``lp``.
    time_limit : float, optional
        The search's time limit, for ``"auto"`` (:func:`choose_geometry`).

    Returns
    -------
    type
        The :class:`~lrmilp.cells.base.Cells` subclass.

    Raises
    ------
    InputError
        ``name`` is no geometry, or that geometry cannot handle ``domain`` (one line naming
        ``geometry``).

    Examples
    --------
    >>> from lrmilp.domains import Box
    >>> geometry_class("auto", Box(-1, 1, 8)).name
    'dual'
    >>> geometry_class("foo", Box(-1, 1, 8))
    Traceback (most recent call last):
    ...
    lrmilp.errors.InputError: unknown geometry 'foo' (expected one of auto, polygon, vertex, lp, batch, dual)
    """
    one_of("geometry", name, NAMES)
    cls = GEOMETRIES[choose_geometry(domain, time_limit=time_limit) if name == "auto" else name]
    if parity and not cls.parity:
        cls = LpCells  # XOR propagation follows one path at a time
    cls.check(domain)
    return cls
