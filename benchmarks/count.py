#!/usr/bin/env python3
"""Region counting: the one-tree enumerator against SCIP, Gurobi, MILP and relucent on the same nets.

    python benchmarks/count.py [--time-limit 600] [--nets 4-12-12,2-20-20-20] [--methods tree,scip,...]
                               [--jobs N] [--markdown] [--json out.json] [--gurobi-site DIR]

Nets: random MLPs n0-n1-...-nL (``lrmilp.random_mlp``, seed 0): N(0, 1) weights, N(0, 0.25) biases
(std 0.5), a ReLU after every layer, counted over the box [-1, 1]^n0.  Default widths:
2-20-20-20, 4-12-12, 3-12-12-12, 6-10-10-10, 16-11-11.

Methods:
  tree      lrmilp's one-tree enumerator (``count_regions(method="tree", jobs=--jobs)``); on 16-11-11
            it is also run with jobs=2 as a separate row.
  scip      SCIP's solution counter on the two-sided big-M model (``method="scip"``).
  gurobi    Gurobi's solution pool on the same model (``method="gurobi"``); "unavailable" without
            gurobipy or when its licence is too small for the model.
  milp      Serra et al.'s MILP loop with no-good cuts on HiGHS (``method="milp"``).
  relucent  ``relucent.Complex(model).bfs(cube_radius=1, cube_mode="intersect")`` on the same net as a
            float64 ``nn.Sequential``: neighbour search over the cells of the arrangement that meet
            the cube [-1, 1]^n0 (= the box), with relucent's final certification (verify=True).
            relucent solves its LPs with Gurobi, so it needs gurobipy too.

Every (net, method) runs in a fresh Python process, one at a time, with the time limit passed to
the method and a hard wall-clock limit (time limit + grace) after which the whole process group is
killed.  A peer stopped by either limit is reported as timed out: its regions are a lower bound
(or unknown when killed), and its speed ratio (peer seconds / tree seconds) gets a '>' prefix.
A complete peer whose count differs from the tree's is flagged in the "check" column.

LPs/region is the tree's LPs per region ("(2-D)": on a 2-input net the tree clips polygons exactly and
solves no LP); for milp the column gives the number of MILP solves.
Timings are single runs on whatever machine this is: on a shared 2-core box they are noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_NETS = ["2-20-20-20", "4-12-12", "3-12-12-12", "6-10-10-10", "16-11-11"]
METHODS = ["tree", "scip", "gurobi", "milp", "relucent"]
EXTRA_TREE_JOBS = {"16-11-11": 2}  # also report the tree with this many jobs on these nets
SEED, WEIGHT_STD, BIAS_STD = 0, 1.0, 0.5


def parse_widths(name: str) -> list[int]:
    try:
        widths = [int(w) for w in name.split("-")]
    except ValueError:
        raise SystemExit(f"bad net name '{name}': expected widths like 4-12-12") from None
    if len(widths) < 2 or min(widths) < 1:
        raise SystemExit(f"bad net name '{name}': expected at least two positive widths")
    return widths


# --- the worker: one (net, method) in this process, one JSON line on stdout ------------------------

def make_net(name: str):
    from lrmilp import random_mlp
    return random_mlp(parse_widths(name), seed=SEED, weight_std=WEIGHT_STD, bias_std=BIAS_STD)


def run_lrmilp(name: str, method: str, time_limit: float, jobs: int) -> dict:
    from lrmilp.counting import count_regions
    from lrmilp.domains import Box
    from lrmilp.errors import SolverUnavailable
    net = make_net(name)
    try:
        res = count_regions(net, Box(-1, 1, net.input_dim), method=method, time_limit=time_limit, jobs=jobs)
    except SolverUnavailable as e:
        return {"status": "unavailable", "reason": str(e)}
    d = res.to_dict()
    keep = ("stopped", "tol", "nodes", "unstable", "rejected_patterns", "pattern_lps", "scip_status",
            "gurobi_status", "pool_solutions", "lps_empty", "bound_lps", "geometry")
    return {"status": "ok", "regions": res.regions, "complete": res.complete, "seconds": res.seconds,
            "lps": res.lps, "extra": {k: d[k] for k in keep if k in d}}


class _TimeUp(KeyboardInterrupt):
    """Raised by SIGALRM inside relucent's search: a KeyboardInterrupt, so its pool is terminated."""


def run_relucent(name: str, time_limit: float, workers: int, cube_mode: str) -> dict:
    try:
        import relucent
        import gurobipy  # noqa: F401  (relucent solves every LP with Gurobi)
    except ImportError as e:
        return {"status": "unavailable", "reason": f"relucent needs {e.name}: {e}"}
    from lrmilp.loaders.torch import module_from_network
    net = make_net(name)
    model = module_from_network(net)  # float64 nn.Sequential, ReLU after every layer
    t0 = time.perf_counter()
    cx = relucent.Complex(model)

    fired = []

    def alarm(signum, frame):
        fired.append(True)
        raise _TimeUp()

    signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, max(time_limit, 1e-3))
    stopped, result, error = None, None, None
    try:
        result = cx.bfs(nworkers=workers, cube_radius=1.0, cube_mode=cube_mode, verbose=0)
    except KeyboardInterrupt:  # _TimeUp, or relucent re-raising it as a plain KeyboardInterrupt
        if not fired:
            raise
        stopped = "time_limit"
    except Exception as e:  # relucent's own errors (ambiguous geometry, incomplete dual graph, Gurobi)
        stopped, error = "error", f"{type(e).__name__}: {e}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - t0
    regions = len(cx)
    out = {"status": "ok" if error is None else "error", "regions": regions,
           "complete": stopped is None and bool(result.complete), "seconds": seconds, "lps": None,
           "extra": {"stopped": stopped, "cube_mode": cube_mode, "nworkers": workers,
                     "relucent": relucent.__version__}}
    if error:
        out["reason"] = error
    if result is not None:
        out["extra"].update({"verified": result.verified, "mean_facets": round(float(result.mean_facets), 3),
                             "bad_shi_computations": len(result.bad_shi_computations)})
    return out


def worker(args: argparse.Namespace) -> None:
    if args.method == "relucent":
        out = run_relucent(args.net, args.time_limit, args.relucent_workers, args.relucent_cube_mode)
    else:
        out = run_lrmilp(args.net, args.method, args.time_limit, args.jobs)
    print("RESULT " + json.dumps(out), flush=True)
    # Skip interpreter teardown: a half-stopped relucent pool or a solver thread must not hang us.
    os._exit(0)


# --- the harness ------------------------------------------------------------------------------------

def spawn(net: str, method: str, args: argparse.Namespace, jobs: int) -> dict:
    """Run one (net, method) in a fresh process group; kill the group at the hard limit."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--net", net, "--method", method,
           "--time-limit", str(args.time_limit), "--jobs", str(jobs),
           "--relucent-workers", str(args.relucent_workers), "--relucent-cube-mode", args.relucent_cube_mode]
    env = dict(os.environ)
    if args.gurobi_site:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (args.gurobi_site, env.get("PYTHONPATH")) if p)
    hard = args.time_limit + max(args.grace, 0.1 * args.time_limit)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        killed = False
        try:
            proc.wait(timeout=hard)
        except subprocess.TimeoutExpired:
            killed = True
        except KeyboardInterrupt:
            _killpg(proc)
            raise
        finally:
            _killpg(proc)  # also any orphaned grandchildren (solver or pool workers)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        lines = [ln for ln in out.read().splitlines() if ln.startswith("RESULT ")]
        tail = err.read()[-2000:]
    if killed:
        return {"status": "killed", "regions": None, "complete": False, "seconds": wall, "lps": None,
                "extra": {"stopped": f"killed after {hard:.0f} s"}}
    if not lines:
        return {"status": "error", "regions": None, "complete": False, "seconds": wall, "lps": None,
                "reason": f"exit {proc.returncode}: " + (tail.strip().splitlines() or ["no output"])[-1]}
    res = json.loads(lines[-1][len("RESULT "):])
    res["wall"] = wall
    return res


def _killpg(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def timed_out(r: dict) -> bool:
    return r["status"] == "killed" or (r["status"] == "ok" and not r["complete"])


def fmt_row(net: str, label: str, r: dict, tree: dict | None) -> dict:
    status = r["status"]
    row = {"net": net, "method": label, "regions": "-", "complete": "-", "seconds": "-", "lps_region": "-",
           "ratio": "-", "check": "", "note": ""}
    if status == "unavailable":
        row["complete"] = "unavailable"
        row["note"] = r.get("reason", "")
        return row
    if status == "error" and r.get("regions") is None:
        row["complete"] = "error"
        row["note"] = r.get("reason", "")
        return row
    if r.get("regions") is not None:
        row["regions"] = (">=" if timed_out(r) else "") + f"{r['regions']}"
    stopped = (r.get("extra") or {}).get("stopped")
    if status == "killed":
        row["complete"] = "no (killed)"
    elif r["complete"]:
        row["complete"] = "yes"
    else:
        row["complete"] = f"no ({stopped or 'incomplete'})"
    if status == "error":
        row["note"] = r.get("reason", "")
    row["seconds"] = f"{r['seconds']:.2f}"
    method = label.split()[0]
    if method == "tree" and r.get("lps") is not None and r.get("regions"):
        row["lps_region"] = f"{r['lps'] / r['regions']:.2f}"
        if (r.get("extra") or {}).get("geometry") == "polygon":  # d <= 2: exact polygon clipping, no LPs
            row["lps_region"] += " (2-D)"
    elif method == "milp" and r.get("lps") is not None:
        row["lps_region"] = f"{r['lps']} MILPs"
    if tree is not None and tree["status"] == "ok" and tree is not r:
        prefix = ">" if timed_out(r) else ""
        if tree["complete"]:
            row["ratio"] = f"{prefix}{r['seconds'] / max(tree['seconds'], 1e-9):.1f}"
        else:
            row["ratio"] = f"{prefix}{r['seconds'] / max(tree['seconds'], 1e-9):.1f}?"
        if r["complete"] and tree["complete"] and r.get("regions") is not None:
            row["check"] = "= tree" if r["regions"] == tree["regions"] else f"DIFFERS (tree {tree['regions']})"
    return row


COLS = [("net", "net"), ("method", "method"), ("regions", "regions"), ("complete", "complete"),
        ("seconds", "seconds"), ("lps_region", "LPs/region"), ("ratio", "peer/tree"), ("check", "check")]
WIDTHS = {"net": 11, "method": 13, "regions": 9, "complete": 18, "seconds": 9, "lps_region": 12, "ratio": 9,
          "check": 10}


def text_line(row: dict) -> str:
    s = "  ".join(f"{row[k]:<{WIDTHS[k]}}" if k in ("net", "method", "complete", "check")
                  else f"{row[k]:>{WIDTHS[k]}}" for k, _ in COLS)
    return s + (f"  {row['note']}" if row.get("note") else "")


def text_header() -> str:
    return "  ".join(f"{h:<{WIDTHS[k]}}" if k in ("net", "method", "complete", "check") else f"{h:>{WIDTHS[k]}}"
                     for k, h in COLS)


def markdown(rows: list[dict]) -> str:
    out = ["| " + " | ".join(h for _, h in COLS) + " |", "|" + "|".join("---" for _ in COLS) + "|"]
    for row in rows:
        cells = [str(row[k]).replace("|", "/") for k, _ in COLS]
        if row.get("note"):
            cells[-1] = (cells[-1] + " " if cells[-1] else "") + row["note"].replace("|", "/")[:120]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def versions(extra_path: str | None) -> str:
    """Installed versions of the packages involved, as the runs see them (with --gurobi-site)."""
    from importlib.metadata import distributions
    path = ([extra_path] if extra_path else []) + sys.path
    parts = []
    for pkg in ("lrmilp", "highspy", "PySCIPOpt", "gurobipy", "relucent", "torch"):
        dist = next(iter(distributions(name=pkg, path=path)), None)
        parts.append(f"{pkg} {dist.version if dist else '-'}")
    return ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--time-limit", type=float, default=600.0, help="seconds per (net, method); default 600")
    ap.add_argument("--nets", default=",".join(DEFAULT_NETS), help="comma-separated widths, e.g. 4-12-12,2-20-20-20")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes for the tree (default 1)")
    ap.add_argument("--markdown", action="store_true", help="also print the summary as a markdown table")
    ap.add_argument("--json", help="write every raw result to this JSON file")
    ap.add_argument("--grace", type=float, default=30.0,
                    help="hard kill at time limit + max(grace, 10%% of it) seconds (default 30)")
    ap.add_argument("--gurobi-site", help="a directory holding gurobipy, prepended to PYTHONPATH of the runs")
    ap.add_argument("--relucent-workers", type=int, default=1, help="relucent's nworkers (default 1)")
    ap.add_argument("--relucent-cube-mode", default="intersect", choices=["intersect", "clipped"],
                    help="how relucent restricts its search to [-1,1]^n0 (default intersect)")
    # worker mode (internal)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--net", help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    if args.time_limit <= 0:
        ap.error("--time-limit must be positive")
    nets = [n.strip() for n in args.nets.split(",") if n.strip()]
    for n in nets:
        parse_widths(n)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        ap.error(f"unknown method(s) {bad}; choose from {METHODS}")
    if "tree" not in methods:
        methods.insert(0, "tree")  # the ratios need it
    methods = ["tree"] + [m for m in methods if m != "tree"]

    print(f"random nets (seed {SEED}, weights N(0,{WEIGHT_STD ** 2:g}), biases N(0,{BIAS_STD ** 2:g}), ReLU after "
          f"every layer) over the box [-1,1]^n0; time limit {args.time_limit:g} s, hard kill at "
          f"+{max(args.grace, 0.1 * args.time_limit):.0f} s; tree jobs={args.jobs}; relucent nworkers="
          f"{args.relucent_workers}, cube_mode={args.relucent_cube_mode}", flush=True)
    print(f"{versions(args.gurobi_site)}; {os.cpu_count()} CPUs (timings from one run, noisy on a shared machine)", flush=True)
    print(text_header(), flush=True)
    rows: list[dict] = []
    raw: list[dict] = []
    try:
        for net in nets:
            tree = None
            plan = [(m, args.jobs) for m in methods]
            extra_jobs = EXTRA_TREE_JOBS.get(net)
            if extra_jobs and extra_jobs != args.jobs:
                plan.insert(1, ("tree", extra_jobs))
            for method, jobs in plan:
                r = spawn(net, method, args, jobs)
                label = method if method != "tree" or jobs == 1 else f"tree -j{jobs}"
                if method == "tree" and tree is None:
                    tree = r
                row = fmt_row(net, label, r, tree)
                rows.append(row)
                raw.append({"net": net, "method": method, "jobs": jobs, **r})
                print(text_line(row), flush=True)
    except KeyboardInterrupt:
        print("interrupted: summary of the rows so far", flush=True)
    print(flush=True)
    print("summary (ratio = peer seconds / tree seconds; '>' = the peer hit the time limit, so its count is a "
          "lower bound and the ratio a lower bound)", flush=True)
    print(text_header())
    for row in rows:
        print(text_line(row))
    if args.markdown:
        print()
        print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"time_limit": args.time_limit, "jobs": args.jobs,
                                               "results": raw}, indent=1))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
