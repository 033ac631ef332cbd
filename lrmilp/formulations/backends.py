"""Translations of a :class:`~lrmilp.formulations.bigm.LinearModel` into solver models.

Every back end reads the same ``LinearModel`` (variables with bounds and integrality, CSR rows
``row_lo <= A v <= row_hi``, objective) and builds nothing of its own: the encoding lives in
:mod:`lrmilp.formulations.bigm` only.  Guarantees shared by all translations: variable ``j`` of
the solver model is variable ``j`` of the ``LinearModel`` (same bounds, same integrality unless
``relax``), every row keeps both of its sides (infinite sides dropped, equal sides as an
equality), and the objective and its sense are the same.

Solver packages are imported inside the functions, so importing this module (and thus
:mod:`lrmilp.bounds`) never pays for Pyomo, python-mip, PySCIPOpt or gurobipy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .bigm import LinearModel
from .highs import quiet_highs, to_highspy, write_model

if TYPE_CHECKING:  # pragma: no cover - typing only
    import mip
    import pyomo.environ as pyo

__all__ = ["to_highspy", "to_mip", "to_pyomo", "to_scip", "to_gurobi", "write_model", "quiet_highs",
           "row_entries"]


def row_entries(model: LinearModel, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and coefficients of row ``i`` (CSR slice, no copy of the matrix)."""
    A = model.A
    lo, hi = A.indptr[i], A.indptr[i + 1]
    return A.indices[lo:hi], A.data[lo:hi]


def _is_binary(model: LinearModel, j: int) -> bool:
    return bool(model.integer[j]) and model.lb[j] >= 0.0 and model.ub[j] <= 1.0


def _side(value: float) -> float | None:
    """A finite row/column side, or None for an infinite one (the convention of Pyomo and SCIP)."""
    return float(value) if np.isfinite(value) else None


# --- Pyomo ---------------------------------------------------------------------------------------

def to_pyomo(model: LinearModel, *, relax: bool = False) -> "pyo.ConcreteModel":
    """A Pyomo ``ConcreteModel`` of ``model``.

    Components: ``m.I`` (variable indices), ``m.v[j]`` (variable j, bounds and domain from the
    model), ``m.R`` (row indices), ``m.rows[i]`` (row i as a ranged/equality constraint; rows
    without entries are skipped), ``m.obj``.  ``m.byname`` maps each variable name
    (``model.names[j]``) to its ``m.v`` entry.
    """
    import pyomo.environ as pyo

    n, nrows = model.num_vars, model.A.shape[0]
    m = pyo.ConcreteModel(name="lrmilp")
    m.I = pyo.RangeSet(0, n - 1) if n else pyo.Set(initialize=[])
    integer = np.zeros(n, dtype=bool) if relax else model.integer

    def domain(_m, j):
        if not integer[j]:
            return pyo.Reals
        return pyo.Binary if _is_binary(model, j) else pyo.Integers

    m.v = pyo.Var(m.I, domain=domain, bounds=lambda _m, j: (_side(model.lb[j]), _side(model.ub[j])))
    m.byname = {name: m.v[j] for j, name in enumerate(model.names)}
    m.R = pyo.RangeSet(0, nrows - 1) if nrows else pyo.Set(initialize=[])

    def row(_m, i):
        cols, vals = row_entries(model, i)
        if cols.size == 0:
            return pyo.Constraint.Skip  # an empty row constrains nothing (its sides hold 0 by construction)
        expr = pyo.quicksum((float(a) * _m.v[int(j)] for j, a in zip(cols, vals)))
        lo, hi = model.row_lo[i], model.row_hi[i]
        if lo == hi:
            return expr == float(lo)
        return (_side(lo), expr, _side(hi))

    m.rows = pyo.Constraint(m.R, rule=row)
    nz = np.flatnonzero(model.obj)
    obj_expr = pyo.quicksum((float(model.obj[j]) * m.v[int(j)] for j in nz)) + float(model.obj_const)
    m.obj = pyo.Objective(expr=obj_expr, sense=pyo.maximize if model.sense == "max" else pyo.minimize)
    return m


# --- python-mip ----------------------------------------------------------------------------------

def to_mip(model: LinearModel, *, solver_name: str = "CBC", relax: bool = False,
           threads: int = 1) -> tuple["mip.Model", list]:
    """A python-mip model of ``model`` and its variables in model order.

    ``solver_name`` is always passed to python-mip: left empty, python-mip picks Gurobi whenever
    gurobipy is importable, and results would depend on what happens to be installed.
    """
    import mip

    m = mip.Model(name="lrmilp", sense=mip.MAXIMIZE if model.sense == "max" else mip.MINIMIZE,
                  solver_name=solver_name)
    m.verbose = 0
    m.threads = threads
    xs = []
    for j in range(model.num_vars):
        if relax or not model.integer[j]:
            vtype = mip.CONTINUOUS
        else:
            vtype = mip.BINARY if _is_binary(model, j) else mip.INTEGER
        lb = float(model.lb[j]) if np.isfinite(model.lb[j]) else -mip.INF
        ub = float(model.ub[j]) if np.isfinite(model.ub[j]) else mip.INF
        xs.append(m.add_var(name=f"v{j}", lb=lb, ub=ub, var_type=vtype, obj=float(model.obj[j])))
    for i in range(model.A.shape[0]):
        cols, vals = row_entries(model, i)
        if cols.size == 0:
            continue
        expr = mip.xsum(float(a) * xs[int(j)] for j, a in zip(cols, vals))
        lo, hi = model.row_lo[i], model.row_hi[i]
        if lo == hi:
            m.add_constr(expr == float(lo), name=f"r{i}")
            continue
        # python-mip has no ranged rows: one constraint per finite side.
        if np.isfinite(lo):
            m.add_constr(expr >= float(lo), name=f"r{i}_lo")
        if np.isfinite(hi):
            m.add_constr(expr <= float(hi), name=f"r{i}_hi")
    if model.obj_const:
        m.objective = m.objective + float(model.obj_const)
    return m, xs


# --- SCIP (PySCIPOpt) ----------------------------------------------------------------------------

def to_scip(model: LinearModel, *, relax: bool = False, quiet: bool = True) -> tuple[Any, list]:
    """A PySCIPOpt ``Model`` of ``model`` and its variables in model order (ranged rows kept ranged)."""
    from pyscipopt import Model, quicksum
    from pyscipopt.scip import ExprCons

    m = Model("lrmilp")
    if quiet:
        m.hideOutput()
    xs = []
    for j, name in enumerate(model.names):
        if relax or not model.integer[j]:
            vtype = "C"
        else:
            vtype = "B" if _is_binary(model, j) else "I"
        xs.append(m.addVar(name=name, vtype=vtype, lb=_side(model.lb[j]), ub=_side(model.ub[j]),
                           obj=float(model.obj[j])))
    for i in range(model.A.shape[0]):
        cols, vals = row_entries(model, i)
        if cols.size == 0:
            continue
        expr = quicksum(float(a) * xs[int(j)] for j, a in zip(cols, vals))
        m.addCons(ExprCons(expr, lhs=_side(model.row_lo[i]), rhs=_side(model.row_hi[i])), name=model.row_names[i])
    if model.sense == "max":
        m.setMaximize()
    else:
        m.setMinimize()
    if model.obj_const:
        m.addObjoffset(float(model.obj_const))
    return m, xs


# --- Gurobi --------------------------------------------------------------------------------------

def to_gurobi(model: LinearModel, *, env: Any = None, relax: bool = False) -> tuple[Any, Any]:
    """A gurobipy ``Model`` of ``model`` and its variables as one MVar in model order.

    Rows go in as up to three matrix constraints (equalities, finite upper sides, finite lower
    sides).  gurobipy must be importable; licence limits surface when the model is optimised.
    """
    import gurobipy as gp
    from gurobipy import GRB

    m = gp.Model("lrmilp", env=env) if env is not None else gp.Model("lrmilp")
    n = model.num_vars
    if relax:
        vtype = np.full(n, GRB.CONTINUOUS)
    else:
        vtype = np.array([(GRB.BINARY if _is_binary(model, j) else GRB.INTEGER) if model.integer[j]
                          else GRB.CONTINUOUS for j in range(n)])
    lb = np.where(np.isfinite(model.lb), model.lb, -GRB.INFINITY)
    ub = np.where(np.isfinite(model.ub), model.ub, GRB.INFINITY)
    x = m.addMVar(n, lb=lb, ub=ub, vtype=vtype, obj=model.obj, name="v")
    A, lo, hi = model.A, model.row_lo, model.row_hi
    eq = lo == hi
    upper = ~eq & np.isfinite(hi)
    lower = ~eq & np.isfinite(lo)
    if eq.any():
        m.addMConstr(A[eq], x, "=", lo[eq], name="eq")
    if upper.any():
        m.addMConstr(A[upper], x, "<", hi[upper], name="hi")
    if lower.any():
        m.addMConstr(A[lower], x, ">", lo[lower], name="lo")
    m.ModelSense = GRB.MAXIMIZE if model.sense == "max" else GRB.MINIMIZE
    m.ObjCon = float(model.obj_const)
    m.update()
    return m, x
