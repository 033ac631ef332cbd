"""Closed-form bounds on the number of linear regions of ReLU networks.

Every count is an exact Python ``int`` (the numbers routinely exceed 2^60, so floats are never used).
Notation: an MLP has input size ``n0`` and ReLU layer widths ``widths = (n1, ..., nL)``.

Sources:

* Zaslavsky (1975) / Pascanu et al. (2014): ``n1`` hyperplanes in general position cut R^n0 into
  sum_{i<=n0} C(n1, i) regions.
* Raghu et al. (ICML 2017), Montufar (SampTA 2017), Serra, Tjandraatmadja & Ramalingam (ICML 2018):
  upper bounds for deep MLPs; Montufar et al. (NeurIPS 2014) and Serra et al. (2018): lower bounds on
  the *maximal* number of regions over all parameters of an architecture.
* Xiong et al., "On the number of linear regions of convolutional neural networks" (ICML 2020):
  the maximal number of regions of a one-layer ReLU CNN (their Theorem 2).
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from itertools import accumulate
from math import comb, prod
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from .errors import InputError
from .network import Conv2d, Network
from .validation import MAX_ARCH_NEURONS

__all__ = [
    "activation_patterns", "bounds_for_arch", "bounds_for_network", "cnn_bounds", "montufar2014_lower",
    "montufar2017", "mlp_bounds", "one_layer_exact", "one_layer_max", "raghu2017", "serra2018",
    "serra2018_lower", "xiong2020", "xiong2020_deep_bounds",
]


# --- helpers -----------------------------------------------------------------------------------

def _check_arch(n0: int, widths: Sequence[int]) -> tuple[int, list[int]]:
    """Validate an architecture and return it as plain Python ints."""
    ws = [int(w) for w in widths]
    if int(n0) != n0 or n0 < 1:
        raise InputError(f"input size must be a positive integer, got {n0}")
    if not ws or any(w < 1 or w != v for w, v in zip(ws, widths)):
        raise InputError(f"widths must be a non-empty list of positive integers, got {list(widths)}")
    return int(n0), ws


@lru_cache(maxsize=64)
def _binom_row(n: int, k: int) -> tuple[int, ...]:
    """(C(n, 0), ..., C(n, min(n, k))), built by the ratio C(n, j+1) = C(n, j) (n - j) / (j + 1).

    Much faster than ``math.comb`` per entry once the numbers have thousands of digits.
    """
    row = [1]
    for j in range(min(n, k)):
        row.append(row[-1] * (n - j) // (j + 1))
    return tuple(row)


def _binom_prefix(n: int, k: int) -> int:
    """sum_{i=0}^{k} C(n, i): regions of n generic hyperplanes in R^k (Zaslavsky)."""
    return sum(_binom_row(n, k)) if k >= 0 else 0


# --- MLP upper bounds --------------------------------------------------------------------------

def activation_patterns(widths: Sequence[int]) -> int:
    """2^N with N = sum(widths): the number of on/off patterns, a trivial upper bound."""
    _check_arch(1, widths)
    return 2 ** sum(int(w) for w in widths)


def one_layer_max(n0: int, n1: int) -> int:
    """Maximal number of regions of a one-layer net R^n0 -> R^n1: sum_{i<=n0} C(n1, i).

    Exact (attained by hyperplanes in general position), by Zaslavsky's theorem.
    """
    n0, (n1,) = _check_arch(n0, [n1])
    return _binom_prefix(n1, n0)


def raghu2017(n0: int, widths: Sequence[int]) -> int:
    """Raghu et al. 2017 upper bound: prod_l sum_{j<=n_{l-1}} C(n_l, j), with n_0 = n0."""
    n0, ws = _check_arch(n0, widths)
    return prod(_binom_prefix(n, prev) for prev, n in zip([n0] + ws[:-1], ws))


def montufar2017(n0: int, widths: Sequence[int]) -> int:
    """Montufar 2017 upper bound: prod_l sum_{j<=d_l} C(n_l, j), d_l = min(n0, n1, ..., n_l)."""
    n0, ws = _check_arch(n0, widths)
    total, d = 1, n0
    for n in ws:
        d = min(d, n)
        total *= _binom_prefix(n, d)
    return total


def serra2018(n0: int, widths: Sequence[int], *, ranks: Sequence[int] | None = None) -> int:
    """Serra, Tjandraatmadja & Ramalingam (ICML 2018) upper bound, optionally rank-aware.

    Theorem 1: sum over (j_1..j_L) in J of prod_l C(n_l, j_l), where
    "J = {(j_1, ..., j_L) : 0 <= j_l <= min{n_0, n_1 - j_1, ..., n_{l-1} - j_{l-1}, n_l} for all l}".
    With ``ranks`` (rank of each layer's weight matrix, W_1 acting on the input) the rank-aware form
    "0 <= j_l <= min{n_0, n_1 - j_1, ..., n_{l-1} - j_{l-1}, rank(W_1), ..., rank(W_l)}" is used.
    The rank-aware statement is implemented as specified to us, not checked against the paper's
    text; it is sound by the argument of Theorem 1, since inside a region the image of layer l has
    dimension at most rank(W_l), and n_l is implied as rank(W_l) <= n_l (ranks = widths gives
    Theorem 1 back).  Never larger than :func:`montufar2017`; exact (= prod(n_l + 1)) for n0 = 1.
    """
    n0, ws = _check_arch(n0, widths)
    if ranks is None:
        rs = ws
    else:
        rs = [int(r) for r in ranks]
        if len(rs) != len(ws):
            raise InputError(f"got {len(rs)} ranks for {len(ws)} layers")
        for r, n, fan_in in zip(rs, ws, [n0] + ws[:-1]):
            if not 0 <= r <= min(n, fan_in):
                raise InputError(f"rank {r} impossible for a {n} x {fan_in} weight matrix")
    # Dynamic programming over layers instead of enumerating the tuples: the constraints on the
    # later j's depend on j_1..j_l only through the running cap
    # min(n0, n1 - j1, ..., n_l - j_l, rank_1, ..., rank_l), so state = {cap: summed weight}.
    state: dict[int, int] = {n0: 1}
    for n, r in zip(ws, rs):
        # Layer l allows j <= a = min(cap, r).  For j <= n - a the cap stays a; for n - a < j <= a it
        # becomes c = n - j < a, with weight C(n, j) = C(n, c).  Hence
        #   new[c] = V[c] * sum_{j <= min(c, n - c)} C(n, j) + C(n, c) * sum_{a >= max(c + 1, n - c)} V[a],
        # with V[a] the weight of the states with min(cap, r) = a: linear in the number of caps.
        V: defaultdict[int, int] = defaultdict(int)
        for cap, weight in state.items():
            V[min(cap, r)] += weight
        top = max(V)
        binoms = _binom_row(n, top)
        prefix = list(accumulate(binoms))
        suffix = [0] * (top + 2)
        for a in range(top, -1, -1):
            suffix[a] = suffix[a + 1] + V.get(a, 0)
        state = {}
        for c in range(top + 1):
            lo = max(c + 1, n - c)
            value = V.get(c, 0) * prefix[min(c, n - c)] + (binoms[c] * suffix[lo] if lo <= top else 0)
            if value:
                state[c] = value
    return sum(state.values())


# --- MLP lower bounds (on the maximal number over all parameters) -------------------------------

def montufar2014_lower(n0: int, widths: Sequence[int]) -> int | None:
    """Montufar et al. 2014 lower bound prod_{l<L} floor(n_l/n0)^n0 * sum_{j<=n0} C(n_L, j).

    Some network of this architecture has at least that many regions, provided every n_l >= n0;
    returns None otherwise.
    """
    n0, ws = _check_arch(n0, widths)
    if min(ws) < n0:
        return None
    return prod((n // n0) ** n0 for n in ws[:-1]) * _binom_prefix(ws[-1], n0)


def serra2018_lower(n0: int, widths: Sequence[int]) -> int | None:
    """Serra et al. 2018 lower bound prod_{l<L} (floor(n_l/n0) + 1)^n0 * sum_{j<=n0} C(n_L, j).

    Returned only when every n_l >= 3 n0 (None otherwise).  That condition is the one we recall from
    the paper's statement; we could not retrieve the text to confirm it.  It cannot be relaxed to
    n_l >= n0: the 1-1-1 network has at most 3 regions (the inactive half-line of the first unit is
    mapped to a constant and cannot be cut again) while the formula gives 4; and for n0 = 1, n_l >= 3
    the sawtooth construction checked in the tests attains it.
    """
    n0, ws = _check_arch(n0, widths)
    if min(ws) < 3 * n0:
        return None
    return prod((n // n0 + 1) ** n0 for n in ws[:-1]) * _binom_prefix(ws[-1], n0)


def mlp_bounds(n0: int, widths: Sequence[int], *, ranks: Sequence[int] | None = None) -> dict:
    """All MLP bounds for input size ``n0`` and ReLU widths ``widths``.

    Keys: activation_patterns, one_layer_max (for n1 alone, exact only for one layer), raghu2017,
    montufar2017, serra2018, serra2018_rank (only when ``ranks`` is given), montufar2014_lower and
    serra2018_lower (None where not applicable).  Polynomial in n0 and L: fast for any real size.
    """
    n0, ws = _check_arch(n0, widths)
    out = {
        "activation_patterns": activation_patterns(ws),
        "one_layer_max": one_layer_max(n0, ws[0]),
        "raghu2017": raghu2017(n0, ws),
        "montufar2017": montufar2017(n0, ws),
        "serra2018": serra2018(n0, ws),
    }
    if ranks is not None:
        out["serra2018_rank"] = serra2018(n0, ws, ranks=ranks)
    out["montufar2014_lower"] = montufar2014_lower(n0, ws)
    out["serra2018_lower"] = serra2018_lower(n0, ws)
    return out


def bounds_for_arch(arch: Sequence[int]) -> dict:
    """:func:`mlp_bounds` for ``arch = [n0, n1, ..., nL]`` with every layer followed by a ReLU.

    Parameters
    ----------
    arch : sequence of int
        Input size and layer widths.

    Returns
    -------
    dict
        Every closed form as an exact integer (None where it does not apply).

    Raises
    ------
    InputError
        More than :data:`~lrmilp.validation.MAX_ARCH_NEURONS` neurons in all: the exact dynamic programme
        grows with the cube of the widths.

    Examples
    --------
    >>> bounds_for_arch([2, 3])["one_layer_max"]
    7
    """
    if len(arch) < 2:
        raise InputError(f"arch needs an input size and at least one layer, got {list(arch)}", param="arch")
    n0, ws = _check_arch(arch[0], arch[1:])
    if sum(ws) > MAX_ARCH_NEURONS:
        raise InputError(f"arch has {sum(ws):,} neurons, more than the limit of {MAX_ARCH_NEURONS:,} for bounds "
                         "from an architecture", param="arch")
    return mlp_bounds(n0, ws)


# --- CNNs: Xiong et al. 2020 -------------------------------------------------------------------

def _receptive_fields(input_shape: tuple[int, int, int], kernel: tuple[int, int], stride: int,
                      padding: int) -> list[int]:
    """Bitmask of the real (non-padding) input pixels seen by each output position, row-major."""
    _, h, w = input_shape
    kh, kw = kernel
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    if oh < 1 or ow < 1:
        raise InputError(f"kernel {kernel} does not fit input {input_shape} with padding {padding}")
    fields = []
    for oy in range(oh):
        ys = [y for y in range(oy * stride - padding, oy * stride - padding + kh) if 0 <= y < h]
        for ox in range(ow):
            xs = [x for x in range(ox * stride - padding, ox * stride - padding + kw) if 0 <= x < w]
            fields.append(sum(1 << (y * w + x) for y in ys for x in xs))
    return fields


def xiong2020(*, input_shape: tuple[int, int, int], kernel: int | tuple[int, int], filters: int,
              stride: int = 1, padding: int = 0, max_positions: int = 20) -> int:
    """Maximal number of regions of a one-layer ReLU CNN over R^{C*H*W} (Xiong et al. 2020, Thm 2).

    Equals sum over t in K of prod_{p} C(filters, t_p), p over output positions, where K holds the
    maps t: positions -> {0..filters} with sum_{p in S} t_p <= C * |union of receptive fields of S|
    for every set S of positions (only real input pixels count; padding contributes nothing).
    Exponential in the number of output positions only; refuses more than ``max_positions``.
    """
    c_in, h, w = (int(s) for s in input_shape)
    kh, kw = (int(kernel), int(kernel)) if np.isscalar(kernel) else (int(kernel[0]), int(kernel[1]))
    d = int(filters)
    if min(c_in, h, w, kh, kw, d, stride) < 1 or padding < 0:
        raise InputError("xiong2020 needs positive shape, kernel, filters and stride, and padding >= 0")
    fields = _receptive_fields((c_in, h, w), (kh, kw), int(stride), int(padding))
    m = len(fields)
    if m > max_positions:
        raise InputError(f"xiong2020: {m} output positions exceed max_positions={max_positions}")
    # r[S] = capacity of position set S (bit i = position i): C * |union of receptive fields|.
    cover = [0] * (1 << m)
    r = np.zeros(1 << m, dtype=np.int64)
    for mask in range(1, 1 << m):
        low = mask & -mask
        cover[mask] = cover[mask ^ low] | fields[low.bit_length() - 1]
        r[mask] = c_in * cover[mask].bit_count()
    weights = [comb(d, t) for t in range(d + 1)]
    prefix = list(accumulate(weights))
    memo: dict[bytes, int] = {}

    def normalise(rows: np.ndarray) -> np.ndarray:
        # Tighten every cap to the ones it implies (t_p <= d, cap(S) <= cap(S - p) + cap(p)) so that
        # states with the same feasible set share one memo entry; the feasible sets are unchanged.
        # One state per row; modified in place.
        n = rows.shape[1]
        singles = 1 << np.arange(n.bit_length() - 1)
        rows[:, singles] = np.minimum(rows[:, singles], d)
        for b in range(n.bit_length() - 1):
            view = rows.reshape(rows.shape[0], -1, 2, 1 << b)  # [:, :, 1, :]: the sets holding position b
            np.minimum(view[:, :, 1, :], view[:, :, 0, :] + rows[:, 1 << b, None, None], out=view[:, :, 1, :])
        return rows

    def count(r: np.ndarray) -> int:
        # r[F] is the remaining capacity of every set F of the still unassigned positions; bit 0 is
        # the next position p.  Assigning t_p turns the caps into min(r[F], r[F + p] - t_p) on the
        # others, i.e. the even and odd halves of r.  t_p <= min over odd entries keeps every later
        # all-zero completion feasible, so the DFS never dead-ends.
        key = r.tobytes()
        if key in memo:
            return memo[key]
        even, odd = r[0::2], r[1::2]
        tmax = int(min(d, odd.min()))
        if r.size == 2:
            total = prefix[tmax]
        else:
            children = normalise(np.minimum(even, odd - np.arange(tmax + 1)[:, None]))
            total = sum(weights[t] * count(child) for t, child in enumerate(children))
        memo[key] = total
        return total

    return int(count(normalise(r[None, :])[0]))


def xiong2020_deep_bounds(*, input_shape: tuple[int, int, int], kernel: int | tuple[int, int], filters: int,
                          stride: int = 1, padding: int = 0, later_widths: Sequence[int]) -> dict:
    """Upper bound for a ReLU net whose first ReLU layer is the given convolution.

    ``later_widths`` are the widths (neurons) of the ReLU layers after the first.  Returns
    ``{"upper": xiong2020(first layer) * prod_l sum_{i<=n0} C(n_l, i)}`` with n0 = C*H*W.  This is the
    shape of the upper bound of Xiong et al. 2020, Theorem 5 as far as we know it; since we could not
    retrieve the paper's text, it is proved here directly instead: every region of the first layer is
    cut, inside each region of the layers before l, by the n_l hyperplanes of layer l in R^n0, into at
    most sum_{i<=n0} C(n_l, i) pieces.  Theorem 5's lower bound is not provided: its exact statement
    and conditions (on channels, strides, kernel sizes) could not be verified.
    """
    n0 = int(prod(int(s) for s in input_shape))
    if any(int(n) != n or n < 1 for n in later_widths):
        raise InputError(f"later_widths must be positive integers, got {list(later_widths)}")
    first = xiong2020(input_shape=input_shape, kernel=kernel, filters=filters, stride=stride, padding=padding)
    return {"upper": first * prod(_binom_prefix(int(n), n0) for n in later_widths)}


# --- exact count for one ReLU layer --------------------------------------------------------------

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
    component orthogonal to the set's span is longer than ``rank_tol``.  The subsets are enumerated
    (exponential): raises InputError when sum_{k<=rank} C(m, k), m nonzero rows, exceeds ``max_subsets``.
    """
    A = _single_relu_matrix(net)  # kept sparse until the size checks have passed
    norms = np.sqrt(np.asarray(A.multiply(A).sum(axis=1)).ravel())
    A = sp.diags(1.0 / norms[norms > 0]) @ A[norms > 0]
    if A.shape[0] == 0:
        return 1
    m, n0 = A.shape
    too_large = InputError(f"one_layer_exact: {m} hyperplanes in R^{n0} are too many to enumerate "
                           f"(more than max_subsets={max_subsets} independent sets possible)")
    # Refuse before any SVD of a big matrix: the smallest rank r0 whose sum_{k<=r0} C(m, k) is over
    # budget is small, and rank(A) >= r0 iff a random r0-column sketch A G has rank r0 (a.s.).
    r0 = next((r for r in range(min(m, n0) + 1) if _binom_prefix(m, r) > max_subsets), None)
    if r0 is not None:
        sketch = A @ np.random.default_rng(0).standard_normal((n0, r0))
        if np.linalg.matrix_rank(sketch) == r0:
            raise too_large
    # Coordinates in an orthonormal basis of the row space: lengths and angles are kept, and the
    # enumeration then works in rank dimensions instead of n0.
    A = A.toarray()
    _, sing, vt = np.linalg.svd(A, full_matrices=False)
    rank = int(np.sum(sing > sing[0] * max(m, n0) * np.finfo(float).eps))  # numpy's matrix_rank rule
    if _binom_prefix(m, rank) > max_subsets:
        raise too_large
    return int(_count_independent(A @ vt[:rank].T, rank, rank_tol))


def _one_layer_cnn(net: Network) -> Conv2d | None:
    """The conv layer of a one-layer CNN (first layer Conv2d with ReLU, the rest linear), else None."""
    first = net.layers[0]
    return first if isinstance(first, Conv2d) and net.relu_layers == [0] else None


def _xiong_args(conv: Conv2d) -> dict:
    return {"input_shape": conv.in_shape, "kernel": tuple(conv.W.shape[2:]), "filters": conv.W.shape[0],
            "stride": conv.stride, "padding": conv.padding}


def _or_none(fn, *args, **kwargs) -> int | None:
    """``fn(...)``, or None where it refuses an input as too large to enumerate."""
    try:
        return fn(*args, **kwargs)
    except InputError:
        return None


def cnn_bounds(net: Network) -> dict:
    """For a one-layer CNN: activation_patterns, xiong2020 and one_layer_exact (each None if too large)."""
    conv = _one_layer_cnn(net)
    if conv is None:
        raise InputError("cnn_bounds needs a one-layer CNN: a first Conv2d layer with ReLU, the rest linear")
    return {"activation_patterns": activation_patterns(net.widths),
            "xiong2020": _or_none(xiong2020, **_xiong_args(conv)),
            "one_layer_exact": _or_none(one_layer_exact, net)}


#: Largest matrix (in entries) whose rank :func:`bounds_for_network` computes; a bigger one is given
#: rank min(rows, columns), which keeps the rank-aware bound valid (a rank only needs to be an upper bound).
RANK_MAX_ENTRIES = 4_000_000


def _effective_ranks(net: Network) -> list[int]:
    """Rank of the linear map from the previous ReLU layer (or the input) to each ReLU layer.

    Linear layers in between are multiplied in: their product has rank <= the ReLU layer's own
    matrix, so the rank-aware Serra bound is at least as tight and still valid.
    """
    ranks, M = [], None
    for layer in net.layers:
        M = layer.matrix if M is None else layer.matrix @ M
        if layer.relu:
            if M.shape[0] * M.shape[1] <= RANK_MAX_ENTRIES:
                ranks.append(int(np.linalg.matrix_rank(M.toarray() if sp.issparse(M) else M)))
            else:
                ranks.append(min(M.shape))
            M = None
    return ranks


def bounds_for_network(net: Network) -> dict:
    """All bounds that apply to ``net``.

    Always the :func:`mlp_bounds` keys, with serra2018_rank from the ranks of the actual weights
    and the lower bounds (on the maximum over parameters) set to None for conv nets;
    for a one-layer CNN also xiong2020; for a net with one ReLU layer, the first, also
    one_layer_exact; for a deeper net whose first layer is a convolution with ReLU, xiong2020_upper
    (:func:`xiong2020_deep_bounds`).  The enumerated ones are None when too large to compute.

    Parameters
    ----------
    net : Network
        The network.

    Returns
    -------
    dict
        Exact integers (or None).

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> bounds_for_network(random_mlp([2, 3], seed=0))["one_layer_exact"]
    7
    """
    widths = net.widths
    if not widths:
        raise InputError("the network has no ReLU layer, hence a single linear region")
    out = mlp_bounds(net.input_dim, widths, ranks=_effective_ranks(net))
    if net.is_cnn:
        # The lower bounds are reached by some fully connected net of these widths; weight sharing
        # may forbid that (the 1x1x4 CNN with three 1x2 filters has at most 217 < 256 regions).
        out["montufar2014_lower"] = out["serra2018_lower"] = None
    first = net.layers[0]
    if net.relu_layers == [0]:
        if isinstance(first, Conv2d):
            out["xiong2020"] = _or_none(xiong2020, **_xiong_args(first))
        out["one_layer_exact"] = _or_none(one_layer_exact, net)
    elif isinstance(first, Conv2d) and first.relu:
        deep = _or_none(xiong2020_deep_bounds, **_xiong_args(first), later_widths=widths[1:])
        out["xiong2020_upper"] = None if deep is None else deep["upper"]
    return out
