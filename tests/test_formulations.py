"""The big-M LinearModel and its solver translations: every back end solves the same model.

Oracles: sampled inputs (a maximised output is at least every sampled output; a sampled input's
pattern is feasible with a positive margin), and agreement between four independent solvers
(HiGHS raw, HiGHS through Pyomo, CBC through python-mip, SCIP) on the same LinearModel.
"""

from __future__ import annotations

import highspy
import numpy as np
import pytest

from lrmilp import InputError, random_mlp
from lrmilp.domains import Box, Unbounded
from lrmilp.bounds import bigm_model
from lrmilp.formulations import LinearModel, build_bigm, to_highspy, to_mip, to_pyomo, write_model

N_SAMPLES = 100_000
NETS = [([3, 6, 5, 2], 0), ([3, 6, 5, 2], 1), ([2, 5, 4, 3], 7)]


def _net_and_domain(widths, seed):
    net = random_mlp(widths, seed=seed, last_relu=False)
    return net, Box(-1.0, 1.0, widths[0])


def _max_output(model: LinearModel, net, j: int = 0) -> LinearModel:
    last = len(net.layers) - 1
    obj = np.zeros(model.num_vars)
    obj[model.groups[f"g{last}"][j]] = 1.0
    return model.with_objective(obj, "max")


def _highs_opt(model: LinearModel, *, relax: bool = False) -> float:
    h = to_highspy(model, relax=relax)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-9)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return float(h.getInfo().objective_function_value)


def _pyomo_opt(model: LinearModel) -> float:
    import pyomo.environ as pyo

    m = to_pyomo(model)
    for name in ("appsi_highs", "highs"):
        solver = pyo.SolverFactory(name)
        if solver.available(exception_flag=False):
            break
    else:
        pytest.skip("no HiGHS interface for Pyomo")
    if hasattr(solver, "config") and hasattr(solver.config, "mip_gap"):
        solver.config.mip_gap = 0.0
    solver.solve(m)
    return float(pyo.value(m.obj))


def _mip_opt(model: LinearModel) -> float:
    import mip

    m, _ = to_mip(model, solver_name="CBC")
    m.max_mip_gap = 0.0
    m.max_mip_gap_abs = 1e-9
    status = m.optimize()
    assert status == mip.OptimizationStatus.OPTIMAL
    return float(m.objective_value)


@pytest.fixture(scope="module", params=NETS, ids=lambda p: f"{p[0]}-s{p[1]}")
def case(request):
    net, dom = _net_and_domain(*request.param)
    model = bigm_model(net, dom, bounds="lp")
    X = dom.sample(N_SAMPLES, np.random.default_rng(request.param[1]))
    return net, dom, model, X


def test_backends_agree_and_dominate_samples(case):
    net, _, model, X = case
    Y = net.forward(X)
    for j in range(net.output_dim):
        obj_model = _max_output(model, net, j)
        ref = _highs_opt(obj_model)
        assert _pyomo_opt(obj_model) == pytest.approx(ref, abs=1e-6)
        assert _mip_opt(obj_model) == pytest.approx(ref, abs=1e-6)
        assert ref >= Y[:, j].max() - 1e-7  # the MILP maximum is at least every sampled output


def test_scip_backend_agrees(case):
    pytest.importorskip("pyscipopt")
    from lrmilp.formulations import to_scip

    net, _, model, _ = case
    obj_model = _max_output(model, net)
    m, _ = to_scip(obj_model)
    m.setParam("limits/gap", 0.0)
    m.optimize()
    assert m.getStatus() == "optimal"
    assert m.getObjVal() == pytest.approx(_highs_opt(obj_model), abs=1e-6)


def test_lp_relaxation_never_tighter(case):
    net, _, model, _ = case
    for j in range(net.output_dim):
        obj_model = _max_output(model, net, j)
        assert _highs_opt(obj_model, relax=True) >= _highs_opt(obj_model) - 1e-7
        # and minimising: the relaxation's minimum is never above the MILP's
        neg = obj_model.with_objective(obj_model.obj, "min")
        assert _highs_opt(neg, relax=True) <= _highs_opt(neg) + 1e-7


def test_sampled_pattern_feasible_with_positive_margin(case):
    net, dom, _, X = case
    pre = net.preactivations(X)
    relu_pre = np.concatenate([pre[k] for k in net.relu_layers], axis=1)
    margins = np.abs(relu_pre).min(axis=1)
    picks = np.flatnonzero(margins > 1e-3)[:5]
    assert picks.size, "no sampled input far from every hyperplane"
    model = bigm_model(net, dom, bounds="lp", margin="two-sided")
    z = model.groups["z"]
    for i in picks:
        pattern = net.patterns(X[i])[0].astype(float)
        lb, ub = model.lb.copy(), model.ub.copy()
        # The bounds fix stable neurons; the sample's pattern must agree with them.
        assert np.all(lb[z] <= pattern) and np.all(pattern <= ub[z])
        lb[z], ub[z] = pattern, pattern
        fixed = LinearModel(model.names, lb, ub, model.integer, model.A, model.row_lo, model.row_hi,
                            model.row_names, model.obj, model.sense, model.obj_const, model.groups)
        f = _highs_opt(fixed)
        assert f > 0
        assert f >= min(margins[i], 1.0) - 1e-7  # the sample itself achieves its own margin


def test_lp_and_mps_round_trip(case, tmp_path):
    net, _, model, _ = case
    obj_model = _max_output(model, net)
    ref = _highs_opt(obj_model)
    for suffix in (".lp", ".mps"):
        path = tmp_path / f"model{suffix}"
        write_model(obj_model, path)
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        assert h.readModel(str(path)) == highspy.HighsStatus.kOk
        h.setOptionValue("mip_rel_gap", 0.0)
        h.setOptionValue("mip_abs_gap", 1e-9)
        h.run()
        assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        assert h.getInfo().objective_function_value == pytest.approx(ref, abs=1e-6)
    with pytest.raises(ValueError):
        write_model(obj_model, tmp_path / "model.txt")


def test_translations_keep_structure():
    import mip

    net, dom = _net_and_domain([3, 6, 5, 2], 0)
    model = bigm_model(net, dom, margin="two-sided")
    pm = to_pyomo(model)
    assert len(pm.v) == model.num_vars
    assert len(pm.rows) == int(np.sum(np.diff(model.A.indptr) > 0))
    f = int(model.groups["f"][0])
    assert pm.byname[model.names[f]] is pm.v[f]
    for j in model.groups["z"]:
        assert pm.v[int(j)].is_binary() or pm.v[int(j)].is_fixed() or pm.v[int(j)].lb == pm.v[int(j)].ub
    mm, xs = to_mip(model)
    assert mm.solver_name.upper() == "CBC" and len(xs) == model.num_vars
    # CBC reports a binary fixed at 1 as integer, so count both kinds
    assert sum(x.var_type in (mip.BINARY, mip.INTEGER) for x in xs) == int(model.integer.sum())
    relaxed, _ = to_mip(model, relax=True)
    assert all(v.var_type == mip.CONTINUOUS for v in relaxed.vars)


def test_bigm_model_needs_bounded_domain():
    net = random_mlp([2, 3, 1], seed=0, last_relu=False)
    with pytest.raises(InputError):
        bigm_model(net, Unbounded(2))


def test_bigm_model_accepts_ready_bounds():
    from lrmilp.bounds import tighten

    net, dom = _net_and_domain([3, 6, 5, 2], 1)
    b = tighten(net, dom, method="interval")
    a = bigm_model(net, dom, bounds=b)
    ref = build_bigm(net, dom, b.lower, b.upper)
    assert a.num_vars == ref.num_vars and (a.A != ref.A).nnz == 0
