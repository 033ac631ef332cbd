#!/usr/bin/env python3
"""lrmilp's tree enumerator against the naive reference enumerator (benchmarks/naive.py).

    python benchmarks/vs_naive.py [--seconds 60] [--nets 64-11-11,models/digits-mlp-64-11-11-10.npz]
                                  [--engines naive,lrmilp] [--rounds 1] [--json out.json]

For each net, every engine gets the same time budget S, one after the other in this process: the
naive reference (``count_naive(..., time_limit=S)``) and lrmilp's ``count_regions`` (tree method,
jobs=1, ``time_limit=S``) with its default geometry (``lrmilp``) or a named one (``batch``,
``dual``, ``lp``, ...).  The order alternates from net to net (and round to round) so that slow drift
of a shared machine does not always hit the same engine; the ratio (an engine's regions/s over the
naive's) compares runs made minutes apart at most.

Nets: a name of widths such as 64-11-11 is ``random_mlp(widths, seed=0)`` with N(0, 1) weights,
N(0, 0.25) biases and a ReLU after every layer (as in benchmarks/count.py) over [-1, 1]^n0; a file
is loaded with ``lrmilp.load_network`` and counted over the lo/hi it stores.  Default nets:
64-11-11, models/digits-mlp-64-11-11-10.npz ([0, 1]^64), 784-11-11, 16-11-11.

Prints a markdown table: net, engine, regions (">=" when stopped by the limit: a lower bound),
complete, seconds, LPs, LPs/region, regions/s and the ratio.  A stopped run's regions/s depends
on which part of the tree it reached, so the ratio of two stopped runs is a speed ratio on the
first S seconds of the same depth-first order, not of the whole count.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from naive import DEFAULT_TOL, count_naive, random_net  # noqa: E402  (benchmarks/ is not a package)

DEFAULT_NETS = ["64-11-11", "models/digits-mlp-64-11-11-10.npz", "784-11-11", "16-11-11"]
ENGINES = ("naive", "lrmilp")
"""The default engines: ``naive``, and lrmilp with its default geometry; any geometry name is an engine too."""


def load(spec: str) -> tuple[Any, Any, Any]:
    """(net, lo, hi) of a net spec: widths (random, box [-1, 1]) or a model file (its stored box)."""
    if all(part.isdigit() for part in spec.split("-")):
        return random_net(spec, seed=0), -1.0, 1.0
    from lrmilp import load_network
    path = Path(spec)
    if not path.exists() and (HERE.parent / spec).exists():
        path = HERE.parent / spec  # default nets are given relative to the repository
    net = load_network(path)
    if net.lo is None or net.hi is None:
        raise SystemExit(f"{spec} stores no input box (lo/hi)")
    return net, net.lo, net.hi


def run_engine(engine: str, net: Any, lo: Any, hi: Any, seconds: float) -> dict[str, Any]:
    if engine == "naive":
        res = count_naive(net, lo, hi, time_limit=seconds)
        return {"regions": res.regions, "complete": res.complete, "seconds": res.seconds, "lps": res.lps}
    from lrmilp.counting import count_regions
    from lrmilp.domains import Box
    geometry = "auto" if engine == "lrmilp" else engine
    res = count_regions(net, Box(lo, hi, net.input_dim), time_limit=seconds, geometry=geometry, jobs=1)
    return {"regions": res.regions, "complete": res.complete, "seconds": res.seconds, "lps": res.lps,
            "bound_lps": res.extra.get("bound_lps"), "geometry": res.extra.get("geometry")}


def compare(nets: list[str], engines: tuple[str, ...], seconds: float, rounds: int = 1) -> list[dict[str, Any]]:
    """Every engine on every net for ``seconds`` each (order alternating), with ``ratio`` = regions/s over
    the naive's of the same net and round."""
    rows: list[dict[str, Any]] = []
    for i, spec in enumerate(nets):
        net, lo, hi = load(spec)
        for rnd in range(rounds):
            order = engines if (i + rnd) % 2 == 0 else engines[::-1]
            group: dict[str, dict[str, Any]] = {}
            for engine in order:
                t0 = time.perf_counter()
                group[engine] = {"net": spec, "engine": engine, "round": rnd,
                                 **run_engine(engine, net, lo, hi, seconds)}
                print(f"# {spec} {engine}: {group[engine]['regions']} regions in "
                      f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
            for engine in engines:
                if engine != "naive":
                    group[engine]["ratio"] = rate(group[engine]) / rate(group["naive"])
                rows.append(group[engine])
    return rows


def rate(row: dict[str, Any]) -> float:
    return row["regions"] / row["seconds"] if row["seconds"] > 0 else float("nan")


def table(rows: list[dict[str, Any]], seconds: float, command: str) -> str:
    out = ["| net | engine | regions | complete | seconds | LPs | LPs/region | regions/s | ratio |",
           "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        regions = f"{'' if r['complete'] else '>='}{r['regions']}"
        per_region = f"{r['lps'] / r['regions']:.2f}" if r["regions"] else "-"
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else ""
        out.append(f"| {r['net']} | {r['engine']} | {regions} | {'yes' if r['complete'] else 'no'} | "
                   f"{r['seconds']:.1f} | {r['lps']} | {per_region} | {rate(r):.0f} | {ratio} |")
    out += ["",
            f"`{command}`: time limit {seconds:g} s per engine and net, one process, jobs=1, on a shared "
            "machine (ratios from the same run, minutes apart at most).",
            "ratio = the engine's regions/s / naive regions/s.  '>=': stopped by the limit (a lower bound).  "
            "lrmilp's LPs are its search LPs (bound-tightening LPs not included).",
            f"Tolerances differ: the naive counts a region iff its margin LP optimum exceeds {DEFAULT_TOL:g} "
            "(absolute); lrmilp counts it iff it holds a ball of radius > tol (default 1e-9 times the box's "
            "half-width), so complete counts can differ by slivers."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="time limit per engine and net (default 60)")
    p.add_argument("--nets", default=",".join(DEFAULT_NETS), help="comma-separated widths or model files")
    p.add_argument("--engines", default=",".join(ENGINES),
                   help="comma-separated: naive, lrmilp (default geometry) or a geometry name (batch, dual, ...)")
    p.add_argument("--rounds", type=int, default=1, help="repeat each pair this many times (default 1)")
    p.add_argument("--json", metavar="FILE", help="also write the rows to FILE")
    args = p.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1:
        p.error("--seconds must be positive and --rounds at least 1")
    command = "python benchmarks/vs_naive.py " + " ".join(sys.argv[1:] if argv is None else argv)
    engines = tuple(e for e in args.engines.split(",") if e)
    if "naive" not in engines:
        p.error("--engines must include naive (the reference of the ratios)")
    rows = compare([s for s in args.nets.split(",") if s], engines, args.seconds, args.rounds)
    print(table(rows, args.seconds, command.strip()))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
