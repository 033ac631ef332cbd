"""Input domains: Box, Polytope, AffineSlice and Unbounded.

Every domain is described in *parameter space* u of dimension ``dim``: the network input is
``x = origin + basis @ u`` (identity for Box, Polytope and Unbounded), and u must satisfy the column
bounds ``lo <= u <= hi`` (entries may be infinite) and the rows ``A_ub @ u <= b_ub``.  Region
counting, margins and tolerances all live in this parameter space.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import InputError, parse_file


def _vector(name: str, value, size: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"{name} is not a list of numbers") from None
    if arr.size == 1 and size != 1:
        arr = np.full(size, arr[0])
    if arr.size != size:
        raise InputError(f"{name} has {arr.size} entries, expected {size}")
    if np.any(np.isnan(arr)):
        raise InputError(f"{name} contains NaN")
    return arr


@dataclass(eq=False)
class Domain:
    """A full-dimensional convex set of parameters u, mapped affinely to network inputs."""

    input_dim: int
    dim: int
    lo: np.ndarray
    hi: np.ndarray
    A_ub: np.ndarray
    b_ub: np.ndarray
    origin: np.ndarray | None = None  # None: x = u
    basis: np.ndarray | None = None
    kind: str = "domain"

    @property
    def bounded(self) -> bool:
        return bool(np.all(np.isfinite(self.lo)) and np.all(np.isfinite(self.hi)))

    @property
    def is_identity(self) -> bool:
        return self.basis is None

    def to_input(self, U: np.ndarray) -> np.ndarray:
        """Map parameters (batch, dim) to network inputs (batch, input_dim)."""
        U = np.atleast_2d(np.asarray(U, dtype=float))
        if self.basis is None:
            return U
        return self.origin + U @ self.basis.T

    def contains(self, U: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        U = np.atleast_2d(np.asarray(U, dtype=float))
        ok = np.all((U >= self.lo - tol) & (U <= self.hi + tol), axis=1)
        if self.A_ub.shape[0]:
            ok &= np.all(U @ self.A_ub.T <= self.b_ub + tol, axis=1)
        return ok

    def input_box(self) -> tuple[np.ndarray, np.ndarray]:
        """A box of inputs x containing the domain's image (infinite where unbounded).

        Exact for Box and AffineSlice; for a Polytope the column bounds, tightened by one LP per
        side when they are infinite.
        """
        lo, hi = self.lo.copy(), self.hi.copy()
        if self.A_ub.shape[0] and not self.bounded:
            lo, hi = lp_box(self.A_ub, self.b_ub, lo, hi)
        if self.basis is None:
            return lo, hi
        Vp, Vn = np.clip(self.basis, 0, None), np.clip(self.basis, None, 0)
        with np.errstate(invalid="ignore"):  # 0 * inf: a zero direction ignores an infinite side
            xlo = self.origin + np.nan_to_num(Vp @ np.where(Vp.any(0), lo, 0) + Vn @ np.where(Vn.any(0), hi, 0),
                                              nan=0.0)
            xhi = self.origin + np.nan_to_num(Vp @ np.where(Vp.any(0), hi, 0) + Vn @ np.where(Vn.any(0), lo, 0),
                                              nan=0.0)
        return xlo, xhi

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n parameter points drawn uniformly from the domain (bounded domains only).

        Polytopes are sampled by rejection from their bounding box.
        """
        if not self.bounded:
            raise InputError(f"cannot sample uniformly from an unbounded {self.kind} domain")
        if self.A_ub.shape[0] == 0:
            return rng.uniform(self.lo, self.hi, size=(n, self.dim))
        out, have = [], 0
        for _ in range(1000):
            U = rng.uniform(self.lo, self.hi, size=(max(4 * n, 1024), self.dim))
            U = U[self.contains(U, tol=0.0)]
            out.append(U)
            have += len(U)
            if have >= n:
                return np.concatenate(out)[:n]
        raise InputError("polytope occupies too little of its bounding box to sample by rejection")

    def describe(self) -> dict:
        out: dict = {"kind": self.kind, "dim": self.dim, "input_dim": self.input_dim}
        if self.bounded and self.dim <= 16:
            out["lo"] = self.lo.tolist()
            out["hi"] = self.hi.tolist()
        if self.A_ub.shape[0]:
            out["constraints"] = int(self.A_ub.shape[0])
        return out


def lp_box(A: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The box [lo, hi] tightened to the polytope A u <= b within it: per coordinate one LP for each end.

    Parameters
    ----------
    A, b : numpy.ndarray
        The polytope's rows.
    lo, hi : numpy.ndarray
        Column bounds (may be infinite).

    Returns
    -------
    tuple of numpy.ndarray
        The tightened (lo, hi); an end stays infinite when the polytope is unbounded that way.

    Raises
    ------
    InputError
        The polytope is empty.

    Examples
    --------
    >>> import numpy as np
    >>> lo, hi = lp_box(np.array([[1.0, 1.0]]), np.array([1.0]), np.zeros(2), np.full(2, np.inf))
    >>> lo.tolist(), hi.tolist()
    ([0.0, 0.0], [1.0, 1.0])
    """
    from scipy.optimize import linprog
    lo, hi = lo.copy(), hi.copy()
    bounds = [(None if not np.isfinite(lo[i]) else lo[i], None if not np.isfinite(hi[i]) else hi[i])
              for i in range(len(lo))]
    for i in range(len(lo)):
        for sign in (1.0, -1.0):
            c = np.zeros(len(lo))
            c[i] = sign
            res = linprog(c, A_ub=A, b_ub=b, bounds=bounds, method="highs")
            if res.status == 0:
                if sign > 0:
                    lo[i] = max(lo[i], res.fun)
                else:
                    hi[i] = min(hi[i], -res.fun)
            elif res.status == 2:
                raise InputError("polytope domain is empty")
    return lo, hi


def domain_rows(domain: Domain) -> tuple[np.ndarray, np.ndarray]:
    """The domain as unit-normal rows ``rows u <= rhs``: its finite box faces, then its ``A_ub`` rows.

    Parameters
    ----------
    domain : Domain
        Any domain.

    Returns
    -------
    rows : numpy.ndarray
        (m, d) unit normals (no rows for all of R^d).
    rhs : numpy.ndarray
        (m,) offsets.

    Examples
    --------
    >>> rows, rhs = domain_rows(Box(-1, 2, 1))
    >>> rows.ravel().tolist(), rhs.tolist()
    ([1.0, -1.0], [2.0, 1.0])
    """
    d = domain.dim
    rows, rhs = [], []
    eye = np.eye(d)
    for i in range(d):
        if np.isfinite(domain.hi[i]):
            rows.append(eye[i]); rhs.append(domain.hi[i])
        if np.isfinite(domain.lo[i]):
            rows.append(-eye[i]); rhs.append(-domain.lo[i])
    for a, b in zip(domain.A_ub, domain.b_ub):
        nrm = np.linalg.norm(a)
        if nrm > 0:
            rows.append(a / nrm); rhs.append(b / nrm)
    return np.array(rows).reshape(-1, d), np.array(rhs)


def _check_box(lo: np.ndarray, hi: np.ndarray) -> None:
    if np.any(lo > hi):
        i = int(np.argmax(lo > hi))
        raise InputError(f"box has lo > hi at coordinate {i} ({lo[i]} > {hi[i]})")
    if np.any(lo == hi):
        i = int(np.argmax(lo == hi))
        raise InputError(f"box is empty (lo == hi = {lo[i]} at coordinate {i}); regions need full dimension")


def Box(lo, hi, input_dim: int) -> Domain:
    """The box lo <= x <= hi (scalars broadcast); lo < hi in every coordinate, finite or infinite.

    Parameters
    ----------
    lo, hi : float or array_like
        The bounds.
    input_dim : int
        The network's input size.

    Returns
    -------
    Domain

    Raises
    ------
    InputError
        lo >= hi somewhere, NaN, or the wrong length.

    Examples
    --------
    >>> Box(-1, 1, 3).describe()["kind"]
    'box'
    """
    lo, hi = _vector("box lo", lo, input_dim), _vector("box hi", hi, input_dim)
    _check_box(lo, hi)
    return Domain(input_dim, input_dim, lo, hi, np.zeros((0, input_dim)), np.zeros(0), kind="box")


def Unbounded(input_dim: int) -> Domain:
    """All of R^n0.

    Parameters
    ----------
    input_dim : int
        The network's input size.

    Returns
    -------
    Domain

    Examples
    --------
    >>> Unbounded(2).bounded
    False
    """
    return Domain(input_dim, input_dim, np.full(input_dim, -np.inf), np.full(input_dim, np.inf),
                  np.zeros((0, input_dim)), np.zeros(0), kind="unbounded")


def Polytope(A, b, input_dim: int, *, lo=None, hi=None) -> Domain:
    """{x : A x <= b} (optionally intersected with a box); must have non-empty interior.

    Parameters
    ----------
    A, b : array_like
        The rows and right-hand sides.
    input_dim : int
        The network's input size.
    lo, hi : float or array_like, optional
        A box to intersect with.

    Returns
    -------
    Domain

    Raises
    ------
    InputError
        Rows of the wrong size, or an empty polytope.

    Examples
    --------
    >>> import numpy as np
    >>> Polytope(np.array([[1.0, 1.0]]), np.array([1.0]), 2, lo=0, hi=1).describe()["constraints"]
    1
    """
    A = np.atleast_2d(np.asarray(A, dtype=float))
    b = np.asarray(b, dtype=float).reshape(-1)
    if A.shape[1] != input_dim:
        raise InputError(f"polytope A has {A.shape[1]} columns, network has {input_dim} inputs")
    if A.shape[0] != b.size:
        raise InputError(f"polytope A has {A.shape[0]} rows but b has {b.size} entries")
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
        raise InputError("polytope A or b contains NaN or infinite values")
    lo = np.full(input_dim, -np.inf) if lo is None else _vector("polytope lo", lo, input_dim)
    hi = np.full(input_dim, np.inf) if hi is None else _vector("polytope hi", hi, input_dim)
    _check_box(lo, hi)
    dom = Domain(input_dim, input_dim, lo, hi, A, b, kind="polytope")
    if chebyshev_radius(dom) <= 0:
        raise InputError("polytope domain has empty interior")
    return dom


def AffineSlice(origin, directions, lo, hi) -> Domain:
    """x = origin + directions @ u with u in the box [lo, hi]^k; ``directions`` is (n0, k), rank k.

    Parameters
    ----------
    origin : array_like
        (n0,) a point of the slice.
    directions : array_like
        (n0, k) the slice's directions.
    lo, hi : float or array_like
        The parameter box.

    Returns
    -------
    Domain
        Counts, margins and tolerances live in the parameters u.

    Raises
    ------
    InputError
        Shapes that do not match, or directions of rank below k.

    Examples
    --------
    >>> import numpy as np
    >>> AffineSlice(np.zeros(3), np.eye(3)[:, :2], -1, 1).dim
    2
    """
    origin = np.asarray(origin, dtype=float).reshape(-1)
    V = np.asarray(directions, dtype=float)
    if V.ndim == 1:
        V = V[:, None]
    if V.shape[0] != origin.size:
        raise InputError(f"slice directions have {V.shape[0]} rows, origin has {origin.size} entries")
    if not (np.all(np.isfinite(origin)) and np.all(np.isfinite(V))):
        raise InputError("slice origin or directions contain NaN or infinite values")
    k = V.shape[1]
    if np.linalg.matrix_rank(V) < k:
        raise InputError("slice directions are linearly dependent (points are collinear or repeated)")
    lo, hi = _vector("slice lo", lo, k), _vector("slice hi", hi, k)
    _check_box(lo, hi)
    return Domain(origin.size, k, lo, hi, np.zeros((0, k)), np.zeros(0), origin=origin, basis=V, kind="slice")


def segment(a, b) -> Domain:
    """The closed segment from a to b: x = a + t (b - a), t in [0, 1].

    Parameters
    ----------
    a, b : array_like
        The ends (network inputs).

    Returns
    -------
    Domain
        A 1-D :func:`AffineSlice`.

    Examples
    --------
    >>> import numpy as np
    >>> segment(np.zeros(2), np.ones(2)).dim
    1
    """
    a, b = np.asarray(a, dtype=float).reshape(-1), np.asarray(b, dtype=float).reshape(-1)
    if a.shape != b.shape:
        raise InputError(f"segment end points have sizes {a.size} and {b.size}")
    return AffineSlice(a, (b - a)[:, None], 0.0, 1.0)


def plane(p0, p1, p2, lo: float = -0.5, hi: float = 1.5) -> Domain:
    """The plane x = p0 + u1 (p1 - p0) + u2 (p2 - p0), (u1, u2) in [lo, hi]^2.

    Parameters
    ----------
    p0, p1, p2 : array_like
        Three points (network inputs) spanning the plane.
    lo, hi : float
        The window of (u1, u2).

    Returns
    -------
    Domain
        A 2-D :func:`AffineSlice`.

    Examples
    --------
    >>> import numpy as np
    >>> plane(np.zeros(3), np.eye(3)[0], np.eye(3)[1]).dim
    2
    """
    p0, p1, p2 = (np.asarray(p, dtype=float).reshape(-1) for p in (p0, p1, p2))
    if not (p0.shape == p1.shape == p2.shape):
        raise InputError("plane points have different sizes")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputError(f"window must be finite, got [{lo}, {hi}]", param="window")
    return AffineSlice(p0, np.stack([p1 - p0, p2 - p0], axis=1), lo, hi)


def chebyshev_radius(dom: Domain) -> float:
    """Radius of the largest ball inside the domain (capped at 1e6); <= 0 when it has no interior."""
    from scipy.optimize import linprog
    d = dom.dim
    rows, rhs = [], []
    for i in range(d):
        e = np.zeros(d)
        e[i] = 1.0
        if np.isfinite(dom.hi[i]):
            rows.append(np.append(e, 1.0)); rhs.append(dom.hi[i])
        if np.isfinite(dom.lo[i]):
            rows.append(np.append(-e, 1.0)); rhs.append(-dom.lo[i])
    for a, bb in zip(dom.A_ub, dom.b_ub):
        rows.append(np.append(a, np.linalg.norm(a))); rhs.append(bb)
    c = np.zeros(d + 1)
    c[-1] = -1.0
    res = linprog(c, A_ub=np.array(rows) if rows else None, b_ub=np.array(rhs) if rows else None,
                  bounds=[(None, None)] * d + [(None, 1e6)], method="highs")
    return float(-res.fun) if res.status == 0 else -1.0


def from_options(input_dim: int, *, box: Sequence[float] | None = None, box_file: str | Path | None = None,
                 unbounded: bool = False, model_lo=None, model_hi=None) -> Domain:
    """The domain named by the CLI options of CONTRACT.md, falling back to the model's lo/hi.

    Parameters
    ----------
    input_dim : int
        The network's input size.
    box : (float, float), optional
        The same bounds for every input.
    box_file : str or Path, optional
        A JSON ``{"lo": [...], "hi": [...]}``, optionally with ``"A"``, ``"b"`` for a polytope.
    unbounded : bool
        All of R^n0.
    model_lo, model_hi : array_like, optional
        The model file's own box.

    Returns
    -------
    Domain

    Raises
    ------
    InputError
        More than one option, none and no model box, or a bad box file.

    Examples
    --------
    >>> from_options(2, box=(-1, 1)).describe()["hi"]
    [1.0, 1.0]
    """
    given = sum(x is not None and x is not False for x in (box, box_file)) + bool(unbounded)
    if given > 1:
        raise InputError("give only one of --box, --box-file and --unbounded")
    if unbounded:
        return Unbounded(input_dim)
    if box is not None:
        return Box(box[0], box[1], input_dim)
    if box_file is not None:
        path = Path(box_file)
        spec = parse_file(path, "box file", json.loads)
        if not isinstance(spec, dict) or "lo" not in spec or "hi" not in spec:
            raise InputError(f"box file {path} must hold an object with keys 'lo' and 'hi'")
        if "A" in spec or "b" in spec:
            return Polytope(spec.get("A"), spec.get("b"), input_dim, lo=spec["lo"], hi=spec["hi"])
        return Box(spec["lo"], spec["hi"], input_dim)
    if model_lo is not None and model_hi is not None:
        return Box(model_lo, model_hi, input_dim)
    raise InputError("no domain: give --box LO HI, --box-file F.json or --unbounded (the model has no lo/hi)")
