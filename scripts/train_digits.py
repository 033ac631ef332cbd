#!/usr/bin/env python3
"""Train the digits models of models/ (needs torch and scikit-learn: pip install torch scikit-learn).

    python scripts/train_digits.py            # every digits model, a few minutes on one core
    python scripts/train_digits.py --digits28-only   # only the 784-input models (digits28-*)
    python scripts/make_models.py             # the same, plus the random nets and models/index.json

Data: scikit-learn's 8x8 digits (shipped with the package), inputs pixel / 16 in [0, 1]^64, the
fixed split of :mod:`lrmilp.datasets` (every fifth sample is a test sample).  Models:

* MLPs 64-n1-n2-10 with n1 + n2 = 22 for n1 = 1..21 (the widths of Serra et al.'s MNIST study);
* one-conv-layer CNNs on the 1x8x8 image (2x2 or 3x3 kernels, 2-4 filters) and one with two conv
  layers, each followed by a dense output layer;
* snapshots of the 64-11-11-10 MLP after epochs 0 (the initial weights), 1, 2, 5, 10 and 20;
* MLPs 784-n1-n2-10 with n1 + n2 = 22 for n1 in 4, 8, 11, 14, 18 (``digits28-*``: MNIST's input size)
  on the same digits upsampled to 28x28, ``lrmilp.datasets.digits(size=28)``: each 8x8 image of
  pixel / 16 resized by ``scipy.ndimage.zoom(img, 28 / 8, order=1)`` (bilinear), clipped to [0, 1];
  box [0, 1]^784.  Trained exactly like the 64-input MLPs (same optimiser, epochs, seeds, retries).

A training run that leaves half or more of a hidden layer's ReLUs dead (never active on the training
set: 64-21-1-10 easily loses its only second-layer unit, and then is a constant) is repeated with
the next seed, up to ``SEEDS`` seeds; the index records the seed used and the dead units left.

Every model is a ReLU net with a linear output layer, written as NPZ (float64, with lo = 0, hi = 1:
the input box) and ONNX (float32, the trained weights exactly).  Training is deterministic: fixed
seeds, one thread, ``torch.use_deterministic_algorithms(True)``, full passes in a seeded order.
Each written NPZ is checked against the torch model (outputs agree within ``OUTPUT_TOL``).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the lrmilp of this checkout, wherever the script is started from

from lrmilp.datasets import INPUTS, SIZES, SPLIT_RULE, accuracy, digits  # noqa: E402
from lrmilp.loaders import save_npz  # noqa: E402

OUT = ROOT / "models"
SEED = 0
SEEDS = 5  # seeds tried, SEED, SEED + 1, ..., until no hidden layer is half dead
EPOCHS = 60
BATCH = 32
LR = 0.003  # Adam
HIDDEN_TOTAL = 22  # n1 + n2, as in Serra et al. (2018)
SNAPSHOT_SPLIT = (11, 11)
SNAPSHOT_EPOCHS = (0, 1, 2, 5, 10, 20)
SPLITS28 = (4, 8, 11, 14, 18)  # n1 of the 784-input MLPs (n2 = 22 - n1)
OUTPUT_TOL = 1e-4  # float32 torch vs float64 lrmilp outputs of the same weights
# (filters, kernel, stride) per conv layer
CNNS = [[(2, 2, 2)], [(2, 3, 1)], [(4, 2, 2)], [(4, 3, 2)], [(2, 3, 1), (2, 3, 1)]]
TRAINING = {"optimizer": "Adam", "lr": LR, "batch": BATCH, "loss": "cross-entropy", "seed": SEED,
            "epochs": EPOCHS, "split": SPLIT_RULE,
            "data": "scikit-learn digits, pixel / 16 (digits28-*: upsampled to 28x28, see each entry's inputs)"}


@dataclass
class Spec:
    """One model to train: its file stem and how to build its torch module."""

    name: str
    kind: str  # "mlp" or "cnn"
    size: int = 8  # image side: 8 (digits, 64 inputs) or 28 (digits upsampled, 784 inputs)
    hidden: tuple[int, ...] = ()  # MLP hidden widths
    convs: list[tuple[int, int, int]] = field(default_factory=list)  # CNN (filters, kernel, stride)
    snapshots: tuple[int, ...] = ()


def mlp_name(hidden, size: int = 8) -> str:
    prefix = "digits-mlp-" if size == 8 else f"digits{size}-mlp-"
    return prefix + "-".join(map(str, (size * size, *hidden, 10)))


def cnn_name(convs) -> str:
    return "digits-cnn-" + "-".join(f"f{f}k{k}s{s}" for f, k, s in convs) + "-10"


def specs() -> list[Spec]:
    out = [Spec(mlp_name((n1, HIDDEN_TOTAL - n1)), "mlp", hidden=(n1, HIDDEN_TOTAL - n1),
                snapshots=SNAPSHOT_EPOCHS if (n1, HIDDEN_TOTAL - n1) == SNAPSHOT_SPLIT else ())
           for n1 in range(1, HIDDEN_TOTAL)]
    out += [Spec(cnn_name(convs), "cnn", convs=convs) for convs in CNNS]
    out += [Spec(mlp_name((n1, HIDDEN_TOTAL - n1), 28), "mlp", size=28, hidden=(n1, HIDDEN_TOTAL - n1))
            for n1 in SPLITS28]
    return out


def build(torch, spec: Spec, seed: int):
    """The untrained module; parameters drawn from torch's generator, seeded just before."""
    nn = torch.nn
    torch.manual_seed(seed)
    if spec.kind == "mlp":
        widths = (spec.size * spec.size, *spec.hidden, 10)
        mods = []
        for k in range(1, len(widths)):
            mods.append(nn.Linear(widths[k - 1], widths[k]))
            if k < len(widths) - 1:
                mods.append(nn.ReLU())
        seq = nn.Sequential(*mods)
        seq.input_shape = (widths[0],)
        return seq
    mods, shape = [], (1, spec.size, spec.size)
    for f, k, s in spec.convs:
        mods += [nn.Conv2d(shape[0], f, k, stride=s), nn.ReLU()]
        side = (shape[1] - k) // s + 1
        shape = (f, side, side)
    mods += [nn.Flatten(), nn.Linear(int(np.prod(shape)), 10)]
    seq = nn.Sequential(*mods)
    seq.input_shape = (1, 8, 8)
    return seq


def train(torch, spec: Spec, X: np.ndarray, y: np.ndarray, *, seed: int = SEED, epochs: int = EPOCHS,
          on_epoch=None):
    """Train ``spec`` for ``epochs`` epochs; ``on_epoch(epoch, module)`` is called after epochs 0..epochs.
    The model after epoch E does not depend on ``epochs`` (so a snapshot is reproduced by epochs=E)."""
    model = build(torch, spec, seed)
    Xt = torch.tensor(X, dtype=torch.float32).reshape(len(X), *model.input_shape)
    yt = torch.tensor(y, dtype=torch.int64)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(seed)
    if on_epoch:
        on_epoch(0, model)
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(len(Xt), generator=order)
        for i in range(0, len(perm), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            loss_fn(model(Xt[idx]), yt[idx]).backward()
            opt.step()
        model.eval()
        if on_epoch:
            on_epoch(epoch, model)
    return model


def dead_units(model, X: np.ndarray) -> list[int]:
    """Per hidden layer, the ReLUs that are never active on the rows of X."""
    from lrmilp.loaders.torch import network_from_module
    net = network_from_module(model)
    dead = ~net.patterns(X).any(axis=0)
    offsets = np.cumsum([0, *net.widths])
    return [int(dead[a:b].sum()) for a, b in zip(offsets[:-1], offsets[1:])]


def half_dead(model, X: np.ndarray) -> bool:
    from lrmilp.loaders.torch import network_from_module
    widths = network_from_module(model).widths
    return any(2 * d >= w for d, w in zip(dead_units(model, X), widths))


def train_alive(torch, spec: Spec, X: np.ndarray, y: np.ndarray, *, on_epoch=None):
    """(model, seed): the first of SEEDS seeds whose trained model has no half-dead hidden layer, else the
    seed with the best training accuracy.  ``on_epoch`` sees every attempt; the kept one comes last."""
    best = None
    for seed in range(SEED, SEED + SEEDS):
        model = train(torch, spec, X, y, seed=seed, on_epoch=on_epoch)
        if not half_dead(model, X):
            return model, seed
        with torch.no_grad():
            acc = accuracy(model(torch.tensor(X, dtype=torch.float32).reshape(len(X), *model.input_shape)).numpy(), y)
        best = max(best or (acc, seed), (acc, seed))
    if best[1] != seed:
        model = train(torch, spec, X, y, seed=best[1], on_epoch=on_epoch)
    return model, best[1]


def export(torch, model, stem: str, data: dict) -> dict:
    """Write ``stem``.npz and .onnx, check them against ``model``, return the index entry."""
    from lrmilp.loaders.onnx import save_onnx
    from lrmilp.loaders.torch import network_from_module
    net = network_from_module(model)
    net.lo, net.hi = np.zeros(net.input_dim), np.ones(net.input_dim)
    entry = {"name": stem, "npz": f"{stem}.npz", "onnx": f"{stem}.onnx", "input_shape": list(net.input_shape),
             "widths": net.widths, "neurons": net.neurons, "layers": net.describe()["layers"],
             "box": {"lo": 0.0, "hi": 1.0}}
    with torch.no_grad():
        for split, (X, y) in data.items():
            want = model(torch.tensor(X, dtype=torch.float32).reshape(len(X), *model.input_shape)).numpy()
            got = net.forward(X)
            err = float(np.max(np.abs(got - want)))
            if err > OUTPUT_TOL:
                raise SystemExit(f"{stem}: lrmilp and torch outputs differ by {err:.3g} on the {split} split")
            entry[f"{split}_accuracy"] = round(accuracy(got, y), 6)
    save_npz(net, OUT / entry["npz"])
    save_onnx(net, OUT / entry["onnx"])
    return entry


def setup():
    import torch
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    return torch


def train_all(*, only: set[str] | None = None, sizes=SIZES, log=print) -> list[dict]:
    """Train and write every digits model of the image sides ``sizes`` (8: the 64-input models, 28: the
    784-input ones), or only those named in ``only``; the index entries, in order."""
    torch = setup()
    datasets = {size: {"train": digits(split="train", size=size), "test": digits(split="test", size=size)}
                for size in sizes}
    OUT.mkdir(exist_ok=True)
    entries = []
    for spec in specs():
        if (only is not None and spec.name not in only) or spec.size not in sizes:
            continue
        data = datasets[spec.size]
        t0 = time.perf_counter()
        snaps: dict[int, dict] = {}  # epoch -> entry; a later attempt (another seed) overwrites

        def on_epoch(epoch, model, spec=spec, snaps=snaps, data=data):
            if epoch in spec.snapshots:
                e = export(torch, model, f"{spec.name}-epoch{epoch}", data)
                e.update(kind=spec.kind, inputs=INPUTS[spec.size], snapshot_of=spec.name, epoch=epoch)
                snaps[epoch] = e

        model, seed = train_alive(torch, spec, *data["train"], on_epoch=on_epoch)
        entry = export(torch, model, spec.name, data)
        entry.update(kind=spec.kind, inputs=INPUTS[spec.size], epoch=EPOCHS, seed=seed,
                     dead_units=dead_units(model, data["train"][0]))
        for e in snaps.values():
            e["seed"] = seed
        entries += [entry, *snaps.values()]
        log(f"{spec.name}: test accuracy {entry['test_accuracy']:.4f} ({time.perf_counter() - t0:.1f}s"
            + (f", {len(snaps)} snapshots" if snaps else "") + ")")
    return entries


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--digits28-only", action="store_true", help="Train only the 784-input models (digits28-*).")
    t = time.perf_counter()
    train_all(sizes=(28,) if ap.parse_args().digits28_only else SIZES)
    print(f"trained in {time.perf_counter() - t:.1f}s; run scripts/make_models.py to rebuild models/index.json")
