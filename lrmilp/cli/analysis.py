"""Commands about the geometry of regions (line, plane, distance, faces, cones) and batches (bench)."""

from __future__ import annotations

import click
import numpy as np

from ..errors import InputError
from .app import check_files, domain_options, emit, get_domain, json_option, load, main, model_argument, progress_option


# --- geometry: line, plane, distance, faces, cones ------------------------------------------------
def _load_array(path: str, what: str) -> np.ndarray:
    """A numeric .npy array, or InputError naming the option (:func:`lrmilp.validation.load_array`)."""
    from ..validation import load_array
    return load_array(path, what.lstrip("-").replace("-", "_"))


def _tol_option(f):
    return click.option("--tol", type=float, default=None,
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
def line(model, trust, input_shape, start, end, direction, infinite, polyline, tol, as_json):
    """Exact regions and breakpoints along segments, infinite lines or a polyline (batched)."""
    from ..geometry.lines import line_regions, polyline_regions
    if polyline is not None:
        if start or end or direction or infinite:
            raise InputError("--polyline goes alone (no --start, --end, --direction or --infinite)")
        net = load(model, trust, input_shape)
        res = polyline_regions(net, _load_array(polyline, "--polyline"), tol=tol).to_dict()
    else:
        if start is None or (end is None) == (direction is None):
            raise InputError("give --start and exactly one of --end and --direction (or --polyline)")
        net = load(model, trust, input_shape)
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


PLANE_WINDOW = (-0.5, 1.5)
"""The default --window of a plane through three points: the triangle p0, p1, p2 and a margin of half
its sides around it."""


@main.command()
@model_argument
@domain_options
@click.option("--points", "points_file", type=click.Path(dir_okay=False),
              help="P.npy holding three points p0, p1, p2 (rows).  Without it the plane is the input box of "
                   "a 2-input net: the model's, or --box / --box-file.")
@click.option("--window", nargs=2, type=float, default=None, metavar="LO HI",
              help="(u1, u2) in [LO, HI]^2 on x = p0 + u1 (p1 - p0) + u2 (p2 - p0)  [default: -0.5 1.5].")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Write a figure of the cells: .png, .pdf or .svg, by the name's extension.")
@click.option("--color", type=click.Choice(["class", "active", "random"]), default=None,
              help="Fill cells by predicted class (default), by number of active neurons, or at random.")
@click.option("--title", default=None, help="The figure's title (default: the region count).")
@click.option("--dpi", type=int, default=None, help="The figure's resolution, 10 to 600  [default: 150].")
@click.option("--boundary", is_flag=True, help="Draw the decision boundary, with the class on each side.")
@click.option("--cells", is_flag=True, help="List every cell (polygon, packed pattern, output map) in the JSON.")
@_tol_option
@json_option
def plane(model, trust, input_shape, box, box_file, unbounded, points_file, window, plot_path, color, title, dpi,
          boundary, cells, tol, as_json):
    """The exact partition of a plane into linear regions (polygon clipping): the plane through three
    points, or the input box of a 2-input net.  On a slice, a box (--box, --box-file, else the model's)
    is the part of the window where the regions mean something: the JSON gives the share of the window
    inside it, and the figure hatches the rest."""
    from ..domains import plane as plane_domain
    from ..geometry.plane import plane_partition, polygon_area, window_inside_box
    from ..geometry.plot import check_plot_options
    if plot_path is None and (color is not None or title is not None or dpi is not None or boundary):
        raise InputError("--color, --title, --dpi and --boundary shape the figure: give --plot OUT.png")
    color, dpi = color or "class", 150 if dpi is None else dpi
    if plot_path is not None:
        check_plot_options(plot_path, color=color, dpi=dpi, title=title)  # before the partition is computed
    if unbounded:
        raise InputError("plane: --unbounded has no window to draw; give --box LO HI or --box-file F.json")
    check_files({"plot": plot_path}, {"model": model, "points": points_file, "box_file": box_file})
    net = load(model, trust, input_shape)
    given_box = box is not None or box_file is not None
    dom_box = get_domain(net, box, box_file, False) if given_box or net.lo is not None else None
    if dom_box is not None and dom_box.A_ub.shape[0]:
        raise InputError("box_file: the plane needs a box (lo, hi), not a polytope (A, b)", param="box_file")
    res = {}
    if points_file is None:
        if window is not None:
            raise InputError("--window goes with --points; without --points the plane is the input box")
        if net.input_dim != 2:
            raise InputError(f"points: the network has {net.input_dim} inputs; without --points the plane is "
                             "the input box, which needs a 2-input net (give --points P.npy)", param="points")
        if dom_box is None:
            raise InputError("no box: give --box LO HI or --box-file F.json (the model has no lo/hi)")
        part = plane_partition(net, dom_box, tol=tol)
        res["plane"] = "input box"
    else:
        P = _load_array(points_file, "--points")
        P = P.reshape(P.shape[0], -1) if P.ndim > 1 else P
        if P.ndim != 2 or P.shape != (3, net.input_dim):
            raise InputError(f"--points must hold three points of {net.input_dim} values, got shape {P.shape}")
        window = PLANE_WINDOW if window is None else window
        part = plane_partition(net, plane_domain(P[0], P[1], P[2], window[0], window[1]), tol=tol)
        res["plane"] = "points"
        if dom_box is not None:
            inside = window_inside_box(part.domain, dom_box.lo, dom_box.hi)
            res["window_inside_box"] = polygon_area(inside) / float(window[1] - window[0]) ** 2
    res.update(part.to_dict(cells=cells))
    if plot_path is not None:
        from ..geometry.plot import plot_plane
        plot_plane(part, plot_path, boundary=boundary, title=title, dpi=dpi, color=color,
                   model_box=None if dom_box is None else (dom_box.lo, dom_box.hi))
        res["plot"] = str(plot_path)

    def human(r):
        share = (f" ({r['window_inside_box']:.1%} of the window inside the box)"
                 if "window_inside_box" in r else "")
        return (f"{r['regions']:,} regions on the plane in {r['seconds']:.3f}s{share}"
                + (f"; plot {r['plot']}" if "plot" in r else ""))

    emit(res, as_json, human)


@main.command()
@model_argument
@domain_options
@click.option("--points", "points_file", type=click.Path(dir_okay=False), help="X.npy: inputs (rows).")
@click.option("--samples", type=int, default=None, help="Draw this many points from the domain.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--domain-faces", is_flag=True, help="The domain's faces bound the distance too.")
@click.option("--bins", type=click.IntRange(1), default=20, show_default=True)
@click.option("--per-point/--summary-only", default=True, show_default=True, help="List every point's distance.")
@click.option("--time-limit", type=float, default=None,
              help="Seconds; a stopped run reports the first points' distances (complete: false).")
@progress_option
@json_option
def distance(model, trust, input_shape, box, box_file, unbounded, points_file, samples, seed, domain_faces, bins,
             per_point, time_limit, progress, as_json):
    """Exact distance from points to the boundary of their linear region, and its distribution."""
    from ..geometry.distance import boundary_distance
    if (points_file is None) == (samples is None):
        raise InputError("give exactly one of --points and --samples")
    net = load(model, trust, input_shape)
    needs_domain = samples is not None or domain_faces
    has_domain = box is not None or box_file is not None or unbounded or net.lo is not None
    dom = get_domain(net, box, box_file, unbounded) if needs_domain or has_domain else None
    if samples is not None:
        from ..validation import MAX_ARRAY_ENTRIES, int_at_least
        int_at_least("samples", samples, 1, max(MAX_ARRAY_ENTRIES // dom.dim, 1))  # all are held at once
        X = dom.sample(samples, np.random.default_rng(seed))
    else:
        X = _load_array(points_file, "--points")
    res = boundary_distance(net, X, domain=dom if needs_domain else None, domain_faces=domain_faces, progress=progress,
                            time_limit=time_limit)

    def human(r):
        stop = "" if r["complete"] else f" (stopped: {r['stopped']}, of {r['points_given']:,} given)"
        if not r["points"]:
            return f"0 points{stop}"
        return (f"{r['points']} points{stop}: mean distance {r['mean']:.6g}, median {r['quantiles']['0.5']:.6g}, "
                f"min {r['quantiles']['0.0']:.6g}, max {r['quantiles']['1.0']:.6g}")

    emit(res.to_dict(per_point=per_point, bins=bins), as_json, human)


@main.command()
@model_argument
@domain_options
@_tol_option
@click.option("--rays", type=int, default=16, show_default=True,
              help="Random rays per region for the LP-free facet certificates.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--time-limit", type=float, default=None,
              help="Seconds for the whole command (enumeration and facets); a stopped run reports the regions "
                   "whose facets it decided (complete: false).")
@click.option("--max-regions", type=int, default=None)
@click.option("--method", default="auto", show_default=True, metavar="auto|polygon|lp",
              help="Facets from exact polygons (2-D boxes, no LP) or by rays and LPs; auto: polygons where they apply.")
@progress_option
@json_option
def faces(model, trust, input_shape, box, box_file, unbounded, tol, rays, seed, time_limit, max_regions, method,
          progress, as_json):
    """Facets of every region (neuron and domain facets apart): histogram and mean."""
    from ..geometry.faces import region_faces
    net = load(model, trust, input_shape)
    dom = get_domain(net, box, box_file, unbounded)
    res = region_faces(net, dom, tol=tol, rays=rays, seed=seed, time_limit=time_limit, max_regions=max_regions,
                       progress=progress, method=method).to_dict()

    def human(r):
        how = ("exact polygons, no LP" if r["facet_method"] == "polygon"
               else f"{r['lps']:,} LPs, {r['ray_certified']:,} by rays")
        stop = ("" if r["complete"] else f" (stopped: {r['stopped']}; facets of {r['regions']:,} of the "
                f"{r['regions_found']:,} regions found)")
        return (f"{r['regions']:,} regions{stop}, mean {r['mean_faces']:.4f} facets "
                f"({r['mean_neuron_faces']:.4f} neuron, {r['mean_domain_faces']:.4f} domain); "
                f"histogram {r['histogram']}; {how}; {r['seconds']:.2f}s")

    emit(res, as_json, human)


@main.command()
@model_argument
@json_option
def cones(model, trust, input_shape, as_json):
    """Cone statistics of stacked conv layers (Gamba et al.): apex, opening, rotation, nesting state per filter."""
    from ..geometry.cones import cone_statistics
    net = load(model, trust, input_shape)
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
@click.option("--jobs", type=int, default=None, help="Runs in parallel (default: the spec's jobs, 1).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Result file stem: STEM.jsonl and STEM.csv (default: the spec's output).")
@click.option("--retry-errors", is_flag=True, help="Run again the runs recorded as errors.")
@click.option("--dry-run", is_flag=True, help="List the runs and whether each is done; run nothing.")
@click.option("--trust", is_flag=True,
              help="Allow task kinds module:function (imports and runs that module's code).")
@progress_option
@json_option
def bench(spec, jobs, out, retry_errors, dry_run, trust, progress, as_json):
    """Run the models x domains x tasks of SPEC.toml; a rerun resumes, skipping finished runs.

    SIGINT or SIGTERM kills the runs in flight and prints the summary of what finished
    ("stopped": "interrupted"); rerunning resumes."""
    from ..bench import load_spec, run_bench, summary_table
    from ..bench.runner import dry_run as plan
    parsed = load_spec(spec, output=out, trust=trust)
    if dry_run:
        res = plan(parsed)
    else:
        res = run_bench(parsed, jobs=jobs, retry_errors=retry_errors, progress=progress)
    emit(res, as_json, summary_table)

