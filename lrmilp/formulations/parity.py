"""XOR constraints on a model's binaries: as linear rows for any MILP solver, or SCIP's own XORs.

Linear form (any solver, exported LP/MPS files too): XOR i over neuron set S_i with parity b_i is
sum_{j in S_i} z_j - 2 w_i = b_i with an integer w_i in [0, floor((|S_i| - b_i) / 2)].
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from ..parity import XorSystem
from .bigm import LinearModel


def with_parity(model: LinearModel, system: XorSystem) -> LinearModel:
    """``model`` plus the linear form of ``system`` over its ``z`` group (neuron j is column z[j]).

    Adds one integer column ``xor_w{i}`` and one equality row ``xor{i}`` per XOR; group ``xor_w``.
    """
    z = model.groups["z"]
    M, b = system.matrix(z.size)
    k, n = M.shape[0], model.num_vars
    sizes = M.sum(axis=1)
    w = np.arange(n, n + k)
    rows, cols = np.nonzero(M)
    coef = sp.csr_matrix((np.r_[np.ones(rows.size), -2.0 * np.ones(k)],
                          (np.r_[rows, np.arange(k)], np.r_[z[cols], w])), shape=(k, n + k))
    A = sp.vstack([sp.hstack([model.A, sp.csr_matrix((model.A.shape[0], k))]), coef], format="csr")
    groups = dict(model.groups, xor_w=w)
    return replace(model, names=list(model.names) + [f"xor_w{i}" for i in range(k)],
                   lb=np.r_[model.lb, np.zeros(k)], ub=np.r_[model.ub, (sizes - b) // 2],
                   integer=np.r_[model.integer, np.ones(k, dtype=bool)], A=A,
                   row_lo=np.r_[model.row_lo, b], row_hi=np.r_[model.row_hi, b],
                   row_names=list(model.row_names) + [f"xor{i}" for i in range(k)],
                   obj=np.r_[model.obj, np.zeros(k)], groups=groups)


def add_scip_xors(scip_model, xs: list, model: LinearModel, system: XorSystem) -> None:
    """Add ``system`` to a PySCIPOpt model built by :func:`~lrmilp.formulations.backends.to_scip`
    as SCIP's native XOR constraints (``cons_xor``) over the z variables."""
    z = model.groups["z"]
    M, b = system.matrix(z.size)
    for i, (row, parity) in enumerate(zip(M, b)):
        scip_model.addConsXor([xs[int(j)] for j in z[row]], bool(parity), name=f"xor{i}")
