"""The ``lrmilp`` command line: a thin layer over the library (CONTRACT.md §3).

Every command takes ``--json`` and then prints exactly one JSON object on stdout; logs and progress
go to stderr.  Bad input exits with status 2 and one line naming the problem.
"""

from __future__ import annotations

import json
import sys
from typing import Callable

import click
import numpy as np

from . import __version__
from .errors import InputError, SolverUnavailable


# --- shared plumbing -----------------------------------------------------------------------------
def fail(message: str) -> None:
    """Exit 2 with one line on stderr."""
    click.echo(f"lrmilp: error: {' '.join(str(message).split())}", err=True)
    sys.exit(2)


def _to_jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _to_jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return obj


def emit(result: dict, as_json: bool, human: Callable[[dict], str] | None = None) -> None:
    if as_json:
        click.echo(json.dumps(_to_jsonable(result)))
    else:
        click.echo(human(result) if human else "\n".join(f"{k}: {v}" for k, v in _to_jsonable(result).items()))


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
        try:
            rv = super().main(*args, **kwargs)
        except click.UsageError as e:
            if type(e).__name__.startswith("NoArgsIsHelp") and e.ctx is not None:
                click.echo(e.ctx.get_help())  # bare `lrmilp`: the help, as click would show it
                sys.exit(0)
            fail(e.format_message())
        except click.Abort:
            click.echo("lrmilp: aborted", err=True)
            sys.exit(130)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.ClickException as e:
            fail(e.format_message())
        except (InputError, SolverUnavailable) as e:
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
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True, help="Processes per layer.")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Seconds per neuron MILP (--method milp).")
@json_option
def tighten(model, trust, box, box_file, unbounded, method, jobs, time_limit, as_json):
    """Pre-activation bounds of every ReLU neuron over the domain."""
    from .bounds import tighten as run
    net = load(model, trust)
    dom = get_domain(net, box, box_file, unbounded)
    res = run(net, dom, method=method, jobs=jobs, time_limit=time_limit).to_dict()

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
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True)
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=None, help="Seconds.")
@click.option("--max-regions", type=click.IntRange(1), default=None)
@click.option("--regions-out", type=click.Path(dir_okay=False), default=None,
              help="Stream every region (packed pattern, interior point, margin) to this JSON-lines file.")
@click.option("--radius", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Solver methods on an unbounded domain count inside [-R, R]^n0 (default: automatic).")
@click.option("--progress/--no-progress", default=None, help="Progress on stderr (default: when stderr is a terminal).")
@json_option
def count(model, trust, box, box_file, unbounded, method, tol, jobs, time_limit, max_regions, regions_out, radius,
          progress, as_json):
    """Count the full-dimensional linear regions of MODEL over a domain."""
    from .counting import count_regions
    net = load(model, trust)
    dom = get_domain(net, box, box_file, unbounded)
    if progress is None:
        progress = sys.stderr.isatty()
    res = count_regions(net, dom, method=method, tol=tol, jobs=jobs, time_limit=time_limit, max_regions=max_regions,
                        regions_out=regions_out, progress=progress, radius=radius).to_dict()

    def human(r):
        head = f"{r['regions']:,} regions" + ("" if r["complete"] else f" at least (stopped: {r['stopped']})")
        return (f"{head} by {r['method']} in {r['seconds']:.3f}s, {r['lps']:,} LPs"
                + (f" ({r['lps_per_region']} per region)" if "lps_per_region" in r else "")
                + f"; tol {r['tol']:g}: {r['tol_meaning']}")

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
@click.option("--progress/--no-progress", default=None, help="Progress on stderr (default: when stderr is a terminal).")
@json_option
def lower_bound_cmd(model, trust, box, box_file, unbounded, xors, start, trials, confidence, alpha, density, method,
                    time_limit, seed, tol, progress, as_json):
    """A lower bound on the region count with a stated confidence, from random XOR constraints."""
    from .lowerbound import lower_bound
    net = load(model, trust)
    dom = get_domain(net, box, box_file, unbounded)
    res = lower_bound(net, dom, xors=xors, start=start, trials=trials, confidence=confidence, alpha=alpha,
                      density=density, method=method, time_limit=time_limit, seed=seed, tol=tol,
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
@click.option("--arch", type=str, default=None, help="Architecture n0,n1,...,nL (every layer ReLU).")
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


# --- bench ---------------------------------------------------------------------------------------
@main.command()
@click.argument("spec", type=str)
@click.option("--jobs", type=click.IntRange(1), default=None, help="Runs in parallel (default: the spec's jobs, 1).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Result file stem: STEM.jsonl and STEM.csv (default: the spec's output).")
@click.option("--retry-errors", is_flag=True, help="Run again the runs recorded as errors.")
@click.option("--dry-run", is_flag=True, help="List the runs and whether each is done; run nothing.")
@json_option
def bench(spec, jobs, out, retry_errors, dry_run, as_json):
    """Run the models x domains x tasks of SPEC.toml; a rerun resumes, skipping finished runs."""
    from .bench import Interrupted, load_spec, run_bench, summary_table
    from .bench.runner import dry_run as plan
    parsed = load_spec(spec, output=out)
    if dry_run:
        res = plan(parsed)
    else:
        try:
            res = run_bench(parsed, jobs=jobs, retry_errors=retry_errors)
        except Interrupted as e:
            click.echo(f"lrmilp: {e}", err=True)
            sys.exit(130)
    emit(res, as_json, summary_table)


if __name__ == "__main__":  # pragma: no cover
    main()
