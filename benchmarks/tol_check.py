#!/usr/bin/env python3
"""Does the default tree count drop real regions?  Tree (default tol) against SCIP's count() and the
tree at a 1000x smaller tol, on random nets of the issue's distribution.

    python benchmarks/tol_check.py [--nets 3-12-12-12,6-10-10-10,16-11-11] [--seeds 0,1,2]
                                   [--scip-time-limit 300] [--markdown]

Nets: random MLPs (``lrmilp.random_mlp``): N(0,1) weights, N(0, 0.25) biases (0.5 N(0,1)), a ReLU after
every layer, over [-1, 1]^n0.  For each net and seed: the default tree count, the tree at tol / 1000,
and SCIP (method "scip", same counting rule, stopped at --scip-time-limit).  "agree" says whether the
default count equals every complete reference.
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default="3-12-12-12,6-10-10-10,16-11-11")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--scip-time-limit", type=float, default=300.0)
    ap.add_argument("--jobs", type=int, default=1, help="tree workers (default 1)")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json", default=None, help="write the rows to this file")
    args = ap.parse_args()

    from lrmilp import random_mlp
    from lrmilp.counting import count_regions
    from lrmilp.domains import Box

    rows = []
    for name in args.nets.split(","):
        widths = [int(w) for w in name.split("-")]
        for seed in (int(s) for s in args.seeds.split(",")):
            net = random_mlp(widths, seed=seed, weight_std=1.0, bias_std=0.5)
            dom = Box(-1.0, 1.0, widths[0])
            tree = count_regions(net, dom, jobs=args.jobs)
            fine = count_regions(net, dom, jobs=args.jobs, tol=tree.tol / 1000)
            scip = count_regions(net, dom, method="scip", time_limit=args.scip_time_limit)
            refs = [fine.regions] + ([scip.regions] if scip.complete else [])
            row = {"net": name, "seed": seed, "tree": tree.regions, "tol": tree.tol, "thin_dropped": tree.thin_dropped,
                   "min_margin": tree.min_margin, "tree_s": round(tree.seconds, 1),
                   "tree_fine": fine.regions, "fine_thin": fine.thin_dropped,
                   "scip": scip.regions if scip.complete else f">={scip.regions}", "scip_s": round(scip.seconds, 1),
                   "agree": all(r == tree.regions for r in refs)}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    if args.markdown:
        print("| net | seed | tree (default tol) | thin_dropped | min_margin | tree at tol/1000 | SCIP | SCIP s | agree |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['net']} | {r['seed']} | {r['tree']:,} | {r['thin_dropped']} | {r['min_margin']:.2e} | "
                  f"{r['tree_fine']:,} | {r['scip'] if isinstance(r['scip'], str) else format(r['scip'], ',')} | "
                  f"{r['scip_s']} | {'yes' if r['agree'] else 'NO'} |")


if __name__ == "__main__":
    main()
