"""Commands that bound or estimate the count: lower-bound, estimate, bounds, sample."""

from __future__ import annotations

import click

from ..errors import InputError
from .app import (domain_options, emit, get_domain, input_shape_option, json_option, load, main, model_argument,
                  progress_option)


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
@click.option("--threshold", type=int, default=None,
              help="A trial passes when its cell holds this many regions t; the claim is t 2^(L - alpha) "
                   "(default: 8 when the XORs leave out the last layer, else 1; tree only).")
@click.option("--xor-layers", type=int, default=None,
              help="Draw the XORs over the first this many ReLU layers (default: all but the last from three "
                   "ReLU layers on with --method tree, else all).")
@click.option("--time-limit", type=float, default=None, help="Seconds for the whole command (the search stops "
              "5% early to leave time for collecting what it certified).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--tol", type=float, default=None, help="Region tolerance of the chosen method (see lrmilp count).")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="Run each level's trials on this many processes (or Dask LocalCluster workers).")
@click.option("--dask", default=None, metavar="local|tcp://HOST:PORT", help="Run the trials on Dask.")
@click.option("--geometry", default="auto", show_default=True, metavar="NAME",
              help="The tree oracle's cells (as for lrmilp count).")
@progress_option
@json_option
def lower_bound_cmd(model, trust, input_shape, box, box_file, unbounded, xors, start, schedule, trials, confidence,
                    alpha, density, method, threshold, xor_layers, time_limit, seed, tol, jobs, dask, geometry, progress,
                    as_json):
    """A lower bound on the region count with a stated confidence, from random XOR constraints."""
    from ..lowerbound import lower_bound
    net = load(model, trust, input_shape)
    dom = get_domain(net, box, box_file, unbounded)
    res = lower_bound(net, dom, xors=xors, start=start, trials=trials, confidence=confidence, alpha=alpha,
                      density=density, method=method, time_limit=time_limit, seed=seed, tol=tol, jobs=jobs, dask=dask,
                      progress=progress, geometry=geometry, schedule=schedule, threshold=threshold,
                      xor_layers=xor_layers).to_dict()

    def human(r):
        what = "a region" if r["threshold"] == 1 else f"a cell of {r['threshold']} regions"
        how = (f"all {r['trials']} trials with {r['level']} XORs found {what} (alpha {r['alpha']:.3f})"
               if r["level"] is not None else "no XOR level certified" if r["levels"]
               else "no XOR level could claim more than the certain bound")
        return (f"at least {r['lower_bound']:,} regions with confidence {r['confidence']:.4g} "
                f"({how}; {r['certain_lower_bound']:,} distinct regions found for certain; {r['seconds']:.2f}s, "
                f"stopped: {r['stopped']}) — a lower bound, not a count")

    emit(res, as_json, human)


# --- estimate ------------------------------------------------------------------------------------
@main.command("estimate")
@model_argument
@domain_options
@click.option("--epsilon", type=float, default=0.8, show_default=True,
              help="Tolerance: the estimate is within a factor 1 + epsilon of the count (with probability 1 - delta).")
@click.option("--delta", type=float, default=0.2, show_default=True,
              help="Failure probability in (0, 1): the confidence is 1 - delta.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--time-limit", type=float, default=None,
              help="Seconds for the whole estimate (cut short: no guarantee).")
@click.option("--tol", type=float, default=None, help="Region tolerance (see lrmilp count).")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="Run the iterations on this many processes (or Dask LocalCluster workers); same result.")
@click.option("--dask", default=None, metavar="local|tcp://HOST:PORT", help="Run the iterations on Dask.")
@click.option("--geometry", default="auto", show_default=True, metavar="NAME",
              help="The searches' cells (as for lrmilp count).")
@progress_option
@json_option
def estimate_cmd(model, trust, input_shape, box, box_file, unbounded, epsilon, delta, seed, time_limit, tol, jobs, dask,
                 geometry, progress, as_json):
    """An estimate of the region count within a factor 1 + epsilon with probability 1 - delta (ApproxMC2 hashing)."""
    from ..estimate import estimate
    net = load(model, trust, input_shape)
    dom = get_domain(net, box, box_file, unbounded)
    res = estimate(net, dom, epsilon=epsilon, delta=delta, seed=seed, time_limit=time_limit, tol=tol, jobs=jobs,
                   dask=dask, progress=progress, geometry=geometry).to_dict()

    def human(r):
        if r["estimate"] is None:
            return f"no estimate ({r['seconds']:.2f}s, stopped: {r['stopped']})"
        lo, hi = r["interval"]
        head = (f"estimate {r['estimate']:,} regions, interval [{lo:,.1f}, {hi:,.1f}], "
                f"confidence {r['confidence'] if r['confidence'] is not None else 'none'} ({r['seconds']:.2f}s)")
        if r["exact"]:
            why = f"exact: fewer than thresh = {r['thresh']:.1f} regions, all counted"
        elif r["guaranteed"]:
            why = (f"the count is in the interval with probability >= {r['confidence']:.4g} (median of "
                   f"{r['iterations']} ApproxMC2 iterations, epsilon {r['epsilon']:g}, delta {r['delta']:g})")
        else:
            why = (f"stopped ({r['stopped']}) after {r['iterations_done']} of {r['iterations']} iterations: "
                   "no guarantee")
        return f"{head}\n{why}"

    emit(res, as_json, human)


# --- bounds --------------------------------------------------------------------------------------
@main.command("bounds")
@click.argument("model", required=False)
@click.option("--trust", is_flag=True, help="Allow loading a whole pickled PyTorch module.")
@input_shape_option
@click.option("--arch", type=str, default=None, help="Architecture n0,n1,...,nL (every layer ReLU; at most 20,000 neurons).")
@click.option("--count", "given_count", type=click.IntRange(0), default=None, help="A measured count to show beside.")
@click.option("--with-count", is_flag=True, help="Run the tree enumerator and show its count beside the bounds.")
@click.option("--empirical", is_flag=True,
              help="Add serra2020: an upper bound for these weights over the domain, from MILPs on the network "
                   "(most neurons active / inactive together per layer, stable neurons).")
@click.option("--time-limit", type=float, default=10.0, show_default=True,
              help="Seconds per MILP of --empirical (two per ReLU layer; a stopped MILP's dual bound is used), "
                   "and for each bound found by a search (Xiong et al.'s Theorem 2 on a CNN: n/a past it).")
@click.option("--solver", type=click.Choice(["highs", "scip"]), default="highs", show_default=True,
              help="MILP solver of --empirical (scip needs PySCIPOpt).")
@domain_options
@json_option
def bounds_cmd(model, trust, input_shape, arch, given_count, with_count, empirical, time_limit, solver, box, box_file,
               unbounded, as_json):
    """Closed-form bounds on the number of regions (exact integers), beside a measured count."""
    from .. import theory
    if (model is None) == (arch is None):
        raise InputError("give either MODEL or --arch n0,n1,...,nL")
    if empirical and arch is not None:
        raise InputError("--empirical needs a MODEL (its weights), not --arch")
    if input_shape is not None and arch is not None:
        raise InputError("--input-shape goes with a MODEL, not --arch")
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
        net = load(model, trust, input_shape)
        res = theory.bounds_for_network(net, time_limit=time_limit)
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


_BOUND_SECTIONS = (
    ("upper bounds on the most regions any weights of this architecture give over R^n0",
     ("activation_patterns", "one_layer_max", "raghu2017", "montufar2017", "serra2018", "xiong2020",
      "xiong2020_upper")),
    ("... for any weights with these weights' ranks", ("serra2018_rank",)),
    ("lower bounds on that maximum (some weights reach them; they say nothing about this network)",
     ("montufar2014_lower", "serra2018_lower", "xiong2020_lower", "xiong2020_lower_exact")),
    ("this network over R^n0, exactly", ("one_layer_exact",)),
    ("these weights over this domain", ("serra2020", "count")),
)


def _bounds_table(r: dict) -> str:
    """The bounds grouped by what they bound; n/a with its reason."""
    lines = [f"architecture {r['arch']}"]
    width = max(len(k) for k in r)

    def row(k: str) -> str:
        v = r[k]
        if v is None:
            v = f"n/a ({r[k + '_note']})" if r.get(k + "_note") else "n/a"
        return (f"    {k:<{width}}  {v:>30,}" if isinstance(v, int) and not isinstance(v, bool)
                else f"    {k:<{width}}  {str(v):>30}")

    shown = {"arch", "count_domain", "count_complete", "xiong2020_scope"}
    for title, keys in _BOUND_SECTIONS:
        present = [k for k in keys if k in r]
        if present:
            lines.append(f"  {title}:")
            lines += [row(k) for k in present]
            shown.update(present)
    rest = [k for k, v in r.items() if k not in shown and not k.endswith("_note") and not isinstance(v, (dict, list))]
    if rest:
        lines.append("  other:")
        lines += [row(k) for k in rest]
    if "serra2020" in r:
        d = r["serra2020_details"]
        lines.append(f"serra2020: activation-based, after Serra & Ramalingam 2020, over the {d['domain']['kind']}; "
                     f"MILPs by {d['solver']} in {d['seconds']:.2f}s"
                     + (f", {d['dual_bound_used']} stopped: dual bounds used" if d["dual_bound_used"] else ""))
    if "count" in r and r.get("count_complete") is False:
        lines.append("count: stopped early, a lower bound")
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
def sample(model, trust, input_shape, box, box_file, unbounded, samples, distribution, sigma, data, seed, time_limit,
           progress, as_json):
    """Distinct activation patterns of sampled inputs: a lower bound on the region count."""
    from ..domains import Unbounded
    from ..sampling import sample_patterns
    net = load(model, trust, input_shape)
    if distribution == "uniform" or box is not None or box_file is not None or unbounded:
        dom = get_domain(net, box, box_file, unbounded)
    else:
        dom = get_domain(net, None, None, False) if net.lo is not None else Unbounded(net.input_dim)
    res = sample_patterns(net, dom, samples=samples, distribution=distribution, sigma=sigma, data=data, seed=seed,
                          progress=progress, time_limit=time_limit).to_dict()
    if res.get("outside_domain") and not as_json:
        # said on stderr as well, so that a script reading only the number still sees it
        click.echo(f"lrmilp: warning: {res['outside_domain']:,} of {res['samples']:,} samples fell outside the "
                   "domain and were dropped (a smaller --sigma, or the domain's own box, keeps them)", err=True)

    def human(r):
        kept = r["samples"] - r.get("outside_domain", 0)
        return (f"{r['distinct_patterns']:,} distinct patterns in {kept:,} {r['distribution']} samples inside the "
                f"domain" + (f" ({r['outside_domain']:,} more fell outside and were dropped)"
                             if r.get("outside_domain") else "")
                + f" ({r['seconds']:.2f}s" + ("" if r["complete"] else f", stopped: {r['stopped']}")
                + "): a lower bound on the regions, not a count")

    emit(res, as_json, human)


