"""Linear constraints of the user's own on a count: on the inputs, a ReLU layer's pre-activations or the
outputs (``lrmilp count --constraints C.json``, ``--class-wins C``).

The counting rule of the project (:mod:`lrmilp.tolerance`) counts a pattern iff its inputs within the
domain hold a Euclidean ball of radius > tol (domain parameters u).  **Under a constraint set C a
pattern counts iff its inputs within the domain that also satisfy C hold a ball of radius > tol.**
Within one region every pre-activation and the output are affine in u
(:meth:`lrmilp.network.Network.region_map`), so C is a set of linear rows in u for that region
(:meth:`BoundConstraints.rows`), and the rule is one Chebyshev LP on the region's rows plus these
(:func:`lrmilp.counting.model.pattern_ball`).  A ball inside region ∩ C lies inside the region, so every
constrained region is also an unconstrained one: the constrained count never exceeds the unconstrained
count.  Constraints are closed half-spaces (``<=`` or ``>=``); an equality would leave no ball, so it is
refused.

The file format (JSON)::

    {"constraints": [
        {"on": "output", "coef": [1, -1, 0], "rhs": 0.0, "sense": "<="},
        {"on": "input",  "coef": [...one per network input...], "rhs": 1.0},
        {"on": "layer", "layer": 1, "coef": [...one per neuron of ReLU layer 1...], "rhs": 0.5, "sense": ">="}
    ]}

``on`` is ``"input"`` (network inputs x, not the domain's parameters), ``"layer"`` (the pre-activations
of the ``layer``-th ReLU layer, counted from 1, of the network as given, before its ReLU) or
``"output"`` (the network's output, after every layer); ``sense`` defaults to ``"<="``.  Every other
key, a wrong size, a non-finite number or a non-number is an :class:`~lrmilp.errors.InputError` naming
the file and the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .domains import Domain
from .errors import InputError, parse_file
from .network import Network

TARGETS = ("input", "layer", "output")
"""What a constraint row may be written on."""
SENSES = ("<=", ">=")
"""Closed half-spaces only: ``==`` would leave no full-dimensional set."""
CONST_REL = 1e-10
"""A row of a pattern's constraint in u whose norm is at most CONST_REL times the size of the terms it
was summed from is constant on the region (the same test :func:`lrmilp.counting.model.pattern_ball`
applies to a neuron): it is then checked at the region's constant value instead of becoming a row."""
KEYS = {"on", "coef", "rhs", "sense", "layer"}


@dataclass(frozen=True)
class Constraint:
    """One row ``coef @ q  sense  rhs`` on q = the network inputs, a ReLU layer's pre-activations or
    the outputs.  ``layer`` is the ReLU layer's number, counted from 1 (``on="layer"`` only)."""

    on: str
    coef: np.ndarray
    rhs: float
    sense: str = "<="
    layer: int | None = None

    def as_le(self) -> tuple[np.ndarray, float]:
        """The row as ``a @ q <= b``."""
        if self.sense == ">=":
            return -self.coef, -self.rhs
        return self.coef, self.rhs


class ConstraintSet:
    """A list of :class:`Constraint` checked against one network's sizes.

    Parameters
    ----------
    constraints : sequence of Constraint
        The rows.
    net : Network
        The network they are written for (sizes are checked here).
    source : str
        What to name in error messages and in :meth:`describe` (a file path, ``class_wins(3)``, ...).

    Raises
    ------
    InputError
        A wrong size, an unknown layer number or target, a non-finite number.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> net = random_mlp([2, 3, 2], seed=0, last_relu=False)
    >>> cs = ConstraintSet([Constraint("input", np.array([1.0, 1.0]), 0.0)], net)
    >>> cs.describe()["on"]
    {'input': 1, 'layer': 0, 'output': 0}
    """

    def __init__(self, constraints: Sequence[Constraint], net: Network, *, source: str = "constraints") -> None:
        self.constraints = tuple(constraints)
        self.source = source
        self.net = net
        if not self.constraints:
            raise InputError(f"{source}: no constraints given")
        for i, con in enumerate(self.constraints):
            where = f"{source}: constraints[{i}]"
            if con.on not in TARGETS:
                raise InputError(f"{where}.on: expected one of {', '.join(TARGETS)}, got {con.on!r}")
            if con.sense not in SENSES:
                raise InputError(f"{where}.sense: expected '<=' or '>=' (an equality leaves no ball), got {con.sense!r}")
            if not (con.coef.ndim == 1 and np.all(np.isfinite(con.coef))) or not math.isfinite(con.rhs):
                raise InputError(f"{where}: coef and rhs must be finite numbers")
            if con.on == "layer":
                if con.layer is None or not 1 <= con.layer <= len(net.relu_layers):
                    raise InputError(f"{where}.layer: expected a ReLU layer number 1..{len(net.relu_layers)}, "
                                     f"got {con.layer!r}")
            elif con.layer is not None:
                raise InputError(f"{where}.layer: only a constraint on 'layer' takes a layer number")
            want = self.size(con)
            if con.coef.size != want:
                what = {"input": "network inputs", "output": "outputs"}.get(con.on, f"neurons in ReLU layer {con.layer}")
                raise InputError(f"{where}.coef: expected {want} entries (the {what}), got {con.coef.size}")

    def size(self, con: Constraint) -> int:
        """How many entries ``con.coef`` must have for this network."""
        if con.on == "input":
            return self.net.input_dim
        if con.on == "output":
            return self.net.output_dim
        return self.net.widths[con.layer - 1]

    def __len__(self) -> int:
        return len(self.constraints)

    def __add__(self, other: "ConstraintSet") -> "ConstraintSet":
        if other.net is not self.net:
            raise InputError("constraint sets of different networks cannot be combined")
        return ConstraintSet(self.constraints + other.constraints, self.net, source=f"{self.source} + {other.source}")

    def describe(self) -> dict:
        """What a count's result says of its constraints: rows, per target, and where they came from."""
        on = {t: sum(c.on == t for c in self.constraints) for t in TARGETS}
        return {"rows": len(self), "on": on, "source": self.source}

    def bind(self, domain: Domain) -> "BoundConstraints":
        """The constraints as rows in the parameters u of ``domain`` (:class:`BoundConstraints`)."""
        if domain.input_dim != self.net.input_dim:
            raise InputError(f"domain has {domain.input_dim} inputs, network has {self.net.input_dim}")
        return BoundConstraints(self, domain)


class BoundConstraints:
    """A :class:`ConstraintSet` over one domain: per pattern, its rows in the domain parameters u.

    Uses the network the set was checked against (as given: a pattern's regions are the same in
    :func:`lrmilp.network.balanced`, but its layer scales and the layers after the last ReLU are not).
    """

    def __init__(self, cset: ConstraintSet, domain: Domain) -> None:
        self.cset, self.domain, self.net = cset, domain, cset.net
        les = [c.as_le() for c in cset.constraints]
        self.coef = [a for a, _ in les]
        self.rhs = np.array([b for _, b in les])

    def rows(self, pattern: np.ndarray, *, const_rel: float = CONST_REL) -> tuple[np.ndarray, np.ndarray] | None:
        """The constraints within the region of ``pattern`` as unit rows ``G u <= h``; None when a row is
        constant on the region and violated there (region ∩ C is empty).

        Parameters
        ----------
        pattern : numpy.ndarray
            A full activation pattern (bools, pattern order).
        const_rel : float
            A row whose u-part has norm <= const_rel times the size of its terms is constant (:data:`CONST_REL`).

        Returns
        -------
        tuple or None
            (G, h) with unit-norm rows of G (constant rows that hold are left out), or None.

        Examples
        --------
        >>> from lrmilp import random_mlp
        >>> from lrmilp.domains import Box
        >>> net = random_mlp([2, 3], seed=0)
        >>> cs = ConstraintSet([Constraint("input", np.array([2.0, 0.0]), 1.0)], net)
        >>> G, h = cs.bind(Box(-1, 1, 2)).rows(np.ones(3, dtype=bool))
        >>> G.tolist(), h.tolist()
        ([[1.0, 0.0]], [0.5])
        """
        dom, net = self.domain, self.net
        basis = np.eye(dom.input_dim) if dom.basis is None else np.asarray(dom.basis, dtype=float)
        origin = np.zeros(dom.input_dim) if dom.origin is None else np.asarray(dom.origin, dtype=float)
        A = c = F = f = None
        if any(con.on != "input" for con in self.cset.constraints):
            A, c, F, f = net.region_map(pattern, origin=dom.origin if dom.basis is not None else None,
                                        basis=dom.basis)
        G, h = [], []
        for con, a, b in zip(self.cset.constraints, self.coef, self.rhs):
            if con.on == "input":
                M, m = basis, origin
            elif con.on == "output":
                M, m = F, f
            else:
                off = net.relu_offsets[net.relu_layers[con.layer - 1]]
                M, m = A[off:off + a.size], c[off:off + a.size]
            g, const = a @ M, float(a @ m)
            norm = float(np.linalg.norm(g))
            if norm <= const_rel * (float(np.abs(a) @ np.abs(M).sum(axis=1)) + 1e-300):
                if const > b:  # a constant row that fails rules the whole region out
                    return None
                continue
            G.append(g / norm)
            h.append((b - const) / norm)
        d = dom.dim
        return (np.array(G).reshape(-1, d), np.array(h))


def parse_constraints(spec: Any, net: Network, *, source: str = "constraints") -> ConstraintSet:
    """A :class:`ConstraintSet` from the file format's object (module docstring), checked strictly.

    Parameters
    ----------
    spec : object
        ``{"constraints": [...]}`` as decoded from JSON.
    net : Network
        The network (sizes).
    source : str
        The name errors and results use (the file's path).

    Returns
    -------
    ConstraintSet

    Raises
    ------
    InputError
        One line naming ``source`` and the field: unknown keys, missing keys, wrong types, sizes or
        values.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> net = random_mlp([2, 3], seed=0)
    >>> len(parse_constraints({"constraints": [{"on": "layer", "layer": 1, "coef": [1, 0, 0], "rhs": 0}]}, net))
    1
    >>> parse_constraints({"constraints": [{"on": "input", "coef": [1], "rhs": 0}]}, net, source="c.json")
    Traceback (most recent call last):
    ...
    lrmilp.errors.InputError: c.json: constraints[0].coef: expected 2 entries (the network inputs), got 1
    """
    if not isinstance(spec, dict) or set(spec) != {"constraints"}:
        raise InputError(f"{source}: expected an object with the one key 'constraints'")
    rows = spec["constraints"]
    if not isinstance(rows, list):
        raise InputError(f"{source}: constraints must be a list")
    out = []
    for i, row in enumerate(rows):
        where = f"{source}: constraints[{i}]"
        if not isinstance(row, dict):
            raise InputError(f"{where}: expected an object")
        unknown = set(row) - KEYS
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                             f"(known: {', '.join(sorted(KEYS))})")
        for key in ("on", "coef", "rhs"):
            if key not in row:
                raise InputError(f"{where}.{key}: missing")
        if not isinstance(row["on"], str):
            raise InputError(f"{where}.on: expected a string")
        coef = row["coef"]
        if not isinstance(coef, list) or not coef or not all(_is_number(v) for v in coef):
            raise InputError(f"{where}.coef: expected a non-empty list of numbers")
        if not _is_number(row["rhs"]):
            raise InputError(f"{where}.rhs: expected a number")
        coef_arr, rhs = np.array(coef, dtype=float), float(row["rhs"])
        if not np.all(np.isfinite(coef_arr)):
            raise InputError(f"{where}.coef: entries must be finite")
        if not math.isfinite(rhs):
            raise InputError(f"{where}.rhs: must be finite")
        layer = row.get("layer")
        if layer is not None and (isinstance(layer, bool) or not isinstance(layer, int)):
            raise InputError(f"{where}.layer: expected an integer")
        sense = row.get("sense", "<=")
        out.append(Constraint(row["on"], coef_arr, rhs, sense if isinstance(sense, str) else repr(sense), layer))
    return ConstraintSet(out, net, source=source)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def load_constraints(path: str | Path, net: Network) -> ConstraintSet:
    """:func:`parse_constraints` of a JSON file; errors name the file.

    Parameters
    ----------
    path : str or Path
        The constraints file.
    net : Network
        The network.

    Returns
    -------
    ConstraintSet

    Raises
    ------
    InputError
        The file is missing, not JSON (NaN and Infinity are refused too), or breaks the format.
    """
    def strict(text: str) -> Any:
        def no_constant(name: str) -> Any:
            raise ValueError(f"{name} is not a finite number")
        return json.loads(text, parse_constant=no_constant)
    return parse_constraints(parse_file(path, "constraints file", strict), net, source=str(path))


def class_wins(net: Network, c: int) -> ConstraintSet:
    """"Class ``c`` wins": the rows y_j - y_c <= 0 for every output j != c (ties count as wins).

    Parameters
    ----------
    net : Network
        The network (at least two outputs).
    c : int
        The class, 0-based.

    Returns
    -------
    ConstraintSet

    Raises
    ------
    InputError
        ``c`` is not an output index, or the network has one output.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> net = random_mlp([2, 4, 3], seed=0, last_relu=False)
    >>> cs = class_wins(net, 1)
    >>> len(cs), cs.constraints[0].coef.tolist()
    (2, [1.0, -1.0, 0.0])
    """
    k = net.output_dim
    if k < 2:
        raise InputError("class_wins needs a network with at least two outputs", param="class_wins")
    if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < k:
        raise InputError(f"class_wins: expected a class 0..{k - 1}, got {c!r}", param="class_wins")
    rows = []
    for j in range(k):
        if j != c:
            a = np.zeros(k)
            a[j], a[c] = 1.0, -1.0
            rows.append(Constraint("output", a, 0.0))
    return ConstraintSet(rows, net, source=f"class_wins({int(c)})")
