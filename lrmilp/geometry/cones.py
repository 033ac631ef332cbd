"""Cone statistics of stacked convolutional layers (after Gamba et al. 2019).

Setting: conv layer k (followed by a ReLU) feeds conv layer k+1.  The input of layer k+1 lies in
the non-negative orthant O (the image of the ReLU).  Take one filter f of layer k+1, weights w
(C x kh x kw, m = C kh kw entries, S = sum(w)) and bias b.  At every position where the kernel lies
inside the image, its pre-activation on a constant input x = lambda 1 is lambda S + b, so all those
translated hyperplanes meet the identity line at one point, the **apex** lambda* = -b / S (no apex
when S = 0: the hyperplanes are parallel to the identity line).  Around the identity line they
bound a cone: all positions active on one side of the apex, all inactive on the other.  The cone
that opens along +1 (the way O does) is the active one when S > 0 (``orientation`` +1), the inactive
one when S < 0 (-1).

Definitions used here (in the patch space R^m of one position, where 1 is the identity direction):

- **opening angle** theta_f = arcsin(|S| / (|w| sqrt(m))): the angle between the identity line and
  the filter's hyperplane (90 deg when w is constant: the cone is a half-space).  The orthant's faces
  make the angle theta_O = arcsin(1 / sqrt(m)) with it; the filter's cone is *wider* than O iff
  theta_f > theta_O, i.e. |S| > |w|.
- **state**, read APEX_EXTENT_SIDE: the apex is IN O (lambda* > 0) or OUT of it (lambda* <= 0);
  with the apex OUT, a wider cone holds all of O (OUT_FULL_IN), a narrower one only part of it
  (OUT_PARTIAL_IN); with the apex IN, a narrower cone lies entirely in O with O's rest outside it
  (IN_FULL_OUT), a wider one reaches partly out of O (IN_PARTIAL_OUT).  ``orthant_inside`` records the
  exact test "every point of O is on the cone's side at every position" (sign(S) w >= 0 and
  sign(S) b >= 0), which implies OUT_FULL_IN.
- **rotation** (per layer pair): the angle between layer k's image of its input identity line,
  W_k 1, and the identity line of its output (layer k+1's input, where the cones' axes lie).  0 deg
  when layer k maps constant inputs to constant pre-activations (equal filter sums, no padding);
  larger when its channels sum differently, i.e. the cones of layer k+1 pulled back to layer k's
  input are rotated away from its identity line.
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
    """Per pair of stacked conv layers, per filter of the upper layer: apex, angle, state."""

    pairs: list[dict]
    seconds: float

    def to_dict(self) -> dict:
        return {"pairs": self.pairs, "layer_pairs": len(self.pairs),
                "counts": dict(sum((Counter(p["counts"]) for p in self.pairs), Counter())),
                "states": list(STATES), "seconds": round(self.seconds, 6)}


def filter_cone(w: np.ndarray, b: float) -> dict:
    """Apex, orientation, opening angle and state of one filter (see the module docstring)."""
    w = np.asarray(w, dtype=float).reshape(-1)
    m, S, norm = w.size, float(w.sum()), float(np.linalg.norm(w))
    out = {"sum": S, "norm": norm, "orthant_angle_deg": float(np.degrees(np.arcsin(1 / np.sqrt(m))))}
    if norm == 0 or abs(S) <= FLAT_SUM * np.abs(w).sum():
        return {**out, "apex": None, "orientation": 0, "angle_deg": 0.0, "state": "NO_APEX",
                "orthant_inside": bool(norm == 0 and b >= 0)}
    apex = -b / S
    sigma = 1 if S > 0 else -1
    wider = abs(S) > norm
    if apex > 0:
        state = "IN_PARTIAL_OUT" if wider else "IN_FULL_OUT"
    else:
        state = "OUT_FULL_IN" if wider else "OUT_PARTIAL_IN"
    angle = float(np.degrees(np.arcsin(min(1.0, abs(S) / (norm * np.sqrt(m))))))
    return {**out, "apex": float(apex), "orientation": sigma, "angle_deg": angle, "state": state,
            "orthant_inside": bool(np.all(sigma * w >= 0) and sigma * b >= 0)}


def _rotation(layer: Conv2d) -> float:
    """Angle (degrees) between W_k 1 and the identity line of layer k's output."""
    img = np.asarray(layer.matrix @ np.ones(layer.in_size)).reshape(-1)
    nrm = np.linalg.norm(img)
    if nrm == 0:
        return 90.0
    return float(np.degrees(np.arccos(min(1.0, abs(img.sum()) / (nrm * np.sqrt(img.size))))))


def cone_statistics(net: Network) -> ConeResult:
    """Cone statistics for every pair (conv layer k with ReLU, conv layer k+1) of ``net``.

    Guarantees: one entry per filter of each upper layer, with a state among STATES or NO_APEX, and
    per pair the counts of each state.  Networks without such a pair give an empty list.
    """
    t0 = time.perf_counter()
    pairs = []
    for k in range(len(net.layers) - 1):
        low, up = net.layers[k], net.layers[k + 1]
        if not (isinstance(low, Conv2d) and isinstance(up, Conv2d) and low.relu):
            continue
        filters = [filter_cone(up.W[f], float(up.b[f])) for f in range(up.W.shape[0])]
        counts = Counter(f["state"] for f in filters)
        pairs.append({"layers": [k, k + 1], "filters": filters, "rotation_deg": _rotation(low),
                      "counts": {s: int(counts.get(s, 0)) for s in STATES + ("NO_APEX",)}})
    return ConeResult(pairs, time.perf_counter() - t0)
