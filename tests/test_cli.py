"""The command line: JSON keys of CONTRACT.md, and bad input -> exit 2 with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lrmilp import random_mlp, save_npz

CASES = Path(__file__).resolve().parents[2] / "shared" / "cases"
EXPECTED_INFO = {
    "cnn-1x1x4-k1x2-d3": (4, [9], 9),
    "mlp-2-8-8-out1": (2, [8, 8], 16),
    "mlp-3-6-out2": (3, [6], 6),
    "mlp-4-6-5-out3": (4, [6, 5], 11),
    "sawtooth-8": (1, [2] * 8, 16),
}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lrmilp.cli", *args], capture_output=True, text=True, timeout=300)


def ok_json(*args: str) -> dict:
    r = run(*args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def assert_bad(r: subprocess.CompletedProcess, needle: str) -> None:
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert needle.lower() in lines[0].lower(), lines[0]


@pytest.fixture
def net_file(tmp_path):
    path = tmp_path / "net.npz"
    save_npz(random_mlp([3, 6, 5, 2], seed=1, last_relu=False), path)
    return path


@pytest.mark.skipif(not CASES.exists(), reason="shared cases not beside the project")
@pytest.mark.parametrize("name", sorted(EXPECTED_INFO))
def test_info_on_shared_cases(name):
    out = ok_json("info", str(CASES / f"{name}.npz"))
    assert (out["input_dim"], out["widths"], out["neurons"]) == EXPECTED_INFO[name]


def test_tighten_keys(net_file):
    out = ok_json("tighten", str(net_file), "--box", "-1", "1")
    for key in ("lower", "upper", "stable_active", "stable_inactive"):
        assert key in out
    assert len(out["lower"]) == len(out["upper"]) == 11
    assert all(lo <= hi for lo, hi in zip(out["lower"], out["upper"]))


def test_count_keys_and_exact_int(net_file):
    out = ok_json("count", str(net_file), "--box", "-1", "1")
    assert isinstance(out["regions"], int) and out["complete"] is True
    for key in ("regions", "complete", "method", "seconds", "lps", "tol"):
        assert key in out


def test_count_box_file_and_regions_out(net_file, tmp_path):
    box = tmp_path / "box.json"
    box.write_text(json.dumps({"lo": [-1, -1, -1], "hi": [1, 1, 1]}))
    regions = tmp_path / "regions.jsonl"
    a = ok_json("count", str(net_file), "--box-file", str(box), "--regions-out", str(regions))
    b = ok_json("count", str(net_file), "--box", "-1", "1")
    assert a["regions"] == b["regions"] == len(regions.read_text().splitlines()) - 1


def test_export_milp(net_file, tmp_path):
    for ext in ("lp", "mps"):
        out = ok_json("export-milp", str(net_file), "--box", "-1", "1", "--out", str(tmp_path / f"m.{ext}"))
        assert (tmp_path / f"m.{ext}").stat().st_size > 0 and out["binaries"] > 0


def test_bad_inputs(net_file, tmp_path):
    assert_bad(run("info", str(tmp_path / "missing.npz")), "no such file")
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(net_file.read_bytes()[:200])
    assert_bad(run("info", str(trunc)), "cannot read")
    nan = tmp_path / "nan.npz"
    arrays = dict(np.load(net_file))
    arrays["W1"] = arrays["W1"].copy()
    arrays["W1"][0, 0] = np.nan
    np.savez(nan, **arrays)
    assert_bad(run("info", str(nan)), "nan")
    bad_shape = tmp_path / "shape.npz"
    arrays = dict(np.load(net_file))
    arrays["W1"] = np.ones((5, 4))
    np.savez(bad_shape, **arrays)
    assert_bad(run("info", str(bad_shape)), "columns")
    assert_bad(run("count", str(net_file)), "no domain")
    assert_bad(run("count", str(net_file), "--box", "1", "-1"), "lo > hi")
    assert_bad(run("count", str(net_file), "--box", "1", "1"), "empty")
    assert_bad(run("count", str(net_file), "--box", "nan", "1"), "nan")
    assert_bad(run("count", str(net_file), "--box", "0", "1", "--unbounded"), "only one")
    box = tmp_path / "box.json"
    box.write_text(json.dumps({"lo": [0, 0], "hi": [1, 1]}))
    assert_bad(run("count", str(net_file), "--box-file", str(box)), "entries")
    assert_bad(run("count", str(net_file), "--box", "0", "1", "--method", "nope"), "method")
    assert_bad(run("export-milp", str(net_file), "--unbounded", "--out", str(tmp_path / "m.lp")), "bounded")
    assert not (tmp_path / "m.lp").exists()
    assert_bad(run("bounds"), "arch")
    assert_bad(run("count", str(net_file), "--box", "-1", "1", "--regions-out", str(tmp_path / "no" / "r.jsonl")),
               "cannot write")
    assert_bad(run("export-milp", str(net_file), "--box", "-1", "1", "--out", str(tmp_path / "no" / "m.lp")),
               "no folder")
    assert not (tmp_path / "no").exists()


def test_unsupported_onnx_op(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 2, 2])])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), path)
    assert_bad(run("info", str(path)), "MaxPool")


@pytest.mark.parametrize("args,needle", [(("count",), " count --help'"),  # the prog name as invoked
                                         (("count", "x.npz", "--no-such-flag"), " count --help'"),
                                         (("no-such-command",), "lrmilp.cli --help'")])
def test_usage_errors_point_to_help(args, needle):
    assert_bad(run(*args), needle)


def test_info_text_is_readable(tmp_path):
    from lrmilp.network import Conv2d, Dense, Network
    rng = np.random.default_rng(0)
    conv = Conv2d(rng.normal(size=(2, 1, 3, 3)), rng.normal(size=2), in_shape=(1, 6, 6))
    net = Network([conv, Dense(rng.normal(size=(3, conv.out_size)), rng.normal(size=3), relu=False,
                               in_shape=conv.out_shape)], (1, 6, 6))
    path = tmp_path / "cnn.npz"
    save_npz(net, path)
    r = run("info", str(path))
    assert r.returncode == 0, r.stderr
    assert "{" not in r.stdout and "'" not in r.stdout
    assert "conv2d  2 filters 3x3 over 1 channel(s), stride 1, padding 0: 1x6x6 -> 2x4x4, ReLU" in r.stdout
    assert "dense   32 -> 3, linear" in r.stdout


def test_every_command_help_shows_examples():
    from click.testing import CliRunner

    from lrmilp.cli import main
    for name in main.commands:
        out = CliRunner().invoke(main, [name, "--help"]).output
        assert "Examples:" in out and f"lrmilp {name} " in out.split("Examples:")[1], name


def test_sample_warns_when_samples_fall_outside_the_domain(tmp_path):
    path = tmp_path / "net.npz"
    save_npz(random_mlp([4, 6], seed=0), path)
    r = run("sample", str(path), "--box", "-1", "1", "--samples", "500", "--distribution", "gaussian",
            "--sigma", "5")
    assert r.returncode == 0, r.stderr
    assert "fell outside the domain" in r.stderr and "fell outside" in r.stdout
    quiet = run("sample", str(path), "--box", "-1", "1", "--samples", "500")
    assert quiet.returncode == 0 and "outside" not in quiet.stderr + quiet.stdout
