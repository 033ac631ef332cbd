"""The committed models/ against models/index.json: files exist, load, match their architecture and
box, NPZ and ONNX agree, and (with scikit-learn) reproduce the recorded accuracies.

Regions of the 64-input digits nets are not counted here: they can have very many.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from lrmilp.loaders import load_network

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
INDEX = json.loads((MODELS / "index.json").read_text())["models"]
DIGITS = [m for m in INDEX if m["name"].startswith("digits-")]
ONNX_TOL = 1e-4  # the ONNX file holds float32 weights, the NPZ float64 copies of them


def test_index_lists_every_model_file_once():
    listed = [m[k] for m in INDEX for k in ("npz", "onnx") if m.get(k)]
    assert len(listed) == len(set(listed))
    on_disk = {p.name for p in MODELS.iterdir() if p.suffix in (".npz", ".onnx")}
    assert set(listed) == on_disk
    splits = sorted(m["widths"][0] for m in DIGITS if m["kind"] == "mlp" and "snapshot_of" not in m)
    assert splits == list(range(1, 22))  # n1 = 1..21, n2 = 22 - n1
    assert all(sum(m["widths"]) == 22 for m in DIGITS if m["kind"] == "mlp")


@pytest.mark.parametrize("entry", INDEX, ids=[m["name"] for m in INDEX])
def test_npz_matches_its_entry(entry):
    net = load_network(MODELS / entry["npz"])
    assert list(net.input_shape) == entry["input_shape"]
    assert net.widths == entry["widths"] and net.neurons == entry["neurons"]
    assert net.describe()["layers"] == entry["layers"]
    assert np.all(net.lo == entry["box"]["lo"]) and np.all(net.hi == entry["box"]["hi"])


@pytest.mark.parametrize("entry", DIGITS, ids=[m["name"] for m in DIGITS])
def test_onnx_computes_the_npz_network(entry):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    net = load_network(MODELS / entry["npz"])
    again = load_network(MODELS / entry["onnx"])
    assert again.widths == net.widths and np.allclose(again.lo, net.lo) and np.allclose(again.hi, net.hi)
    X = np.random.default_rng(0).uniform(0, 1, size=(50, net.input_dim))
    sess = ort.InferenceSession(str(MODELS / entry["onnx"]), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": X.reshape(-1, *net.input_shape).astype(np.float32)})[0]
    assert np.max(np.abs(got.reshape(len(X), -1) - net.forward(X))) < ONNX_TOL


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed")
def test_recorded_accuracies_are_reproduced():
    from lrmilp.datasets import accuracy, digits
    data = {split: digits(split=split) for split in ("train", "test")}
    assert len(data["test"][1]) == 360 and len(data["train"][1]) == 1437
    for entry in DIGITS:
        net = load_network(MODELS / entry["npz"])
        for split, (X, y) in data.items():
            assert accuracy(net.forward(X), y) == pytest.approx(entry[f"{split}_accuracy"], abs=1e-6), entry["name"]
    snaps = sorted((m["epoch"], m["test_accuracy"]) for m in DIGITS if "snapshot_of" in m)
    assert snaps[0][0] == 0 and snaps[0][1] < 0.3 < snaps[-1][1]  # training moved the snapshots off chance


REPRO_MODEL = "digits-mlp-64-11-11-10-epoch2"  # a snapshot: two epochs to retrain
WEIGHT_TOL = 1e-6  # deterministic training on the same torch version gives the same float32 weights


def test_training_reproduces_a_committed_model(monkeypatch):
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    training = json.loads((MODELS / "index.json").read_text())["training"]
    if torch.__version__ != training["torch"]:
        pytest.skip(f"models were trained with torch {training['torch']}, this is {torch.__version__}")
    spec = importlib.util.spec_from_file_location("train_digits", ROOT / "scripts" / "train_digits.py")
    td = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "train_digits", td)  # dataclasses look their module up there
    spec.loader.exec_module(td)
    entry = next(m for m in INDEX if m["name"] == REPRO_MODEL)
    job = next(s for s in td.specs() if s.name == entry["snapshot_of"])
    from lrmilp.datasets import digits
    from lrmilp.loaders.torch import network_from_module
    model = td.train(td.setup(), job, *digits(split="train"), seed=entry["seed"], epochs=entry["epoch"])
    fresh, committed = network_from_module(model), load_network(MODELS / entry["npz"])
    for a, b in zip(fresh.layers, committed.layers):
        assert np.max(np.abs(a.W - b.W)) < WEIGHT_TOL and np.max(np.abs(a.b - b.b)) < WEIGHT_TOL
