"""Wall time of the tree count with 1 and N workers (local processes, or Dask) on the same nets, one run.

Nets: the random MLPs of ``benchmarks/count.py`` (same seed and weights), box [-1, 1]^n0.  Each
(net, workers) count runs in this process, one after another.  Speed-up = serial seconds / parallel
seconds when both finish; with ``--time-limit`` a count may stop early, and then the speed-up is the
ratio of regions per second (the table says which).  Target (issue 8): at least 1.8x on 2 cores.

    python benchmarks/scaling.py                                  # 16-11-11, 64-11-11; 1 and 2 workers
    python benchmarks/scaling.py --nets 16-11-11 --workers 1,2 --save scaling.json
    python benchmarks/scaling.py --nets 16-11-11 --dask local     # the same on a Dask LocalCluster

``--save`` writes ``{"net": {"regions": N, "seconds": S}}`` of the complete serial counts, which
``benchmarks/lower_bound.py --exact-from`` reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from count import make_net  # noqa: E402  (the count benchmark's nets and weights)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default="16-11-11,64-11-11")
    ap.add_argument("--workers", default="1,2", help="worker counts, comma-separated; the first is the baseline")
    ap.add_argument("--dask", default=None, help="run the parallel counts on Dask: local or tcp://host:port")
    ap.add_argument("--time-limit", type=float, default=None, help="seconds per count (default: none)")
    ap.add_argument("--save", default=None)
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()

    from lrmilp.counting import count_regions
    from lrmilp.domains import Box

    workers = [int(w) for w in args.workers.split(",")]
    rows, saved = [], {}
    for name in args.nets.split(","):
        net = make_net(name)
        dom = Box(-1, 1, net.input_dim)
        base = None
        for w in workers:
            dask = args.dask if w > 1 else None
            res = count_regions(net, dom, jobs=w, dask=dask, time_limit=args.time_limit, progress=args.progress)
            row = {"net": name, "workers": w, "engine": "dask" if dask else ("serial" if w == 1 else "local"),
                   "regions": res.regions, "complete": res.complete, "seconds": res.seconds,
                   "rate": res.regions / res.seconds, "tasks": res.extra.get("tasks", 1)}
            print(f"{name} x{w}: {res.regions:,} regions ({'complete' if res.complete else 'stopped'}) "
                  f"in {res.seconds:.1f}s", file=sys.stderr)
            if base is None:
                base = row
                row["speedup"] = "-"
                if w == 1 and res.complete:
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
    print("| net | workers | engine | regions | complete | seconds | regions/s | tasks | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['net']} | {r['workers']} | {r['engine']} | {r['regions']:,} | {'yes' if r['complete'] else 'no'} | "
              f"{r['seconds']:.1f} | {r['rate']:,.0f} | {r['tasks']:,} | {r['speedup']} |")


if __name__ == "__main__":
    main()
