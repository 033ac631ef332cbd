"""Certified XOR lower bounds against exact counts and sampling, on the same nets in one run.

Nets: the random MLPs of ``benchmarks/count.py`` (same seed and weights) over [-1, 1]^n0, or model
files over the box they store (``models/digits-mlp-64-11-11-10.npz``: [0, 1]^64).  For each
net this prints the exact count (tree) and its time, the certified XOR bound with its confidence
and time (tree oracle by default; ``--methods tree,milp,scip`` adds the MILP oracles), and the
sampling estimate (distinct patterns of uniform samples) with its time; then bound / exact and
time / exact-time ratios.  Target (issue 5): bound >= exact / 8 at confidence 0.99 in at most a
tenth of the exact count's time.

    python benchmarks/lower_bound.py                       # 16-11-11 and 64-11-11
    python benchmarks/lower_bound.py --nets 16-11-11 --exact-jobs 2 --methods tree,milp
    python benchmarks/lower_bound.py --nets 6-10-10-10,models/digits-mlp-64-11-11-10.npz --samples 100000 \
        --budget 0.1                                        # issue 15's table, plus the bound in a tenth of the time
    python benchmarks/lower_bound.py --exact-from results.json   # reuse exact counts measured before

Exact counts take minutes (64-11-11: most of an hour on one core); ``--exact-from`` reads
``{"net": {"regions": N, "seconds": S}}`` so that a rerun need not repeat them (the table says so).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_naive import load  # noqa: E402  (random nets of benchmarks/count.py by widths, or model files)


def run(args: argparse.Namespace) -> list[dict]:
    from lrmilp.counting import count_regions
    from lrmilp.domains import Box
    from lrmilp.lowerbound import lower_bound
    from lrmilp.sampling import sample_patterns

    known = json.loads(Path(args.exact_from).read_text()) if args.exact_from else {}
    rows = []
    for name in args.nets.split(","):
        net, lo, hi = load(name)
        dom = Box(lo, hi, net.input_dim)
        row = {"net": name}
        if name in known:
            row.update(exact=known[name]["regions"], exact_seconds=known[name]["seconds"], exact_note="from file")
        else:
            res = count_regions(net, dom, jobs=args.exact_jobs, time_limit=args.exact_limit, progress=args.progress)
            row.update(exact=res.regions if res.complete else None, exact_seconds=res.seconds,
                       exact_note=f"jobs {args.exact_jobs}" + ("" if res.complete else f", stopped at {res.regions:,}"))
        print(f"{name}: exact {row['exact']} in {row['exact_seconds']:.1f}s ({row['exact_note']})", file=sys.stderr)
        for method in args.methods.split(","):
            lb = lower_bound(net, dom, method=method, confidence=args.confidence, trials=args.trials, seed=args.seed,
                             time_limit=args.time_limit, progress=args.progress)
            row[f"lb_{method}"] = lb.to_dict()
            print(f"{name}: {method} bound {lb.lower_bound:,} (level {lb.level}, confidence {lb.confidence}) "
                  f"in {lb.seconds:.1f}s, stopped: {lb.stopped}", file=sys.stderr)
        if args.budget:  # the tree bound with a time limit of a fraction of the exact count's time
            lb = lower_bound(net, dom, confidence=args.confidence, trials=args.trials, seed=args.seed,
                             time_limit=args.budget * row["exact_seconds"], progress=args.progress)
            row[f"lb_tree@{args.budget:g}"] = lb.to_dict()
        t0 = time.perf_counter()
        sp = sample_patterns(net, dom, samples=args.samples, seed=args.seed)
        row.update(sampled=sp.distinct_patterns, sample_seconds=time.perf_counter() - t0)
        rows.append(row)
    return rows


def table(rows: list[dict], methods: list[str], samples: int) -> str:
    head = ["net", "exact", "exact s"]
    for m in methods:
        head += [f"{m} bound", "conf", f"{m} s", "bound/exact", "time/exact"]
    head += [f"sampled ({samples:.0e})", "sample s", "sampled/exact"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ex, ext = r["exact"], r["exact_seconds"]
        cells = [r["net"], f"{ex:,}" if ex else "?", f"{ext:.1f}"]
        for m in methods:
            lb = r[f"lb_{m}"]
            cells += [f"{lb['lower_bound']:,}", f"{lb['confidence']:g}", f"{lb['seconds']:.1f}",
                      f"1/{ex / lb['lower_bound']:.1f}" if ex and lb["lower_bound"] else "-",
                      f"1/{ext / lb['seconds']:.0f}" if lb["seconds"] > 0 else "-"]
        cells += [f"{r['sampled']:,}", f"{r['sample_seconds']:.1f}", f"1/{ex / r['sampled']:.1f}" if ex else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default="16-11-11,64-11-11")
    ap.add_argument("--methods", default="tree", help="lower-bound oracles, comma-separated: tree, milp, scip")
    ap.add_argument("--confidence", type=float, default=0.99)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=600.0, help="seconds per lower-bound search")
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--exact-jobs", type=int, default=1)
    ap.add_argument("--exact-limit", type=float, default=None, help="seconds for each exact count (default none)")
    ap.add_argument("--exact-from", default=None, help="JSON of exact counts measured before")
    ap.add_argument("--save", default=None, help="write the rows as JSON here")
    ap.add_argument("--budget", type=float, default=None,
                    help="also run the tree bound with --time-limit this fraction of the exact count's seconds "
                         "(e.g. 0.1: its bound is the best it certifies in a tenth of the count's time)")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()
    rows = run(args)
    if args.save:
        Path(args.save).write_text(json.dumps(rows, indent=1))
    methods = args.methods.split(",") + ([f"tree@{args.budget:g}"] if args.budget else [])
    print(f"random nets of benchmarks/count.py over [-1,1]^n0, model files over their box; confidence {args.confidence}, "
          f"{args.trials} trials per level, seed {args.seed}")
    print(table(rows, methods, args.samples))
    for r in rows:
        for m in methods:
            lb = r[f"lb_{m}"]
            if r["exact"]:
                ok = lb["lower_bound"] >= r["exact"] / 8 and lb["seconds"] <= r["exact_seconds"] / 10
                print(f"{r['net']} {m}: bound >= exact/8 and time <= exact/10: {'yes' if ok else 'NO'}"
                      + ("" if lb["lower_bound"] <= r["exact"] else "  (BOUND ABOVE THE EXACT COUNT)"))


if __name__ == "__main__":
    main()
