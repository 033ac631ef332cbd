"""The committed models/ against models/index.json: files exist, load, match their architecture and
box, NPZ and ONNX agree, and (with scikit-learn) reproduce the recorded accuracies.

Regions of the digits nets (64 inputs, and the 784-input digits28-* nets on the upsampled images)
are not counted here: they can have very many.
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
DIGITS28 = [m for m in INDEX if m["name"].startswith("digits28-")]  # 784 inputs: 8x8 digits upsampled to 28x28
TRAINED = DIGITS + DIGITS28
ONNX_TOL = 1e-4  # the ONNX file holds float32 weights, the NPZ float64 copies of them


def test_index_lists_every_model_file_once():
    listed = [m[k] for m in INDEX for k in ("npz", "onnx") if m.get(k)]
    assert len(listed) == len(set(listed))
    on_disk = {p.name for p in MODELS.iterdir() if p.suffix in (".npz", ".onnx")}
    assert set(listed) == on_disk
    splits = sorted(m["widths"][0] for m in DIGITS if m["kind"] == "mlp" and "snapshot_of" not in m)
    assert splits == list(range(1, 22))  # n1 = 1..21, n2 = 22 - n1
    assert all(sum(m["widths"]) == 22 for m in DIGITS if m["kind"] == "mlp")
    assert sorted(m["widths"][0] for m in DIGITS28) == [4, 8, 11, 14, 18]
    assert all(m["kind"] == "mlp" and sum(m["widths"]) == 22 and m["input_shape"] == [784] for m in DIGITS28)
    from lrmilp.datasets import INPUTS
    assert all(m["inputs"] == INPUTS[8] for m in DIGITS) and all(m["inputs"] == INPUTS[28] for m in DIGITS28)


@pytest.mark.parametrize("entry", INDEX, ids=[m["name"] for m in INDEX])
def test_npz_matches_its_entry(entry):
    net = load_network(MODELS / entry["npz"])
    assert list(net.input_shape) == entry["input_shape"]
    assert net.widths == entry["widths"] and net.neurons == entry["neurons"]
    assert net.describe()["layers"] == entry["layers"]
    assert np.all(net.lo == entry["box"]["lo"]) and np.all(net.hi == entry["box"]["hi"])


@pytest.mark.parametrize("entry", TRAINED, ids=[m["name"] for m in TRAINED])
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
    data = {side * side: {split: digits(split=split, size=side) for split in ("train", "test")} for side in (8, 28)}
    assert len(data[64]["test"][1]) == 360 and len(data[64]["train"][1]) == 1437
    assert data[784]["test"][0].shape == (360, 784) and np.array_equal(data[784]["test"][1], data[64]["test"][1])
    for entry in TRAINED:
        net = load_network(MODELS / entry["npz"])
        for split, (X, y) in data[net.input_dim].items():
            assert accuracy(net.forward(X), y) == pytest.approx(entry[f"{split}_accuracy"], abs=1e-6), entry["name"]
    snaps = sorted((m["epoch"], m["test_accuracy"]) for m in DIGITS if "snapshot_of" in m)
    assert snaps[0][0] == 0 and snaps[0][1] < 0.3 < snaps[-1][1]  # training moved the snapshots off chance


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed")
def test_digits28_are_the_digits_upsampled():
    from scipy.ndimage import zoom

    from lrmilp.datasets import digits
    from lrmilp.errors import InputError
    (X8, y8), (X28, y28) = digits(split="test"), digits(split="test", size=28)
    assert X28.shape == (360, 784) and np.array_equal(y8, y28) and X28.min() >= 0 and X28.max() <= 1
    img8, img28 = X8.reshape(-1, 8, 8), X28.reshape(-1, 28, 28)
    assert np.array_equal(img28[:, ::27, ::27], img8[:, ::7, ::7])  # corners aligned
    assert np.array_equal(img28[17], np.clip(zoom(img8[17], 3.5, order=1), 0, 1))
    with pytest.raises(InputError):
        digits(size=16)


REPRO_MODELS = ["digits-mlp-64-11-11-10-epoch2",  # a snapshot: two epochs to retrain
                "digits28-mlp-784-8-14-10"]  # 60 epochs on the 784-input images, a few seconds
WEIGHT_TOL = 1e-6  # deterministic training on the same torch version gives the same float32 weights


@pytest.mark.parametrize("name", REPRO_MODELS)
def test_training_reproduces_a_committed_model(monkeypatch, name):
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    training = json.loads((MODELS / "index.json").read_text())["training"]
    if torch.__version__ != training["torch"]:
        pytest.skip(f"models were trained with torch {training['torch']}, this is {torch.__version__}")
    spec = importlib.util.spec_from_file_location("train_digits", ROOT / "scripts" / "train_digits.py")
    td = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "train_digits", td)  # dataclasses look their module up there
    spec.loader.exec_module(td)
    entry = next(m for m in INDEX if m["name"] == name)
    job = next(s for s in td.specs() if s.name == entry.get("snapshot_of", name))
    from lrmilp.datasets import digits
    from lrmilp.loaders.torch import network_from_module
    X, y = digits(split="train", size=job.size)
    model = td.train(td.setup(), job, X, y, seed=entry["seed"], epochs=entry["epoch"])
    fresh, committed = network_from_module(model), load_network(MODELS / entry["npz"])
    for a, b in zip(fresh.layers, committed.layers):
        assert np.max(np.abs(a.W - b.W)) < WEIGHT_TOL and np.max(np.abs(a.b - b.b)) < WEIGHT_TOL
