"""MILP formulations of ReLU networks and their translations to solvers.

:func:`build_bigm` encodes a network once, solver-independently, as a :class:`LinearModel`;
:func:`to_highspy`, :func:`to_pyomo`, :func:`to_mip`, :func:`to_scip` and :func:`to_gurobi`
translate that model without re-encoding anything, and :func:`write_model` exports it as .lp/.mps.

Importing this package is cheap: solver packages other than highspy load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..domains import Domain
from ..errors import InputError
from ..network import Network
from .backends import to_gurobi, to_mip, to_pyomo, to_scip
from .bigm import LinearModel, build_bigm
from .highs import to_highspy, write_model

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..bounds import Bounds

__all__ = ["LinearModel", "bigm_model", "build_bigm", "to_gurobi", "to_highspy", "to_mip", "to_pyomo", "to_scip",
           "write_model"]


def bigm_model(net: Network, domain: Domain, *, bounds: "str | Bounds" = "lp", margin: str | None = None,
               fmax: float = 1.0, layers: int | None = None) -> LinearModel:
    """The big-M model of ``net`` over ``domain`` with bounds tightened by ``bounds``.

    ``bounds`` is a method of :func:`lrmilp.bounds.tighten` ("interval", "lp", "milp") or a
    ready :class:`~lrmilp.bounds.Bounds`.  Raises :class:`~lrmilp.errors.InputError` on a domain
    without a finite box (big-M needs finite pre-activation bounds).  Same guarantees as
    :func:`build_bigm`: every input of the domain, with its exact activations, is feasible.
    """
    # Imported here: lrmilp.bounds imports this package (for build_bigm) while it initialises.
    from ..bounds import tighten

    if not domain.bounded:
        raise InputError("big-M needs a bounded domain (give --box LO HI or a box file, or a radius)")
    b = tighten(net, domain, method=bounds) if isinstance(bounds, str) else bounds
    return build_bigm(net, domain, b.lower, b.upper, layers=layers, margin=margin, fmax=fmax)
