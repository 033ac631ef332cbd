#!/usr/bin/env python3
"""Two versions of lrmilp, one run: ``benchmarks/count.py`` (tree) and ``benchmarks/scaling.py`` on each,
interleaved, with counts compared and time ratios printed.

    python benchmarks/before_after.py --before af03463 --after HEAD [--rounds 2] [--json out.json]

Each version is checked out (``git worktree add --detach``) into a temporary directory and imported from
there (``PYTHONPATH``, run from the checkout's folder, so neither this folder nor an editable install
is imported instead).  The benchmark scripts are this checkout's, so both versions run the same
benchmark code through the public API.  Rounds alternate before/after so that drift of a shared,
noisy machine hits both alike; a net's time per version is the median over rounds, and the ratio is
after / before (below 1: the after version is faster).  Each version's numba cache is warmed by one
untimed count first, so compile time is measured by neither.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
COUNT_NETS = "2-20-20-20,4-12-12,3-12-12-12,6-10-10-10,16-11-11"
SCALING_NETS = "16-11-11,64-11-11"


def checkout(ref: str, into: Path) -> Path:
    """A detached worktree of ``ref`` under ``into``."""
    sha = subprocess.run(["git", "rev-parse", "--short", ref], cwd=REPO, check=True, capture_output=True,
                         text=True).stdout.strip()
    path = into / sha
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), sha], cwd=REPO, check=True)
    return path


def run(tree: Path, args: list[str]) -> str:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, cwd=tree)
    if out.returncode:
        raise SystemExit(f"{' '.join(args)} failed under {tree}:\n{out.stderr[-2000:]}")
    return out.stdout


def measure(tree: Path, scratch: Path, time_limit: float) -> dict[str, dict]:
    """count.py (tree method) and scaling.py on the version at ``tree``: {row name: {regions, seconds}}."""
    rows: dict[str, dict] = {}
    raw = scratch / "count.json"
    run(tree, [str(HERE / "count.py"), "--methods", "tree", "--nets", COUNT_NETS, "--json", str(raw),
               "--time-limit", "600"])
    for r in json.loads(raw.read_text())["results"]:
        rows[f"count {r['net']} tree x{r.get('jobs', 1)}"] = {"regions": r["regions"], "seconds": r["seconds"],
                                                             "complete": r.get("complete")}
    out = scratch / "scaling.json"
    run(tree, [str(HERE / "scaling.py"), "--nets", SCALING_NETS, "--workers", "1,2", "--time-limit",
               str(time_limit), "--json", str(out)])
    for r in json.loads(out.read_text()):
        rows[f"scaling {r['net']} x{r['workers']}"] = {"regions": r["regions"], "seconds": r["seconds"],
                                                      "complete": r["complete"]}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="git ref of the version before")
    ap.add_argument("--after", default="HEAD", help="git ref of the version after (default HEAD)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=30.0,
                    help="seconds per scaling count (64-11-11 is stopped there: compare regions per second)")
    ap.add_argument("--json", default=None, help="write every measurement here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="lrmilp-ba-") as tmp:
        tmp = Path(tmp)
        trees = {"before": checkout(args.before, tmp), "after": checkout(args.after, tmp)}
        try:
            warm = ("from lrmilp import random_mlp; from lrmilp.counting import count_regions; "
                    "from lrmilp.domains import Box; import lrmilp, sys; "
                    "count_regions(random_mlp([8, 6, 6], seed=0), Box(-1, 1, 8), jobs=1); print(lrmilp.__file__)")
            for name, tree in trees.items():  # warm the numba cache of each version (and check the import)
                where = run(tree, ["-c", warm]).strip()
                if not where.startswith(str(tree)):
                    raise SystemExit(f"the {name} version imported lrmilp from {where}, not {tree}")
            results: dict[str, list[dict]] = {"before": [], "after": []}
            for k in range(args.rounds):
                for name, tree in (trees.items() if k % 2 == 0 else reversed(trees.items())):
                    print(f"[before_after] round {k + 1}/{args.rounds}: {name}", file=sys.stderr)
                    scratch = tmp / f"{name}-{k}"
                    scratch.mkdir()
                    results[name].append(measure(tree, scratch, args.time_limit))
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)
    report(results, args.json)


def report(results: dict[str, list[dict]], path: str | None) -> None:
    names = list(results["before"][0])
    print("| run | regions before | regions after | s before (median) | s after (median) | after/before |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    worst = 0.0
    mismatched = []
    for name in names:
        b = [r[name] for r in results["before"]]
        a = [r[name] for r in results["after"]]
        complete = all(x["complete"] for x in a + b)
        if complete:
            tb, ta = statistics.median(x["seconds"] for x in b), statistics.median(x["seconds"] for x in a)
            ratio = ta / tb
            same = {x["regions"] for x in a + b}
            if len(same) != 1:
                mismatched.append(name)
            rb, ra = b[0]["regions"], a[0]["regions"]
        else:  # stopped at the time limit: compare rates (seconds per 1,000 regions)
            tb = statistics.median(1e3 * x["seconds"] / max(x["regions"], 1) for x in b)
            ta = statistics.median(1e3 * x["seconds"] / max(x["regions"], 1) for x in a)
            ratio = ta / tb
            rb, ra = (f"{x[0]['regions']:,}" + ("" if all(y["complete"] for y in x) else " (stopped)") for x in (b, a))
        worst = max(worst, ratio)
        unit = "" if complete else " per 1k regions"
        print(f"| {name} | {rb if isinstance(rb, str) else f'{rb:,}'} | {ra if isinstance(ra, str) else f'{ra:,}'} "
              f"| {tb:.2f}{unit} | {ta:.2f}{unit} | {ratio:.3f} |")
    print(f"\nslowest after/before: {worst:.3f}; counts " + ("differ on " + ", ".join(mismatched) if mismatched
                                                             else "identical on every complete run"))
    if path:
        Path(path).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
