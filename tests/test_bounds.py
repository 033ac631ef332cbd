"""Bound tightening: sound on samples, LP never looser than interval, MILP never looser than LP."""

from __future__ import annotations

import numpy as np
import pytest

from lrmilp import random_mlp
from lrmilp.bounds import interval_bounds, tighten
from lrmilp.domains import AffineSlice, Box, Polytope
from lrmilp.network import Conv2d, Dense, Network


def _contains(b, pre):
    return all(np.all(pre[k] >= b.lower[k]) and np.all(pre[k] <= b.upper[k]) for k in range(len(pre)))


def _nested(inner, outer, eps=1e-9):
    return all(np.all(inner.lower[k] >= outer.lower[k] - eps) and np.all(inner.upper[k] <= outer.upper[k] + eps)
               for k in range(len(inner.lower)))


@pytest.mark.parametrize("seed", range(4))
def test_lp_bounds_sound_and_tighter_than_interval(seed):
    net = random_mlp([6, 15, 15, 10, 3], seed=seed, last_relu=False)
    dom = Box(-1, 1, 6)
    X = np.random.default_rng(seed).uniform(-1, 1, (100_000, 6))
    pre = net.preactivations(X)
    ib = interval_bounds(net, dom)
    lp = tighten(net, dom, method="lp")
    assert _contains(ib, pre) and _contains(lp, pre)
    assert _nested(lp, ib)
    # LP really tightens something past the first layer
    assert np.sum(lp.upper[2] - lp.lower[2]) < np.sum(ib.upper[2] - ib.lower[2])


def test_milp_bounds_never_looser_than_lp():
    net = random_mlp([4, 10, 10, 2], seed=5, last_relu=False)
    dom = Box(-1, 1, 4)
    lp = tighten(net, dom, method="lp")
    milp = tighten(net, dom, method="milp", time_limit=5)
    X = np.random.default_rng(1).uniform(-1, 1, (100_000, 4))
    assert _contains(milp, net.preactivations(X))
    assert _nested(milp, lp)


def test_milp_time_limit_keeps_valid_bound():
    net = random_mlp([8, 30, 30, 30, 1], seed=2, last_relu=False)
    dom = Box(-1, 1, 8)
    milp = tighten(net, dom, method="milp", time_limit=0.01)
    X = np.random.default_rng(1).uniform(-1, 1, (50_000, 8))
    assert _contains(milp, net.preactivations(X))
    assert milp.timed_out > 0  # the limit really stopped solves, and their dual bounds were kept


def test_jobs_give_same_bounds():
    net = random_mlp([5, 12, 12, 2], seed=3, last_relu=False)
    dom = Box(-1, 1, 5)
    a, b = tighten(net, dom, method="lp"), tighten(net, dom, method="lp", jobs=2)
    assert all(np.allclose(a.lower[k], b.lower[k]) and np.allclose(a.upper[k], b.upper[k]) for k in range(3))


def test_dask_gives_same_bounds():
    pytest.importorskip("distributed")
    net = random_mlp([5, 12, 12, 2], seed=3, last_relu=False)
    dom = Box(-1, 1, 5)
    from lrmilp.parallel import Workers
    a = tighten(net, dom, method="lp")
    with Workers(2, dask="local") as workers:
        b = tighten(net, dom, method="lp", jobs=2, executor=workers.executor)
    assert all(np.allclose(a.lower[k], b.lower[k]) and np.allclose(a.upper[k], b.upper[k]) for k in range(3))


def test_polytope_and_slice_bounds_sound():
    rng = np.random.default_rng(0)
    net = random_mlp([3, 8, 8, 1], seed=9, last_relu=False)
    A = rng.normal(size=(6, 3))
    dom = Polytope(A, np.ones(6), 3, lo=-2, hi=2)
    U = dom.sample(50_000, rng)
    b = tighten(net, dom, method="lp")
    assert _contains(b, net.preactivations(U))
    sl = AffineSlice(rng.normal(size=3), rng.normal(size=(3, 2)), -1, 1)
    b2 = tighten(net, sl, method="lp")
    assert _contains(b2, net.preactivations(sl.to_input(sl.sample(50_000, rng))))


def test_stable_neurons_reported():
    W = np.array([[1.0], [1.0], [1.0]])
    net = Network([Dense(W, np.array([5.0, -5.0, 0.0])), Dense(np.ones((1, 3)), np.zeros(1), relu=False)], (1,))
    b = tighten(net, Box(-1, 1, 1), method="lp")
    assert b.stable_active.tolist() == [0] and b.stable_inactive.tolist() == [1] and b.unstable == 1


def test_conv_bounds_sound():
    rng = np.random.default_rng(0)
    conv = Conv2d(rng.normal(size=(2, 1, 2, 2)), rng.normal(size=2), (1, 5, 5), stride=2, padding=1)
    net = Network([conv, Dense(rng.normal(size=(4, conv.out_size)), rng.normal(size=4)),
                   Dense(rng.normal(size=(1, 4)), np.zeros(1), relu=False)], (1, 5, 5))
    dom = Box(0, 1, 25)
    X = rng.uniform(0, 1, (50_000, 25))
    assert _contains(tighten(net, dom, method="lp"), net.preactivations(X))
