"""Solver-independent feed-forward ReLU network: dense and Conv2d layers.

A :class:`Network` is a list of affine layers, each optionally followed by a ReLU.  Every layer
maps a flat input vector to a flat output vector (conv layers read and write (C, H, W) in C order,
as ``torch.flatten`` does), so the whole network is a composition of affine maps and ReLUs.  Conv
layers keep their kernels, strides and shapes for CNN analyses and are lowered to ``scipy.sparse``
matrices for everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Sequence, Union

import numpy as np
import scipy.sparse as sp

from .errors import InputError
from .validation import MAX_LAYER_ENTRIES, integer_array, real_array

Matrix = Union[np.ndarray, sp.csr_matrix]


def _check_finite(name: str, arr: np.ndarray) -> None:
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or infinite values")


def _shape(name: str, value) -> tuple[int, ...]:
    """A shape as a tuple of ints; InputError for non-integer entries (2.5 must not become 2)."""
    return tuple(int(s) for s in integer_array(name, value).reshape(-1))


@dataclass(eq=False)
class Dense:
    """y = W x + b with W of shape (out, in)."""

    W: np.ndarray
    b: np.ndarray
    relu: bool = True
    in_shape: tuple[int, ...] | None = None  # shape the layer's input is read in (flattened)

    def __post_init__(self) -> None:
        self.W = real_array("dense weight", self.W)
        self.b = real_array("dense bias", self.b).reshape(-1)
        if self.W.ndim != 2:
            raise InputError(f"dense weight must be 2-D (out, in), got shape {self.W.shape}")
        if self.W.size > MAX_LAYER_ENTRIES:
            raise InputError(f"dense weight has {self.W.size:,} entries, more than the limit of {MAX_LAYER_ENTRIES:,}")
        if self.b.shape != (self.W.shape[0],):
            raise InputError(f"dense bias has shape {self.b.shape}, expected ({self.W.shape[0]},)")
        self.in_shape = (self.W.shape[1],) if self.in_shape is None else _shape("dense input shape", self.in_shape)
        _check_finite("dense weight", self.W)
        _check_finite("dense bias", self.b)

    @property
    def in_size(self) -> int:
        return self.W.shape[1]

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.W.shape[0],)

    @property
    def out_size(self) -> int:
        return self.W.shape[0]

    @property
    def matrix(self) -> np.ndarray:
        return self.W

    @property
    def bias(self) -> np.ndarray:
        return self.b


@dataclass(eq=False)
class Conv2d:
    """2-D convolution (cross-correlation, as torch) with square stride and zero padding.

    ``W`` has shape (out_ch, in_ch, kh, kw); ``in_shape`` is (C, H, W) of the input.
    """

    W: np.ndarray
    b: np.ndarray
    in_shape: tuple[int, int, int]
    stride: int = 1
    padding: int = 0
    relu: bool = True
    _matrix: sp.csr_matrix | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.W = real_array("conv weight", self.W)
        self.b = real_array("conv bias", self.b).reshape(-1)
        self.in_shape = _shape("conv input shape", self.in_shape)
        (self.stride,), (self.padding,) = _shape("conv stride", self.stride), _shape("conv padding", self.padding)
        if self.W.ndim != 4:
            raise InputError(f"conv weight must be 4-D (out_ch, in_ch, kh, kw), got shape {self.W.shape}")
        if len(self.in_shape) != 3:
            raise InputError(f"conv input shape must be (C, H, W), got {self.in_shape}")
        if self.W.shape[1] != self.in_shape[0]:
            raise InputError(
                f"conv weight expects {self.W.shape[1]} input channels, input has {self.in_shape[0]}")
        if self.b.shape != (self.W.shape[0],):
            raise InputError(f"conv bias has shape {self.b.shape}, expected ({self.W.shape[0]},)")
        if self.stride < 1 or self.padding < 0:
            raise InputError(f"conv stride must be >= 1 and padding >= 0, got {self.stride}, {self.padding}")
        oh, ow = self.out_shape[1:]
        if oh < 1 or ow < 1:
            raise InputError(f"conv kernel {self.W.shape[2:]} does not fit input {self.in_shape}")
        lowered = self.W.size * oh * ow  # nonzeros of the lowered matrix, at most: checked before building it
        if lowered > MAX_LAYER_ENTRIES:
            raise InputError(f"conv layer on input {self.in_shape} has {lowered:,} weights once unrolled, more "
                             f"than the limit of {MAX_LAYER_ENTRIES:,}")
        _check_finite("conv weight", self.W)
        _check_finite("conv bias", self.b)

    @property
    def in_size(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def out_shape(self) -> tuple[int, int, int]:
        _, h, w = self.in_shape
        kh, kw = self.W.shape[2:]
        oh = (h + 2 * self.padding - kh) // self.stride + 1
        ow = (w + 2 * self.padding - kw) // self.stride + 1
        return (self.W.shape[0], oh, ow)

    @property
    def out_size(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def matrix(self) -> sp.csr_matrix:
        """The convolution as a sparse (out_size, in_size) matrix."""
        if self._matrix is None:
            self._matrix = self._lower()
        return self._matrix

    @property
    def bias(self) -> np.ndarray:
        return np.repeat(self.b, self.out_shape[1] * self.out_shape[2])

    def _lower(self) -> sp.csr_matrix:
        oc, ic, kh, kw = self.W.shape
        c_in, h, w = self.in_shape
        _, oh, ow = self.out_shape
        # Index grids over (o, i, kh, kw, oy, ox); entries falling into padding are dropped.
        o, i, dy, dx, oy, ox = np.meshgrid(np.arange(oc), np.arange(ic), np.arange(kh), np.arange(kw),
                                           np.arange(oh), np.arange(ow), indexing="ij")
        y = oy * self.stride - self.padding + dy
        x = ox * self.stride - self.padding + dx
        keep = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        rows = ((o * oh + oy) * ow + ox)[keep]
        cols = ((i * h + y) * w + x)[keep]
        vals = np.broadcast_to(self.W[:, :, :, :, None, None], o.shape)[keep]
        mat = sp.csr_matrix((vals, (rows, cols)), shape=(oc * oh * ow, c_in * h * w))
        mat.sum_duplicates()
        return mat


Layer = Union[Dense, Conv2d]


class Network:
    """A feed-forward network: affine layers, each optionally followed by a ReLU.

    Guarantees after construction: consecutive layer sizes match, all parameters are finite, and
    ``input_shape`` is the shape of one input ((n0,) for an MLP, (C, H, W) for a CNN).
    """

    def __init__(self, layers: Sequence[Layer], input_shape: Sequence[int] | None = None,
                 lo: np.ndarray | float | None = None, hi: np.ndarray | float | None = None) -> None:
        if not layers:
            raise InputError("network has no layers")
        self.layers: list[Layer] = list(layers)
        first = self.layers[0]
        self.input_shape = _shape("input shape", input_shape if input_shape is not None else first.in_shape)
        if not self.input_shape or min(self.input_shape) < 1:
            raise InputError(f"input shape {self.input_shape} must have positive entries")
        if int(np.prod(self.input_shape)) != first.in_size:
            raise InputError(f"input shape {self.input_shape} does not match layer 0 input size {first.in_size}")
        for k in range(1, len(self.layers)):
            prev, cur = self.layers[k - 1], self.layers[k]
            if prev.out_size != cur.in_size:
                raise InputError(f"layer {k} expects {cur.in_size} inputs but layer {k - 1} gives {prev.out_size}")
        self.lo, self.hi = lo, hi  # default input box stored with the model, if any

    # --- sizes -------------------------------------------------------------------------------
    @property
    def input_dim(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def relu_layers(self) -> list[int]:
        return [k for k, layer in enumerate(self.layers) if layer.relu]

    @property
    def widths(self) -> list[int]:
        """Widths of the ReLU layers, in order."""
        return [self.layers[k].out_size for k in self.relu_layers]

    @property
    def neurons(self) -> int:
        return int(sum(self.widths))

    @property
    def output_dim(self) -> int:
        return self.layers[-1].out_size

    @cached_property
    def relu_offsets(self) -> dict[int, int]:
        """Layer index -> offset of its first neuron in flat pattern vectors."""
        out, off = {}, 0
        for k in self.relu_layers:
            out[k] = off
            off += self.layers[k].out_size
        return out

    @property
    def is_cnn(self) -> bool:
        return any(isinstance(layer, Conv2d) for layer in self.layers)

    def describe(self) -> dict:
        return {"input_dim": self.input_dim, "input_shape": list(self.input_shape), "widths": self.widths,
                "neurons": self.neurons, "output_dim": self.output_dim,
                "layers": [_layer_summary(layer) for layer in self.layers]}

    # --- evaluation --------------------------------------------------------------------------
    def _as_batch(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim == 1 or (X.ndim == len(self.input_shape) and X.shape == self.input_shape):
            X = X.reshape(1, -1)
        X = X.reshape(X.shape[0], -1)
        if X.shape[1] != self.input_dim:
            raise InputError(f"inputs have {X.shape[1]} features, network expects {self.input_dim}")
        return X

    def preactivations(self, X: np.ndarray) -> list[np.ndarray]:
        """Pre-activations (batch, out_size) of every layer for a batch of inputs."""
        h = self._as_batch(X)
        out = []
        for layer in self.layers:
            g = np.asarray(layer.matrix @ h.T).T + layer.bias
            out.append(g)
            h = np.maximum(g, 0.0) if layer.relu else g
        return out

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Network outputs (batch, output_dim), after the last layer's ReLU when it has one."""
        out = self.preactivations(X)[-1]
        return np.maximum(out, 0.0) if self.layers[-1].relu else out

    def patterns(self, X: np.ndarray) -> np.ndarray:
        """Activation patterns (batch, neurons) as booleans: True where the pre-activation is > 0."""
        pre = self.preactivations(X)
        if not self.relu_layers:
            return np.zeros((pre[0].shape[0], 0), dtype=bool)
        return np.concatenate([pre[k] > 0 for k in self.relu_layers], axis=1)

    # --- regions -----------------------------------------------------------------------------
    def region_map(self, pattern: np.ndarray, *, origin: np.ndarray | None = None,
                   basis: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Affine description of the region of an activation pattern.

        With x = origin + basis @ u (identity by default), returns ``(A, c, F, f)`` where row i of
        ``A u + c`` is the pre-activation of ReLU neuron i (flat order) and ``F u + f`` is the network
        output, both exact on the closure of the pattern's region.
        """
        pattern = np.asarray(pattern, dtype=bool).reshape(-1)
        if pattern.size != self.neurons:
            raise InputError(f"pattern has {pattern.size} entries, network has {self.neurons} ReLU neurons")
        n0 = self.input_dim
        M = np.eye(n0) if basis is None else np.asarray(basis, dtype=float)
        m = np.zeros(n0) if origin is None else np.asarray(origin, dtype=float)
        rows_A, rows_c = [], []
        for k, layer in enumerate(self.layers):
            A = np.asarray(layer.matrix @ M)
            c = np.asarray(layer.matrix @ m).reshape(-1) + layer.bias
            if layer.relu:
                off = self.relu_offsets[k]
                s = pattern[off:off + layer.out_size]
                rows_A.append(A)
                rows_c.append(c)
                M, m = A * s[:, None], c * s
            else:
                M, m = A, c
        d = M.shape[1]
        A_all = np.vstack(rows_A) if rows_A else np.zeros((0, d))
        c_all = np.concatenate(rows_c) if rows_c else np.zeros(0)
        return A_all, c_all, M, m


BALANCE_EXPONENT = 64
""":func:`balanced` rescales a row only when its largest entry is outside [2^-64, 2^64]: such rows would
overflow or underflow when squared norms are formed; ordinary rows are left as they are (so the solver
peers' unnormalised margins keep their meaning)."""


def balanced(net: Network) -> Network:
    """The network up to its last ReLU layer, extreme neuron rows rescaled by powers of two.

    Each ReLU (and hidden linear) layer's rows — per neuron for a dense layer, per output channel for a
    convolution, bias included — whose largest entry (after the scaling of the layer before) lies
    outside [2^-BALANCE_EXPONENT, 2^BALANCE_EXPONENT] are multiplied by 2^-e so that it lies in [1/2, 1),
    and the next layer's matching input columns by 2^e.  relu(2^-e z) = 2^-e relu(z) and scaling by a
    power of two is exact in binary floating point, so every pre-activation keeps its sign, every
    hyperplane stays where it is, and the activation patterns and regions are *identical*; but weights
    scaled by 1e200 or 1e-200 no longer overflow or underflow when norms are formed.  The exponents are
    combined per entry (``np.ldexp`` of the mantissas), so no intermediate overflows either.  Entries
    more than 2^-1074 below their row's largest vanish — below the arithmetic's reach anyway.  Layers
    after the last ReLU create no regions and are dropped.

    Raises
    ------
    InputError
        If a layer kind is unknown.
    """
    relu = net.relu_layers
    if not relu:
        return net
    layers = net.layers[:relu[-1] + 1]
    out: list[Layer] = []
    e_in = np.zeros(net.input_dim, dtype=np.int64)  # exponent by which each input unit of the layer was scaled
    for k, layer in enumerate(layers):
        nxt = layers[k + 1] if k + 1 < len(layers) else None
        m_W, x_W = np.frexp(layer.W)
        m_b, x_b = np.frexp(layer.b)
        if isinstance(layer, Dense):
            eff = np.where(m_W != 0, x_W + e_in[None, :], np.iinfo(np.int64).min // 2)
            unit = eff.max(axis=1, initial=np.iinfo(np.int64).min // 2)
        elif isinstance(layer, Conv2d):
            C, H, Wd = layer.in_shape
            e_ch = e_in.reshape(C, H * Wd)[:, 0]  # constant per channel (ensured by the previous layer)
            eff = np.where(m_W != 0, x_W + e_ch[None, :, None, None], np.iinfo(np.int64).min // 2)
            unit = eff.reshape(eff.shape[0], -1).max(axis=1, initial=np.iinfo(np.int64).min // 2)
        else:  # pragma: no cover - only Dense and Conv2d exist
            raise InputError(f"cannot rescale layer of type {type(layer).__name__}")
        unit = np.maximum(unit, np.where(m_b != 0, x_b, np.iinfo(np.int64).min // 2))
        unit = np.where(unit < -100_000, 0, unit)  # an all-zero unit keeps its scale
        unit = np.where(np.abs(unit) > BALANCE_EXPONENT, unit, 0)  # ordinary rows keep their scale
        if isinstance(nxt, Conv2d) and isinstance(layer, Dense):
            # The next convolution shares one kernel over positions: one exponent per channel.
            C = nxt.in_shape[0]
            unit = np.repeat(unit.reshape(C, -1).max(axis=1), unit.size // C)
        if isinstance(layer, Dense):
            W = np.ldexp(m_W, x_W + e_in[None, :] - unit[:, None])
            new = Dense(W, np.ldexp(m_b, x_b - unit), relu=layer.relu, in_shape=layer.in_shape)
            e_in = unit
        else:
            W = np.ldexp(m_W, x_W + e_ch[None, :, None, None] - unit[:, None, None, None])
            new = Conv2d(W, np.ldexp(m_b, x_b - unit), in_shape=layer.in_shape, stride=layer.stride,
                         padding=layer.padding, relu=layer.relu)
            e_in = np.repeat(unit, layer.out_shape[1] * layer.out_shape[2])
        out.append(new)
    return Network(out, net.input_shape, lo=net.lo, hi=net.hi)


def _layer_summary(layer: Layer) -> dict:
    if isinstance(layer, Conv2d):
        return {"type": "conv2d", "kernel": list(layer.W.shape), "stride": layer.stride, "padding": layer.padding,
                "in_shape": list(layer.in_shape), "out_shape": list(layer.out_shape), "relu": bool(layer.relu)}
    return {"type": "dense", "shape": list(layer.W.shape), "relu": bool(layer.relu)}


def pack_pattern(pattern: np.ndarray) -> bytes:
    """Pack a boolean pattern into bytes (numpy's big-endian bit order)."""
    return np.packbits(np.asarray(pattern, dtype=bool)).tobytes()


def unpack_pattern(data: bytes, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:n].astype(bool)


def random_mlp(widths: Sequence[int], *, seed: int = 0, weight_std: float = 1.0, bias_std: float = 0.5,
               last_relu: bool = True) -> Network:
    """A random MLP n0-n1-...-nL with N(0, weight_std^2) weights and N(0, bias_std^2) biases.

    Parameters
    ----------
    widths : sequence of int
        ``widths[0]`` is the input size, then the layer widths.
    seed : int
        Seed of the draw.
    weight_std, bias_std : float
        Standard deviations.
    last_relu : bool
        Every layer is followed by a ReLU, the last one too unless false.

    Returns
    -------
    Network

    Examples
    --------
    >>> random_mlp([3, 8, 8], seed=0).widths
    [8, 8]
    """
    rng = np.random.default_rng(seed)
    layers = []
    for k in range(1, len(widths)):
        relu = last_relu or k < len(widths) - 1
        layers.append(Dense(rng.normal(0, weight_std, (widths[k], widths[k - 1])),
                            rng.normal(0, bias_std, widths[k]), relu=relu))
    return Network(layers, (widths[0],))
