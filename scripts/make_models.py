#!/usr/bin/env python3
"""Create the generated models shipped in models/ (seeded, reproducible).

Until trained digits models ship (step 6), models/ holds random nets with the weights of the
benchmarks: N(0, 1) weights, N(0, 0.25) biases, every layer ReLU, box [-1, 1]^n0.
"""
from pathlib import Path

import numpy as np

from lrmilp import random_mlp, save_npz

OUT = Path(__file__).resolve().parent.parent / "models"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for widths, seed in [((4, 12, 12), 0), ((2, 20, 20, 20), 0)]:
        net = random_mlp(list(widths), seed=seed, weight_std=1.0, bias_std=0.5)
        net.lo, net.hi = np.full(widths[0], -1.0), np.full(widths[0], 1.0)
        name = "random-" + "-".join(map(str, widths)) + f"-s{seed}.npz"
        save_npz(net, OUT / name)
        print("wrote", OUT / name)


if __name__ == "__main__":
    main()
