"""ApproxMC2 estimates (lrmilp estimate) against exact counts, on the same nets in one run.

Nets: the random MLPs of ``benchmarks/count.py`` (same seed and weights) over [-1, 1]^n0, or model
files over the box they store.  For each net: the exact count (tree) and its time; then, for each
epsilon, ``--seeds`` estimates at confidence 1 - delta: their median, the interval of the first seed,
the rate at which the interval [estimate / (1 + eps), estimate (1 + eps)] holds the exact count
(the guarantee: at least 1 - delta in expectation over seeds), and the median time against the exact
count's.  An estimate that is exact (fewer than thresh regions) is marked "exact".

    python benchmarks/estimate.py                                  # small and medium random nets
    python benchmarks/estimate.py --nets 4-10-10 --epsilons 0.8,0.4 --seeds 10 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_naive import load  # noqa: E402  (random nets of benchmarks/count.py by widths, or model files)


def _ratio(seconds: float, exact_seconds: float) -> str:
    """The estimate's time against the exact count's: "5.4x" (slower) or "1/34" (faster)."""
    if exact_seconds <= 0 or seconds <= 0:
        return "-"
    r = seconds / exact_seconds
    return f"{r:.1f}x" if r >= 1 else f"1/{1 / r:.0f}"


def run(args: argparse.Namespace) -> list[dict]:
    from lrmilp.counting import count_regions
    from lrmilp.domains import Box
    from lrmilp.estimate import estimate

    rows = []
    for name in args.nets.split(","):
        net, lo, hi = load(name)
        dom = Box(lo, hi, net.input_dim)
        res = count_regions(net, dom)
        print(f"{name}: exact {res.regions:,} in {res.seconds:.2f}s", file=sys.stderr)
        for eps in (float(e) for e in args.epsilons.split(",")):
            runs = [estimate(net, dom, epsilon=eps, delta=args.delta, seed=s, jobs=args.jobs).to_dict()
                    for s in range(args.seeds)]
            inside = [r["interval"][0] <= res.regions <= r["interval"][1] for r in runs]
            row = {"net": name, "exact": res.regions, "exact_seconds": res.seconds, "epsilon": eps,
                   "delta": args.delta, "estimates": [r["estimate"] for r in runs],
                   "interval": runs[0]["interval"], "exact_path": runs[0]["exact"],
                   "in_interval": sum(inside) / len(inside), "seconds": [r["seconds"] for r in runs],
                   "thresh": runs[0]["thresh"], "iterations": runs[0]["iterations"]}
            rows.append(row)
            print(f"{name} eps {eps}: estimates {row['estimates']}, in interval {row['in_interval']:.2f}, "
                  f"median {statistics.median(row['seconds']):.1f}s", file=sys.stderr)
    return rows


def table(rows: list[dict], seeds: int) -> str:
    head = ["net", "exact", "eps", "thresh", "estimate (median)", "interval (seed 0)", f"in interval ({seeds} seeds)",
            "estimate s (median)", "exact s", "time/exact"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        est = statistics.median_high(r["estimates"])
        lo, hi = r["interval"]
        sec = statistics.median(r["seconds"])
        lines.append("| " + " | ".join([
            r["net"], f"{r['exact']:,}", f"{r['epsilon']:g}", f"{r['thresh']:.0f}",
            f"{est:,}" + (" (exact)" if r["exact_path"] else ""), f"[{lo:,.0f}, {hi:,.0f}]",
            f"{r['in_interval']:.2f}", f"{sec:.2f}", f"{r['exact_seconds']:.2f}",
            _ratio(sec, r["exact_seconds"])]) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default="3-8-8,4-8-8,3-12-12,5-8-8")
    ap.add_argument("--epsilons", default="0.8,0.4,0.2", help="comma-separated epsilons")
    ap.add_argument("--delta", type=float, default=0.2)
    ap.add_argument("--seeds", type=int, default=5, help="estimates per net and epsilon (seeds 0, 1, ...)")
    ap.add_argument("--jobs", type=int, default=1, help="processes per estimate")
    ap.add_argument("--save", default=None, help="write the rows as JSON here")
    args = ap.parse_args()
    rows = run(args)
    if args.save:
        Path(args.save).write_text(json.dumps(rows, indent=1))
    print(f"random nets of benchmarks/count.py over [-1,1]^n0; delta {args.delta} (confidence {1 - args.delta:g}), "
          f"seeds 0..{args.seeds - 1}")
    print(table(rows, args.seeds))


if __name__ == "__main__":
    main()
