"""Network files: NPZ, ONNX and PyTorch round trips, BatchNorm / average-pooling folding, bad input;
users' own models (TorchScript, torch.export, custom modules, --input-shape, torch.onnx.export).

Tests needing onnx, onnxruntime, onnxscript or torch skip when the package is missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from lrmilp.errors import InputError
from lrmilp.loaders import load_network, load_npz, save_npz
from lrmilp.loaders.fold import compose, fold_linear
from lrmilp.network import Conv2d, Dense, Network, random_mlp


def _cnn(seed: int, *, conv_output: bool = False) -> Network:
    """Two convs (stride 2 with padding 1, then stride 1 with padding 1) and a dense head, or a conv
    as the linear output layer."""
    rng = np.random.default_rng(seed)
    c1 = Conv2d(rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3), (2, 7, 7), stride=2, padding=1)
    c2 = Conv2d(rng.normal(size=(4, 3, 2, 2)), rng.normal(size=4), c1.out_shape, stride=1, padding=1,
                relu=not conv_output)
    if conv_output:
        return Network([c1, c2], (2, 7, 7))
    head = Dense(rng.normal(size=(3, c2.out_size)), rng.normal(size=3), relu=False, in_shape=c2.out_shape)
    return Network([c1, c2, head], (2, 7, 7))


def _mlp_on_image(seed: int) -> Network:
    """A dense first layer reading a (C, H, W) input, flattened."""
    rng = np.random.default_rng(seed)
    return Network([Dense(rng.normal(size=(5, 18)), rng.normal(size=5), in_shape=(2, 3, 3)),
                    Dense(rng.normal(size=(2, 5)), rng.normal(size=2), relu=False)], (2, 3, 3))


NETS = {
    "mlp": lambda: random_mlp([5, 8, 6, 3], seed=1, last_relu=False),
    "mlp_relu_out": lambda: random_mlp([4, 6, 2], seed=2),
    "cnn": lambda: _cnn(3),
    "cnn_conv_out": lambda: _cnn(4, conv_output=True),
    "mlp_on_image": lambda: _mlp_on_image(5),
}


@pytest.fixture(params=sorted(NETS))
def net(request: pytest.FixtureRequest) -> Network:
    return NETS[request.param]()


def _inputs(net: Network, n: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *net.input_shape))


def _outputs(net: Network, X: np.ndarray) -> np.ndarray:
    """What the exported model computes: Network.forward stops before a ReLU on the last layer."""
    y = net.forward(X)
    return np.maximum(y, 0.0) if net.layers[-1].relu else y


def _same_architecture(a: Network, b: Network) -> None:
    assert a.input_shape == b.input_shape
    assert [type(x) for x in a.layers] == [type(x) for x in b.layers]
    assert [x.relu for x in a.layers] == [x.relu for x in b.layers]


def _close(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    """Agreement relative to the size of the outputs (float32 errors do not shrink near zero)."""
    return np.allclose(a, b, rtol=tol, atol=tol * max(1.0, float(np.abs(b).max())))


def _quiet_torch_save(torch, obj, path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(obj, path)


def _torch_onnx_export(torch, model, example, path, **kwargs) -> None:
    """Export with the TorchScript exporter; skip if this torch needs a missing package to export."""
    pytest.importorskip("onnx")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, **kwargs)
    except ImportError as e:
        pytest.skip(f"torch.onnx.export is unavailable here: {e}")


def _ort_run(path, X: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})[0]


# --- NPZ -----------------------------------------------------------------------------------------

def test_npz_round_trip(net: Network, tmp_path) -> None:
    net.lo, net.hi = -1.0, np.full(net.input_dim, 2.0)
    save_npz(net, tmp_path / "m.npz")
    back = load_npz(tmp_path / "m.npz")
    _same_architecture(net, back)
    X = _inputs(net)
    assert np.allclose(back.forward(X), net.forward(X), rtol=1e-9, atol=0)
    assert back.lo == -1.0 and np.array_equal(back.hi, net.hi)


# --- folding helpers -----------------------------------------------------------------------------

def test_compose_keeps_conv_when_second_has_no_padding() -> None:
    rng = np.random.default_rng(0)
    first = Conv2d(rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3), (2, 9, 9), stride=2, padding=1, relu=False)
    second = Conv2d(rng.normal(size=(4, 3, 2, 2)), rng.normal(size=4), first.out_shape, stride=2)
    merged = compose(first, second)
    assert isinstance(merged, Conv2d) and merged.stride == 4 and merged.out_shape == second.out_shape
    X = rng.normal(size=(5, 2 * 9 * 9))
    expect = Network([first, second], (2, 9, 9)).forward(X)
    assert np.allclose(Network([merged], (2, 9, 9)).forward(X), expect, rtol=1e-9, atol=1e-12)


def test_fold_linear_merges_layers_without_relu() -> None:
    rng = np.random.default_rng(1)
    c1 = Conv2d(rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3), (2, 6, 6), padding=1, relu=False)
    c2 = Conv2d(rng.normal(size=(2, 3, 3, 3)), rng.normal(size=2), c1.out_shape, padding=1, relu=True)
    d1 = Dense(rng.normal(size=(5, c2.out_size)), rng.normal(size=5), relu=False, in_shape=c2.out_shape)
    d2 = Dense(rng.normal(size=(4, 5)), rng.normal(size=4), relu=True)
    d3 = Dense(rng.normal(size=(2, 4)), rng.normal(size=2), relu=False)
    layers = [c1, c2, d1, d2, d3]
    folded = fold_linear(layers)
    # c1 meets a padded conv, so the merge is dense; the output layer stays without ReLU.
    assert [type(x) for x in folded] == [Dense, Dense, Dense] and [x.relu for x in folded] == [True, True, False]
    X = rng.normal(size=(7, 72))
    assert np.allclose(Network(folded, (2, 6, 6)).forward(X), Network(layers, (2, 6, 6)).forward(X),
                       rtol=1e-9, atol=1e-9)


# --- ONNX ----------------------------------------------------------------------------------------

def test_onnx_round_trip(net: Network, tmp_path) -> None:
    pytest.importorskip("onnx")
    from lrmilp.loaders.onnx import load_onnx, save_onnx
    net.lo, net.hi = np.zeros(net.input_dim), 1.0
    save_onnx(net, tmp_path / "m.onnx")
    for back in (load_onnx(tmp_path / "m.onnx"), load_network(tmp_path / "m.onnx")):
        _same_architecture(net, back)
        X = _inputs(net)
        assert _close(back.forward(X), net.forward(X), 1e-5)
        assert np.array_equal(back.lo, net.lo) and back.hi == 1.0


def test_onnxruntime_agrees_with_saved_onnx(net: Network, tmp_path) -> None:
    pytest.importorskip("onnx")
    from lrmilp.loaders.onnx import save_onnx
    save_onnx(net, tmp_path / "m.onnx")
    for n in (1, 6):  # the batch dimension is dynamic
        X = _inputs(net, n)
        y = _ort_run(tmp_path / "m.onnx", X)
        assert y.shape == (n, *net.layers[-1].out_shape)
        assert _close(y.reshape(n, -1), _outputs(net, X), 1e-5)


def _onnx_model(nodes, inits, in_shape, out_shape, opset: int = 13):
    """A float32 ONNX model with input 'x' (batch, *in_shape) and output 'y' (batch, *out_shape)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", *out_shape])],
        initializer=[numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()])
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets))


def test_onnx_matmul_reshape_batchnorm_avgpool(tmp_path) -> None:
    """Ops the writer never emits: MatMul + Add, Reshape, AveragePool, Dropout, Identity, and a
    BatchNormalization after a Relu (folded forward into the next layer)."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper
    from lrmilp.loaders.onnx import load_onnx
    rng = np.random.default_rng(2)
    inits = {"cw": rng.normal(size=(3, 2, 3, 3)), "cb": rng.normal(size=3),
             "g": rng.uniform(0.5, 2, 3), "beta": rng.normal(size=3), "mu": rng.normal(size=3),
             "var": rng.uniform(0.5, 2, 3), "shape": np.array([0, -1]), "mw": rng.normal(size=(27, 4)),
             "mb": rng.normal(size=4), "g1": rng.uniform(0.5, 2, 4), "beta1": rng.normal(size=4),
             "mu1": rng.normal(size=4), "var1": rng.uniform(0.5, 2, 4), "w2": rng.normal(size=(2, 4))}
    nodes = [helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("BatchNormalization", ["r", "g", "beta", "mu", "var"], ["bn"], epsilon=1e-3),
             helper.make_node("AveragePool", ["bn"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Identity", ["p"], ["i"]),
             helper.make_node("Reshape", ["i", "shape"], ["f"]),
             helper.make_node("MatMul", ["f", "mw"], ["m"]),
             helper.make_node("Add", ["m", "mb"], ["a"]),
             helper.make_node("BatchNormalization", ["a", "g1", "beta1", "mu1", "var1"], ["bn1"]),
             helper.make_node("Relu", ["bn1"], ["r1"]),
             helper.make_node("Dropout", ["r1"], ["d"]),
             helper.make_node("Gemm", ["d", "w2"], ["y"], transB=1, alpha=0.5)]
    # The integer shape tensor must stay int64.
    model = _onnx_model(nodes, {k: v for k, v in inits.items() if k != "shape"}, (2, 6, 6), (2,))
    model.graph.initializer.append(onnx.numpy_helper.from_array(inits["shape"].astype(np.int64), "shape"))
    onnx.save(model, str(tmp_path / "h.onnx"))
    net = load_onnx(tmp_path / "h.onnx")
    # Conv (BatchNorm folded into the pooling, pooling into the MatMul), MatMul + BatchNorm, Gemm.
    assert [type(x) for x in net.layers] == [Conv2d, Dense, Dense] and net.widths == [3 * 36, 4]
    X = _inputs(net, 5)
    assert _close(net.forward(X), _ort_run(tmp_path / "h.onnx", X), 1e-5)


@pytest.mark.parametrize("op,attrs", [("MaxPool", {"kernel_shape": [2, 2]}), ("Sigmoid", {}), ("Tanh", {}),
                                      ("LeakyRelu", {})])
def test_onnx_refuses_other_nonlinearities(tmp_path, op: str, attrs: dict) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import helper
    nodes = [helper.make_node("Conv", ["x", "cw", "cb"], ["c"]),
             helper.make_node(op, ["c"], ["n"], name="bad", **attrs),
             helper.make_node("Flatten", ["n"], ["f"]),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)]
    width = 4 if op == "MaxPool" else 16
    model = _onnx_model(nodes, {"cw": np.ones((1, 1, 3, 3)), "cb": np.zeros(1), "w": np.ones((2, width))}, (1, 6, 6),
                        (2,))
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(InputError, match=rf"unsupported ONNX op '{op}' \(node 'bad'\)"):
        load_network(tmp_path / "m.onnx")


def test_onnx_refuses_grouped_conv(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import helper
    nodes = [helper.make_node("Conv", ["x", "cw"], ["y"], group=2)]
    onnx.save(_onnx_model(nodes, {"cw": np.ones((2, 1, 3, 3))}, (2, 5, 5), (2, 3, 3)), str(tmp_path / "g.onnx"))
    with pytest.raises(InputError, match="group"):
        load_network(tmp_path / "g.onnx")


def test_onnx_garbage_file(tmp_path) -> None:
    pytest.importorskip("onnx")
    path = tmp_path / "junk.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(InputError, match="cannot read .* as an ONNX model") as info:
        load_network(path)
    assert "\n" not in str(info.value)


def test_onnx_missing_package(monkeypatch, tmp_path) -> None:
    from lrmilp.loaders.onnx import load_onnx
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` fail
    with pytest.raises(InputError, match=r"pip install lrmilp\[onnx\]"):
        load_onnx(tmp_path / "m.onnx")


# --- PyTorch -------------------------------------------------------------------------------------

def test_torch_module_and_whole_module_file(net: Network, tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from lrmilp.loaders.torch import load_torch, module_from_network
    module = module_from_network(net)
    X = _inputs(net)
    with torch.no_grad():
        y = module(torch.from_numpy(X)).reshape(len(X), -1).numpy()
    assert np.allclose(y, _outputs(net, X), rtol=1e-9, atol=1e-12)
    _quiet_torch_save(torch, module, tmp_path / "m.pt")
    for back in (load_torch(tmp_path / "m.pt", trust=True), load_network(tmp_path / "m.pt", trust=True)):
        _same_architecture(net, back)
        assert np.allclose(back.forward(X), net.forward(X), rtol=1e-9, atol=1e-12)


def test_torch_whole_module_needs_trust(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from lrmilp.loaders.torch import module_from_network
    _quiet_torch_save(torch, module_from_network(random_mlp([3, 4, 2], seed=0)), tmp_path / "m.pth")
    with pytest.raises(InputError, match="--trust") as info:
        load_network(tmp_path / "m.pth")
    assert "state_dict" in str(info.value)


def test_torch_state_dict(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from lrmilp.loaders.torch import module_from_network
    net = random_mlp([5, 7, 6, 2], seed=3, last_relu=False)
    torch.save(module_from_network(net).state_dict(), tmp_path / "sd.pt")
    back = load_network(tmp_path / "sd.pt")  # weights_only: no trust needed
    _same_architecture(net, back)
    X = _inputs(net)
    assert np.allclose(back.forward(X), net.forward(X), rtol=1e-9, atol=1e-12)


def test_torch_state_dict_of_cnn_refused(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from lrmilp.loaders.torch import module_from_network
    torch.save(module_from_network(_cnn(0)).state_dict(), tmp_path / "sd.pt")
    for shape in (None, (2, 7, 7)):  # the input shape does not help: stride and padding are not stored
        with pytest.raises(InputError, match=r"4-D weight.*stride and padding.*network_from_module.*whole model"):
            load_network(tmp_path / "sd.pt", input_shape=shape)


def test_torch_garbage_file(tmp_path) -> None:
    pytest.importorskip("torch")
    (tmp_path / "junk.pt").write_bytes(np.random.default_rng(1).bytes(400))
    for trust in (False, True):
        with pytest.raises(InputError, match="cannot read"):
            load_network(tmp_path / "junk.pt", trust=trust)


def _randomise_batchnorms(torch, model, seed: int) -> None:
    """Non-trivial running statistics and affine parameters, as after training."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=gen))
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.randn(n, generator=gen))
                m.bias.copy_(torch.randn(n, generator=gen))
    model.eval()


def _check_torch_model(torch, model, input_shape: tuple[int, ...], tmp_path, *, export: bool = True) -> Network:
    """The model read in memory, from torch.save and from torch.onnx.export computes torch's outputs."""
    from lrmilp.loaders.torch import load_torch, network_from_module
    x = torch.randn(6, *input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expect = model(x).reshape(len(x), -1).numpy()
    net = network_from_module(model, input_shape=input_shape)
    assert _close(net.forward(x.numpy()), expect, 1e-5)
    model.input_shape = input_shape  # read from the module on loading
    _quiet_torch_save(torch, model, tmp_path / "m.pt")
    assert _close(load_torch(tmp_path / "m.pt", trust=True).forward(x.numpy()), expect, 1e-5)
    if export:
        # Without constant folding the exporter keeps BatchNormalization nodes instead of fusing them.
        _torch_onnx_export(torch, model, x[:1], tmp_path / "m.onnx", do_constant_folding=False)
        assert _close(load_network(tmp_path / "m.onnx").forward(x.numpy()), expect, 1e-5)
    # The same model as TorchScript (scripted: BatchNorm's input checks are branches) and torch.export.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        programs = [torch.jit.script(model), torch.jit.trace(model, x), torch.export.export(model, (x,))]
    for program in programs:
        assert _close(network_from_module(program, input_shape=input_shape).forward(x.numpy()), expect, 1e-5)
    return net


def test_batchnorm_folded_backwards(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(48, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    _randomise_batchnorms(torch, model, 1)
    net = _check_torch_model(torch, model, (2, 8, 8), tmp_path)
    assert [type(x) for x in net.layers] == [Conv2d, Dense, Dense] and net.widths == [48, 6]


def test_batchnorm_after_relu_folded_forwards(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(1)
    # BN after ReLU into a padding-0 conv, BN between two ReLUs (a layer of its own), BN1d into a Linear,
    # and a BN after the last ReLU (the output layer).
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(3), nn.Conv2d(3, 4, 2, stride=2),
                          nn.ReLU(), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.BatchNorm1d(64),
                          nn.Linear(64, 5), nn.ReLU(), nn.BatchNorm1d(5))
    _randomise_batchnorms(torch, model, 2)
    net = _check_torch_model(torch, model, (2, 8, 8), tmp_path)
    assert [type(x) for x in net.layers] == [Conv2d, Conv2d, Conv2d, Dense, Dense]
    assert net.widths == [3 * 64, 64, 64, 5]


def test_batchnorm_before_padded_conv_refused() -> None:
    torch = pytest.importorskip("torch")
    from lrmilp.loaders.torch import network_from_module
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3, padding=1))
    _randomise_batchnorms(torch, model, 3)
    with pytest.raises(InputError, match=r"layer 3 \(Conv2d\): the BatchNorm .* padding 1"):
        network_from_module(model, input_shape=(2, 8, 8))


def test_avgpool_folded(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(3, 4, 3, padding=1),
                          nn.ReLU(), nn.AvgPool2d(2, stride=1), nn.Flatten(), nn.Linear(36, 3)).eval()
    net = _check_torch_model(torch, model, (2, 8, 8), tmp_path)
    # Pooling creates no regions: it is merged into the next layer (dense where that has padding).
    assert [type(x) for x in net.layers] == [Conv2d, Dense, Dense] and net.widths == [3 * 64, 4 * 16]
    x = np.random.default_rng(0).normal(size=(4, 2, 8, 8))
    assert _close(_ort_run(tmp_path / "m.onnx", x).reshape(4, -1), net.forward(x), 1e-5)


def test_avgpool_after_conv_stays_conv(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.AvgPool2d(2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(48, 2)).eval()
    net = _check_torch_model(torch, model, (2, 8, 8), tmp_path, export=False)
    assert isinstance(net.layers[0], Conv2d) and net.layers[0].stride == 2 and net.widths == [48]


@pytest.mark.parametrize("bad", ["MaxPool2d", "Sigmoid", "Tanh", "LeakyReLU", "GELU"])
def test_torch_refuses_other_modules(tmp_path, bad: str) -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    middle = nn.MaxPool2d(2) if bad == "MaxPool2d" else getattr(nn, bad)()
    width = 3 * 9 if bad == "MaxPool2d" else 3 * 36
    model = nn.Sequential(nn.Conv2d(1, 3, 3), middle, nn.Flatten(), nn.Linear(width, 2)).eval()
    model.input_shape = (1, 8, 8)
    _quiet_torch_save(torch, model, tmp_path / "m.pt")
    with pytest.raises(InputError, match=rf"unsupported PyTorch module '{bad}' \(layer 1"):
        load_network(tmp_path / "m.pt", trust=True)


def test_torch_missing_package(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    (tmp_path / "m.pt").write_bytes(b"")
    with pytest.raises(InputError, match=r"pip install lrmilp\[torch\]"):
        load_network(tmp_path / "m.pt")


def test_torch_conv_needs_input_shape() -> None:
    torch = pytest.importorskip("torch")
    from lrmilp.loaders.torch import network_from_module
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU())
    with pytest.raises(InputError, match=r"input_shape=\(C, H, W\)"):
        network_from_module(model)


# --- users' own models: TorchScript, torch.export, custom modules, --input-shape -----------------------

try:
    import torch as _torch
except ImportError:  # the tests below skip
    _torch = None

if _torch is not None:
    class CustomCNN(_torch.nn.Module):
        """Not a Sequential: normalises its input, then conv, BatchNorm after the ReLU, a view that
        flattens, dropout and two Linear layers (input (2, 8, 8))."""

        def __init__(self) -> None:
            super().__init__()
            nn = _torch.nn
            self.register_buffer("mean", _torch.tensor([0.3, -0.2]).view(1, 2, 1, 1))
            self.conv = nn.Conv2d(2, 3, 3, stride=2)
            self.bn = nn.BatchNorm2d(3)
            self.fc1 = nn.Linear(27, 6)
            self.drop = nn.Dropout(0.3)
            self.fc2 = nn.Linear(6, 2)

        def forward(self, x):
            x = (x - self.mean) / 0.5
            x = self.bn(_torch.relu(self.conv(x)))
            x = x.view(x.size(0), -1)
            return self.fc2(self.drop(_torch.relu(self.fc1(x))))

    class CustomMLP(_torch.nn.Module):
        """Layers named fc1, fc2, out: its state_dict is not a Sequential's (input (5,))."""

        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2, self.out = _torch.nn.Linear(5, 7), _torch.nn.Linear(7, 4), _torch.nn.Linear(4, 3)

        def forward(self, x):
            relu = _torch.nn.functional.relu
            return self.out(relu(self.fc2(relu(self.fc1(x)))))


def _model(torch, kind: str):
    """(model in eval mode, input shape) with non-trivial BatchNorm statistics."""
    torch.manual_seed(7)
    if kind == "custom_cnn":
        model, shape = CustomCNN(), (2, 8, 8)
    elif kind == "custom_mlp":
        model, shape = CustomMLP(), (5,)
    else:
        nn = torch.nn
        model, shape = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(), nn.Linear(8, 3)), (6,)
    _randomise_batchnorms(torch, model, 5)
    return model, shape


def _torch_outputs(torch, model, shape: tuple[int, ...], n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs (float64) and what the torch model computes on them: the oracle."""
    x = torch.randn(n, *shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return x.double().numpy(), model(x).reshape(n, -1).double().numpy()


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    """The command line in this process (torch is imported once), as a finished process."""
    from click.testing import CliRunner

    from lrmilp.cli import main
    r = CliRunner().invoke(main, list(args))
    return subprocess.CompletedProcess(args, r.exit_code, r.stdout, r.stderr)


def _assert_one_line_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_input_shape_for_a_cnn_module(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from lrmilp.cli.app import load
    nn = torch.nn
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 4),
                          nn.ReLU(), nn.Linear(4, 2)).eval()
    _quiet_torch_save(torch, model, tmp_path / "m.pt")  # no model.input_shape: the file cannot tell
    _assert_one_line_error(_run_cli("info", str(tmp_path / "m.pt"), "--trust"), "--input-shape C,H,W")
    r = _run_cli("info", str(tmp_path / "m.pt"), "--trust", "--input-shape", "2,8,8", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["input_shape"] == [2, 8, 8] and json.loads(r.stdout)["cnn"] is True
    net = load(str(tmp_path / "m.pt"), True, (2, 8, 8))  # what the command loaded
    x, expect = _torch_outputs(torch, model, (2, 8, 8))
    assert _close(net.forward(x), expect, 1e-5)
    for bad in ("2,x,8", "0,8,8", ""):
        _assert_one_line_error(_run_cli("info", str(tmp_path / "m.pt"), "--trust", "--input-shape", bad),
                               "--input-shape")


def test_cli_input_shape_for_a_state_dict(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from lrmilp.cli.app import load
    nn = torch.nn
    torch.manual_seed(5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 5), nn.ReLU(), nn.Linear(5, 2)).eval()
    torch.save(model.state_dict(), tmp_path / "sd.pt")  # keys 1.weight, 1.bias, 3.weight, 3.bias
    r = _run_cli("info", str(tmp_path / "sd.pt"), "--input-shape", "1,6,6", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["input_shape"] == [1, 6, 6]
    x, expect = _torch_outputs(torch, model, (1, 6, 6))
    assert _close(load(str(tmp_path / "sd.pt"), False, (1, 6, 6)).forward(x), expect, 1e-5)
    _assert_one_line_error(_run_cli("info", str(tmp_path / "sd.pt"), "--input-shape", "2,6,6"),
                           "--input-shape (2, 6, 6) has 72 values")


def test_input_shape_is_checked_against_npz_and_onnx(tmp_path) -> None:
    save_npz(_cnn(1), tmp_path / "m.npz")
    assert load_network(tmp_path / "m.npz", input_shape=[2, 7, 7]).input_shape == (2, 7, 7)
    with pytest.raises(InputError, match=r"input_shape \(2, 49\) does not match .*\(2, 7, 7\)") as info:
        load_network(tmp_path / "m.npz", input_shape=(2, 49))
    assert info.value.param == ("input_shape",)
    for bad in ((2, 0, 7), (2.5, 7, 7), "abc", ()):
        with pytest.raises(InputError, match="input_shape must be"):
            load_network(tmp_path / "m.npz", input_shape=bad)


@pytest.mark.parametrize("how", ["script", "trace"])
@pytest.mark.parametrize("kind", ["custom_cnn", "sequential"])
def test_torchscript_file(tmp_path, how: str, kind: str) -> None:
    torch = pytest.importorskip("torch")
    model, shape = _model(torch, kind)
    x, expect = _torch_outputs(torch, model, shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated in recent torch, and still in use
        program = torch.jit.script(model) if how == "script" else torch.jit.trace(model, torch.from_numpy(x).float())
        torch.jit.save(program, str(tmp_path / "m.pt"))
    with pytest.raises(InputError, match="TorchScript archive.*--trust"):
        load_network(tmp_path / "m.pt")
    if kind == "custom_cnn":  # a convolution first: the archive does not record the input shape
        with pytest.raises(InputError, match=r"input shape is unknown.*--input-shape C,H,W"):
            load_network(tmp_path / "m.pt", trust=True)
        net = load_network(tmp_path / "m.pt", trust=True, input_shape=shape)
        assert [type(layer) for layer in net.layers] == [Conv2d, Dense, Dense]
    else:  # a Linear first fixes a flat input
        net = load_network(tmp_path / "m.pt", trust=True)
    assert net.input_shape == shape
    assert _close(net.forward(x), expect, 1e-5)


def test_torch_export_program(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    model, shape = _model(torch, "custom_cnn")
    x, expect = _torch_outputs(torch, model, shape)
    torch.export.save(torch.export.export(model, (torch.zeros(1, *shape),)), str(tmp_path / "m.pt2"))
    with pytest.raises(InputError, match="torch.export archive.*--trust"):
        load_network(tmp_path / "m.pt2")
    net = load_network(tmp_path / "m.pt2", trust=True)  # the program records its input shape
    assert net.input_shape == shape
    assert _close(net.forward(x), expect, 1e-5)
    with pytest.raises(InputError, match=r"input_shape \(2, 9, 9\) does not match the program's"):
        load_network(tmp_path / "m.pt2", trust=True, input_shape=(2, 9, 9))


def test_custom_module_in_memory_and_pickled(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from lrmilp.loaders import network_from_module
    model, shape = _model(torch, "custom_cnn")
    x, expect = _torch_outputs(torch, model, shape)
    model.train()
    net = network_from_module(model, input_shape=shape)
    assert model.training  # traced in eval mode, then put back
    assert _close(net.forward(x), expect, 1e-5)
    with pytest.raises(InputError, match="CustomCNN is read by tracing it with torch.export.*input_shape"):
        network_from_module(model)
    model.eval()
    _quiet_torch_save(torch, model, tmp_path / "m.pt")
    assert _close(load_network(tmp_path / "m.pt", trust=True, input_shape=shape).forward(x), expect, 1e-5)
    # A process that cannot import the class cannot unpickle it: --trust is no help, the error says what is.
    r = subprocess.run([sys.executable, "-m", "lrmilp.cli", "info", str(tmp_path / "m.pt"), "--trust"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    _assert_one_line_error(r, "cannot unpickle", "network_from_module(model, input_shape=...)", "save_npz")


def test_custom_module_state_dict_says_what_to_do(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from lrmilp.loaders import network_from_module
    model, shape = _model(torch, "custom_mlp")
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    for trust in (False, True):
        with pytest.raises(InputError) as info:
            load_network(tmp_path / "sd.pt", trust=trust)
        message = str(info.value)
        assert "'fc1.weight'" in message and "network_from_module(model, input_shape=...)" in message
        assert "save_npz" in message and "--trust" not in message and "\n" not in message
    # The advice works: build the model, load the weights, convert, save, and the command line reads it.
    rebuilt = CustomMLP()
    rebuilt.load_state_dict(torch.load(tmp_path / "sd.pt", weights_only=True))
    save_npz(network_from_module(rebuilt.eval(), input_shape=shape), tmp_path / "m.npz")
    x, expect = _torch_outputs(torch, model, shape)
    assert _close(load_network(tmp_path / "m.npz").forward(x), expect, 1e-5)


def test_traced_programs_name_what_they_cannot_read() -> None:
    torch = pytest.importorskip("torch")
    from lrmilp.loaders import network_from_module
    nn = torch.nn

    class Tanh(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.b(torch.tanh(self.a(x)))

    class Residual(Tanh):
        def forward(self, x):
            h = torch.relu(self.a(x))
            return self.b(h + torch.relu(h))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(Tanh())
    for module in (Tanh(), scripted):
        with pytest.raises(InputError, match="unsupported op 'tanh'"):
            network_from_module(module, input_shape=(3,))
    with pytest.raises(InputError, match="skip connection"):
        network_from_module(Residual(), input_shape=(3,))


def test_torch_onnx_export_with_defaults(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")  # torch.onnx.export's default exporter needs it (lrmilp[onnx] has it)
    nn = torch.nn
    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3),
                          nn.ReLU(), nn.Flatten(), nn.Linear(16, 6), nn.ReLU(), nn.Linear(6, 3))
    _randomise_batchnorms(torch, model, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(tmp_path / "m.onnx"))  # every default
    net = load_network(tmp_path / "m.onnx")
    assert net.input_shape == (1, 8, 8)
    x, expect = _torch_outputs(torch, model, (1, 8, 8))
    assert _close(net.forward(x), expect, 1e-5)
