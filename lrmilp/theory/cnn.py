"""Xiong et al. (ICML 2020), "On the number of linear regions of convolutional neural networks"."""

from __future__ import annotations

import time

from itertools import accumulate
from math import comb, prod
from typing import Sequence

import numpy as np

from ..errors import InputError
from .binomial import binom_prefix

__all__ = ["MAX_BOUNDARY", "MAX_STATES", "receptive_fields", "theorem5_parts", "xiong2020", "xiong2020_deep_bounds",
           "xiong2020_lower"]

#: Largest boundary (positions) the frontier method of :func:`xiong2020` accepts: its states have
#: 2^boundary entries.
MAX_BOUNDARY = 18
#: Most distinct states the frontier method keeps after a position.
MAX_STATES = 20_000
_CHUNK = 32  # states stacked per numpy pass (a block of 32 x 2^boundary entries stays in cache)


def receptive_fields(input_shape: tuple[int, int, int], kernel: tuple[int, int], stride: int,
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
              stride: int = 1, padding: int = 0, method: str = "frontier", max_positions: int = 20,
              max_boundary: int = MAX_BOUNDARY, max_states: int = MAX_STATES,
              time_limit: float | None = None) -> int:
    """Maximal number of regions of a one-layer ReLU CNN over R^{C*H*W} (Xiong et al. 2020, Thm 2).

    Theorem 2 states that the maximum equals sum over t in K of prod_{p} C(filters, t_p), p over
    output positions, where K holds the maps t: positions -> {0..filters} with
    sum_{p in S} t_p <= C * |union of receptive fields of S| for every set S of positions (only real
    input pixels count; padding contributes nothing).  What is proved here is that this sum is an
    *upper* bound on the regions of every one-layer CNN of this shape: a set of hyperplanes meets (with
    generic biases) only if its normals are independent, and independent normals at the positions of S
    live in the C * |union of fields of S| coordinates those fields see.  It is not always attained:
    overlapping 2-D filters with two or more filters fall short (1x3x3 input, 2x2 kernel, 2 filters:
    the sum is 256, every weight draw gives 255).

    Parameters
    ----------
    input_shape : (C, H, W)
    kernel : int or (kh, kw)
    filters : int
    stride, padding : int
    method : {"frontier", "subsets"}
        "frontier" (default) sweeps the positions in raster order and keeps, per partial t, only the
        deficiencies of the sets of *boundary* positions (future positions whose field meets a pixel
        already used): exponential in the boundary (about (kernel - 1) / stride rows of positions),
        not in the number of positions.  "subsets" is the earlier method, exponential in the number
        of positions (refuses more than ``max_positions``); kept to check the other against.
    max_boundary, max_states : int
        The frontier method refuses (InputError saying which limit) a boundary of more than
        ``max_boundary`` positions or more than ``max_states`` distinct states after a position.
    time_limit : float, optional
        Seconds for the frontier method; past them it raises InputError saying so (no partial sum:
        a partial sum would be no bound at all).

    Returns
    -------
    int
        The exact sum (a Python int).

    Raises
    ------
    InputError
        Bad arguments, or the instance is over a limit of the chosen method (the message says why).

    Examples
    --------
    >>> xiong2020(input_shape=(1, 3, 3), kernel=2, filters=2)
    256
    """
    c_in, h, w = (int(s) for s in input_shape)
    kh, kw = (int(kernel), int(kernel)) if np.isscalar(kernel) else (int(kernel[0]), int(kernel[1]))
    d = int(filters)
    if min(c_in, h, w, kh, kw, d, stride) < 1 or padding < 0:
        raise InputError("xiong2020 needs positive shape, kernel, filters and stride, and padding >= 0")
    fields = receptive_fields((c_in, h, w), (kh, kw), int(stride), int(padding))
    if method == "subsets":
        if len(fields) > max_positions:
            raise InputError(f"xiong2020: {len(fields)} output positions exceed max_positions={max_positions}")
        return _count_by_position_sets(fields, c_in, d)
    if method != "frontier":
        raise InputError(f"xiong2020: unknown method {method!r} (frontier or subsets)")
    oh = (h + 2 * padding - kh) // stride + 1
    ow = len(fields) // oh
    # Sweep along the longer side so that the boundary (a band across the shorter side) is narrower.
    rows = list(range(len(fields)))
    cols = [y * ow + x for x in range(ow) for y in range(oh)]
    order = min(rows, cols, key=lambda o: max(_boundaries(fields, o), default=0))
    deadline = None if time_limit is None else time.perf_counter() + time_limit
    return _count_by_boundary(fields, c_in, d, order, max_boundary, max_states, deadline)


def _boundaries(fields: list[int], order: list[int]) -> list[int]:
    """Size of the boundary after each position of ``order`` (see :func:`_count_by_boundary`)."""
    sizes, past, future = [], 0, _future_unions(fields, order)
    for k, p in enumerate(order):
        past |= fields[p]
        open_pixels = past & future[k + 1]
        sizes.append(sum(1 for q in order[k + 1:] if fields[q] & open_pixels))
    return sizes


def _future_unions(fields: list[int], order: list[int]) -> list[int]:
    """future[k]: union of the fields of order[k:]."""
    future = [0] * (len(order) + 1)
    for k in range(len(order) - 1, -1, -1):
        future[k] = future[k + 1] | fields[order[k]]
    return future


def _count_by_boundary(fields: list[int], c_in: int, d: int, order: list[int], max_boundary: int,
                       max_states: int, deadline: float | None = None) -> int:
    """Theorem 2's sum by a sweep over the positions with a boundary state (see :func:`xiong2020`).

    With f(S) = c_in * |union of fields of S|, a partial t on the swept positions P leaves every set F
    of later positions the capacity r(F) = min over S in P of f(F + S) - t(S) = f(F) - delta(F), where
    the deficiency delta(F) = max over S of t(S) - c_in * |N(S) - N(F)| depends on F only through the
    open pixels it sees (swept and still to be seen), hence only through F's *boundary* positions B.
    So the state is delta over the subsets of B, and two partial t with the same delta have the same
    completions: their weights are added.  Assigning t_p to the next position p gives
    r'(F) = min(r(F), r(F + p) - t_p), as in the subsets method; t_p <= min r(F + p) keeps every
    all-zero completion feasible, so no state dead-ends and the answer is the sum of the final weights.
    """
    future = _future_unions(fields, order)
    weights = [comb(d, t) for t in range(d + 1)]
    boundary: list[int] = []
    states: dict[bytes, int] = {np.zeros(1, dtype=np.int64).tobytes(): 1}
    past = 0
    for k, p in enumerate(order):
        past |= fields[p]
        open_pixels = past & future[k + 1]
        nxt = [q for q in order[k + 1:] if fields[q] & open_pixels]
        if len(nxt) > max_boundary:
            raise InputError(f"xiong2020: the sweep's boundary reaches {len(nxt)} positions (after position "
                             f"{k + 1} of {len(order)}), over max_boundary={max_boundary}: its state has "
                             f"2^{len(nxt)} entries")
        ext = [p] + nxt  # bit 0: p; bit j: nxt[j - 1]; the old boundary is inside ext
        n = len(ext)
        cover = [0] * (1 << n)
        for mask in range(1, 1 << n):
            low = mask & -mask
            cover[mask] = cover[mask ^ low] | fields[ext[low.bit_length() - 1]]
        f = np.array([c_in * c.bit_count() for c in cover], dtype=np.int64)
        # lift[S]: the old-boundary subset of S, as an index into the old delta
        where = {q: i for i, q in enumerate(boundary)}
        lift = np.zeros(1 << n, dtype=np.int64)
        subsets = np.arange(1 << n)
        for j, q in enumerate(ext):
            if q in where:
                lift[(subsets >> j) & 1 == 1] |= 1 << where[q]
        keys, ws = list(states), list(states.values())
        new: dict[bytes, int] = {}
        for lo in range(0, len(keys), _CHUNK):  # a block of states at a time: one numpy pass each
            block = b"".join(keys[lo:lo + _CHUNK])
            delta = np.frombuffer(block, dtype=np.int64).reshape(-1, 1 << len(boundary))
            r = f[None, :] - delta[:, lift]
            even, odd = r[:, 0::2], r[:, 1::2]
            tmax = np.minimum(odd.min(axis=1), d)
            for t in range(int(tmax.max()) + 1):
                rows = np.nonzero(tmax >= t)[0]
                child = f[None, 0::2] - np.minimum(even[rows], odd[rows] - t)
                for row, data in zip(rows, child):
                    key = data.tobytes()
                    new[key] = new.get(key, 0) + ws[lo + row] * weights[t]
            if deadline is not None and time.perf_counter() > deadline:
                raise InputError(f"xiong2020: not finished within its time limit (position {k + 1} of "
                                 f"{len(order)}, {len(new):,} sweep states); a longer time limit (--time-limit) may finish it")
            if len(new) > max_states:  # checked per block, to refuse before finishing a hopeless step
                raise InputError(f"xiong2020: more than max_states={max_states:,} distinct sweep states at "
                                 f"position {k + 1} of {len(order)} (boundary of {len(nxt)} positions)")
        states, boundary = new, nxt
    return int(sum(states.values()))


def _count_by_position_sets(fields: list[int], c_in: int, d: int) -> int:
    """Theorem 2's sum with a state over every set of unassigned positions (see :func:`xiong2020`)."""
    m = len(fields)
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
                          stride: int = 1, padding: int = 0, later_widths: Sequence[int],
                          time_limit: float | None = None) -> dict:
    """Upper bound for a ReLU net whose first ReLU layer is the given convolution.

    ``later_widths`` are the widths (neurons) of the ReLU layers after the first.  Returns
    ``{"upper": xiong2020(first layer) * prod_l sum_{i<=n0} C(n_l, i)}`` with n0 = C*H*W.  This is the
    shape of the upper bound of Xiong et al. 2020, Theorem 5 as far as we know it; since we could not
    retrieve the paper's text, it is proved here directly instead: every region of the first layer is
    cut, inside each region of the layers before l, by the n_l hyperplanes of layer l in R^n0, into at
    most sum_{i<=n0} C(n_l, i) pieces.  Theorem 5's lower bound is :func:`xiong2020_lower`.
    """
    n0 = int(prod(int(s) for s in input_shape))
    if any(int(n) != n or n < 1 for n in later_widths):
        raise InputError(f"later_widths must be positive integers, got {list(later_widths)}")
    first = xiong2020(input_shape=input_shape, kernel=kernel, filters=filters, stride=stride, padding=padding,
                      time_limit=time_limit)
    return {"upper": first * prod(binom_prefix(int(n), n0) for n in later_widths)}


# --- Theorem 5's lower bound --------------------------------------------------------------------

def theorem5_parts(input_shape: tuple[int, int, int], layers: Sequence[dict]) -> tuple[int, dict]:
    """The product of Xiong et al. 2020, Theorem 5, and the one-layer CNN N' it multiplies.

    ``layers`` are the L convolutions, each followed by a ReLU, as dicts with keys ``kernel``
    ((kh, kw)), ``filters`` (d_l), ``stride`` (s_l) and optionally ``padding`` (must be 0).  Returns
    ``(prod_{l=1}^{L-1} floor(d_l / d_0)^(n_l^(1) n_l^(2) d_0), N')`` where layer l's output is
    n_l^(1) x n_l^(2) x d_l, d_0 is the number of input channels, and N' (as :func:`xiong2020` keyword
    arguments) is the one-layer CNN on an n_{L-1}^(1) x n_{L-1}^(2) x d_0 input with layer L's
    d_L filters of size f_L^(1) x f_L^(2) (x d_0) and stride s_L.

    Raises
    ------
    InputError
        No layer, a kernel that does not fit, or padding (the construction behind the theorem folds the
        real pixels at one kernel offset; we could not check the paper's conditions on padding, so padded
        convolutions are refused rather than guessed).
    """
    if not layers:
        raise InputError("theorem 5 needs at least one convolution")
    d0, h, w = (int(v) for v in input_shape)
    factor = 1
    for l, layer in enumerate(layers):
        kh, kw = layer["kernel"]
        stride, padding = int(layer["stride"]), int(layer.get("padding", 0))
        if padding:
            raise InputError(f"theorem 5 is implemented for convolutions without padding (layer {l + 1} has "
                             f"padding {padding})")
        if l == len(layers) - 1:
            nprime = {"input_shape": (d0, h, w), "kernel": (int(kh), int(kw)), "filters": int(layer["filters"]),
                      "stride": stride, "padding": 0}
            break
        h, w = (h - kh) // stride + 1, (w - kw) // stride + 1
        if h < 1 or w < 1:
            raise InputError(f"theorem 5: kernel {layer['kernel']} of layer {l + 1} does not fit its input")
        factor *= (int(layer["filters"]) // d0) ** (h * w * d0)
    return factor, nprime


def xiong2020_lower(*, input_shape: tuple[int, int, int], layers: Sequence[dict], nprime_regions: int | None = None,
                    **xiong_options) -> int:
    """Xiong et al. 2020, Theorem 5 (lower bound on the maximal number of regions of a deep ReLU CNN).

    The theorem, as we implement it (the paper's text could not be retrieved here; the statement is
    the one given in issue 16): the maximal number of linear regions R_N of an L-layer ReLU CNN N
    satisfies

        R_N >= R_N' * prod_{l=1}^{L-1} floor(d_l / d_0)^(n_l^(1) * n_l^(2) * d_0),

    where layer l's output is n_l^(1) x n_l^(2) x d_l (d_l filters), d_0 is the number of input
    channels, and N' is a one-layer ReLU CNN with input n_{L-1}^(1) x n_{L-1}^(2) x d_0, d_L filters
    of size f_L^(1) x f_L^(2) x d_0 and stride s_L (see :func:`theorem5_parts`).

    ``nprime_regions`` is the number used for R_N'.  By default it is Theorem 2's value for N'
    (:func:`xiong2020`), as in the paper; that value is an upper bound on N''s regions which is not
    attained by overlapping 2-D filters with two or more filters, so the result then rests on Theorem
    2's claim of attainment and is *not proved* here.  Passing the region count of any particular
    N' (for instance the exact count of a random draw) gives a bound that rests only on Theorem 5's
    construction, which works for any N': the first L - 1 layers fold every coordinate of the d_0-channel
    image floor(d_l / d_0) times onto the same cube, and N' is placed inside it.

    Returns
    -------
    int
        A lower bound on the maximum over all weights of this architecture on R^n0 (not on the
        regions of given weights).

    Examples
    --------
    >>> two = [{"kernel": (2, 2), "filters": 2, "stride": 1}] * 2
    >>> xiong2020_lower(input_shape=(1, 4, 4), layers=two)  # 2^(3*3*1) folds * 256 (Theorem 2 for N')
    131072
    """
    factor, nprime = theorem5_parts(input_shape, layers)
    if nprime_regions is None:
        nprime_regions = xiong2020(**nprime, **xiong_options)
    return factor * int(nprime_regions)

