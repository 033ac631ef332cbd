"""Cone statistics of stacked convolutional layers (Gamba, Carlsson, Azizpour, Björkman).

Source of the definitions.  M. Gamba et al., "On the geometry of rectifier convolutional neural
networks" (ICCV workshops 2019; arXiv 2003.07797, whose later version is "Hyperplane arrangements
of trained ConvNets are biased").  The paper's text beyond the introduction was not reachable from
here; the definitions below follow the authors' reference code, github.com/magamba/cones
(README "Polytope arrangements", ``constants.py``, ``linalg.py``: ``distance``, ``opening``,
``rotation2``, ``pairwise_nesting``; ``nesting.py``: ``binary_nesting``).  The paper's
introduction states the premise: every convolutional filter is symmetric w.r.t. the identity line;
its translated hyperplanes form a polyhedral cone with its apex on that line.

Cone of one filter (``filter_cone``).  A filter w (b its bias, S = sum(w)) applied at every
position of an input of dimension n gives hyperplanes that all meet the identity line at one point,
the **apex** lambda* 1 with lambda* = -b / S (reference ``distance``: ``coef = -b / sum(w)``; no apex
when S = 0).  The **opening** is the angle between the filter's hyperplane and the identity line of
the whole input space R^n, alpha = arcsin(|<w, 1>| / (|w| sqrt(n))), in [0, 90] deg; the reference
embeds the kernel in the full input (``make_sparse``) before measuring it and reports alpha / (pi/2)
(key ``opening``).  The sign of S (which way the cone opens) does not enter the reference's states;
it is reported as ``orientation``.

Nesting of a layer pair (``nesting_state``).  For a filter of layer k+1 (cone 1) and the filters of
layer k that feed its input channels (cones 2_c): apex gap d_c = lambda*_1 - lambda*_2c (the
reference multiplies by sqrt(n), which does not change its sign), opening gap o_c = alpha_1 - alpha_2c
(normalised).  With D = max_c d_c and O = min_c o_c (``binary_nesting``):

- D >= 0 and O > 0: OUT_PARTIAL_IN; D >= 0 and O <= 0: OUT_FULL_IN
  (README: the cone of layer k+1 is partially / fully contained by the combination of layer k's cones);
- D < 0 and O >= 0: IN_FULL_OUT; D < 0 and O < 0: IN_PARTIAL_OUT
  (README: layer k's combination, its vertex inside the cone of layer k+1, is fully / partially
  contained in it).

Per filter the reference also keeps the means of |d_c|, |o_c| and |rotation_c| (``apex_distance``,
``opening_distance``, ``rotation``/``rotation_deg`` here); the states are counted per layer pair.

**Rotation** (``kernel_rotation``): the angle of the rotation about the identity line that sends
one cone to the other once their openings are equal (reference ``rotation2``: shear the wider cone
along the identity line to the other's opening, then take the smallest angle between its translated
normals and the other normal).  Equalising the openings leaves exactly the components of the normals
orthogonal to the identity line, so here rotation = min over relative shifts t (at which the kernels
overlap) of the angle between P u and P T_t v, P the projection onto 1-perp of the channel's grid
(both kernels on the grid of the upper layer's input, as the reference uses one input size for both).

Adaptation to lrmilp's layers.  The reference uses "student" layers in which every input channel has
its own k x k kernel, bias and ReLU before the channel sum, and pairs the kernel of layer k+1 that
reads channel c with the kernels of layer k's filter c.  ``Conv2d`` here is a standard convolution
(one bias per filter, channel sum inside the ReLU), so a cone is that of a whole filter, in the
layer's input space (n = C H W), and filter f of layer k+1, which reads every channel c of layer k,
is compared with every filter c of layer k.  Rotation needs no bias, so it follows the reference's
pairing per channel: kernel W_{k+1}[f, c] against each kernel W_k[c, c'], averaged over (c, c').
Filters of layer k without an apex are left out of D and O; with none left, or without an apex of
its own, a filter's state is NO_APEX.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..network import Conv2d, Network

STATES = ("OUT_FULL_IN", "OUT_PARTIAL_IN", "IN_FULL_OUT", "IN_PARTIAL_OUT")
FLAT_SUM = 1e-12
"""|sum(w)| <= FLAT_SUM * |w|_1 counts as 0: the filter's hyperplanes are parallel to the identity line."""


@dataclass
class ConeResult:
    """Per pair of stacked conv layers, per filter of the upper layer: apex, opening, rotation, state."""

    pairs: list[dict]
    seconds: float

    def to_dict(self) -> dict:
        return {"pairs": self.pairs, "layer_pairs": len(self.pairs),
                "counts": dict(sum((Counter(p["counts"]) for p in self.pairs), Counter())),
                "states": list(STATES), "seconds": round(self.seconds, 6)}


def filter_cone(w: np.ndarray, b: float, dim: int | None = None) -> dict:
    """Apex (lambda* = -b / sum(w)), orientation and opening of one filter's cone.

    ``dim`` is the dimension n of the space the filter acts on (the layer's whole input, as in the
    reference); it defaults to the number of weights.  Without an apex, ``apex`` is None.
    """
    w = np.asarray(w, dtype=float).reshape(-1)
    n = int(dim) if dim is not None else w.size
    if n < w.size:
        raise ValueError(f"dim {n} is smaller than the filter's {w.size} weights")
    S, norm = float(w.sum()), float(np.linalg.norm(w))
    out = {"sum": S, "norm": norm, "dim": n}
    if norm == 0 or abs(S) <= FLAT_SUM * np.abs(w).sum():
        return {**out, "apex": None, "orientation": 0, "angle_deg": 0.0, "opening": 0.0}
    alpha = float(np.arcsin(min(1.0, abs(S) / (norm * np.sqrt(n)))))
    return {**out, "apex": float(-b / S), "orientation": 1 if S > 0 else -1,
            "angle_deg": float(np.degrees(alpha)), "opening": alpha / (np.pi / 2)}


def nesting_state(apex_gaps, opening_gaps) -> str:
    """The reference's ``binary_nesting``: D = max apex gap, O = min opening gap (upper minus lower)."""
    D, O = max(apex_gaps), min(opening_gaps)
    if D >= 0:
        return "OUT_PARTIAL_IN" if O > 0 else "OUT_FULL_IN"
    return "IN_FULL_OUT" if O >= 0 else "IN_PARTIAL_OUT"


def _rotations(U: np.ndarray, V: np.ndarray, n: int) -> np.ndarray:
    """Rotation angles (deg) between kernels U[..., h, w] and V[..., h', w'] (broadcast leading axes)."""
    hu, wu = U.shape[-2:]
    hv, wv = V.shape[-2:]
    Su, Sv = U.sum(axis=(-2, -1)), V.sum(axis=(-2, -1))
    nu = (U ** 2).sum(axis=(-2, -1)) - Su ** 2 / n          # |P u|^2
    nv = (V ** 2).sum(axis=(-2, -1)) - Sv ** 2 / n
    Vp = np.pad(V, [(0, 0)] * (V.ndim - 2) + [(hu - 1, hu - 1), (wu - 1, wu - 1)])
    best = None
    for dy in range(hv + hu - 1):
        for dx in range(wv + wu - 1):
            dot = (U * Vp[..., dy:dy + hu, dx:dx + wu]).sum(axis=(-2, -1))
            best = dot if best is None else np.maximum(best, dot)
    scale = np.sqrt(np.clip(nu, 0, None) * np.clip(nv, 0, None))
    tol = 1e-12 * (U ** 2).sum(axis=(-2, -1)) * (V ** 2).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (best - Su * Sv / n) / scale
    return np.where(scale ** 2 > tol, np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))), np.nan)


def kernel_rotation(u: np.ndarray, v: np.ndarray, grid: tuple[int, int]) -> float | None:
    """Rotation (deg) about the identity line between the cones of 2-D kernels u and v on an H x W
    channel (see the module docstring); None when a kernel's normal is parallel to the identity line."""
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    r = float(_rotations(u, v, int(grid[0]) * int(grid[1])))
    return None if np.isnan(r) else r


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(vals)) if vals else None


def cone_statistics(net: Network) -> ConeResult:
    """Cone statistics for every pair (conv layer k with ReLU, conv layer k+1) of ``net``.

    Guarantees: one entry per filter of each upper layer, with a state among STATES or NO_APEX, and
    per pair the counts of each state.  Networks without such a pair give an empty list.

    Parameters
    ----------
    net : Network
        The network.

    Returns
    -------
    ConeResult

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> cone_statistics(random_mlp([3, 4], seed=0)).to_dict()["pairs"]
    []
    """
    t0 = time.perf_counter()
    pairs = []
    for k in range(len(net.layers) - 1):
        low, up = net.layers[k], net.layers[k + 1]
        if not (isinstance(low, Conv2d) and isinstance(up, Conv2d) and low.relu):
            continue
        lows = [filter_cone(low.W[c], float(low.b[c]), low.in_size) for c in range(low.W.shape[0])]
        # rotation per (f, c, c'): kernel W_up[f, c] against W_low[c, c'], on the upper input's grid
        rot = _rotations(up.W[:, :, None], low.W[None], up.in_shape[1] * up.in_shape[2])
        filters = []
        for f in range(up.W.shape[0]):
            cone = filter_cone(up.W[f], float(up.b[f]), up.in_size)
            fed = [lc for lc in lows if lc["apex"] is not None]
            entry = {**cone, "rotation_deg": _mean(rot[f].ravel())}
            entry["rotation"] = None if entry["rotation_deg"] is None else entry["rotation_deg"] / 90.0
            if cone["apex"] is None or not fed:
                entry.update(state="NO_APEX", apex_distance=None, opening_distance=None)
            else:
                d = [cone["apex"] - lc["apex"] for lc in fed]
                o = [cone["opening"] - lc["opening"] for lc in fed]
                entry.update(state=nesting_state(d, o), apex_distance=float(np.mean(np.abs(d))),
                             opening_distance=float(np.mean(np.abs(o))))
            filters.append(entry)
        counts = Counter(f["state"] for f in filters)
        pairs.append({"layers": [k, k + 1], "filters": filters, "lower_filters": lows,
                      "rotation_deg": _mean(f["rotation_deg"] for f in filters),
                      "counts": {s: int(counts.get(s, 0)) for s in STATES + ("NO_APEX",)}})
    return ConeResult(pairs, time.perf_counter() - t0)
