"""Closed-form bounds on the number of linear regions of ReLU MLPs.

Notation: an MLP has input size ``n0`` and ReLU layer widths ``widths = (n1, ..., nL)``.  Every count
is an exact Python ``int``.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import accumulate
from math import prod
from typing import Sequence

from ..errors import InputError
from ..validation import MAX_ARCH_NEURONS
from .binomial import binom_prefix, binom_row, check_arch

__all__ = [
    "activation_patterns", "bounds_for_arch", "mlp_bounds", "montufar2014_lower", "montufar2017", "one_layer_max",
    "raghu2017", "serra2018", "serra2018_lower",
]


# --- MLP upper bounds --------------------------------------------------------------------------

def activation_patterns(widths: Sequence[int]) -> int:
    """2^N with N = sum(widths): the number of on/off patterns, a trivial upper bound."""
    check_arch(1, widths)
    return 2 ** sum(int(w) for w in widths)


def one_layer_max(n0: int, n1: int) -> int:
    """Maximal number of regions of a one-layer net R^n0 -> R^n1: sum_{i<=n0} C(n1, i).

    Exact (attained by hyperplanes in general position), by Zaslavsky's theorem.
    """
    n0, (n1,) = check_arch(n0, [n1])
    return binom_prefix(n1, n0)


def raghu2017(n0: int, widths: Sequence[int]) -> int:
    """Raghu et al. 2017 upper bound: prod_l sum_{j<=n_{l-1}} C(n_l, j), with n_0 = n0."""
    n0, ws = check_arch(n0, widths)
    return prod(binom_prefix(n, prev) for prev, n in zip([n0] + ws[:-1], ws))


def montufar2017(n0: int, widths: Sequence[int]) -> int:
    """Montufar 2017 upper bound: prod_l sum_{j<=d_l} C(n_l, j), d_l = min(n0, n1, ..., n_l)."""
    n0, ws = check_arch(n0, widths)
    total, d = 1, n0
    for n in ws:
        d = min(d, n)
        total *= binom_prefix(n, d)
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
    n0, ws = check_arch(n0, widths)
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
        binoms = binom_row(n, top)
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
    n0, ws = check_arch(n0, widths)
    if min(ws) < n0:
        return None
    return prod((n // n0) ** n0 for n in ws[:-1]) * binom_prefix(ws[-1], n0)


def serra2018_lower(n0: int, widths: Sequence[int]) -> int | None:
    """Serra et al. 2018 lower bound prod_{l<L} (floor(n_l/n0) + 1)^n0 * sum_{j<=n0} C(n_L, j).

    Returned only when every n_l >= 3 n0 (None otherwise).  That condition is the one we recall from
    the paper's statement; we could not retrieve the text to confirm it.  It cannot be relaxed to
    n_l >= n0: the 1-1-1 network has at most 3 regions (the inactive half-line of the first unit is
    mapped to a constant and cannot be cut again) while the formula gives 4; and for n0 = 1, n_l >= 3
    the sawtooth construction checked in the tests attains it.
    """
    n0, ws = check_arch(n0, widths)
    if min(ws) < 3 * n0:
        return None
    return prod((n // n0 + 1) ** n0 for n in ws[:-1]) * binom_prefix(ws[-1], n0)


def mlp_bounds(n0: int, widths: Sequence[int], *, ranks: Sequence[int] | None = None) -> dict:
    """All MLP bounds for input size ``n0`` and ReLU widths ``widths``.

    Keys: activation_patterns, one_layer_max (for n1 alone, exact only for one layer), raghu2017,
    montufar2017, serra2018, serra2018_rank (only when ``ranks`` is given), montufar2014_lower and
    serra2018_lower (None where not applicable).  Polynomial in n0 and L: fast for any real size.
    """
    n0, ws = check_arch(n0, widths)
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
    if out["montufar2014_lower"] is None:
        out["montufar2014_lower_note"] = f"needs every width >= n0 = {n0} (smallest is {min(ws)})"
    out["serra2018_lower"] = serra2018_lower(n0, ws)
    if out["serra2018_lower"] is None:
        out["serra2018_lower_note"] = f"needs every width >= 3 n0 = {3 * n0} (smallest is {min(ws)})"
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
    n0, ws = check_arch(arch[0], arch[1:])
    if sum(ws) > MAX_ARCH_NEURONS:
        raise InputError(f"arch has {sum(ws):,} neurons, more than the limit of {MAX_ARCH_NEURONS:,} for bounds "
                         "from an architecture", param="arch")
    return mlp_bounds(n0, ws)
