"""Random one-layer ReLU CNNs for the Xiong et al. study (`benchmarks/study-cnn.toml`).

Each net is one convolution (F filters, kh x kw, stride S, no padding) followed by a ReLU and
nothing else, with N(0, 1) weights and N(0, 0.25) biases (generic weights: almost surely in
"general position" as far as weight sharing allows).  Written to `benchmarks/models/cnn/` as
`cnn-{C}x{H}x{W}-f{F}k{kh}x{kw}s{S}-s{seed}.npz`; the file names list the architecture.

    python benchmarks/make_cnn_models.py            # deterministic: same files every time
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lrmilp import save_npz
from lrmilp.network import Conv2d, Network

# (input C, H, W), filters, (kh, kw), stride: 1-D filters (H = 1) and overlapping 2-D filters, plus
# non-overlapping 2-D filters (stride = kernel) as a control; all small enough to count in seconds
# over all of R^n0.
ARCHS = [
    ((1, 1, 4), 3, (1, 2), 1),
    ((1, 1, 5), 2, (1, 2), 1),
    ((1, 1, 6), 2, (1, 3), 1),
    ((1, 1, 6), 3, (1, 3), 1),
    ((2, 1, 5), 2, (1, 3), 1),
    ((1, 3, 3), 1, (2, 2), 1),
    ((1, 3, 3), 2, (2, 2), 1),
    ((1, 3, 3), 3, (2, 2), 1),
    ((1, 4, 4), 2, (3, 3), 1),
    ((1, 3, 4), 2, (2, 2), 1),
    ((2, 3, 3), 2, (2, 2), 1),
    ((1, 4, 4), 2, (2, 2), 2),
]
SEEDS = (0, 1, 2)


def random_cnn(input_shape, filters: int, kernel, stride: int, *, seed: int) -> Network:
    rng = np.random.default_rng(seed)
    c = input_shape[0]
    conv = Conv2d(rng.normal(0, 1, (filters, c, *kernel)), rng.normal(0, 0.5, filters), input_shape, stride=stride)
    return Network([conv], input_shape)


def name(input_shape, filters, kernel, stride, seed) -> str:
    c, h, w = input_shape
    return f"cnn-{c}x{h}x{w}-f{filters}k{kernel[0]}x{kernel[1]}s{stride}-s{seed}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "models" / "cnn"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for shape, f, k, s in ARCHS:
        for seed in SEEDS:
            save_npz(random_cnn(shape, f, k, s, seed=seed), out / f"{name(shape, f, k, s, seed)}.npz")
    print(f"{len(ARCHS) * len(SEEDS)} nets in {out}")


if __name__ == "__main__":
    main()
