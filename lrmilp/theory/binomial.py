"""Binomial sums and architecture checks shared by the closed forms of :mod:`lrmilp.theory`."""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from ..errors import InputError

__all__ = ["binom_prefix", "binom_row", "check_arch"]


def check_arch(n0: int, widths: Sequence[int]) -> tuple[int, list[int]]:
    """Validate an architecture and return it as plain Python ints."""
    ws = [int(w) for w in widths]
    if int(n0) != n0 or n0 < 1:
        raise InputError(f"input size must be a positive integer, got {n0}")
    if not ws or any(w < 1 or w != v for w, v in zip(ws, widths)):
        raise InputError(f"widths must be a non-empty list of positive integers, got {list(widths)}")
    return int(n0), ws


@lru_cache(maxsize=64)
def binom_row(n: int, k: int) -> tuple[int, ...]:
    """(C(n, 0), ..., C(n, min(n, k))), built by the ratio C(n, j+1) = C(n, j) (n - j) / (j + 1).

    Much faster than ``math.comb`` per entry once the numbers have thousands of digits.
    """
    row = [1]
    for j in range(min(n, k)):
        row.append(row[-1] * (n - j) // (j + 1))
    return tuple(row)


def binom_prefix(n: int, k: int) -> int:
    """sum_{i=0}^{k} C(n, i): regions of n generic hyperplanes in R^k (Zaslavsky)."""
    return sum(binom_row(n, k)) if k >= 0 else 0

