"""The ``lrmilp`` command line: a thin layer over the library (CONTRACT.md §3).

Every command takes ``--json`` and then prints exactly one JSON object on stdout (strict JSON: a
non-finite number is null, and the result says why); logs and progress go to stderr.  Bad input exits
with status 2 and one line naming the problem (library parameters are named by their flags).
SIGTERM stops a command as Ctrl-C does.
"""

from __future__ import annotations

import json
import sys
from typing import Callable

import click
import numpy as np

from . import __version__
from .errors import InputError, SolverUnavailable
from .interrupts import terminate_as_interrupt
from .jsonout import NULLS_KEY, explain_nulls, jsonable

FLAGS = {"model": "MODEL", "spec": "SPEC", "output": "--out"}
"""Library parameters whose command-line name is not ``--`` + the name with ``_`` -> ``-``."""


# --- shared plumbing -----------------------------------------------------------------------------
def fail(message: str) -> None:
    """Exit 2 with one line on stderr."""
    click.echo(f"lrmilp: error: {' '.join(str(message).split())}", err=True)
    sys.exit(2)


def emit(result: dict, as_json: bool, human: Callable[[dict], str] | None = None) -> None:
    """Print ``result``: one strict JSON object (non-finite numbers as null, explained under "nulls"),
    or the ``human`` text."""
    if as_json:
        nulls: list[str] = []
        clean = explain_nulls(jsonable(result, nulls), nulls)
        click.echo(json.dumps(clean, allow_nan=False))
    else:
        click.echo(human(result) if human else "\n".join(f"{k}: {v}" for k, v in jsonable(result).items()))


def check_files(outputs: dict, inputs: dict) -> None:
    """One-line errors for outputs that are links, special files, in missing folders, or that name the
    same file as another output or an input (``{param: path}``; None skipped)."""
    from .outputs import check_distinct, check_writable
    for param, path in outputs.items():
        if path is not None:
            check_writable(path, param)
    check_distinct(outputs, inputs)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")(f)


def domain_options(f):
    """--box LO HI, --box-file F.json, --unbounded (CONTRACT.md §3)."""
    f = click.option("--unbounded", is_flag=True, help="All of R^n0.")(f)
    f = click.option("--box-file", type=click.Path(dir_okay=False),
                     help='JSON {"lo": [...], "hi": [...]} (optionally "A", "b" for a polytope A x <= b).')(f)
    f = click.option("--box", nargs=2, type=float, metavar="LO HI", help="The same bounds for every input.")(f)
    return f


def load(model: str, trust: bool = False):
    from .loaders import load_network
    return load_network(model, trust=trust)


def get_domain(net, box, box_file, unbounded):
    from .domains import from_options
    return from_options(net.input_dim, box=box, box_file=box_file, unbounded=unbounded,
                        model_lo=net.lo, model_hi=net.hi)


def model_argument(f):
    f = click.option("--trust", is_flag=True,
                     help="Allow loading a whole pickled PyTorch module (runs code from the file).")(f)
    return click.argument("model", type=str)(f)


class OneLineGroup(click.Group):
    """A click group whose usage errors are one line (exit 2) and whose InputErrors exit 2."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        terminate_as_interrupt()  # SIGTERM (timeout, SLURM, Kubernetes) stops a command as Ctrl-C does
        if hasattr(sys, "set_int_max_str_digits"):
            sys.set_int_max_str_digits(0)  # exact bounds have thousands of digits
        try:
            rv = super().main(*args, **kwargs)
        except click.UsageError as e:
            if type(e).__name__.startswith("NoArgsIsHelp") and e.ctx is not None:
                click.echo(e.ctx.get_help())  # bare `lrmilp`: the help, as click would show it
                sys.exit(0)
            fail(e.format_message())
        except (click.Abort, KeyboardInterrupt):
            click.echo("lrmilp: interrupted", err=True)
            sys.exit(130)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.ClickException as e:
            fail(e.format_message())
        except InputError as e:
            fail(e.cli_message(FLAGS))
        except SolverUnavailable as e:
            fail(str(e))
        except OSError as e:  # a path the user named cannot be read or written
            fail(f"{e.strerror or e}: {e.filename}" if e.filename else str(e))
        if isinstance(rv, int):
            sys.exit(rv)
        return rv


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lrmilp")
def main() -> None:
    """Count, bound and analyse the linear regions of ReLU networks."""


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
@click.option("--method", type=click.Choice(["interval", "lp", "milp"]), default="lp", show_default=True)
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="Processes per layer (with --dask local: LocalCluster workers).")
@click.option("--dask", default=None, metavar="local|tcp://HOST:PORT", help="Solve the neurons' LPs on Dask.")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Seconds per neuron MILP (--method milp).")
@json_option
def tighten(model, trust, box, box_file, unbounded, method, jobs, dask, time_limit, as_json):
    """Pre-activation bounds of every ReLU neuron over the domain."""
    from .bounds import tighten as run
    net = load(model, trust)
    dom = get_domain(net, box, box_file, unbounded)
    res = run(net, dom, method=method, jobs=jobs, time_limit=time_limit, dask=dask).to_dict()
    if not (np.all(np.isfinite(res["lower"])) and np.all(np.isfinite(res["upper"]))):
        res[NULLS_KEY] = ("lower/upper are null where a bound is infinite: the pre-activation is unbounded "
                          "over the domain in that direction")

    def human(r):
        return (f"{r['method']} bounds in {r['seconds']:.3f}s: {len(r['stable_active'])} stable active, "
                f"{len(r['stable_inactive'])} stable inactive, {r['unstable']} unstable "
                f"(per layer {r['unstable_per_layer']}), {r['lps']} LPs")

    emit(res, as_json, human)


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
    from .bounds import tighten as run
    from .formulations.bigm import build_bigm
    from .formulations.highs import check_model_path, write_model
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
@click.option("--method", type=click.Choice(["tree", "milp", "scip", "gurobi"]), default="tree", show_default=True)
@click.option("--tol", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Tolerance for 'non-empty interior' (tree: inscribed-ball radius, default 1e-6; "
                   "solvers: pre-activation margin, default 1e-6).")
@click.option("--jobs", type=click.IntRange(1), default=None,
              help="Worker processes for the tree method (default: all cores); with --dask, LocalCluster workers.")
@click.option("--dask", default=None, metavar="local|tcp://HOST:PORT",
              help="Run the tree's subtrees on Dask: a LocalCluster, or a running scheduler.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Journal finished subtrees here; rerun with the same file to resume a stopped count.")
@click.option("--task-budget", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds a parallel subtree searches before handing out the rest as new tasks (default 2).")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=None, help="Seconds.")
@click.option("--max-regions", type=click.IntRange(1), default=None)
@click.option("--regions-out", type=click.Path(dir_okay=False), default=None,
              help="Stream every region (packed pattern, interior point, margin) to this JSON-lines file.")
@click.option("--radius", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Solver methods on an unbounded domain count inside [-R, R]^n0 (default: automatic).")
@click.option("--progress/--no-progress", default=None, help="Progress on stderr (default: when stderr is a terminal).")
@json_option
def count(model, trust, box, box_file, unbounded, method, tol, jobs, dask, checkpoint, task_budget, time_limit,
          max_regions, regions_out, radius, progress, as_json):
    """Count the full-dimensional linear regions of MODEL over a domain."""
    from .counting import count_regions
    from .parallel import default_jobs
    check_files({"regions_out": regions_out, "checkpoint": checkpoint}, {"model": model, "box_file": box_file})
    net = load(model, trust)
    dom = get_domain(net, box, box_file, unbounded)
    if progress is None:
        progress = sys.stderr.isatty()
    if jobs is None:
        jobs = default_jobs() if method == "tree" else 1
    res = count_regions(net, dom, method=method, tol=tol, jobs=jobs, time_limit=time_limit, max_regions=max_regions,
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
@click.option("--xors", type=click.IntRange(1), default=None,
              help="Test this many XORs only (default: search upward from --start until a trial fails).")
@click.option("--start", type=click.IntRange(1), default=1, show_default=True, help="First level of the search.")
@click.option("--trials", type=click.IntRange(1), default=10, show_default=True, help="Trials r per level.")
@click.option("--confidence", type=float, default=None, help="Target confidence p (default 0.99); alpha = log2(1/(1-p))/r.")
@click.option("--alpha", type=float, default=None, help="Give alpha instead of --confidence: p = 1 - 2^(-alpha r).")
@click.option("--density", type=float, default=0.5, show_default=True,
              help="Probability that a neuron joins an XOR (the bound is valid for any density).")
@click.option("--method", type=click.Choice(["tree", "milp", "scip"]), default="tree", show_default=True,
              help="Feasibility of a trial: tree with parity propagation, HiGHS MILP, or SCIP with native XORs.")
@click.option("--time-limit", type=float, default=None, help="Seconds for the whole search.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--tol", type=float, default=None, help="Region tolerance of the chosen method (see lrmilp count).")
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="Run each level's trials on this many processes (or Dask LocalCluster workers).")
@click.option("--dask", default=None, metavar="local|tcp://HOST:PORT", help="Run the trials on Dask.")
@click.option("--progress/--no-progress", default=None, help="Progress on stderr (default: when stderr is a terminal).")
@json_option
def lower_bound_cmd(model, trust, box, box_file, unbounded, xors, start, trials, confidence, alpha, density, method,
                    time_limit, seed, tol, jobs, dask, progress, as_json):
    """A lower bound on the region count with a stated confidence, from random XOR constraints."""
    from .lowerbound import lower_bound
    net = load(model, trust)
    dom = get_domain(net, box, box_file, unbounded)
    res = lower_bound(net, dom, xors=xors, start=start, trials=trials, confidence=confidence, alpha=alpha,
                      density=density, method=method, time_limit=time_limit, seed=seed, tol=tol, jobs=jobs, dask=dask,
                      progress=sys.stderr.isatty() if progress is None else progress).to_dict()

    def human(r):
        how = (f"{r['trials']} trials per level passed up to {r['level']} XORs (alpha {r['alpha']:.3f})"
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
@domain_options
@json_option
def bounds_cmd(model, trust, arch, given_count, with_count, box, box_file, unbounded, as_json):
    """Closed-form bounds on the number of regions (exact integers), beside a measured count."""
    from . import theory
    if (model is None) == (arch is None):
        raise InputError("give either MODEL or --arch n0,n1,...,nL")
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
            from .counting import count_regions
            dom = get_domain(net, box, box_file, unbounded)
            c = count_regions(net, dom)
            res["count"] = c.regions
            res["count_complete"] = c.complete
            res["count_domain"] = dom.describe()
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
    return "\n".join(lines)


# --- sample --------------------------------------------------------------------------------------
@main.command()
@model_argument
@domain_options
@click.option("--samples", type=click.IntRange(1), required=True, help="How many inputs to draw.")
@click.option("--distribution", type=click.Choice(["uniform", "gaussian", "data"]), default="uniform",
              show_default=True)
@click.option("--sigma", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Standard deviation for --distribution gaussian.")
@click.option("--data", type=click.Path(dir_okay=False), default=None, help="A .npy file of inputs (rows).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--progress/--no-progress", default=None)
@json_option
def sample(model, trust, box, box_file, unbounded, samples, distribution, sigma, data, seed, progress, as_json):
    """Distinct activation patterns of sampled inputs: a lower bound on the region count."""
    from .domains import Unbounded
    from .sampling import sample_patterns
    net = load(model, trust)
    if distribution == "uniform" or box is not None or box_file is not None or unbounded:
        dom = get_domain(net, box, box_file, unbounded)
    else:
        dom = get_domain(net, None, None, False) if net.lo is not None else Unbounded(net.input_dim)
    res = sample_patterns(net, dom, samples=samples, distribution=distribution, sigma=sigma, data=data, seed=seed,
                          progress=sys.stderr.isatty() if progress is None else progress).to_dict()
    emit(res, as_json, lambda r: f"{r['distinct_patterns']:,} distinct patterns in {r['samples']:,} "
                                 f"{r['distribution']} samples ({r['seconds']:.2f}s): a lower bound, not a count")


# --- geometry: line, plane, distance, faces, cones ------------------------------------------------
def _load_array(path: str, what: str) -> np.ndarray:
    """A numeric .npy array, or InputError naming the option (:func:`lrmilp.validation.load_array`)."""
    from .validation import load_array
    return load_array(path, what.lstrip("-").replace("-", "_"))


def _tol_option(f):
    return click.option("--tol", type=click.FloatRange(min=0, min_open=True), default=None,
                        help="A region counts iff it holds a ball of radius > tol (parameter space); "
                             "default 1e-9 of the domain's scale.")(f)


@main.command()
@model_argument
@click.option("--start", type=click.Path(dir_okay=False), help="A.npy: start point(s), (n0,) or (lines, n0).")
@click.option("--end", type=click.Path(dir_okay=False), help="B.npy: end point(s), same shape as --start.")
@click.option("--direction", type=click.Path(dir_okay=False), help="D.npy: direction(s) instead of --end (B = A + D).")
@click.option("--infinite", is_flag=True, help="The whole line through A and B (t in R), not the segment.")
@click.option("--polyline", type=click.Path(dir_okay=False), help="X.npy: (k, n0) points; the path through them.")
@_tol_option
@json_option
def line(model, trust, start, end, direction, infinite, polyline, tol, as_json):
    """Exact regions and breakpoints along segments, infinite lines or a polyline (batched)."""
    from .geometry.lines import line_regions, polyline_regions
    if polyline is not None:
        if start or end or direction or infinite:
            raise InputError("--polyline goes alone (no --start, --end, --direction or --infinite)")
        net = load(model, trust)
        res = polyline_regions(net, _load_array(polyline, "--polyline"), tol=tol).to_dict()
    else:
        if start is None or (end is None) == (direction is None):
            raise InputError("give --start and exactly one of --end and --direction (or --polyline)")
        net = load(model, trust)
        A = _load_array(start, "--start")
        B = _load_array(end, "--end") if end is not None else None
        if direction is not None:
            D = _load_array(direction, "--direction")
            if D.shape != A.shape:
                raise InputError(f"--direction has shape {D.shape}, --start has {A.shape}")
            B = A + D
        if B.shape != A.shape:
            raise InputError(f"--end has shape {B.shape}, --start has {A.shape}")
        single = A.ndim == 1 or A.shape == tuple(net.input_shape)
        res = line_regions(net, A, B, infinite=infinite, tol=tol).to_dict(single=single)

    def human(r):
        if isinstance(r["regions"], list):
            return (f"{r['lines']} lines: mean {r['mean_regions']:.2f} regions per line "
                    f"({r['neurons']} neurons) in {r['seconds']:.3f}s")
        per = r.get("regions_per_unit_length")
        return (f"{r['regions']} regions along the {'line' if r.get('infinite') else 'path'}"
                + (f", {per:.4g} per unit length" if per is not None else "")
                + f"; breakpoints {', '.join(f'{b:.6g}' for b in r['breakpoints'][:20])}"
                + (" ..." if len(r["breakpoints"]) > 20 else ""))

    emit(res, as_json, human)


@main.command()
@model_argument
@click.option("--points", "points_file", type=click.Path(dir_okay=False), required=True,
              help="P.npy holding three points p0, p1, p2 (rows).")
@click.option("--window", nargs=2, type=float, default=(-0.5, 1.5), show_default=True, metavar="LO HI",
              help="(u1, u2) in [LO, HI]^2 on x = p0 + u1 (p1 - p0) + u2 (p2 - p0).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, help="Write a PNG of the cells.")
@click.option("--boundary", is_flag=True, help="Draw the output's decision boundary on the plot.")
@click.option("--cells", is_flag=True, help="List every cell (polygon, packed pattern, output map) in the JSON.")
@_tol_option
@json_option
def plane(model, trust, points_file, window, plot_path, boundary, cells, tol, as_json):
    """The exact partition of a plane through three points into linear regions (polygon clipping)."""
    from .domains import plane as plane_domain
    from .geometry.plane import plane_partition
    check_files({"plot": plot_path}, {"model": model, "points": points_file})
    net = load(model, trust)
    P = _load_array(points_file, "--points")
    P = P.reshape(P.shape[0], -1) if P.ndim > 1 else P
    if P.ndim != 2 or P.shape != (3, net.input_dim):
        raise InputError(f"--points must hold three points of {net.input_dim} values, got shape {P.shape}")
    part = plane_partition(net, plane_domain(P[0], P[1], P[2], window[0], window[1]), tol=tol)
    res = part.to_dict(cells=cells)
    if plot_path is not None:
        from .geometry.plot import plot_plane
        plot_plane(part, plot_path, boundary=boundary)
        res["plot"] = str(plot_path)
    emit(res, as_json, lambda r: f"{r['regions']:,} regions on the plane in {r['seconds']:.3f}s"
                                 + (f"; plot {r['plot']}" if "plot" in r else ""))


@main.command()
@model_argument
@domain_options
@click.option("--points", "points_file", type=click.Path(dir_okay=False), help="X.npy: inputs (rows).")
@click.option("--samples", type=click.IntRange(1), default=None, help="Draw this many points from the domain.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--domain-faces", is_flag=True, help="The domain's faces bound the distance too.")
@click.option("--bins", type=click.IntRange(1), default=20, show_default=True)
@click.option("--per-point/--summary-only", default=True, show_default=True, help="List every point's distance.")
@json_option
def distance(model, trust, box, box_file, unbounded, points_file, samples, seed, domain_faces, bins, per_point,
             as_json):
    """Exact distance from points to the boundary of their linear region, and its distribution."""
    from .geometry.distance import boundary_distance
    if (points_file is None) == (samples is None):
        raise InputError("give exactly one of --points and --samples")
    net = load(model, trust)
    needs_domain = samples is not None or domain_faces
    has_domain = box is not None or box_file is not None or unbounded or net.lo is not None
    dom = get_domain(net, box, box_file, unbounded) if needs_domain or has_domain else None
    if samples is not None:
        from .validation import MAX_ARRAY_ENTRIES, int_at_least
        int_at_least("samples", samples, 1, max(MAX_ARRAY_ENTRIES // dom.dim, 1))  # all are held at once
        X = dom.sample(samples, np.random.default_rng(seed))
    else:
        X = _load_array(points_file, "--points")
    res = boundary_distance(net, X, domain=dom if needs_domain else None, domain_faces=domain_faces)
    emit(res.to_dict(per_point=per_point, bins=bins), as_json,
         lambda r: f"{r['points']} points: mean distance {r['mean']:.6g}, median {r['quantiles']['0.5']:.6g}, "
                   f"min {r['quantiles']['0.0']:.6g}, max {r['quantiles']['1.0']:.6g}")


@main.command()
@model_argument
@domain_options
@_tol_option
@click.option("--rays", type=click.IntRange(0), default=16, show_default=True,
              help="Random rays per region for the LP-free facet certificates.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=None, help="Seconds (enumeration).")
@click.option("--max-regions", type=click.IntRange(1), default=None)
@json_option
def faces(model, trust, box, box_file, unbounded, tol, rays, seed, time_limit, max_regions, as_json):
    """Facets of every region (neuron and domain facets apart): histogram and mean."""
    from .geometry.faces import region_faces
    net = load(model, trust)
    dom = get_domain(net, box, box_file, unbounded)
    res = region_faces(net, dom, tol=tol, rays=rays, seed=seed, time_limit=time_limit,
                       max_regions=max_regions).to_dict()
    emit(res, as_json, lambda r: f"{r['regions']:,} regions, mean {r['mean_faces']:.4f} facets "
                                 f"({r['mean_neuron_faces']:.4f} neuron, {r['mean_domain_faces']:.4f} domain); "
                                 f"histogram {r['histogram']}; {r['lps']:,} LPs, {r['ray_certified']:,} by rays")


@main.command()
@model_argument
@json_option
def cones(model, trust, as_json):
    """Cone statistics of stacked conv layers (Gamba et al.): apex, opening, rotation, nesting state per filter."""
    from .geometry.cones import cone_statistics
    net = load(model, trust)
    res = cone_statistics(net).to_dict()

    def human(r):
        if not r["pairs"]:
            return "no pair of stacked conv layers (conv + ReLU, then conv)"
        def rot(p):
            return "n/a" if p["rotation_deg"] is None else f"{p['rotation_deg']:.2f} deg"
        return "\n".join(f"layers {p['layers']}: rotation {rot(p)}, states {p['counts']}" for p in r["pairs"])

    emit(res, as_json, human)


# --- bench ---------------------------------------------------------------------------------------
@main.command()
@click.argument("spec", type=str)
@click.option("--jobs", type=click.IntRange(1), default=None, help="Runs in parallel (default: the spec's jobs, 1).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Result file stem: STEM.jsonl and STEM.csv (default: the spec's output).")
@click.option("--retry-errors", is_flag=True, help="Run again the runs recorded as errors.")
@click.option("--dry-run", is_flag=True, help="List the runs and whether each is done; run nothing.")
@click.option("--trust", is_flag=True,
              help="Allow task kinds module:function (imports and runs that module's code).")
@json_option
def bench(spec, jobs, out, retry_errors, dry_run, trust, as_json):
    """Run the models x domains x tasks of SPEC.toml; a rerun resumes, skipping finished runs.

    SIGINT or SIGTERM kills the runs in flight and prints the summary of what finished
    ("stopped": "interrupted"); rerunning resumes."""
    from .bench import load_spec, run_bench, summary_table
    from .bench.runner import dry_run as plan
    parsed = load_spec(spec, output=out, trust=trust)
    if dry_run:
        res = plan(parsed)
    else:
        res = run_bench(parsed, jobs=jobs, retry_errors=retry_errors)
    emit(res, as_json, summary_table)


if __name__ == "__main__":  # pragma: no cover
    main()
