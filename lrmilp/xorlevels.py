"""The arithmetic of XOR lower bounds: the claim floor(t 2^(L - alpha)), alpha from a confidence, and
which level to test next (:mod:`lrmilp.lowerbound` runs the trials; its docstring states the rule)."""

from __future__ import annotations

import math

from .errors import InputError
from .validation import in_open_interval, int_at_least, positive_finite

DEFAULT_CONFIDENCE = 0.99

__all__ = ["DEFAULT_CONFIDENCE", "floor_pow2", "next_level", "resolve_alpha"]


def floor_pow2(n: int, alpha: float, times: int = 1) -> int:
    """floor(times 2^(n - alpha)) for integers n >= 0, times >= 1, in exact integer arithmetic, never
    above the true value.

    Parameters
    ----------
    n : int
        The level.
    alpha : float
        The confidence parameter.
    times : int
        The trials' threshold t (regions a cell must hold).

    Returns
    -------
    int

    Examples
    --------
    >>> floor_pow2(10, 1.0)
    511
    >>> floor_pow2(9, 1.0, times=8)  # cells of 8 regions at level 9: floor(8 2^8) stored from below
    2047
    """
    # 2^-alpha as m / 2^60 rounded down; the float power is off by at most ~2^-52 relatively, i.e.
    # ~2^8 units of 2^-60, hence the margin.
    m = max(math.floor(math.ldexp(2.0 ** (-alpha), 60)) - 512, 0)
    return (times * m << n) >> 60


def resolve_alpha(*, trials: int, confidence: float | None, alpha: float | None,
                  levels: bool = True) -> tuple[float, float]:
    """(alpha, confidence) from the one given (confidence defaults to DEFAULT_CONFIDENCE).

    Parameters
    ----------
    trials : int
        Trials per level r.
    confidence, alpha : float or None
        At most one of them.
    levels : bool
        A search over several levels (the confidence is 1 - 2^(-alpha r) / (1 - 2^-r), module doc);
        False for a single level (1 - 2^(-alpha r)).

    Returns
    -------
    tuple of float
        alpha and the confidence it gives.

    Raises
    ------
    InputError
        Both given, or a value out of range.

    Examples
    --------
    >>> round(resolve_alpha(trials=10, confidence=None, alpha=1.0, levels=False)[1], 6)
    0.999023
    """
    trials = int_at_least("trials", trials, 1)
    if alpha is not None and confidence is not None:
        raise InputError("give alpha or confidence, not both", param=("alpha", "confidence"))
    # log2 of the union factor 1 / (1 - 2^-r) over the tested wrong levels (0 for a single level)
    union = -math.log2(1.0 - 2.0 ** -trials) if levels else 0.0
    if alpha is not None:
        alpha = positive_finite("alpha", alpha)
        return alpha, 1.0 - 2.0 ** (union - alpha * trials)
    p = DEFAULT_CONFIDENCE if confidence is None else in_open_interval("confidence", confidence, 0.0, 1.0)
    return (math.log2(1.0 / (1.0 - p)) + union) / trials, p


def next_level(tested: dict[int, bool], *, first: int, last: int, probe: int, schedule: str = "search") -> int | None:
    """The next level to test, or None when the highest passed level is known to be the claim.

    Parameters
    ----------
    tested : dict
        Level -> whether all its trials passed, for the levels tested so far.
    first, last : int
        The levels that may be tested.
    probe : int
        The first level ``"search"`` tests (``"upward"`` starts at ``first``).
    schedule : {"search", "upward"}
        ``"upward"``: first, first + 1, ... until a level fails.  ``"search"``: the probe, then up in
        steps 2, 4, 8, ... while levels pass, then bisection between the highest passed level and the
        lowest failed level above it (down from the probe when the probe fails).

    Returns
    -------
    int or None

    Examples
    --------
    >>> next_level({9: True, 11: True, 15: True, 23: False}, first=1, last=23, probe=9)
    19
    """
    lo = max((k for k, ok in tested.items() if ok), default=first - 1)
    hi = min((k for k, ok in tested.items() if not ok and k > lo), default=last + 1)
    lo = max(lo, first - 1)  # ``first`` may have risen past passed levels: nothing below it is tested
    if hi - lo <= 1:
        return None
    if schedule == "upward":
        return lo + 1
    if not tested:
        return min(max(probe, first), last)
    if hi == last + 1:  # no failure above the highest pass yet: gallop
        return min(lo + 2 ** sum(tested.values()), last)
    return (lo + hi) // 2
