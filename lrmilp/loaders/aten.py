"""A chain of PyTorch aten ops, as TorchScript and ``torch.export`` graphs hold them, into lrmilp layers.

The ops that touch the input must form one chain from the input to the output (no skip connection).
Read: linear, conv2d (and _convolution / convolution), relu, flatten, view / reshape that flatten each
sample, batch_norm (inference), avg_pool2d, dropout (inference), matmul / mm / addmm with a constant
weight, add / sub / rsub / mul / div by a constant equal across each channel (input normalisation), and
the identities contiguous, clone, detach, alias and to.  Anything else raises :class:`InputError`
naming the op.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import InputError
from ..network import Network
from .fold import LayerChain

_IDENTITIES = {"contiguous", "clone", "detach", "alias", "to", "_to_copy", "lift_fresh_copy"}
_DROPOUTS = {"dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout"}


class _Batch:
    """The batch size: unknown, and never needed by a per-sample chain of ops."""

    def __repr__(self) -> str:
        return "batch"


BATCH = _Batch()
DATA = object()  # stands for the value flowing through the chain, in an op's arguments


def import_torch() -> Any:
    """The torch module, or :class:`InputError` saying how to install it."""
    try:
        import torch
    except ImportError:
        raise InputError("reading PyTorch files needs torch: pip install lrmilp[torch]") from None
    return torch


def exported_program_type(torch: Any) -> type | tuple[()]:
    """``torch.export.ExportedProgram``, or ``()`` (which no ``isinstance`` matches) in a torch without it."""
    return getattr(getattr(torch, "export", None), "ExportedProgram", ())


def as_array(tensor: Any) -> np.ndarray:
    """A float64 numpy copy of a tensor (a float64 tensor's .numpy() would share memory with the model)."""
    return tensor.detach().cpu().double().numpy().copy()


def pair(value: Any, what: str, op: str) -> tuple[int, int]:
    """An int or a 1- or 2-sequence (a kernel size, stride, padding, dilation) as two ints."""
    values = [int(value)] * 2 if isinstance(value, (int, np.integer)) else [int(v) for v in value]
    if len(values) == 1:
        values *= 2
    if len(values) != 2:
        raise InputError(f"{op}: {what} {values} is not 2-D")
    return values[0], values[1]


def square(value: Any, what: str, op: str) -> int:
    """:func:`pair` with both equal, as one int (lrmilp's convolutions are square in stride and padding)."""
    a, b = pair(value, what, op)
    if a != b:
        raise InputError(f"{op}: {what} {(a, b)} must be equal in both directions")
    return a


class AtenChain:
    """Feeds the ops of a traced program, in order, into a :class:`LayerChain`.

    The chain is made at the first op that fixes the input shape when none is given (a Linear's
    weight fixes a flat input); ``current`` holds the ids of the graph values that are the chain's
    present value, ``stale`` those of earlier values (reading one again is a branch).
    """

    def __init__(self, input_shape: Sequence[int] | None, input_id: Any) -> None:
        self.chain = None if input_shape is None else LayerChain(input_shape)
        self.current: set[Any] = {input_id}
        self.stale: set[Any] = set()
        self.tuple_out = False  # the current value is a (y, stats...) tuple of a BatchNorm

    def shape(self, op: str) -> tuple[int, ...]:
        if self.chain is None:
            raise InputError(f"{op}: the input shape is unknown here: pass input_shape=(C, H, W) "
                             f"(command line: --input-shape C,H,W)")
        return self.chain.shape

    def _start(self, shape: tuple[int, ...]) -> LayerChain:
        if self.chain is None:
            self.chain = LayerChain(shape)
        return self.chain

    def data(self, key: Any, op: str) -> bool:
        """Is the graph value ``key`` the chain's present value (raising if it is an earlier one)?"""
        if key in self.stale:
            raise InputError(f"{op} reads an earlier value of the chain: only a single chain of ops from "
                             f"the input is supported (no skip connection or branch)")
        return key in self.current

    def advance(self, key: Any, *, alias: bool = False) -> None:
        if not alias:
            self.stale |= self.current
            self.current = set()
        self.current.add(key)

    def size(self, dim: int, op: str) -> Any:
        """``x.size(dim)`` of the present value."""
        if dim == 0:
            return BATCH
        shape = self.shape(op)
        ndim = len(shape) + 1
        if not -ndim <= dim < ndim:
            raise InputError(f"{op}: dimension {dim} out of range for shape (batch, *{shape})")
        return BATCH if dim % ndim == 0 else shape[dim % ndim - 1]

    def network(self) -> Network:
        if self.tuple_out:
            raise InputError("the output is a BatchNorm's tuple of results, not a tensor")
        if self.chain is None:
            raise InputError("the program has no affine layer (linear, conv2d, ...)")
        return self.chain.network()

    def apply(self, name: str, args: dict[str, Any], op: str) -> None:
        """Apply the aten op ``name`` (no namespace, no overload) whose arguments are ``args`` by
        schema name, the chain's value being ``DATA``."""
        if self.tuple_out:
            raise InputError(f"{op} reads a BatchNorm's tuple of results (expected its first item)")
        base = name[:-1] if name.endswith("_") and not name.startswith("_") else name  # in-place ops
        handler = _HANDLERS.get(base)
        if handler is None:
            if base in _IDENTITIES or (base in _DROPOUTS and not args.get("train")):
                return
            raise InputError(f"unsupported op '{name}' ({op})")
        handler(self, args, op)

    # --- ops -------------------------------------------------------------------------------------
    def _first_is_data(self, args: dict[str, Any], op: str) -> list[Any]:
        values = list(args.values())
        if not values or values[0] is not DATA or any(v is DATA for v in values[1:]):
            raise InputError(f"{op}: only the first argument may depend on the input, the others must be "
                             f"constants")
        return values

    def linear(self, args: dict[str, Any], op: str) -> None:
        _, W, b = self._first_is_data(args, op)[:3]
        self._dense(W, b, op)

    def _dense(self, W: Any, b: Any, op: str) -> None:
        if not isinstance(W, np.ndarray) or W.ndim != 2:
            raise InputError(f"{op}: the weight must be a constant 2-D tensor")
        chain = self._start((W.shape[1],))
        bias = np.zeros(W.shape[0]) if b is None else np.broadcast_to(np.asarray(b, dtype=float), (W.shape[0],))
        chain.dense(W, bias, op=op)

    def matmul(self, args: dict[str, Any], op: str) -> None:
        _, W = self._first_is_data(args, op)[:2]
        if not isinstance(W, np.ndarray) or W.ndim != 2:
            raise InputError(f"{op}: only x @ W with a constant 2-D W is supported")
        self._dense(W.T, None, op)

    def addmm(self, args: dict[str, Any], op: str) -> None:
        bias, x, W, beta, alpha = (args[k] for k in ("self", "mat1", "mat2", "beta", "alpha"))
        if x is not DATA or bias is DATA or W is DATA or not isinstance(W, np.ndarray):
            raise InputError(f"{op}: only addmm(bias, x, W) with constant bias and W is supported")
        self._dense(alpha * W.T, None if bias is None else beta * np.asarray(bias, dtype=float), op)

    def conv(self, args: dict[str, Any], op: str) -> None:
        values = self._first_is_data(args, op)
        W, b = values[1], args.get("bias")
        if not isinstance(W, np.ndarray) or W.ndim != 4:
            raise InputError(f"{op}: only 2-D convolutions with a constant weight are supported")
        if args.get("transposed"):
            raise InputError(f"{op}: transposed convolution is not supported")
        if int(args.get("groups", 1)) != 1:
            raise InputError(f"{op}: grouped convolution (groups={args['groups']}) is not supported")
        if pair(args.get("dilation", 1), "dilation", op) != (1, 1):
            raise InputError(f"{op}: dilated convolution {args['dilation']} is not supported")
        kh, kw = W.shape[2:]
        padding, stride = args.get("padding", 0), square(args.get("stride", 1), "stride", op)
        if padding == "valid":
            padding = 0
        elif padding == "same" and kh == kw and kh % 2 == 1 and stride == 1:
            padding = kh // 2
        elif isinstance(padding, str):
            raise InputError(f"{op}: padding='{padding}' with kernel {(kh, kw)} is not symmetric")
        else:
            padding = square(padding, "padding", op)
        self.shape(op)
        self.chain.conv(W, np.zeros(W.shape[0]) if b is None else b, stride=stride, padding=padding, op=op)

    def relu(self, args: dict[str, Any], op: str) -> None:
        self._first_is_data(args, op)
        if self.chain is None:
            raise InputError(f"{op}: a ReLU on the network input is not supported")
        self.chain.relu(op=op)

    def flatten(self, args: dict[str, Any], op: str) -> None:
        self._first_is_data(args, op)
        start, end = int(args.get("start_dim", 0)), int(args.get("end_dim", -1))
        ndim = None if self.chain is None else len(self.chain.shape) + 1
        if ndim is not None:
            start, end = start % ndim, end % ndim
        if start != 1 or end not in (-1, (ndim or 0) - 1):
            raise InputError(f"{op}: only a flatten that keeps the batch dimension (start_dim=1, to the last "
                             f"dimension) is supported")
        if self.chain is not None:  # a flatten on an input of unknown shape: the flat input itself
            self.chain.flatten()

    def view(self, args: dict[str, Any], op: str) -> None:
        dims = list(self._first_is_data(args, op)[1])
        first, second = dims if len(dims) == 2 else (None, None)
        n = None if self.chain is None else int(np.prod(self.chain.shape))
        ok = (first is BATCH or _is_int(first)) and _is_int(second) and (
            (second == -1 and first != -1) or (second > 0 and (n is None or second == n)))
        if not ok:
            raise InputError(f"{op}: only a view / reshape that flattens each sample is supported, got size "
                             f"{dims} for an input of shape {self.chain.shape if self.chain else 'unknown'}")
        if self.chain is not None:
            self.chain.flatten()
        elif second != -1:  # the input's shape was unknown: it is flat, of this size
            self._start((int(second),))

    def batch_norm(self, args: dict[str, Any], op: str) -> None:
        self._first_is_data(args, op)
        if args.get("training"):
            raise InputError(f"{op}: training-mode BatchNorm is not supported (call model.eval() first)")
        mean, var = args["running_mean"], args["running_var"]
        if mean is None or var is None:
            raise InputError(f"{op}: BatchNorm without running statistics has no inference form")
        channels = self.shape(op)[0]
        gamma = np.ones(channels) if args["weight"] is None else args["weight"]
        beta = np.zeros(channels) if args["bias"] is None else args["bias"]
        self.chain.batchnorm(gamma, beta, mean, var, float(args["eps"]), op=op)

    def batch_norm_tuple(self, args: dict[str, Any], op: str) -> None:
        self.batch_norm(dict(args, training=False), op)
        self.tuple_out = True

    def avg_pool2d(self, args: dict[str, Any], op: str) -> None:
        self._first_is_data(args, op)
        if any(pair(args.get("padding", 0), "padding", op)):
            raise InputError(f"{op}: padded average pooling is not supported")
        kernel = pair(args["kernel_size"], "kernel_size", op)
        stride = args.get("stride") or list(kernel)
        self.shape(op)
        self.chain.avgpool(kernel, square(stride, "stride", op), ceil_mode=bool(args.get("ceil_mode")),
                           divisor=args.get("divisor_override"), op=op)

    def elementwise(self, name: str, args: dict[str, Any], op: str) -> None:
        """x + c, x - c, c - x, x * c, c * x, x / c with a constant c equal across each channel."""
        a, b = args["self"], args["other"]
        alpha = 1.0 if args.get("alpha") is None else float(args["alpha"])
        if (a is DATA) == (b is DATA):
            raise InputError(f"{op}: only {name} of an input-dependent value and a constant is supported")
        c = np.asarray(b if a is DATA else a, dtype=float)
        if name == "add":
            scale, shift = (1.0, alpha * c) if a is DATA else (alpha, c)
        elif name == "sub":
            scale, shift = (1.0, -alpha * c) if a is DATA else (-alpha, c)
        elif name == "rsub":  # rsub(self, other, alpha) = other - alpha * self
            scale, shift = (-alpha, c) if a is DATA else (1.0, -alpha * c)
        elif name == "mul":
            scale, shift = c, 0.0
        elif a is DATA and args.get("rounding_mode") is None and np.all(c != 0):
            scale, shift = 1.0 / c, 0.0
        else:
            raise InputError(f"{op}: only division by a non-zero constant is supported")
        shape = self.shape(op)
        gamma, beta = (_per_channel(v, shape, op) for v in (scale, shift))
        self.chain.batchnorm(gamma, beta, np.zeros(shape[0]), np.ones(shape[0]), 0.0, op=op)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _per_channel(value: Any, shape: tuple[int, ...], op: str) -> np.ndarray:
    """The per-channel values of a constant broadcast over values of ``shape`` (a leading batch
    dimension of 1 allowed); :class:`InputError` unless it is equal across each channel."""
    v = np.asarray(value, dtype=float)
    if v.ndim == len(shape) + 1 and v.shape[0] == 1:
        v = v[0]
    try:
        full = np.broadcast_to(v, shape).reshape(shape[0], -1)
    except ValueError:
        raise InputError(f"{op}: a constant of shape {v.shape} does not broadcast to {shape}") from None
    if not np.all(full == full[:, :1]):
        raise InputError(f"{op}: only constants equal across each channel are supported")
    return full[:, 0].copy()


_HANDLERS: dict[str, Callable[[AtenChain, dict[str, Any], str], None]] = {
    "linear": AtenChain.linear, "matmul": AtenChain.matmul, "mm": AtenChain.matmul, "addmm": AtenChain.addmm,
    "conv2d": AtenChain.conv, "_convolution": AtenChain.conv, "convolution": AtenChain.conv, "relu": AtenChain.relu,
    "flatten": AtenChain.flatten, "view": AtenChain.view, "reshape": AtenChain.view, "_unsafe_view": AtenChain.view,
    "batch_norm": AtenChain.batch_norm, "_native_batch_norm_legit_no_training": AtenChain.batch_norm_tuple,
    "avg_pool2d": AtenChain.avg_pool2d,
    **{name: (lambda walk, args, op, name=name: walk.elementwise(name, args, op))
       for name in ("add", "sub", "rsub", "mul", "div")},
}


def bind(schema: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Arguments by schema name, defaults filled in."""
    out = {}
    for i, a in enumerate(schema.arguments):
        out[a.name] = args[i] if i < len(args) else kwargs.get(a.name, a.default_value)
    return out


def op_name(schema: Any) -> str:
    return schema.name.split("::")[-1]


def check_input_shape(walk_shape: tuple[Any, ...], input_shape: Sequence[int] | None) -> tuple[int, ...]:
    """The input shape of an exported program: its fixed dimensions must match ``input_shape``."""
    if input_shape is not None:
        given = tuple(int(s) for s in input_shape)
        if len(given) != len(walk_shape) or any(d is not None and d != g for d, g in zip(walk_shape, given)):
            raise InputError(f"input_shape {given} does not match the program's input shape "
                             f"{tuple('?' if d is None else d for d in walk_shape)}", param="input_shape")
        return given
    if any(d is None for d in walk_shape):
        raise InputError("the program's input has dynamic dimensions besides the batch: pass input_shape",
                         param="input_shape")
    return tuple(walk_shape)


def numeric(value: Any, torch: Any) -> Any:
    """Tensors as float64 arrays; everything else as it is."""
    return as_array(value) if isinstance(value, torch.Tensor) else value
