"""ONNX reader and writer for feed-forward ReLU networks (a linear chain of ops).

Read: Gemm, MatMul (+ Add as its bias), Conv, Relu, Flatten, Reshape (flattening), BatchNormalization,
AveragePool, Identity, Dropout.  Written: Gemm, Conv, Relu and Flatten in float32 with a dynamic batch
dimension.  The default input box travels in the metadata keys ``lrmilp.lo`` / ``lrmilp.hi`` (JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..network import Dense, Network
from .fold import LayerChain, first_line

_OPSET = 13
_PASS_THROUGH = {"Identity", "Dropout"}  # Dropout is the identity at inference
_READ_OPS = {"Gemm", "MatMul", "Conv", "Relu", "Flatten", "Reshape", "BatchNormalization", "AveragePool"}


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise InputError("reading ONNX needs the onnx package: pip install lrmilp[onnx]") from None
    return onnx


class _Graph:
    """Constants of an ONNX graph and attribute access, with errors naming the node."""

    def __init__(self, onnx: Any, graph: Any) -> None:
        self.onnx = onnx
        self.consts: dict[str, np.ndarray] = {t.name: self.array(t) for t in graph.initializer}

    def array(self, tensor: Any) -> np.ndarray:
        return np.asarray(self.onnx.numpy_helper.to_array(tensor))

    def add_constant(self, node: Any) -> None:
        if len(node.attribute) != 1:
            raise InputError(f"{_describe(node)}: Constant needs exactly one value attribute")
        value = self.onnx.helper.get_attribute_value(node.attribute[0])
        self.consts[node.output[0]] = self.array(value) if node.attribute[0].name == "value" else np.asarray(value)

    def const(self, node: Any, index: int, *, what: str) -> np.ndarray | None:
        """The constant at input ``index`` as float64, None if that optional input is absent."""
        if index >= len(node.input) or not node.input[index]:
            return None
        name = node.input[index]
        if name not in self.consts:
            raise InputError(f"{_describe(node)}: {what} '{name}' must be a constant (initializer)")
        value = self.consts[name]
        if not np.issubdtype(value.dtype, np.number):
            raise InputError(f"{_describe(node)}: {what} '{name}' is not numeric")
        return value.astype(float)

    def attrs(self, node: Any) -> dict[str, Any]:
        out = {}
        for a in node.attribute:
            value = self.onnx.helper.get_attribute_value(a)
            out[a.name] = value.decode() if isinstance(value, bytes) else value
        return out


def _describe(node: Any) -> str:
    return f"ONNX node '{node.name or node.output[0]}' ({node.op_type})"


def _input_shape(value_info: Any) -> tuple[int, ...]:
    """The graph input's shape without the batch dimension; every other dimension must be fixed."""
    tensor = value_info.type.tensor_type
    if not tensor.HasField("shape"):
        raise InputError(f"graph input '{value_info.name}' has no shape")
    dims = list(tensor.shape.dim)
    if len(dims) < 2:
        raise InputError(f"graph input '{value_info.name}' must have a batch dimension and input dimensions")
    shape = []
    for d in dims[1:]:
        if not d.HasField("dim_value") or d.dim_value < 1:
            raise InputError(f"graph input '{value_info.name}' has a non-fixed dimension "
                             f"'{d.dim_param or '?'}' besides the batch dimension")
        shape.append(int(d.dim_value))
    return tuple(shape)


def _bias(value: np.ndarray | None, size: int, node: Any) -> np.ndarray:
    """A bias broadcast to (size,) from a scalar, (size,) or (1, size) constant."""
    if value is None:
        return np.zeros(size)
    try:
        return np.broadcast_to(value, (1, size)).reshape(-1).copy()
    except ValueError:
        raise InputError(f"{_describe(node)}: bias of shape {value.shape} does not fit {size} outputs") from None


def _square(values: list[int], what: str, node: Any) -> int:
    if len(set(values)) != 1:
        raise InputError(f"{_describe(node)}: {what} {values} must be equal in every direction")
    return int(values[0])


def _gemm(g: _Graph, chain: LayerChain, node: Any, op: str) -> None:
    a = g.attrs(node)
    if a.get("transA", 0):
        raise InputError(f"{op}: transA=1 is not supported")
    B = g.const(node, 1, what="weight")
    if B is None or B.ndim != 2:
        raise InputError(f"{op}: weight must be a 2-D constant")
    W = a.get("alpha", 1.0) * (B if a.get("transB", 0) else B.T)
    chain.dense(W, a.get("beta", 1.0) * _bias(g.const(node, 2, what="bias"), W.shape[0], node), op=op)


def _conv(g: _Graph, chain: LayerChain, node: Any, op: str) -> None:
    a = g.attrs(node)
    W = g.const(node, 1, what="weight")
    if W is None or W.ndim != 4:
        raise InputError(f"{op}: only 2-D convolutions with a constant weight are supported")
    if a.get("group", 1) != 1:
        raise InputError(f"{op}: grouped convolution (group={a['group']}) is not supported")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise InputError(f"{op}: dilated convolution {a['dilations']} is not supported")
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise InputError(f"{op}: auto_pad={a['auto_pad']} is not supported (give explicit pads)")
    if "kernel_shape" in a and list(a["kernel_shape"]) != list(W.shape[2:]):
        raise InputError(f"{op}: kernel_shape {a['kernel_shape']} does not match weight shape {W.shape}")
    stride = _square(list(a.get("strides", [1, 1])), "strides", node)
    padding = _square(list(a.get("pads", [0, 0, 0, 0])), "pads", node)
    b = g.const(node, 2, what="bias")
    chain.conv(W, np.zeros(W.shape[0]) if b is None else b, stride=stride, padding=padding, op=op)


def _average_pool(g: _Graph, chain: LayerChain, node: Any, op: str) -> None:
    a = g.attrs(node)
    kernel = list(a.get("kernel_shape", []))
    if len(kernel) != 2:
        raise InputError(f"{op}: only 2-D average pooling is supported, kernel_shape {kernel}")
    if any(p != 0 for p in a.get("pads", [])) or a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise InputError(f"{op}: padded average pooling is not supported")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise InputError(f"{op}: dilated average pooling is not supported")
    stride = _square(list(a.get("strides", [1, 1])), "strides", node)
    chain.avgpool((kernel[0], kernel[1]), stride, ceil_mode=bool(a.get("ceil_mode", 0)), op=op)


def _batchnorm(g: _Graph, chain: LayerChain, node: Any, op: str) -> None:
    a = g.attrs(node)
    if a.get("training_mode", 0):
        raise InputError(f"{op}: training-mode BatchNormalization is not supported")
    params = [g.const(node, i, what=w) for i, w in enumerate(("scale", "bias", "mean", "variance"), start=1)]
    if any(p is None for p in params):
        raise InputError(f"{op}: needs constant scale, bias, mean and variance")
    chain.batchnorm(*params, a.get("epsilon", 1e-5), op=op)


def _flatten(g: _Graph, chain: LayerChain, node: Any, op: str) -> None:
    axis = g.attrs(node).get("axis", 1)
    if axis < 0:
        axis += len(chain.shape) + 1
    if axis != 1:
        raise InputError(f"{op}: only Flatten with axis 1 (keeping the batch dimension) is supported")
    chain.flatten()


def _reshape(g: _Graph, chain: LayerChain, node: Any, op: str) -> None:
    target = g.const(node, 1, what="shape")
    n = int(np.prod(chain.shape))
    # Accept exactly the reshapes that flatten each sample: (batch, n), with batch as 0 (copy), -1 or 1.
    dims = [] if target is None else [int(d) for d in target.reshape(-1)]
    flattens = len(dims) == 2 and ((dims[0] in (0, -1, 1) and dims[1] == n) or (dims[0] in (0, 1) and dims[1] == -1))
    if not flattens:
        raise InputError(f"{op}: only a Reshape that flattens each sample is supported, got shape {dims} "
                         f"for an input of shape {chain.shape}")
    chain.flatten()


def _relu(g: _Graph, chain: LayerChain, node: Any, op: str) -> None:
    chain.relu(op=op)


_HANDLERS = {"Gemm": _gemm, "Conv": _conv, "AveragePool": _average_pool, "BatchNormalization": _batchnorm,
             "Flatten": _flatten, "Reshape": _reshape, "Relu": _relu}


def _metadata_box(model: Any, key: str) -> np.ndarray | None:
    for prop in model.metadata_props:
        if prop.key == key:
            try:
                return np.asarray(json.loads(prop.value), dtype=float)
            except (ValueError, TypeError):
                raise InputError(f"ONNX metadata {key} is not a number or list of numbers") from None
    return None


def load_onnx(path: str | Path) -> Network:
    """Read an ONNX feed-forward network; anything unreadable or unsupported raises :class:`InputError`
    naming the file and, where there is one, the offending node and op."""
    onnx = _import_onnx()
    path = Path(path)
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:  # protobuf, checker and I/O errors share no narrower base class
        raise InputError(f"cannot read {path} as an ONNX model: {first_line(e)}") from None
    try:
        return _network(onnx, model)
    except InputError as e:
        raise InputError(f"{path}: {e}") from None


def _network(onnx: Any, model: Any) -> Network:
    graph = model.graph
    g = _Graph(onnx, graph)
    inputs = [v for v in graph.input if v.name not in g.consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise InputError(f"expected one graph input and one output, found {len(inputs)} and {len(graph.output)}")
    chain = LayerChain(_input_shape(inputs[0]))
    current = inputs[0].name
    nodes = list(graph.node)
    k = 0
    while k < len(nodes):
        node = nodes[k]
        k += 1
        if node.op_type == "Constant":
            g.add_constant(node)
            continue
        op = _describe(node)
        if node.domain not in ("", "ai.onnx") or node.op_type not in _READ_OPS | _PASS_THROUGH:
            raise InputError(f"unsupported ONNX op '{node.op_type}' (node '{node.name or node.output[0]}')")
        data = [x for x in node.input if x and x not in g.consts]
        if data != [current]:
            raise InputError(f"{op} does not continue a single chain from the input (it reads {data})")
        if node.op_type == "MatMul":
            # MatMul then Add of a constant is how some exporters write a dense layer.
            W = g.const(node, 1, what="weight")
            if W is None or W.ndim != 2:
                raise InputError(f"{op}: only x @ W with a constant 2-D W is supported")
            bias = None
            nxt = nodes[k] if k < len(nodes) else None
            if nxt is not None and nxt.op_type == "Add" and node.output[0] in nxt.input:
                other = [x for x in nxt.input if x != node.output[0]]
                if len(other) == 1 and other[0] in g.consts:
                    bias = g.const(nxt, list(nxt.input).index(other[0]), what="bias")
                    node = nxt
                    k += 1
            chain.dense(W.T, _bias(bias, W.shape[1], node), op=op)
        elif node.op_type in _HANDLERS:
            _HANDLERS[node.op_type](g, chain, node, op)
        current = node.output[0]
    if current != graph.output[0].name:
        raise InputError(f"the graph output '{graph.output[0].name}' is not the end of the chain of ops")
    return chain.network(lo=_metadata_box(model, "lrmilp.lo"), hi=_metadata_box(model, "lrmilp.hi"))


def save_onnx(net: Network, path: str | Path) -> None:
    """Write ``net`` as an ONNX model (opset 13, float32, input 'input' of shape (batch, *input_shape),
    output 'output') that onnxruntime and :func:`load_onnx` read back as the same network."""
    onnx = _import_onnx()
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    nodes, inits = [], []
    current, shape = "input", net.input_shape
    for k, layer in enumerate(net.layers):
        inits += [numpy_helper.from_array(layer.W.astype(np.float32), f"W{k}"),
                  numpy_helper.from_array(layer.b.astype(np.float32), f"b{k}")]
        if isinstance(layer, Dense):
            if len(shape) != 1:
                nodes.append(helper.make_node("Flatten", [current], [f"flat{k}"], axis=1, name=f"flatten{k}"))
                current = f"flat{k}"
            nodes.append(helper.make_node("Gemm", [current, f"W{k}", f"b{k}"], [f"affine{k}"], transB=1,
                                          name=f"gemm{k}"))
        else:
            if shape != layer.in_shape:
                raise InputError(f"conv layer {k} reads shape {layer.in_shape}, the value before it has shape {shape}")
            nodes.append(helper.make_node("Conv", [current, f"W{k}", f"b{k}"], [f"affine{k}"],
                                          kernel_shape=list(layer.W.shape[2:]), strides=[layer.stride] * 2,
                                          pads=[layer.padding] * 4, name=f"conv{k}"))
        current, shape = f"affine{k}", layer.out_shape
        if layer.relu:
            nodes.append(helper.make_node("Relu", [current], [f"relu{k}"], name=f"relu{k}"))
            current = f"relu{k}"
    nodes[-1].output[0] = "output"
    graph = helper.make_graph(
        nodes, "lrmilp", [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["batch", *net.input_shape])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["batch", *shape])], initializer=inits)
    opset = [helper.make_opsetid("", _OPSET)]
    model = helper.make_model(graph, opset_imports=opset, producer_name="lrmilp",
                              ir_version=helper.find_min_ir_version_for(opset))
    for key, box in (("lrmilp.lo", net.lo), ("lrmilp.hi", net.hi)):
        if box is not None:
            model.metadata_props.add(key=key, value=json.dumps(np.asarray(box, dtype=float).tolist()))
    onnx.checker.check_model(model)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.onnx")
    onnx.save(model, str(tmp))
    tmp.replace(path)
