"""Xiong et al. (ICML 2020), "On the number of linear regions of convolutional neural networks"."""

from __future__ import annotations

from itertools import accumulate
from math import comb, prod
from typing import Sequence

import numpy as np

from ..errors import InputError
from .binomial import binom_prefix

__all__ = ["receptive_fields", "xiong2020", "xiong2020_deep_bounds"]


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
    fields = receptive_fields((c_in, h, w), (kh, kw), int(stride), int(padding))
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
    return {"upper": first * prod(binom_prefix(int(n), n0) for n in later_widths)}
