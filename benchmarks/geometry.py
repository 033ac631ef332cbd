#!/usr/bin/env python3
"""Geometry: `lrmilp plane` against regioncam on the same 2-input nets, and lines through a 784-input net.

    python benchmarks/geometry.py [--nets 2-32-32-32,2-64-64-64] [--repeat 3] [--lines 1000]

Plane: random MLPs (``lrmilp.random_mlp(widths, seed=0)``: N(0, 1) weights, N(0, 0.25) biases, a ReLU
after every layer) on the square [-1, 1]^2, given to lrmilp as the plane through p0 = (-0.5, -0.5),
p1 = (0.5, -0.5), p2 = (-0.5, 0.5) with the default window [-0.5, 1.5]^2 (the same square), and to
regioncam as ``Regioncam(size=1)`` followed by its ``linear``/``relu`` layers (float32 weights, as
regioncam requires).  Times are the best of --repeat runs in this process of what `lrmilp plane`
runs (``plane_partition``), and of regioncam's layers; ratio = lrmilp seconds / regioncam seconds.
Counts may differ by a few regions: lrmilp counts cells holding a ball of radius > 1e-6 in float64,
regioncam keeps every face it builds in float32.

Lines: the random 784-100-100-10 net of benchmarks/bounds.py (weights N(0, 1/fan_in), biases
N(0, 0.25), seed 0); --lines segments between uniform random points of [0, 1]^784, all in one
batched ``line_regions`` call, and the infinite lines through the same points.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]  # this checkout's lrmilp, and the sibling benchmarks
from bounds import make_net  # noqa: E402  (the 784-100-100-10 net of the bounds benchmark)

from lrmilp import random_mlp  # noqa: E402
from lrmilp.domains import plane  # noqa: E402
from lrmilp.geometry import line_regions, plane_partition  # noqa: E402


def best_of(fn, repeat: int):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def run_regioncam(net):
    import regioncam
    cam = regioncam.Regioncam(size=1.0)
    for layer in net.layers:
        cam.linear(np.ascontiguousarray(layer.W.T, dtype=np.float32), layer.b.astype(np.float32))
        if layer.relu:
            cam.relu()
    return cam.num_faces


def bench_planes(nets: list[str], repeat: int) -> None:
    try:
        import regioncam
        version = getattr(regioncam, "__version__", "?")
    except ImportError:
        regioncam, version = None, None
    print(f"plane: [-1,1]^2, best of {repeat}; regioncam {version or 'not installed (pip install regioncam)'}")
    print(f"{'net':<14} {'lrmilp regions':>14} {'lrmilp s':>9} {'regioncam faces':>15} {'regioncam s':>11} "
          f"{'lrmilp/regioncam':>16}")
    dom = plane([-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5])
    for name in nets:
        net = random_mlp([int(w) for w in name.split("-")], seed=0)
        t_l, part = best_of(lambda: plane_partition(net, dom), repeat)
        if regioncam is None:
            print(f"{name:<14} {part.regions:>14} {t_l:>9.3f} {'-':>15} {'-':>11} {'-':>16}")
            continue
        t_r, faces = best_of(lambda: run_regioncam(net), repeat)
        print(f"{name:<14} {part.regions:>14} {t_l:>9.3f} {faces:>15} {t_r:>11.3f} {t_l / t_r:>16.2f}", flush=True)


def bench_lines(n_lines: int) -> None:
    net = make_net(0)
    rng = np.random.default_rng(1)
    A, B = rng.uniform(0, 1, (n_lines, 784)), rng.uniform(0, 1, (n_lines, 784))
    print(f"\nlines: {n_lines} through the 784-100-100-10 net ({net.neurons} ReLU neurons), one batched call")
    for infinite in (False, True):
        t = time.perf_counter()
        res = line_regions(net, A, B, infinite=infinite)
        sec = time.perf_counter() - t
        kind = "infinite lines" if infinite else "segments in [0,1]^784"
        extra = "" if infinite else f", {np.mean(res.regions / res.lengths):.2f} regions per unit length"
        print(f"  {kind:<22} {sec:6.2f} s: mean {res.regions.mean():.1f} regions per line "
              f"(max {res.regions.max()}), {res.regions.mean() / net.neurons:.3f} per neuron{extra}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--nets", default="2-32-32-32,2-64-64-64", help="comma-separated 2-input widths")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing; the best is shown (default 3)")
    ap.add_argument("--lines", type=int, default=1000, help="lines through the 784-input net (default 1000)")
    args = ap.parse_args()
    nets = [n.strip() for n in args.nets.split(",") if n.strip()]
    if any(not n.startswith("2-") for n in nets):
        ap.error("plane nets must have 2 inputs (widths starting with 2-)")
    print(f"{os.cpu_count()} CPUs; single runs on a shared machine are noisy", flush=True)
    bench_planes(nets, max(1, args.repeat))
    if args.lines > 0:
        bench_lines(args.lines)


if __name__ == "__main__":
    main()
