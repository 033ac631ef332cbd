"""Property-based tests: the tree's count equals brute force over all patterns (and SCIP) on random
small MLPs and CNNs — duplicate, dead, zero and parallel neurons included — over random boxes,
polytopes, plane slices and all of R^n0, at random scales.

The oracle (``tests/oracles.py``) shares no code with lrmilp's enumerator: one scipy LP per pattern.
Both sides use the tree's tolerance (the result's ``tol``), so a difference is a wrong count.
Examples are derandomised (the same ones every run, so CI is reproducible); set LRMILP_FUZZ=N to
draw N fresh random examples per test instead.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lrmilp.counting import count_regions  # noqa: E402
from lrmilp.domains import AffineSlice, Box, Polytope, Unbounded  # noqa: E402
from lrmilp.network import Conv2d, Dense, Network  # noqa: E402
from oracles import box_rows, brute_force_count  # noqa: E402

HAVE_SCIP = importlib.util.find_spec("pyscipopt") is not None
FRESH = int(os.environ.get("LRMILP_FUZZ", "0"))
SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), database=None,
                derandomize=not FRESH, max_examples=FRESH or 25)


# --- random networks with the degeneracies real nets have -----------------------------------------

def _degenerate(rng: np.random.Generator, W: np.ndarray, b: np.ndarray, kinds: list[str]) -> None:
    """Make some rows of (W, b) duplicates, zero, dead (never active) or parallel to another row."""
    n = W.shape[0]
    for kind in kinds:
        if n < 2 and kind in ("duplicate", "parallel"):
            continue
        i, j = rng.choice(n, size=2, replace=n < 2)
        if kind == "duplicate":
            W[i], b[i] = W[j], b[j]
        elif kind == "parallel":
            W[i], b[i] = -2.0 * W[j], b[j] + rng.normal()
        elif kind == "zero":
            W[i], b[i] = 0.0, rng.choice([-1.0, 0.0, 1.0])
        elif kind == "dead":
            b[i] = -100.0 * (np.abs(W[i]).sum() + 1)


@st.composite
def mlps(draw):
    n0 = draw(st.integers(1, 4))
    widths = draw(st.lists(st.integers(1, 4), min_size=1, max_size=2))
    if sum(widths) > 7:  # 2^7 patterns: the brute force stays around a tenth of a second
        widths = widths[:1]
    seed = draw(st.integers(0, 2**32 - 1))
    kinds = draw(st.lists(st.sampled_from(["duplicate", "parallel", "zero", "dead"]), max_size=2))
    rng = np.random.default_rng(seed)
    layers, fan = [], n0
    for k, w in enumerate(widths):
        W, b = rng.normal(size=(w, fan)), 0.5 * rng.normal(size=w)
        if kinds and k == 0:
            _degenerate(rng, W, b, kinds)
        layers.append(Dense(W, b))
        fan = w
    layers.append(Dense(rng.normal(size=(1, fan)), rng.normal(size=1), relu=False))
    return Network(layers, (n0,)), f"mlp {n0}-{widths} seed {seed} {kinds}"


@st.composite
def cnns(draw):
    """One or two conv layers with shared 1x2 / 2x2 kernels: hyperplanes never in general position."""
    seed = draw(st.integers(0, 2**32 - 1))
    shape = draw(st.sampled_from([(1, 1, 4), (1, 2, 3), (1, 3, 3)]))
    rng = np.random.default_rng(seed)
    kh = 1 if shape[1] == 1 else 2
    filters = draw(st.integers(1, 2))
    conv = Conv2d(rng.normal(size=(filters, 1, kh, 2)), 0.5 * rng.normal(size=filters), in_shape=shape)
    if conv.out_size > 7:
        conv = Conv2d(rng.normal(size=(1, 1, kh, 2)), 0.5 * rng.normal(size=1), in_shape=shape, stride=2)
    layers = [conv, Dense(rng.normal(size=(1, conv.out_size)), rng.normal(size=1), relu=False,
                          in_shape=conv.out_shape)]
    return Network(layers, shape), f"cnn {shape} seed {seed} filters {filters}"


@st.composite
def domains(draw, n0: int):
    """(lrmilp domain, oracle description): box, polytope, plane slice or all of R^n0."""
    kind = draw(st.sampled_from(["box", "polytope", "slice", "unbounded"] if n0 >= 2 else ["box", "unbounded"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    lo = rng.uniform(-2, 0, n0)
    hi = lo + rng.uniform(0.5, 3, n0)
    if kind == "box":
        A, b = box_rows(lo, hi)
        return Box(lo, hi, n0), (np.zeros(n0), np.eye(n0), A, b), kind
    if kind == "unbounded":
        return Unbounded(n0), (np.zeros(n0), np.eye(n0), np.zeros((0, n0)), np.zeros(0)), kind
    if kind == "polytope":
        a = rng.normal(size=n0)
        c = float(a @ (lo + hi) / 2)  # a cut through the box's centre
        A, b = box_rows(lo, hi)
        return (Polytope(a[None], [c], n0, lo=lo, hi=hi),
                (np.zeros(n0), np.eye(n0), np.vstack([A, a]), np.append(b, c)), kind)
    origin, dirs = rng.normal(size=n0), rng.normal(size=(n0, 2))
    A, b = box_rows(np.full(2, -1.0), np.full(2, 1.0))
    return AffineSlice(origin, dirs, -1.0, 1.0), (origin, dirs, A, b), kind


def _oracle(net: Network, dom_desc, tol: float, cap: float) -> int:
    origin, basis, A, b = dom_desc
    layers = []
    for layer in net.layers:
        M = layer.matrix
        layers.append((M.toarray() if hasattr(M, "toarray") else np.asarray(M), layer.bias, layer.relu))
    return len(brute_force_count(layers, origin=origin, basis=basis, A_dom=A, b_dom=b, tol=tol, cap=cap))


def _scaled(net: Network, power: int) -> Network:
    """The same network with every pre-activation multiplied by 2^power (first layer's weights and every
    bias): exactly the same patterns and regions, at an extreme scale."""
    s = 2.0 ** power
    out = []
    for k, layer in enumerate(net.layers):
        if isinstance(layer, Dense):
            out.append(Dense(layer.W * (s if k == 0 else 1.0), layer.b * s, relu=layer.relu, in_shape=layer.in_shape))
        else:
            out.append(Conv2d(layer.W * (s if k == 0 else 1.0), layer.b * s, in_shape=layer.in_shape,
                              stride=layer.stride, padding=layer.padding, relu=layer.relu))
    return Network(out, net.input_shape)


def _check(net: Network, label: str, dom, desc, kind: str, power: int) -> None:
    res = count_regions(_scaled(net, power), dom)
    assert res.complete
    tol = res.tol
    cap = 1e3 * max(tol, 1.0)
    expected = _oracle(net, desc, tol, cap)
    assert res.regions == expected, f"{label} over {kind} at scale 2^{power}: tree {res.regions}, brute force {expected}"
    if res.regions:
        assert res.min_margin is not None and res.min_margin > tol


@settings(**SETTINGS)
@given(data=st.data())
def test_mlp_tree_equals_brute_force(data):
    net, label = data.draw(mlps())
    dom, desc, kind = data.draw(domains(net.input_dim))
    power = data.draw(st.sampled_from([0, 0, 0, 400, -400, 60, -60]))
    _check(net, label, dom, desc, kind, power)


@settings(**{**SETTINGS, "max_examples": FRESH or 10})
@given(data=st.data())
def test_cnn_tree_equals_brute_force(data):
    net, label = data.draw(cnns())
    dom, desc, kind = data.draw(domains(net.input_dim))
    _check(net, label, dom, desc, kind, 0)


@pytest.mark.skipif(not HAVE_SCIP, reason="pyscipopt not installed")
@settings(**{**SETTINGS, "max_examples": FRESH or 10})
@given(data=st.data())
def test_mlp_tree_equals_scip(data):
    """The solver peer by the same rule, on bounded domains (over R^n0 a deep net's SCIP count is not
    complete by design)."""
    net, label = data.draw(mlps())
    dom = Box(-1.0, 1.0, net.input_dim)
    tree = count_regions(net, dom)
    scip = count_regions(net, dom, method="scip")
    assert tree.complete and scip.complete
    assert scip.regions == tree.regions, f"{label}: tree {tree.regions}, scip {scip.regions}"
