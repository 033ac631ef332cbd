"""Commands about the regions themselves: info, tighten, export-milp, count (bounds and estimates of
the count are in :mod:`lrmilp.cli.bounding`)."""

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
def info(model, trust, input_shape, as_json):
    """Input size, ReLU widths and neuron count of MODEL (.npz, .onnx, .pt)."""
    net = load(model, trust, input_shape)
    out = net.describe()
    out["cnn"] = net.is_cnn
    if net.lo is not None:
        out["default_box"] = {"lo": np.asarray(net.lo).tolist(), "hi": np.asarray(net.hi).tolist()}
        if not (np.all(np.isfinite(net.lo)) and np.all(np.isfinite(net.hi))):
            out[NULLS_KEY] = "default_box lo/hi are null where the model's box is unbounded (infinite)"

    def shape(v) -> str:
        return "x".join(str(int(x)) for x in v)

    def layer_line(k: int, layer: dict) -> str:
        act = "ReLU" if layer.get("relu") else "linear"
        if layer.get("type") == "conv2d":
            f, c, kh, kw = layer["kernel"]
            what = (f"conv2d  {f} filters {kh}x{kw} over {c} channel(s), stride {layer['stride']}, padding "
                    f"{layer['padding']}: {shape(layer['in_shape'])} -> {shape(layer['out_shape'])}")
        elif layer.get("type") == "dense":
            out_n, in_n = layer["shape"]
            what = f"dense   {in_n} -> {out_n}"
        else:
            what = ", ".join(f"{key} {val}" for key, val in layer.items() if key != "relu")
        return f"  layer {k}: {what}, {act}"

    def human(r):
        lines = [f"input {shape(r['input_shape'])} ({r['input_dim']} values), ReLU widths {r['widths']}, "
                 f"{r['neurons']} neurons, {r['output_dim']} outputs"]
        lines += [layer_line(k, layer) for k, layer in enumerate(r["layers"])]
        if "default_box" in r:
            lo, hi = np.asarray(r["default_box"]["lo"], dtype=float), np.asarray(r["default_box"]["hi"], dtype=float)
            same = lo.size and np.all(lo == lo[0]) and np.all(hi == hi[0])
            lines.append(f"  input box: [{lo[0]:g}, {hi[0]:g}]^{lo.size}" if same else
                         f"  input box: per coordinate, lo in [{lo.min():g}, {lo.max():g}], hi in "
                         f"[{hi.min():g}, {hi.max():g}]")
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
def tighten(model, trust, input_shape, box, box_file, unbounded, method, jobs, dask, time_limit, milp_time_limit,
            progress, as_json):
    """Pre-activation bounds of every ReLU neuron over the domain."""
    from ..bounds import DEFAULT_MILP_TOTAL_SECONDS
    from ..bounds import tighten as run
    net = load(model, trust, input_shape)
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
def export_milp(model, trust, input_shape, box, box_file, unbounded, out, margin, bound_method, as_json):
    """Write the big-M MILP of MODEL over a bounded domain as an LP or MPS file."""
    from ..bounds import tighten as run
    from ..formulations.bigm import build_bigm
    from ..formulations.highs import check_model_path, write_model
    check_model_path(out)
    check_files({"out": out}, {"model": model, "box_file": box_file})
    net = load(model, trust, input_shape)
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
@click.option("--geometry-detail", is_flag=True,
              help="With --regions-out: add each region's inequalities (A x <= b, one row per neuron), affine "
                   "output map (W x + b) and inradius (one LP per region, after the count, within --time-limit).")
@click.option("--radius", type=float, default=None,
              help="With --around: the half-width of each point's box.  Otherwise: solver methods on an unbounded "
                   "domain count inside [-R, R]^n0 (default: automatic).")
@click.option("--around", type=click.Path(dir_okay=False), default=None,
              help="X.npy of N points (N, n0): count in the l-inf ball of --radius around each (local complexity), "
                   "cut to --box/--box-file when given.")
@click.option("--constraints", "constraints_file", type=click.Path(dir_okay=False), default=None,
              help="C.json of linear constraints on inputs, a ReLU layer or outputs: count the regions whose part "
                   "satisfying them holds a ball of radius > tol (README: counting under your own constraints).")
@click.option("--class-wins", type=int, default=None, metavar="C",
              help="Count the regions where output C is largest (y_j <= y_C for all j; with --constraints, both).")
@progress_option
@json_option
def count(model, trust, input_shape, box, box_file, unbounded, method, geometry, tol, jobs, dask, checkpoint,
          task_budget, time_limit, max_regions, regions_out, geometry_detail, radius, around, constraints_file,
          class_wins, progress, as_json):
    """Count the full-dimensional linear regions of MODEL over a domain."""
    from ..counting import count_regions
    from ..parallel import default_jobs
    check_files({"regions_out": regions_out, "checkpoint": checkpoint},
                {"model": model, "box_file": box_file, "constraints": constraints_file})
    net = load(model, trust, input_shape)
    constraints = _constraints(net, constraints_file, class_wins)
    if constraints is not None and around is not None:
        raise InputError("--around does not take --constraints or --class-wins")
    if geometry_detail and regions_out is None:
        raise InputError("--geometry-detail adds to the regions file: give --regions-out F", param="geometry_detail")
    if around is not None:
        return _count_around(net, around, radius, box, box_file, unbounded, method, geometry, tol, jobs, dask,
                             time_limit, progress, as_json,
                             {"--checkpoint": checkpoint, "--regions-out": regions_out, "--max-regions": max_regions,
                              "--task-budget": task_budget, "--geometry-detail": geometry_detail or None})
    dom = get_domain(net, box, box_file, unbounded)
    if jobs is None:  # constrained counts run serially
        jobs = default_jobs() if method == "tree" and constraints is None else 1
    res = count_regions(net, dom, method=method, geometry=geometry, tol=tol, jobs=jobs, time_limit=time_limit, max_regions=max_regions,
                        regions_out=regions_out, progress=progress, radius=radius, dask=dask,
                        checkpoint=checkpoint, task_budget=task_budget, constraints=constraints).to_dict()
    if geometry_detail:
        from ..geometry.detail import add_geometry_detail
        left = None if time_limit is None else max(time_limit - res["seconds"], 1e-3)
        res["geometry_detail"] = add_geometry_detail(net, dom, regions_out, time_limit=left,
                                                     progress=progress).to_dict()

    def human(r):
        head = f"{r['regions']:,} regions" + ("" if r["complete"] else f" at least (stopped: {r['stopped']})")
        return (f"{head} by {r['method']} in {r['seconds']:.3f}s, {r['lps']:,} LPs"
                + (f" ({r['lps_per_region']} per region)" if "lps_per_region" in r else "")
                + f"; tol {r['tol']:g}: {r['tol_meaning']}"
                + (f"\nnote: {r['thin_dropped']:,} candidate cells exist but hold no ball of radius > tol and were "
                   "not counted; a smaller --tol would count them" if r.get("thin_dropped") else "")
                + (f"\nunder {r['constraints']['rows']} constraint rows ({r['constraints']['source']})"
                   + (f"; {r['regions_unconstrained']:,} regions without them" if "regions_unconstrained" in r else "")
                   if "constraints" in r else "")
                + (_detail_text(r["geometry_detail"], regions_out) if "geometry_detail" in r else ""))

    emit(res, as_json, human)


def _detail_text(d: dict, path: str) -> str:
    if d["complete"]:
        return (f"\ngeometry detail of {d['regions']:,} regions (inequalities, affine map, inradius) added to {path} "
                f"in {d['seconds']:.1f}s")
    return (f"\ngeometry detail not added (stopped: {d['stopped']} after {d['regions']:,} of {d['total']:,} "
            f"regions): {path} holds the count's regions without it")


def _constraints(net, path, class_wins):
    """The constraint set of ``--constraints`` and ``--class-wins`` (both: every row of each), or None."""
    from ..constraints import class_wins as wins
    from ..constraints import load_constraints
    sets = []
    if path is not None:
        sets.append(load_constraints(path, net))
    if class_wins is not None:
        sets.append(wins(net, class_wins))
    return None if not sets else sets[0] if len(sets) == 1 else sets[0] + sets[1]


def _count_around(net, around, radius, box, box_file, unbounded, method, geometry, tol, jobs, dask, time_limit,
                  progress, as_json, unsupported: dict) -> None:
    """``count --around``: exact counts in a box around each point (:func:`lrmilp.local.count_around`)."""
    from ..local import count_around
    from ..parallel import default_jobs
    given = [flag for flag, v in unsupported.items() if v is not None] + (["--unbounded"] if unbounded else [])
    if given:
        raise InputError(f"--around counts one box per point and does not take {', '.join(given)}")
    if radius is None:
        raise InputError("--around needs --radius (the half-width of each point's box)")
    try:
        points = np.load(around, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"--around: cannot read {around}: {e}") from None
    within = get_domain(net, box, box_file, False) if box is not None or box_file is not None else None
    jobs = (default_jobs() if method == "tree" else 1) if jobs is None else jobs
    res = count_around(net, points, radius, within=within, method=method, geometry=geometry, tol=tol, jobs=jobs,
                       dask=dask, time_limit=time_limit, progress=progress).to_dict()

    def human(r):
        head = (f"{r['points']:,} points, l-inf radius {r['radius']:g}"
                + ("" if r["within"] is None else ", cut to the box") + f": regions per point mean {r['mean']:.4g}, "
                f"median {r['median']:g}, min {r['min']:,}, max {r['max']:,}" if r["mean"] is not None else
                f"{r['points']:,} points: none counted")
        status = "exact" if r["complete"] else f"stopped: {r['stopped'] or 'a count stopped'}; counts are lower bounds"
        return f"{head} ({status}; {r['seconds']:.2f}s)\ncounts: {r['counts']}"

    emit(res, as_json, human)
