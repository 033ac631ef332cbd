"""Exact region count of a one-ReLU-layer network over R^n0, by Zaslavsky's theorem."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ..network import Network
from .binomial import binom_prefix

__all__ = ["one_layer_exact"]

_FULL_RANK_ROWS = 4096  # most rows checked for full rank by one dense QR before the enumeration


def _count_independent(res: np.ndarray, dim_left: int, tol: float) -> int:
    """Number of subsets of the rows of ``res`` that are linearly independent (empty set included).

    Rows are the components, orthogonal to the span of the set chosen so far, of unit vectors; a row
    is independent of a set when that component is longer than ``tol``.  ``dim_left`` is the
    dimension of the orthogonal complement they live in.
    """
    c = res.shape[0]
    if c <= 1 or dim_left == 1:  # nonzero rows in a line: any one of them, or none
        return 1 + c
    if c <= dim_left:
        # If all rows are independent, every subset is: one QR replaces 2^c DFS nodes.  |R_ii| is
        # the residual of row i against rows < i, the same test the DFS would make.
        if np.all(np.abs(np.diag(np.linalg.qr(res.T, mode="r"))) > tol):
            return 2 ** c
    # children[p, j]: row j made orthogonal to row p as well, i.e. the candidates once p is chosen;
    # one batched product instead of one per child.  A row that falls into the span stays there for
    # every superset, and the sets are enumerated in index order, so child p keeps rows j > p only.
    unit = res / np.linalg.norm(res, axis=1)[:, None]
    children = res[None, :, :] - (res @ unit.T).T[:, :, None] * unit[:, None, :]
    alive = np.triu(np.linalg.norm(children, axis=2) > tol, k=1)
    if dim_left == 2:  # each child lives in a line: it adds itself and one set per live row
        return 1 + c + int(alive.sum())
    return 1 + sum(_count_independent(children[p, alive[p]], dim_left - 1, tol) for p in range(c))


def _single_relu_matrix(net: Network) -> sp.csr_matrix:
    if net.relu_layers != [0]:
        raise InputError("one_layer_exact needs exactly one ReLU layer, the first one "
                         f"(ReLU layers of this network: {net.relu_layers})")
    return sp.csr_matrix(net.layers[0].matrix, dtype=float)


def one_layer_exact(net: Network, *, rank_tol: float = 1e-9, max_subsets: int = 2 ** 20) -> int:
    """Regions of R^n0 cut by a one-ReLU-layer net, assuming generic biases.

    The first layer's rows a_i give hyperplanes a_i x + b_i = 0 (zero rows are constant neurons and
    give none).  With generic offsets, a set of hyperplanes meets iff its normals are linearly
    independent, so by Zaslavsky's theorem the regions are the linearly independent subsets of the
    normals (empty set included); parallel rows give distinct parallel hyperplanes and are never
    independent together.  ``rank_tol``: a unit normal is taken as independent of a set when its
    component orthogonal to the set's span is longer than ``rank_tol``.  When the m nonzero rows are
    all independent (m <= 4096) the answer 2^m is returned at once, and with a single linear relation
    among them (rank m - 1: one circuit C) 2^m - 2^(m - |C|); otherwise the subsets are enumerated
    (exponential): raises InputError when sum_{k<=rank} C(m, k) exceeds ``max_subsets``.
    """
    A = _single_relu_matrix(net)  # kept sparse until the size checks have passed
    norms = np.sqrt(np.asarray(A.multiply(A).sum(axis=1)).ravel())
    A = sp.diags(1.0 / norms[norms > 0]) @ A[norms > 0]
    if A.shape[0] == 0:
        return 1
    m, n0 = A.shape
    if m <= min(n0, _FULL_RANK_ROWS):
        # Independent rows make every subset independent: 2^m regions, found without enumerating them
        # (and before the size limit below, which would refuse them).  |R_ii| is the residual of row i
        # against the rows before it, the test the enumeration makes.
        diag = np.abs(np.diag(np.linalg.qr(A.toarray().T, mode="r")))
        if np.all(diag > rank_tol):
            return 2 ** m
        if np.sum(diag <= rank_tol) == 1:
            # Rank m - 1 (if the QR test is right; the SVD below confirms): one linear relation
            # sum y_i a_i = 0, so exactly one circuit, the support C of y, and the dependent sets are the
            # supersets of C: 2^m - 2^(m - |C|) independent sets.
            u, sing, _ = np.linalg.svd(A.toarray(), full_matrices=True)
            if sing[-1] <= rank_tol and sing[-2] > rank_tol:
                y = u[:, -1]
                circuit = int(np.sum(np.abs(y) > rank_tol * np.abs(y).max()))
                return 2 ** m - 2 ** (m - circuit)
    too_large = InputError(f"one_layer_exact: {m} hyperplanes in R^{n0} are too many to enumerate "
                           f"(more than max_subsets={max_subsets} independent sets possible)")
    # Refuse before any SVD of a big matrix: the smallest rank r0 whose sum_{k<=r0} C(m, k) is over
    # budget is small, and rank(A) >= r0 iff a random r0-column sketch A G has rank r0 (a.s.).
    r0 = next((r for r in range(min(m, n0) + 1) if binom_prefix(m, r) > max_subsets), None)
    if r0 is not None:
        sketch = A @ np.random.default_rng(0).standard_normal((n0, r0))
        if np.linalg.matrix_rank(sketch) == r0:
            raise too_large
    # Coordinates in an orthonormal basis of the row space: lengths and angles are kept, and the
    # enumeration then works in rank dimensions instead of n0.
    A = A.toarray()
    _, sing, vt = np.linalg.svd(A, full_matrices=False)
    rank = int(np.sum(sing > sing[0] * max(m, n0) * np.finfo(float).eps))  # numpy's matrix_rank rule
    if binom_prefix(m, rank) > max_subsets:
        raise too_large
    return int(_count_independent(A @ vt[:rank].T, rank, rank_tol))
