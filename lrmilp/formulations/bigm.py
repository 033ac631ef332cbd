"""Serra, Tjandraatmadja & Ramalingam (2018) big-M encoding of a ReLU network, solver-independent.

:func:`build_bigm` returns a :class:`LinearModel` — variables with bounds and integrality, sparse
rows with lower/upper sides, an objective — that the back ends in :mod:`lrmilp.formulations.backends`
translate to highspy, python-mip and Pyomo without re-encoding anything.

Per ReLU neuron i of layer l (pre-activation bounds L <= g <= U from :mod:`lrmilp.bounds`)::

    g = W h_prev + b,   g = h - hbar,   0 <= h <= U z,   0 <= hbar <= -L (1 - z),   z in {0, 1}

Stable neurons (L > 0 or U <= 0) get z fixed.  The region margin f (maximised when counting):

* ``"one-sided"`` (the paper's): f <= h + (1 - z) H with H = fmax — active neurons are at least f
  inside their half-space, inactive ones are unconstrained;
* ``"two-sided"``: f <= g + (1 - z)(fmax - L) and f <= -g + z (fmax + U): every unstable neuron is
  at least f from its hyperplane, so a pattern with f > 0 has a full-dimensional region.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from ..domains import Domain
from ..errors import InputError
from ..network import Network

MARGINS = (None, "one-sided", "two-sided")


@dataclass(eq=False)
class LinearModel:
    """A mixed-integer linear model: min/max obj @ v + obj_const s.t. row_lo <= A v <= row_hi."""

    names: list[str]
    lb: np.ndarray
    ub: np.ndarray
    integer: np.ndarray
    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    row_names: list[str]
    obj: np.ndarray
    sense: str = "max"
    obj_const: float = 0.0
    groups: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. "u", "g3", "z3", "z", "f"

    @property
    def num_vars(self) -> int:
        return len(self.names)

    def relaxed(self) -> "LinearModel":
        """The LP relaxation (integrality dropped)."""
        return LinearModel(self.names, self.lb, self.ub, np.zeros_like(self.integer), self.A, self.row_lo,
                           self.row_hi, self.row_names, self.obj, self.sense, self.obj_const, self.groups)

    def with_objective(self, obj: np.ndarray, sense: str, const: float = 0.0) -> "LinearModel":
        return LinearModel(self.names, self.lb, self.ub, self.integer, self.A, self.row_lo, self.row_hi,
                           self.row_names, np.asarray(obj, dtype=float), sense, const, self.groups)


class _Builder:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.integer: list[bool] = []
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.row_lo: list[float] = []
        self.row_hi: list[float] = []
        self.row_names: list[str] = []

    def add_vars(self, prefix: str, lb, ub, n: int, integer: bool = False) -> np.ndarray:
        start = len(self.names)
        lb = np.broadcast_to(np.asarray(lb, dtype=float), (n,))
        ub = np.broadcast_to(np.asarray(ub, dtype=float), (n,))
        self.names.extend(f"{prefix}_{i}" for i in range(n))
        self.lb.extend(lb.tolist())
        self.ub.extend(ub.tolist())
        self.integer.extend([integer] * n)
        return np.arange(start, start + n)

    def add_rows(self, prefix: str, coef: sp.spmatrix, cols: np.ndarray, lo, hi) -> None:
        """Rows lo <= coef @ v[cols] <= hi (coef is (m, len(cols)))."""
        coef = sp.coo_matrix(coef)
        m = coef.shape[0]
        start = len(self.row_lo)
        self.rows.extend((coef.row + start).tolist())
        self.cols.extend(np.asarray(cols)[coef.col].tolist())
        self.vals.extend(coef.data.tolist())
        self.row_lo.extend(np.broadcast_to(np.asarray(lo, dtype=float), (m,)).tolist())
        self.row_hi.extend(np.broadcast_to(np.asarray(hi, dtype=float), (m,)).tolist())
        self.row_names.extend(f"{prefix}_{i}" for i in range(m))

    def finish(self, groups: dict[str, np.ndarray]) -> LinearModel:
        n = len(self.names)
        A = sp.csr_matrix((self.vals, (self.rows, self.cols)), shape=(len(self.row_lo), n))
        A.sum_duplicates()
        return LinearModel(self.names, np.array(self.lb), np.array(self.ub), np.array(self.integer, dtype=bool),
                           A, np.array(self.row_lo), np.array(self.row_hi), self.row_names, np.zeros(n),
                           "max", 0.0, groups)


def _stack(blocks: Sequence[sp.spmatrix]) -> sp.csr_matrix:
    return sp.hstack(blocks, format="csr")


def build_bigm(net: Network, domain: Domain, lower: Sequence[np.ndarray], upper: Sequence[np.ndarray], *,
               layers: int | None = None, margin: str | None = None, fmax: float = 1.0) -> LinearModel:
    """Big-M model of the first ``layers`` layers (all by default) over ``domain``.

    ``lower[k]``/``upper[k]`` bound layer k's pre-activations (finite for every ReLU layer built).
    The model's variables are grouped: ``u`` (domain parameters), ``x`` (network input), per layer k
    ``g{k}`` and, for ReLU layers, ``h{k}``, ``hbar{k}``, ``z{k}``; ``z`` is all binaries in pattern
    order and ``f`` the margin (when asked).  Guarantees: every input of the domain with its exact
    activations is feasible (with f = 0), and the objective is zero until set with
    :meth:`LinearModel.with_objective`.
    """
    if margin not in MARGINS:
        raise ValueError(f"margin must be one of {MARGINS}, got {margin!r}")
    n_layers = len(net.layers) if layers is None else layers
    B = _Builder()
    groups: dict[str, np.ndarray] = {}
    u = B.add_vars("u", domain.lo, domain.hi, domain.dim)
    groups["u"] = u
    if domain.A_ub.shape[0]:
        B.add_rows("domain", sp.csr_matrix(domain.A_ub), u, -np.inf, domain.b_ub)
    if domain.basis is None:
        x = u
    else:
        xlo, xhi = domain.input_box()
        x = B.add_vars("x", xlo, xhi, domain.input_dim)
        # x - V u = origin
        B.add_rows("slice", _stack([sp.identity(domain.input_dim), sp.csr_matrix(-domain.basis)]),
                   np.concatenate([x, u]), domain.origin, domain.origin)
    groups["x"] = x
    f = None
    if margin is not None:
        f = B.add_vars("f", 0.0, fmax, 1)
        groups["f"] = f
    prev = x
    zs = []
    for k in range(n_layers):
        layer = net.layers[k]
        n = layer.out_size
        L, U = np.asarray(lower[k], dtype=float), np.asarray(upper[k], dtype=float)
        if layer.relu and not (np.all(np.isfinite(L)) and np.all(np.isfinite(U))):
            raise InputError(f"layer {k} has infinite pre-activation bounds; big-M needs a bounded domain")
        g = B.add_vars(f"g{k}", L, U, n)
        groups[f"g{k}"] = g
        # g - W h_prev = b
        B.add_rows(f"affine{k}", _stack([sp.identity(n), -sp.csr_matrix(layer.matrix)]),
                   np.concatenate([g, prev]), layer.bias, layer.bias)
        if not layer.relu:
            prev = g
            continue
        active, inactive = L > 0, U <= 0
        h = B.add_vars(f"h{k}", 0.0, np.where(inactive, 0.0, np.maximum(U, 0.0)), n)
        hb = B.add_vars(f"hbar{k}", 0.0, np.where(active, 0.0, np.maximum(-L, 0.0)), n)
        z = B.add_vars(f"z{k}", np.where(active, 1.0, 0.0), np.where(inactive, 0.0, 1.0), n, integer=True)
        groups.update({f"h{k}": h, f"hbar{k}": hb, f"z{k}": z})
        zs.append(z)
        eye = sp.identity(n)
        B.add_rows(f"split{k}", _stack([eye, -eye, eye]), np.concatenate([g, h, hb]), 0.0, 0.0)
        Up, Ln = np.maximum(U, 0.0), np.maximum(-L, 0.0)
        B.add_rows(f"on{k}", _stack([eye, -sp.diags(Up)]), np.concatenate([h, z]), -np.inf, 0.0)
        B.add_rows(f"off{k}", _stack([eye, sp.diags(Ln)]), np.concatenate([hb, z]), -np.inf, Ln)
        if f is not None:
            unstable = np.flatnonzero(~(active | inactive))
            m = unstable.size
            if m:
                fcol = np.repeat(f, m)
                ones = sp.identity(m)
                if margin == "one-sided":
                    # f - h + H z <= H with H = fmax
                    B.add_rows(f"margin{k}", _stack([ones, -ones, fmax * ones]),
                               np.concatenate([fcol, h[unstable], z[unstable]]), -np.inf, fmax)
                else:
                    M1 = fmax - L[unstable]
                    M2 = fmax + U[unstable]
                    # f - g + M1 z <= M1   (z = 1: f <= g)
                    B.add_rows(f"margin_on{k}", _stack([ones, -ones, sp.diags(M1)]),
                               np.concatenate([fcol, g[unstable], z[unstable]]), -np.inf, M1)
                    # f + g - M2 z <= 0    (z = 0: f <= -g)
                    B.add_rows(f"margin_off{k}", _stack([ones, ones, -sp.diags(M2)]),
                               np.concatenate([fcol, g[unstable], z[unstable]]), -np.inf, 0.0)
        prev = h
    groups["z"] = np.concatenate(zs) if zs else np.zeros(0, dtype=int)
    groups["out"] = prev
    model = B.finish(groups)
    if f is not None:
        obj = np.zeros(model.num_vars)
        obj[f] = 1.0
        model = model.with_objective(obj, "max")
    return model
