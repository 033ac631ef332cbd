#!/usr/bin/env python3
"""Recreate models/ from nothing (seeded, reproducible) and write models/index.json.

    python scripts/make_models.py                # random nets + trained digits models (needs torch, scikit-learn)
    python scripts/make_models.py --random-only  # random nets only; the digits entries of the index are kept
    python scripts/make_models.py --digits28-only  # random nets + the 784-input models; other entries kept

* random nets (the weights of the counting benchmarks): N(0, 1) weights, N(0, 0.25) biases, every
  layer ReLU, box [-1, 1]^n0;
* digits models, trained by scripts/train_digits.py (see its docstring): MLPs 64-n1-n2-10 with
  n1 + n2 = 22, small CNNs, training snapshots of 64-11-11-10, and MLPs 784-n1-n2-10 (n1 + n2 = 22)
  on the digits upsampled to 28x28 (digits28-*).

models/index.json lists every model file: architecture (input shape, ReLU widths, layers), box,
train/test accuracy (digits models; measured on the written NPZ), seed and epochs, and how the
data were split.  tests/test_models.py checks the index against the files.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lrmilp import random_mlp, save_npz  # noqa: E402

OUT = ROOT / "models"
INDEX = OUT / "index.json"
RANDOM_NETS = [((4, 12, 12), 0), ((2, 20, 20, 20), 0)]


def make_random() -> list[dict]:
    entries = []
    for widths, seed in RANDOM_NETS:
        net = random_mlp(list(widths), seed=seed, weight_std=1.0, bias_std=0.5)
        net.lo, net.hi = np.full(widths[0], -1.0), np.full(widths[0], 1.0)
        name = "random-" + "-".join(map(str, widths)) + f"-s{seed}"
        save_npz(net, OUT / f"{name}.npz")
        entries.append({"name": name, "npz": f"{name}.npz", "onnx": None, "kind": "random-mlp",
                        "input_shape": list(net.input_shape), "widths": net.widths, "neurons": net.neurons,
                        "layers": net.describe()["layers"], "box": {"lo": -1.0, "hi": 1.0},
                        "train_accuracy": None, "test_accuracy": None, "seed": seed,
                        "weights": "N(0, 1) weights, N(0, 0.25) biases, ReLU after every layer"})
        print("wrote", OUT / f"{name}.npz")
    return entries


def write_index(entries: list[dict], training: dict) -> None:
    index = {"format": 1, "training": training, "models": entries}
    tmp = INDEX.with_name(INDEX.name + ".tmp")
    tmp.write_text(json.dumps(index, indent=1) + "\n")
    tmp.replace(INDEX)
    print(f"wrote {INDEX} ({len(entries)} models)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--random-only", action="store_true", help="Do not train; keep the index's digits entries.")
    only.add_argument("--digits28-only", action="store_true",
                      help="Train only the 784-input models (digits28-*); keep the index's other digits entries.")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    entries = make_random()
    old = json.loads(INDEX.read_text()) if INDEX.exists() else {"models": [], "training": {}}
    if args.random_only:
        write_index(entries + [e for e in old["models"] if e["kind"] != "random-mlp"], old["training"])
        return
    import train_digits
    t0 = time.perf_counter()
    digits = train_digits.train_all(sizes=(28,) if args.digits28_only else train_digits.SIZES)
    print(f"trained {len(digits)} digits models in {time.perf_counter() - t0:.1f}s")
    import sklearn
    import torch
    training = dict(train_digits.TRAINING, torch=torch.__version__, sklearn=sklearn.__version__)
    if args.digits28_only:
        differ = sorted(k for k in training if k != "data" and old["training"].get(k) != training[k])
        if differ:  # the kept models would be listed under settings they were not trained with
            raise SystemExit(f"the index's other digits models were trained with other {', '.join(differ)} "
                             f"({old['training']}); rerun without --digits28-only")
        kept = [e for e in old["models"] if e["kind"] != "random-mlp" and not e["name"].startswith("digits28-")]
        digits = kept + digits
    write_index(entries + digits, training)


if __name__ == "__main__":
    main()
