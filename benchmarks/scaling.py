"""The engines side by side, one run: the naive reference, the ``batch`` geometry and the compiled
``dual`` geometry serially, then ``--jobs 2`` counts of both geometries; or, with ``--workers``, the
wall time of one geometry with 1 and N workers.

    python benchmarks/scaling.py                                   # engines, then jobs (about 15 min)
    python benchmarks/scaling.py --parts engines --seconds 60      # the serial table only
    python benchmarks/scaling.py --workers 1,2 --nets 16-11-11     # 1 vs 2 workers (issue 8's table;
                                                                   # --nets alone means --workers 1,2)
    python benchmarks/scaling.py --workers 1,2 --dask local        # the same on a Dask LocalCluster

*engines* (issue 15): every engine on each net for ``--seconds`` (default 60) in this process, order
alternating (``benchmarks/vs_naive.py``): regions/s, LPs per region and the ratio to the naive
reference (``benchmarks/naive.py``: one warm HiGHS LP per undecided split).  Nets: a random 64-11-11,
the shipped digits 64-11-11-10 ([0, 1]^64) and a random 784-11-11 (N(0, 1) weights, N(0, 0.25)
biases, [-1, 1]^n0, seed 0).

*jobs*: the complete count of a random 16-11-11 with ``jobs=2`` per geometry (``--job-geometries``,
default batch,dual), time ratio to the first.

*workers* (``--workers``): the count with each worker count (the first is the baseline; ``--geometry``
picks the geometry).  Speed-up = baseline seconds / seconds when both finish; with ``--time-limit`` a
count may stop early, and then it is the ratio of regions per second (the table says which).
``--save`` writes ``{"net": {"regions": N, "seconds": S}}`` of the complete baseline counts (read by
``benchmarks/lower_bound.py --exact-from``); ``--json`` every row.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from count import make_net  # noqa: E402  (the count benchmark's nets and weights)
from vs_naive import compare, table  # noqa: E402

ENGINE_NETS = "64-11-11,models/digits-mlp-64-11-11-10.npz,784-11-11"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="engines,jobs", help="engines and/or jobs (ignored with --workers)")
    ap.add_argument("--seconds", type=float, default=60.0, help="time limit per engine and net (engines)")
    ap.add_argument("--engines", default="naive,batch,dual", help="engines of the engines part")
    ap.add_argument("--engine-nets", default=ENGINE_NETS)
    ap.add_argument("--job-net", default="16-11-11")
    ap.add_argument("--job-geometries", default="batch,dual")
    ap.add_argument("--workers", default=None,
                    help="worker counts, comma-separated; the first is the baseline (1,2 when only --nets is given)")
    ap.add_argument("--nets", default=None, help="nets of --workers (default 16-11-11,64-11-11)")
    ap.add_argument("--geometry", default="auto", help="geometry of --workers")
    ap.add_argument("--dask", default=None, help="run the parallel counts on Dask: local or tcp://host:port")
    ap.add_argument("--time-limit", type=float, default=None, help="seconds per count of --workers and jobs")
    ap.add_argument("--save", default=None)
    ap.add_argument("--json", default=None, help="write every row here")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()
    if args.workers or args.nets:
        args.workers = args.workers or "1,2"
        args.nets = args.nets or "16-11-11,64-11-11"
        rows = workers(args)
    else:
        rows = []
        parts = args.parts.split(",")
        if "engines" in parts:
            eng = compare(args.engine_nets.split(","), tuple(args.engines.split(",")), args.seconds)
            print(table(eng, args.seconds, "python benchmarks/scaling.py --parts engines"))
            print()
            rows += eng
        if "jobs" in parts:
            rows += jobs(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


def _count(net, geometry: str, jobs: int, args, dask: str | None = None):
    from lrmilp.counting import count_regions
    from lrmilp.domains import Box
    kw = {} if geometry == "auto" else {"geometry": geometry}  # versions before step 2 know no geometry
    return count_regions(net, Box(-1, 1, net.input_dim), jobs=jobs, dask=dask, time_limit=args.time_limit,
                         progress=args.progress, **kw)


def jobs(args) -> list[dict]:
    """The complete count of one net with jobs=2 per geometry, one after another."""
    net = make_net(args.job_net)
    rows = []
    for geometry in args.job_geometries.split(","):
        res = _count(net, geometry, 2, args)
        rows.append({"net": args.job_net, "geometry": geometry, "jobs": 2, "regions": res.regions,
                     "complete": res.complete, "seconds": res.seconds, "lps": res.lps,
                     "tasks": res.extra.get("tasks", 1)})
        print(f"# {args.job_net} {geometry} x2: {res.regions:,} regions in {res.seconds:.1f} s", file=sys.stderr)
    base = rows[0]
    print("| net | geometry | jobs | regions | complete | seconds | LPs/region | tasks | time vs first |")
    print("| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        speed = f"{base['seconds'] / r['seconds']:.1f}x faster" if r is not base else "-"
        print(f"| {r['net']} | {r['geometry']} | 2 | {r['regions']:,} | {'yes' if r['complete'] else 'no'} | "
              f"{r['seconds']:.1f} | {r['lps'] / max(r['regions'], 1):.2f} | {r['tasks']:,} | {speed} |")
    if len({r["regions"] for r in rows}) != 1 and all(r["complete"] for r in rows):
        raise SystemExit(f"geometries disagree on {args.job_net}: {[r['regions'] for r in rows]}")
    return rows


def workers(args) -> list[dict]:
    counts = [int(w) for w in args.workers.split(",")]
    rows, saved = [], {}
    for name in args.nets.split(","):
        net = make_net(name)
        base = None
        for w in counts:
            dask = args.dask if w > 1 else None
            res = _count(net, args.geometry, w, args, dask)
            row = {"net": name, "workers": w, "engine": "dask" if dask else ("serial" if w == 1 else "local"),
                   "geometry": res.extra.get("geometry"), "regions": res.regions, "complete": res.complete,
                   "seconds": res.seconds, "rate": res.regions / res.seconds, "tasks": res.extra.get("tasks", 1)}
            print(f"{name} x{w}: {res.regions:,} regions ({'complete' if res.complete else 'stopped'}) "
                  f"in {res.seconds:.1f}s", file=sys.stderr)
            if base is None:
                base = row
                row["speedup"] = "-"
                if res.complete:
                    saved[name] = {"regions": res.regions, "seconds": res.seconds}
            elif base["complete"] and row["complete"]:
                if row["regions"] != base["regions"]:
                    raise SystemExit(f"{name}: {w} workers counted {row['regions']}, baseline {base['regions']}")
                row["speedup"] = f"{base['seconds'] / row['seconds']:.2f} (time)"
            else:
                row["speedup"] = f"{row['rate'] / base['rate']:.2f} (regions/s)"
            rows.append(row)
    if args.save:
        Path(args.save).write_text(json.dumps(saved, indent=1))
    print("| net | workers | engine | geometry | regions | complete | seconds | regions/s | tasks | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['net']} | {r['workers']} | {r['engine']} | {r['geometry']} | {r['regions']:,} | "
              f"{'yes' if r['complete'] else 'no'} | {r['seconds']:.1f} | {r['rate']:,.0f} | {r['tasks']:,} | "
              f"{r['speedup']} |")
    return rows


if __name__ == "__main__":
    main()
