"""Random XOR (parity) constraints on activation patterns, and their propagation in a search tree.

An XOR constraint over a set S of neurons says sum_{i in S} z_i = b (mod 2), z_i = 1 for an active
neuron.  :class:`XorSystem` holds k of them, drawn MBound-style (Gomes, Sabharwal & Selman 2006;
Serra & Ramalingam 2020): each candidate neuron joins each XOR with probability ``density`` and each
parity b is a fair coin.  Because b is a fair coin, any fixed pattern satisfies the system with
probability exactly 2^-k whatever the density — the fact that makes lower bounds from XORs valid.

:class:`ParityState` is the system restricted to a partial pattern, kept in fully reduced row echelon
form over GF(2) (rows as Python int bitmasks, bit i = neuron i).  In that form a variable is implied
exactly when some row has it as its only variable, and the partial pattern contradicts the system
exactly when a row has no variable left but parity 1: propagation is complete, not just "the last
undecided variable of a single XOR".  States are immutable, so a search backtracks for free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class XorSystem:
    """k XOR constraints over pattern bits: ``masks[i]`` has bit j set iff neuron j is in XOR i."""

    masks: tuple[int, ...]
    parities: tuple[int, ...]

    @classmethod
    def draw(cls, rng: np.random.Generator, variables: np.ndarray, k: int, *, density: float = 0.5) -> "XorSystem":
        """k random XORs over ``variables`` (neuron indices): each joins each XOR with probability
        ``density``; each parity is uniform on {0, 1}."""
        if not 0 < density <= 1:
            raise ValueError("density must be in (0, 1]")
        variables = np.asarray(variables, dtype=np.int64)
        member = rng.random((k, variables.size)) < density
        parities = rng.integers(0, 2, size=k)
        masks = tuple(sum(1 << int(v) for v in variables[row]) for row in member)
        return cls(masks, tuple(int(b) for b in parities))

    @property
    def k(self) -> int:
        return len(self.masks)

    def satisfied(self, pattern: np.ndarray) -> bool:
        """Does the full pattern (bools, one per neuron) satisfy every XOR?"""
        bits = int.from_bytes(np.packbits(np.asarray(pattern, dtype=bool), bitorder="little").tobytes(), "little")
        return all((m & bits).bit_count() % 2 == b for m, b in zip(self.masks, self.parities))

    def matrix(self, neurons: int) -> tuple[np.ndarray, np.ndarray]:
        """(k, neurons) membership as bools, and the parities: the system for a solver back end."""
        M = np.array([[(m >> j) & 1 for j in range(neurons)] for m in self.masks], dtype=bool).reshape(-1, neurons)
        return M, np.array(self.parities, dtype=np.int64)


class ParityState:
    """An XOR system on the still undecided neurons, fully reduced (see the module docstring).

    ``rows`` maps each row's pivot (a neuron index in the row; no other row contains it) to
    (mask, parity).  :meth:`of` returns None for an inconsistent system, :meth:`assign` returns None
    when a decision contradicts it.
    """

    __slots__ = ("rows", "support")

    def __init__(self, rows: dict[int, tuple[int, int]]) -> None:
        self.rows = rows
        support = 0
        for mask, _ in rows.values():
            support |= mask
        self.support = support  # neurons that occur in some row: deciding any other changes nothing

    @classmethod
    def of(cls, system: XorSystem) -> "ParityState | None":
        rows: dict[int, tuple[int, int]] = {}
        for mask, par in zip(system.masks, system.parities):
            for p, (m, b) in rows.items():  # reduce by the pivots found so far
                if mask >> p & 1:
                    mask ^= m
                    par ^= b
            if mask == 0:
                if par:
                    return None  # 0 = 1: no pattern satisfies the system
                continue  # a combination of earlier rows
            rows = _add_row(rows, mask, par)
        return cls(rows)

    def forced(self, var: int) -> int | None:
        """The value the system implies for neuron ``var`` given the decisions so far, or None."""
        var = int(var)  # a numpy integer would overflow in 1 << var
        row = self.rows.get(var)
        if row is not None and row[0] == 1 << var:
            return row[1]
        return None

    def assign(self, var: int, value: int) -> "ParityState | None":
        """The state after deciding neuron ``var`` = value (0/1); None if that contradicts the XORs."""
        var = int(var)  # a numpy integer would overflow in 1 << var
        bit = 1 << var
        if not self.support & bit:
            return self
        rows = dict(self.rows)
        if var in rows:
            mask, par = rows.pop(var)
            mask ^= bit
            par ^= value
            if mask == 0:
                return None if par else ParityState(rows)
            # No other row holds var (it was a pivot); the row needs a new pivot.
            return ParityState(_add_row(rows, mask, par))
        for p, (m, b) in rows.items():
            if m & bit:
                rows[p] = (m ^ bit, b ^ value)
        return ParityState(rows)


def _add_row(rows: dict[int, tuple[int, int]], mask: int, par: int) -> dict[int, tuple[int, int]]:
    """Add a row free of every existing pivot; its pivot (highest bit: the neurons of later layers
    are decided last, so a pivot there stays a pivot longest) is cleared from the other rows."""
    p = mask.bit_length() - 1
    for q, (m, b) in list(rows.items()):
        if m >> p & 1:
            rows[q] = (m ^ mask, b ^ par)
    rows[p] = (mask, par)
    return rows
