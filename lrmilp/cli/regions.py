"""Commands about counts and bounds: info, tighten, export-milp, count, lower-bound, bounds, sample."""

from __future__ import annotations

import click
import numpy as np

from ..errors import InputError
from ..jsonout import NULLS_KEY
from .app import check_files, domain_options, emit, get_domain, json_option, load, main, model_argument, progress_option


# --- info ----------------------------------------------------------------------------------------
@main.command()
@model_argument
@json_option
def info(model, trust, as_json):
    """Input size, ReLU widths and neuron count of MODEL (.npz, .onnx, .pt)."""
    net = load(model, trust)
    out = net.describe()
    out["cnn"] = net.is_cnn
    if net.lo is not None:
        out["default_box"] = {"lo": np.asarray(net.lo).tolist(), "hi": np.asarray(net.hi).tolist()}
        if not (np.all(np.isfinite(net.lo)) and np.all(np.isfinite(net.hi))):
            out[NULLS_KEY] = "default_box lo/hi are null where the model's box is unbounded (infinite)"

    def human(r):
        lines = [f"input {r['input_shape']} ({r['input_dim']} values), ReLU widths {r['widths']}, "
                 f"{r['neurons']} neurons, {r['output_dim']} outputs"]
        for k, layer in enumerate(r["layers"]):
            lines.append(f"  layer {k}: {layer}")
        return "\n".join(lines)

    emit(out, as_json, human)


# --- tighten -------------------------------------------------------------------------------------
@main.command()
@model_argument
@domain_options
@click.option("--method", default="lp", show_default=True, metavar="interval|lp|milp")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="Processes per layer (with --dask local: LocalCluster workers).")
@click.option("--dask", default=None, metavar="local|tcp://HOST:PORT", help="Solve the neurons' LPs on Dask.")
@click.option("--time-limit", type=float, default=None,
              help="Seconds for the whole command (default: 60 with --method milp, none otherwise); neurons not "
                   "reached keep their LP (or interval) bounds, and the result says stopped: time_limit.")
@click.option("--milp-time-limit", type=float, default=10.0, show_default=True,
              help="Seconds per neuron MILP (--method milp); a stopped MILP keeps the solver's dual bound.")
@progress_option
@json_option
def tighten(model, trust, box, box_file, unbounded, method, jobs, dask, time_limit, milp_time_limit, progress,
            as_json):
    """Pre-activation bounds of every ReLU neuron over the domain."""
    from ..bounds import DEFAULT_MILP_TOTAL_SECONDS
    from ..bounds import tighten as run
    net = load(model, trust)
    dom = get_domain(net, box, box_file, unbounded)
    if time_limit is None and method == "milp":
        time_limit = DEFAULT_MILP_TOTAL_SECONDS
    options = {"method": method, "jobs": jobs, "time_limit": milp_time_limit, "total_time_limit": time_limit,
               "progress": progress}
    if dask is None:
        res = run(net, dom, **options).to_dict()
    else:
        from ..parallel import Workers
        from ..validation import dask_address, int_at_least
        with Workers(int_at_least("jobs", jobs, 1), dask=dask_address("dask", dask)) as workers:
            res = run(net, dom, **{**options, "jobs": workers.size}, executor=workers.executor).to_dict()
    if not (np.all(np.isfinite(res["lower"])) and np.all(np.isfinite(res["upper"]))):
        res[NULLS_KEY] = ("lower/upper are null where a bound is infinite: the pre-activation is unbounded "
                          "over the domain in that direction")
    emit(res, as_json, _tighten_text)


def _tighten_text(r: dict) -> str:
    """The human summary of tighten: what was solved, what it bought, and whether the limit cut it short."""
    text = (f"{r['method']} bounds in {r['seconds']:.3f}s: {len(r['stable_active'])} stable active, "
            f"{len(r['stable_inactive'])} stable inactive, {r['unstable']} unstable "
            f"(per layer {r['unstable_per_layer']}); {r['lps']:,} LPs")
    passes = r.get("passes", {})
    if "milp" in passes:
        m = passes["milp"]
        text += (f", {r['milps']:,} MILPs on {m['neurons']:,} neurons ({m['tightened']:,} tightened, "
                 f"{r['timed_out']:,} MILPs stopped by a time limit, their dual bound kept)")
    widths = {k: v for k, v in r.get("mean_width", {}).items() if v is not None}
    if widths:
        text += "; mean bound width " + ", ".join(f"{k} {v:.4g}" for k, v in widths.items())
    if r.get("stopped"):
        left = sum(p["skipped"] for p in passes.values())
        text += (f"\nstopped: {r['stopped']} after {r['time_limit']:g}s: {left:,} neurons kept their cheaper "
                 "bounds (valid, looser); a larger --time-limit tightens them")
    return text


# --- export-milp ---------------------------------------------------------------------------------
@main.command("export-milp")
@model_argument
@domain_options
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output file, .lp or .mps.")
@click.option("--margin", type=click.Choice(["none", "one-sided", "two-sided"]), default="two-sided",
              show_default=True, help="Region margin f (maximised) of the counting formulation.")
@click.option("--bounds", "bound_method", type=click.Choice(["interval", "lp", "milp"]), default="lp",
              show_default=True)
@json_option
def export_milp(model, trust, box, box_file, unbounded, out, margin, bound_method, as_json):
    """Write the big-M MILP of MODEL over a bounded domain as an LP or MPS file."""
    from ..bounds import tighten as run
    from ..formulations.bigm import build_bigm
    from ..formulations.highs import check_model_path, write_model
    check_model_path(out)
    check_files({"out": out}, {"model": model, "box_file": box_file})
    net = load(model, trust)
    dom = get_domain(net, box, box_file, unbounded)
    if not dom.bounded:
        raise InputError("export-milp needs a bounded domain (big-M constants come from the bounds)")
    b = run(net, dom, method=bound_method)
    m = build_bigm(net, dom, b.lower, b.upper, margin=None if margin == "none" else margin)
    write_model(m, out)
    res = {"file": str(out), "variables": m.num_vars, "binaries": int(m.integer.sum()),
           "constraints": int(m.A.shape[0]), "margin": margin, "bound_method": bound_method}
    emit(res, as_json, lambda r: f"wrote {r['file']}: {r['variables']} variables ({r['binaries']} binary), "
                                 f"{r['constraints']} constraints")


# --- count ---------------------------------------------------------------------------------------
@main.command()
@model_argument
@domain_options
@click.option("--method", default="tree", show_default=True, metavar="tree|milp|scip|gurobi")
@click.option("--geometry", default="auto", show_default=True, metavar="NAME",
              help="The tree's cells: auto (by dimension), polygon (d <= 2 box), vertex (bounded), lp (any), "
                   "batch (bounded), dual (bounded box).")
@click.option("--tol", type=float, default=None,
              help="A region counts iff it holds a ball of radius > tol (domain parameters); default 1e-9 of the "
                   "domain's scale.")
@click.option("--jobs", type=int, default=None,
              help="Worker processes for the tree method (default: all cores); with --dask, LocalCluster workers.")
@click.option("--dask", default=None, metavar="local|tcp://HOST:PORT",
              help="Run the tree's subtrees on Dask: a LocalCluster, or a running scheduler.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Journal finished subtrees here; rerun with the same file to resume a stopped count.")
@click.option("--task-budget", type=float, default=None,
              help="Seconds a parallel subtree searches before handing out the rest as new tasks (default 2).")
@click.option("--time-limit", type=float, default=None, help="Seconds.")
@click.option("--max-regions", type=int, default=None)
@click.option("--regions-out", type=click.Path(dir_okay=False), default=None,
              help="Stream every region (packed pattern, interior point, margin) to this JSON-lines file.")
@click.option("--radius", type=float, default=None,
              help="Solver methods on an unbounded domain count inside [-R, R]^n0 (default: automatic).")
@progress_option
@json_option
def count(model, trust, box, box_file, unbounded, method, geometry, tol, jobs, dask, checkpoint, task_budget,
          time_limit, max_regions, regions_out, radius, progress, as_json):
    """Count the full-dimensional linear regions of MODEL over a domain."""
    from ..counting import count_regions
    from ..parallel import default_jobs
    check_files({"regions_out": regions_out, "checkpoint": checkpoint}, {"model": model, "box_file": box_file})
    net = load(model, trust)
    dom = get_domain(net, box, box_file, unbounded)
    if jobs is None:
        jobs = default_jobs() if method == "tree" else 1
    res = count_regions(net, dom, method=method, geometry=geometry, tol=tol, jobs=jobs, time_limit=time_limit, max_regions=max_regions,
                        regions_out=regions_out, progress=progress, radius=radius, dask=dask,
                        checkpoint=checkpoint, task_budget=task_budget).to_dict()

    def human(r):
        head = f"{r['regions']:,} regions" + ("" if r["complete"] else f" at least (stopped: {r['stopped']})")
        return (f"{head} by {r['method']} in {r['seconds']:.3f}s, {r['lps']:,} LPs"
                + (f" ({r['lps_per_region']} per region)" if "lps_per_region" in r else "")
                + f"; tol {r['tol']:g}: {r['tol_meaning']}"
                + (f"\nnote: {r['thin_dropped']:,} candidate cells exist but hold no ball of radius > tol and were "
                   "not counted; a smaller --tol would count them" if r.get("thin_dropped") else ""))

    emit(res, as_json, human)


# --- lower-bound ---------------------------------------------------------------------------------
@main.command("lower-bound")
@model_argument
@domain_options
@click.option("--xors", type=int, default=None,
              help="Test this many XORs only (default: search the levels, see --schedule).")
@click.option("--start", type=int, default=1, show_default=True, help="The lowest level the search may test.")
@click.option("--schedule", default="search", show_default=True, metavar="search|upward",
              help="Levels tested: a probe, steps up, then bisection (search), or --start, --start+1, ... until "
                   "a level fails (upward).")
@click.option("--trials", type=int, default=10, show_default=True, help="Trials r per level.")
@click.option("--confidence", type=float, default=None, help="Target confidence p (default 0.99); alpha = log2(1/((1-p)(1-2^-r)))/r.")
@click.option("--alpha", type=float, default=None, help="Give alpha instead of --confidence: p = 1 - 2^(-alpha r)/(1-2^-r).")
@click.option("--density", type=float, default=0.5, show_default=True,
              help="Probability that a neuron joins an XOR (the bound is valid for any density).")
@click.option("--method", default="tree", show_default=True, metavar="tree|milp|scip",
              help="Feasibility of a trial: tree with parity propagation, HiGHS MILP, or SCIP with native XORs.")
@click.option("--time-limit", type=float, default=None, help="Seconds for the whole search.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--tol", type=float, default=None, help="Region tolerance of the chosen method (see lrmilp count).")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="Run each level's trials on this many processes (or Dask LocalCluster workers).")
@click.option("--dask", default=None, metavar="local|tcp://HOST:PORT", help="Run the trials on Dask.")
@click.option("--geometry", default="auto", show_default=True, metavar="NAME",
              help="The tree oracle's cells (as for lrmilp count).")
@progress_option
@json_option
def lower_bound_cmd(model, trust, box, box_file, unbounded, xors, start, schedule, trials, confidence, alpha, density,
                    method, time_limit, seed, tol, jobs, dask, geometry, progress, as_json):
    """A lower bound on the region count with a stated confidence, from random XOR constraints."""
    from ..lowerbound import lower_bound
    net = load(model, trust)
    dom = get_domain(net, box, box_file, unbounded)
    res = lower_bound(net, dom, xors=xors, start=start, trials=trials, confidence=confidence, alpha=alpha,
                      density=density, method=method, time_limit=time_limit, seed=seed, tol=tol, jobs=jobs, dask=dask,
                      progress=progress, geometry=geometry, schedule=schedule).to_dict()

    def human(r):
        how = (f"all {r['trials']} trials with {r['level']} XORs found a region (alpha {r['alpha']:.3f})"
               if r["level"] is not None else "no XOR level certified")
        return (f"at least {r['lower_bound']:,} regions with confidence {r['confidence']:.4g} "
                f"({how}; {r['certain_lower_bound']:,} distinct regions found for certain; {r['seconds']:.2f}s, "
                f"stopped: {r['stopped']}) — a lower bound, not a count")

    emit(res, as_json, human)


# --- bounds --------------------------------------------------------------------------------------
@main.command("bounds")
@click.argument("model", required=False)
@click.option("--trust", is_flag=True, help="Allow loading a whole pickled PyTorch module.")
@click.option("--arch", type=str, default=None, help="Architecture n0,n1,...,nL (every layer ReLU; at most 20,000 neurons).")
@click.option("--count", "given_count", type=click.IntRange(0), default=None, help="A measured count to show beside.")
@click.option("--with-count", is_flag=True, help="Run the tree enumerator and show its count beside the bounds.")
@click.option("--empirical", is_flag=True,
              help="Add serra2020: an upper bound for these weights over the domain, from MILPs on the network "
                   "(most neurons active / inactive together per layer, stable neurons).")
@click.option("--time-limit", type=float, default=10.0, show_default=True,
              help="Seconds per MILP of --empirical (two per ReLU layer); a stopped MILP's dual bound is used.")
@click.option("--solver", type=click.Choice(["highs", "scip"]), default="highs", show_default=True,
              help="MILP solver of --empirical (scip needs PySCIPOpt).")
@domain_options
@json_option
def bounds_cmd(model, trust, arch, given_count, with_count, empirical, time_limit, solver, box, box_file, unbounded,
               as_json):
    """Closed-form bounds on the number of regions (exact integers), beside a measured count."""
    from .. import theory
    if (model is None) == (arch is None):
        raise InputError("give either MODEL or --arch n0,n1,...,nL")
    if empirical and arch is not None:
        raise InputError("--empirical needs a MODEL (its weights), not --arch")
    if arch is not None:
        try:
            dims = [int(s) for s in arch.replace(" ", "").split(",") if s]
        except ValueError:
            raise InputError(f"--arch must be integers separated by commas, got '{arch}'") from None
        if len(dims) < 2 or any(d < 1 for d in dims):
            raise InputError(f"--arch needs n0 and at least one layer width, all positive, got '{arch}'")
        if with_count:
            raise InputError("--with-count needs a MODEL, not --arch")
        res = theory.bounds_for_arch(dims)
        res["arch"] = dims
    else:
        net = load(model, trust)
        res = theory.bounds_for_network(net)
        res["arch"] = [net.input_dim] + net.widths
        if with_count:
            from ..counting import count_regions
            dom = get_domain(net, box, box_file, unbounded)
            c = count_regions(net, dom)
            res["count"] = c.regions
            res["count_complete"] = c.complete
            res["count_domain"] = dom.describe()
        if empirical:
            from ..empirical import serra2020
            dom = get_domain(net, box, box_file, unbounded)
            emp = serra2020(net, dom, solver=solver, time_limit=time_limit)
            res["serra2020"] = emp.value
            res["serra2020_details"] = {**emp.to_dict(), "domain": dom.describe()}
    if given_count is not None:
        res["count"] = given_count
    emit(res, as_json, _bounds_table)


def _bounds_table(r: dict) -> str:
    lines = [f"architecture {r['arch']}"]
    width = max(len(k) for k in r)
    for k, v in r.items():
        if k in ("arch", "count_domain", "count_complete") or isinstance(v, (dict, list)):
            continue
        if v is None:
            v = "n/a"
        lines.append(f"  {k:<{width}}  {v:>30,}" if isinstance(v, int) and not isinstance(v, bool)
                     else f"  {k:<{width}}  {str(v):>30}")
    if "serra2020" in r:
        d = r["serra2020_details"]
        lines.append(f"serra2020 is an upper bound for these weights over this domain ({d['domain']['kind']}, "
                     f"activation-based, after Serra & Ramalingam 2020; MILPs by {d['solver']} in {d['seconds']:.2f}s"
                     + (f", {d['dual_bound_used']} stopped: dual bounds used" if d["dual_bound_used"] else "")
                     + "); the other upper bounds hold for every weight of the architecture")
    return "\n".join(lines)


# --- sample --------------------------------------------------------------------------------------
@main.command()
@model_argument
@domain_options
@click.option("--samples", type=int, required=True, help="How many inputs to draw.")
@click.option("--distribution", default="uniform", show_default=True, metavar="uniform|gaussian|data")
@click.option("--sigma", type=float, default=1.0, show_default=True,
              help="Standard deviation for --distribution gaussian.")
@click.option("--data", type=click.Path(dir_okay=False), default=None, help="A .npy file of inputs (rows).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--time-limit", type=float, default=None,
              help="Seconds; a stopped run reports the patterns of the samples drawn so far (complete: false).")
@progress_option
@json_option
def sample(model, trust, box, box_file, unbounded, samples, distribution, sigma, data, seed, time_limit, progress,
           as_json):
    """Distinct activation patterns of sampled inputs: a lower bound on the region count."""
    from ..domains import Unbounded
    from ..sampling import sample_patterns
    net = load(model, trust)
    if distribution == "uniform" or box is not None or box_file is not None or unbounded:
        dom = get_domain(net, box, box_file, unbounded)
    else:
        dom = get_domain(net, None, None, False) if net.lo is not None else Unbounded(net.input_dim)
    res = sample_patterns(net, dom, samples=samples, distribution=distribution, sigma=sigma, data=data, seed=seed,
                          progress=progress, time_limit=time_limit).to_dict()
    emit(res, as_json, lambda r: f"{r['distinct_patterns']:,} distinct patterns in {r['samples']:,} "
                                 f"{r['distribution']} samples ({r['seconds']:.2f}s"
                                 + ("" if r["complete"] else f", stopped: {r['stopped']}")
                                 + "): a lower bound, not a count")


