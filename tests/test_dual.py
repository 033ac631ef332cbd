"""The compiled ``dual`` geometry (lrmilp.cells.dualsplit on lrmilp.lp.bvdual): the same regions as brute force
and as the other geometries, certified witnesses, XOR propagation, and the HiGHS redo of a node whose
LP fails.  Oracles share no code with the compiled search (tests/oracles.py: one scipy LP a pattern)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lrmilp import random_mlp  # noqa: E402
from lrmilp.counting import count_regions, tree_bounds  # noqa: E402
from lrmilp.domains import Box  # noqa: E402
from lrmilp.search import TreeSearch as TreeEnumerator  # noqa: E402
from lrmilp.network import Dense, Network, balanced  # noqa: E402
from lrmilp.parity import ParityState, XorSystem  # noqa: E402
from oracles import box_rows, brute_force_count  # noqa: E402


def _regions(net, dom, geometry: str, **kw) -> dict[bytes, tuple]:
    out: dict[bytes, tuple] = {}
    enum = TreeEnumerator(net, dom, bounds=tree_bounds(net, dom), geometry=geometry,
                          on_region=lambda p, u, r: out.__setitem__(p.tobytes(), (p.copy(), u.copy(), r)), **kw)
    enum.run()
    return out


def _net(widths, seed, kinds=()):
    rng = np.random.default_rng(seed)
    layers, fan = [], widths[0]
    for k, w in enumerate(widths[1:]):
        W, b = rng.normal(size=(w, fan)), 0.5 * rng.normal(size=w)
        if k == 0 and w >= 2:
            for kind in kinds:
                if kind == "duplicate":
                    W[1], b[1] = W[0], b[0]
                elif kind == "parallel":
                    W[1], b[1] = -3.0 * W[0], 0.2
                elif kind == "zero":
                    W[1], b[1] = 0.0, 0.5
                elif kind == "dead":
                    b[1] = -50.0 * (np.abs(W[1]).sum() + 1)
        layers.append(Dense(W, b))
        fan = w
    return Network(layers, (widths[0],))


@settings(deadline=None, max_examples=15, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(n0=st.integers(1, 7), widths=st.lists(st.integers(1, 4), min_size=1, max_size=2), seed=st.integers(0, 10**6),
       kinds=st.lists(st.sampled_from(["duplicate", "parallel", "zero", "dead"]), max_size=2),
       half=st.sampled_from([1.0, 1e-3, 50.0]))
def test_dual_equals_brute_force(n0, widths, seed, kinds, half):
    if sum(widths) > 7:
        widths = widths[:1]
    net = balanced(_net([n0, *widths], seed, kinds))
    dom = Box(-half, half, n0)
    found = _regions(net, dom, "dual")
    tol = TreeEnumerator(net, dom).tol
    A, b = box_rows(dom.lo, dom.hi)
    layers = [(layer.W, layer.b, layer.relu) for layer in net.layers]
    expected = brute_force_count(layers, origin=np.zeros(n0), basis=np.eye(n0), A_dom=A, b_dom=b, tol=tol,
                                 cap=1e3 * half)
    assert {p.tobytes() for p in map(lambda t: np.array(t, dtype=bool), expected)} == set(found)


@pytest.mark.parametrize("widths,seed", [([7, 6, 5], 1), ([8, 8, 8], 2), ([9, 5, 6, 4], 3), ([12, 9], 4)])
def test_dual_equals_lp_geometry_region_by_region(widths, seed):
    """Every region, and a certified ball for each: its centre has the region's pattern, lies in the
    box by more than the radius, and the radius is above tol."""
    net = balanced(random_mlp(widths, seed=seed))
    dom = Box(-1.0, 1.0, widths[0])
    dual, ref = _regions(net, dom, "dual"), _regions(net, dom, "lp")
    assert set(dual) == set(ref)
    tol = TreeEnumerator(net, dom).tol
    for p, u, r in dual.values():
        assert r > tol
        assert np.all(u - r >= dom.lo - 1e-12) and np.all(u + r <= dom.hi + 1e-12)
        assert (net.patterns(u[None])[0] == p).all()


@pytest.mark.parametrize("widths,seed", [([7, 6, 5], 1), ([9, 5, 6, 4], 3)])
def test_dual_propagates_xors(widths, seed):
    net = balanced(random_mlp(widths, seed=seed))
    dom = Box(-1.0, 1.0, widths[0])
    everything = [p for p, _, _ in _regions(net, dom, "dual").values()]
    rng = np.random.default_rng(seed)
    for k in (1, 3, 6):
        system = XorSystem.draw(rng, np.arange(net.neurons), k)
        state = ParityState.of(system)
        if state is None:
            continue
        found = _regions(net, dom, "dual", parity=state)
        assert all(system.satisfied(p) for p, _, _ in found.values())
        assert len(found) == sum(system.satisfied(p) for p in everything)


def test_a_failed_node_is_redone_by_highs_without_double_counting(monkeypatch):
    """The compiled search gives up on a node after emitting part of its children: the HiGHS redo counts
    exactly the rest (the count equals the undisturbed one, and the fallback is reported)."""
    import lrmilp.cells.dualsplit as ds
    net = balanced(random_mlp([8, 6, 6], seed=5))
    dom = Box(-1.0, 1.0, 8)
    ref = _regions(net, dom, "dual")
    real = ds.split
    calls = {"n": 0}

    def flaky(ws, frames, A, c, m0, tol, noise, last, max_lps, max_out):
        calls["n"] += 1
        status = real(ws, frames, A, c, m0, tol, noise, last, 3, max_out)  # a few LPs a call: pauses mid-node
        if calls["n"] % 7 == 0 and status == ds.PAUSED:
            return ds.FAILED
        return status

    monkeypatch.setattr(ds, "split", flaky)
    got = {}
    enum = TreeEnumerator(net, dom, bounds=tree_bounds(net, dom), geometry="dual",
                          on_region=lambda p, u, r: got.__setitem__(p.tobytes(), p))
    stats = enum.run()
    assert stats.lp_fallbacks > 0
    assert stats.regions == len(ref) == len(got) and set(got) == set(ref)


def test_dual_stops_at_max_regions():
    net = balanced(random_mlp([10, 8, 8], seed=6))
    dom = Box(-1.0, 1.0, 10)
    stopped = TreeEnumerator(net, dom, geometry="dual", max_regions=50)
    assert stopped.run().regions == 50 and stopped.stopped == "max_regions"


@pytest.mark.parametrize("widths,seed", [([9, 7, 6], 7), ([12, 8, 5], 8), ([10, 5, 6, 4], 9)])
def test_two_layers_in_one_call_count_the_same(widths, seed, monkeypatch):
    """The fused path (an inner layer's children split by the last layer inside the compiled call)
    counts what child-by-child splitting counts, and so does a HiGHS redo of a node it gave up on."""
    import lrmilp.cells.dualgeom as dg
    import lrmilp.cells.dualsplit as ds
    net = balanced(random_mlp(widths, seed=seed))
    dom = Box(-1.0, 1.0, widths[0])
    bounds = tree_bounds(net, dom)

    def count() -> tuple[int, int]:
        stats = TreeEnumerator(net, dom, bounds=bounds, geometry="dual").run()
        return stats.regions, stats.lp_fallbacks

    fused, _ = count()
    monkeypatch.setattr(dg, "FUSE_MAX_WIDTH", 0)
    plain, _ = count()
    assert fused == plain == len(_regions(net, dom, "lp"))
    monkeypatch.setattr(dg, "FUSE_MAX_WIDTH", 22)
    real = ds.split_count
    calls = {"n": 0}

    def flaky(ws, frames, A, c, m0, A1, c1, ws2, frames2, W, b, glo, ghi, tol, noise, max_lps, *rest):
        calls["n"] += 1
        status = real(ws, frames, A, c, m0, A1, c1, ws2, frames2, W, b, glo, ghi, tol, noise, 5, *rest)
        return ds.FAILED if calls["n"] == 3 and status == ds.PAUSED and ws.out_n[0] == 0 else status

    monkeypatch.setattr(ds, "split_count", flaky)
    redone, fallbacks = count()
    assert redone == plain and (fallbacks > 0 or calls["n"] < 3)
