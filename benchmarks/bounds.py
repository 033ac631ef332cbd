#!/usr/bin/env python3
"""Bound tightening on a random 784-100-100-10 net over [0, 1]^784: interval vs LP (vs MILP on request).

    python benchmarks/bounds.py [--jobs N] [--milp-seconds S]

Prints seconds and the unstable neurons each method leaves, per layer, from one run.
Weights: N(0, 1/fan_in) (He-like scale, so pre-activations stay O(1)), biases N(0, 0.25), seed 0.
"""
import argparse
import time

import numpy as np

from lrmilp.bounds import tighten
from lrmilp.domains import Box
from lrmilp.network import Dense, Network


def make_net(seed: int = 0) -> Network:
    rng = np.random.default_rng(seed)
    widths = [784, 100, 100, 10]
    layers = [Dense(rng.normal(0, 1 / np.sqrt(widths[k - 1]), (widths[k], widths[k - 1])),
                    rng.normal(0, 0.5, widths[k]), relu=k < len(widths) - 1) for k in range(1, len(widths))]
    return Network(layers, (784,))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--milp-seconds", type=float, default=0.0, help="also MILP bounds, this many seconds per neuron")
    args = ap.parse_args()
    net = make_net()
    dom = Box(0, 1, 784)
    rows = []
    for method in ["interval", "lp"] + (["milp"] if args.milp_seconds > 0 else []):
        t = time.perf_counter()
        b = tighten(net, dom, method=method, jobs=args.jobs, time_limit=args.milp_seconds or 10.0)
        widths = [float(np.mean(b.upper[k] - b.lower[k])) for k in b.relu_layers]
        rows.append((method, time.perf_counter() - t, b.unstable_per_layer(), b.unstable, b.lps, widths))
    print(f"random 784-100-100-10 over [0,1]^784, jobs={args.jobs}")
    print(f"{'method':<9} {'seconds':>8} {'unstable per layer':>20} {'unstable':>9} {'LPs':>6}  mean bound width per layer")
    for method, sec, per, total, lps, widths in rows:
        print(f"{method:<9} {sec:>8.2f} {str(per):>20} {total:>9} {lps:>6}  {[round(w, 3) for w in widths]}")
    base = rows[0]
    for method, sec, per, total, lps, widths in rows[1:]:
        shrink = [f"{w / wb:.2f}" for w, wb in zip(widths, base[5])]
        print(f"{method}: {base[3] - total} fewer unstable neurons than interval, widths x{shrink} of interval's")


if __name__ == "__main__":
    main()
