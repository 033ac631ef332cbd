"""The counting rule and its tolerance: when does a pattern's set of inputs count as a region?

**The rule** (every geometry of the tree and every solver peer): a pattern is a region iff its set of
inputs within the domain contains a Euclidean ball of radius greater than ``tol`` (in the domain's
parameters u).  A ball of radius r > tol inside the region is the certificate; a region counted is
therefore full-dimensional, and a full-dimensional region is counted once tol is below its inradius.

**The default tol is relative**: ``DEFAULT_REL_TOL`` times the domain's *scale* (:func:`domain_scale`:
the half-width of its box, or for an unbounded domain the distance from the origin of the farthest
first-layer hyperplane).  Scaling a box and the network's first layer together, or scaling a
neuron's weights and bias (see :func:`lrmilp.network.balanced`), changes nothing.  1e-9 is far below
the inradius of any region a researcher's net has over a box of its data's size, and far above what
float64 arithmetic resolves there (the balls are measured from their centres, rounding errors are a
few ulps of the coordinates).

**What the arithmetic can certify**: a tol below ``CERTIFY_ULPS`` ulps of the domain's largest
coordinate cannot be told from rounding, so it is refused (:func:`resolve_tolerance`) rather than
answered with a count that may be wrong.  Every count reports ``thin_dropped``: the candidate cells
it met that exist (inradius above ``noise``) but are not above tol, so a user sees at once whether
the count depends on tol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .domains import Domain, lp_box
from .errors import InputError
from .network import Network

DEFAULT_REL_TOL = 1e-9
"""Default tol as a fraction of the domain's scale (:func:`domain_scale`)."""
NOISE_ULPS = 1e3
"""A length below NOISE_ULPS * eps * (largest coordinate magnitude) is rounding noise, eps = 2^-52: a cell
whose radius is that small is flat, not thin (not reported in ``thin_dropped``), and a point that close
to a hyperplane lies on it (vertex geometry)."""
CERTIFY_ULPS = 1e3
"""tol must exceed CERTIFY_ULPS * eps * (largest coordinate magnitude of the domain), eps = 2^-52: balls
are measured with dot products whose rounding is a few ulps of the coordinates times the dimension."""
RESOLVE_FACTOR = 1e3
"""The default tol is refused when every first-layer hyperplane passes within RESOLVE_FACTOR * tol of
the domain's centre: the domain is then so much larger than the network's arrangement that a tolerance
relative to the domain cannot resolve its regions (e.g. a box of +-1e15 around hyperplanes a unit
from the origin)."""
RADIUS_CAP_REL = 1.0
"""LPs maximise min(radius, RADIUS_CAP_REL * scale) so they stay bounded on unbounded domains; a ball
that large is always far above tol."""

RULE = ("a pattern is a region iff its inputs within the domain contain a ball of radius > tol "
        "(Euclidean, in the domain's parameters)")


@dataclass(frozen=True)
class Tolerance:
    """The tolerance of one count: ``tol`` (absolute) and what it was derived from."""

    tol: float
    scale: float
    given: bool  # True when the caller chose tol; False for the relative default
    magnitude: float = 1.0  # the largest coordinate magnitude of the domain (sets the rounding noise)

    @property
    def noise(self) -> float:
        """Lengths at or below this are zero up to rounding (flat cells, not thin ones)."""
        return min(NOISE_ULPS * np.finfo(float).eps * max(self.magnitude, self.scale), 1e-3 * self.tol)

    @property
    def cap(self) -> float:
        """The radius cap of the region LPs."""
        return max(RADIUS_CAP_REL * self.scale, 1e3 * self.tol)

    @property
    def meaning(self) -> str:
        how = "given" if self.given else f"default: {DEFAULT_REL_TOL:g} x the domain's scale {self.scale:.6g}"
        return f"{RULE}; tol = {self.tol:.6g} ({how})"

    def describe(self) -> dict:
        """The keys every count result carries about its tolerance."""
        return {"tol": self.tol, "tol_meaning": self.meaning, "tol_scale": self.scale,
                "tol_source": "given" if self.given else "default"}


def _first_layer_rows(net: Network, domain: Domain) -> tuple[np.ndarray, np.ndarray]:
    """The first ReLU layer's pre-activations as A u + c in domain parameters."""
    M = np.eye(domain.dim) if domain.basis is None else np.asarray(domain.basis, dtype=float)
    m = np.zeros(domain.input_dim) if domain.origin is None else np.asarray(domain.origin, dtype=float)
    A, c = M, m
    for layer in net.layers[:net.relu_layers[0] + 1]:
        A, c = np.asarray(layer.matrix @ A), np.asarray(layer.matrix @ c).reshape(-1) + layer.bias
    return A, c


def parameter_box(domain: Domain) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on the domain's parameters: its column bounds, tightened by LP for a polytope."""
    lo, hi = domain.lo.astype(float), domain.hi.astype(float)
    if domain.A_ub.shape[0] and not domain.bounded:
        lo, hi = lp_box(domain.A_ub, domain.b_ub, lo, hi)
    return lo, hi


def domain_scale(net: Network, domain: Domain) -> float:
    """The length the default tol is relative to.

    A domain with a finite parameter box: the half-width of its widest side.  Otherwise the largest
    distance from the origin of a first-layer hyperplane (in parameters), where the regions near the
    origin live; 1 when every such hyperplane passes through the origin (its regions are cones).
    """
    lo, hi = parameter_box(domain)
    if np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)):
        return float(np.max(hi - lo)) / 2.0
    if not net.relu_layers:
        return 1.0
    A, c = _first_layer_rows(net, domain)
    norms = np.sqrt(np.einsum("ij,ij->i", A, A))
    live = norms > 0
    spread = float(np.max(np.abs(c[live]) / norms[live], initial=0.0))
    return spread if spread > 0 else 1.0


def spread(net: Network, domain: Domain) -> float:
    """The largest distance of a first-layer hyperplane from the centre of the domain's parameter box
    (from the origin when the box is unbounded); 0 when there is no such hyperplane."""
    if not net.relu_layers:
        return 0.0
    lo, hi = parameter_box(domain)
    finite = np.isfinite(lo) & np.isfinite(hi)
    centre = np.zeros(lo.shape)
    centre[finite] = (lo[finite] + hi[finite]) / 2
    A, c = _first_layer_rows(net, domain)
    norms = np.sqrt(np.einsum("ij,ij->i", A, A))
    live = norms > 0
    return float(np.max(np.abs(A[live] @ centre + c[live]) / norms[live], initial=0.0))


def magnitude(net: Network, domain: Domain) -> float:
    """The largest coordinate magnitude the arithmetic of a count works with."""
    lo, hi = parameter_box(domain)
    ends = np.concatenate([lo[np.isfinite(lo)], hi[np.isfinite(hi)]])
    mag = float(np.max(np.abs(ends), initial=0.0))
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        mag = max(mag, domain_scale(net, domain))
    return mag


def resolve_tolerance(net: Network, domain: Domain, tol: float | None = None) -> Tolerance:
    """The tolerance of a count of ``net`` over ``domain``: ``tol`` if given, else the relative default.

    Parameters
    ----------
    net : Network
        The network (its first layer sets the scale over an unbounded domain).
    domain : Domain
        The domain.
    tol : float, optional
        An absolute tol.

    Returns
    -------
    Tolerance

    Raises
    ------
    InputError
        ``tol`` is not a positive finite number, or it is below what float64 arithmetic can certify at
        the domain's coordinates (then no count could be trusted, so none is made).

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> resolve_tolerance(random_mlp([2, 3]), Box(-2, 2, 2)).tol
    2e-09
    """
    scale = domain_scale(net, domain)
    if tol is not None:
        if not (isinstance(tol, (int, float, np.floating)) and math.isfinite(tol) and tol > 0):
            raise InputError(f"tol must be a positive finite number, got {tol!r}")
        res = Tolerance(float(tol), scale, True, magnitude(net, domain))
    else:
        res = Tolerance(DEFAULT_REL_TOL * scale, scale, False, magnitude(net, domain))
    mag = res.magnitude
    if not res.given:
        sp = spread(net, domain)
        if 0 < sp < RESOLVE_FACTOR * res.tol:
            raise InputError(f"the network's first-layer hyperplanes all pass within {sp:.3g} of the domain's centre, "
                             f"less than {RESOLVE_FACTOR:g} x the default tol ({res.tol:.3g} = {DEFAULT_REL_TOL:g} x the "
                             f"domain's scale {scale:.3g}): the domain is too large for a relative tolerance to resolve "
                             "the network's regions; pass tol, use a smaller box, or count over all of R^n0 (unbounded)")
    floor = CERTIFY_ULPS * np.finfo(float).eps * mag
    if res.tol <= floor:
        what = "the given tol" if res.given else f"the default tol ({DEFAULT_REL_TOL:g} x the domain's half-width)"
        raise InputError(f"{what} {res.tol:.3g} is below what float64 arithmetic can certify at coordinates of "
                         f"{mag:.3g} (about {floor:.2g}): pass tol > {floor:.2g}, move the domain toward the origin, "
                         "or count over all of R^n0 (unbounded)")
    return res
