"""MILP formulations of ReLU networks and their translations to solvers.

:func:`build_bigm` encodes a network once, solver-independently, as a :class:`LinearModel`;
:func:`to_highspy`, :func:`to_pyomo`, :func:`to_mip`, :func:`to_scip` and :func:`to_gurobi`
translate that model without re-encoding anything, and :func:`write_model` exports it as .lp/.mps.
:func:`lrmilp.bounds.bigm_model` builds it with bounds tightened first.

Importing this package is cheap: solver packages other than highspy load on first use.
"""

from __future__ import annotations

from .backends import to_gurobi, to_mip, to_pyomo, to_scip
from .bigm import LinearModel, build_bigm
from .highs import to_highspy, write_model

__all__ = ["LinearModel", "build_bigm", "to_gurobi", "to_highspy", "to_mip", "to_pyomo", "to_scip",
           "write_model"]
