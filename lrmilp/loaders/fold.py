"""Exact folding of a network's affine pieces into lrmilp layers, shared by the ONNX and PyTorch loaders.

Inference-mode BatchNorm, average pooling and affine layers without a following ReLU add no regions,
so they are multiplied into a neighbouring affine layer.  Every fold here is exact (up to float
rounding); a fold that would change the function raises :class:`InputError` instead.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ..network import Conv2d, Dense, Layer, Network


def first_line(e: BaseException) -> str:
    """The first line of an exception's message, so that errors stay one line."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@contextmanager
def named(op: str) -> Iterator[None]:
    """Prefix every :class:`InputError` raised inside with the op it concerns."""
    try:
        yield
    except InputError as e:
        raise InputError(f"{op}: {e}") from None


def bn_affine(gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float,
              shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Flat (scale, shift), one entry per element of an input of ``shape``, with
    BatchNorm(x) = scale * x + shift in inference mode; channels are ``shape[0]``."""
    params = [np.asarray(p, dtype=float).reshape(-1) for p in (gamma, beta, mean, var)]
    channels = shape[0]
    if any(p.size != channels for p in params):
        raise InputError(f"BatchNorm parameters have sizes {[p.size for p in params]}, "
                         f"its input of shape {tuple(shape)} has {channels} channels")
    gamma, beta, mean, var = params
    if not np.all(var + eps > 0):
        raise InputError("BatchNorm running variance + eps must be positive")
    scale = gamma / np.sqrt(var + eps)
    per_channel = int(np.prod(shape[1:]))
    return np.repeat(scale, per_channel), np.repeat(beta - mean * scale, per_channel)


def _channel_values(v: np.ndarray, channels: int) -> np.ndarray | None:
    """The per-channel values of a flat (C, H, W)-ordered vector, or None if not constant per channel."""
    v = v.reshape(channels, -1)
    return v[:, 0] if np.all(v == v[:, :1]) else None


def _as_dense(layer: Layer) -> Dense:
    if isinstance(layer, Dense):
        return layer
    return Dense(layer.matrix.toarray(), layer.bias, relu=layer.relu, in_shape=layer.in_shape)


def fold_bn_into(layer: Layer, scale: np.ndarray, shift: np.ndarray) -> Layer:
    """``layer`` followed by x -> scale * x + shift (flat vectors over its output): a BatchNorm met
    after an affine layer and before any ReLU.  A conv stays a conv when the map is per channel."""
    if isinstance(layer, Conv2d):
        s, t = _channel_values(scale, layer.out_shape[0]), _channel_values(shift, layer.out_shape[0])
        if s is not None and t is not None:
            return Conv2d(s[:, None, None, None] * layer.W, s * layer.b + t, layer.in_shape,
                          stride=layer.stride, padding=layer.padding, relu=layer.relu)
        layer = _as_dense(layer)  # a BatchNorm1d over a flattened conv output scales each position
    return Dense(scale[:, None] * layer.W, scale * layer.b + shift, relu=layer.relu, in_shape=layer.in_shape)


def fold_bn_before(scale: np.ndarray, shift: np.ndarray, layer: Layer) -> Layer:
    """x -> scale * x + shift (flat vectors over ``layer``'s input) followed by ``layer``: a BatchNorm
    met after a ReLU.  Into a conv this is exact only without padding (padded zeros are not shifted)."""
    if isinstance(layer, Conv2d):
        if layer.padding and np.any(shift != 0):
            raise InputError(f"the BatchNorm before this convolution follows a ReLU (or the input), so it can "
                             f"only fold forwards, and with padding {layer.padding} that is inexact: the padded "
                             f"zeros are not normalised (move the BatchNorm before the ReLU, or use padding 0)")
        # The conv's input is (C, H, W), so the BatchNorm was per channel.
        channels = layer.in_shape[0]
        s, t = scale.reshape(channels, -1)[:, 0], shift.reshape(channels, -1)[:, 0]
        return Conv2d(layer.W * s[None, :, None, None], layer.b + np.einsum("oiyx,i->o", layer.W, t),
                      layer.in_shape, stride=layer.stride, padding=layer.padding, relu=layer.relu)
    return Dense(layer.W * scale[None, :], layer.b + layer.W @ shift, relu=layer.relu, in_shape=layer.in_shape)


def scale_layer(scale: np.ndarray, shift: np.ndarray, shape: Sequence[int]) -> Layer:
    """x -> scale * x + shift as a layer without ReLU: a 1x1 conv when per channel over (C, H, W)
    (sparse), else a diagonal dense layer."""
    if len(shape) == 3:
        s, t = _channel_values(scale, shape[0]), _channel_values(shift, shape[0])
        if s is not None and t is not None:
            return Conv2d(np.diag(s)[:, :, None, None], t, tuple(shape), relu=False)
    return Dense(np.diag(scale), shift, relu=False, in_shape=tuple(shape))


def avgpool_layer(in_shape: Sequence[int], kernel: tuple[int, int], stride: int, *,
                  divisor: int | None = None) -> Conv2d:
    """Average pooling without padding as a conv without ReLU: each channel averages its own window
    (block-diagonal kernel 1 / (kh kw), or 1 / ``divisor``)."""
    channels = in_shape[0]
    W = np.zeros((channels, channels) + tuple(kernel))
    W[np.arange(channels), np.arange(channels)] = 1.0 / (divisor or kernel[0] * kernel[1])
    return Conv2d(W, np.zeros(channels), tuple(in_shape), stride=stride, padding=0, relu=False)


def _compose_convs(first: Conv2d, second: Conv2d) -> Conv2d:
    """``second`` after ``first`` as one conv; exact because ``second`` has no padding, so it only reads
    real outputs of ``first``: kernel k1 + (k2 - 1) s1, stride s1 s2, padding of ``first``."""
    s1 = first.stride
    k1h, k1w = first.W.shape[2:]
    k2h, k2w = second.W.shape[2:]
    W = np.zeros((second.W.shape[0], first.W.shape[1], k1h + (k2h - 1) * s1, k1w + (k2w - 1) * s1))
    for ey in range(k2h):
        for ex in range(k2w):
            W[:, :, ey * s1:ey * s1 + k1h, ex * s1:ex * s1 + k1w] += np.einsum(
                "om,midc->oidc", second.W[:, :, ey, ex], first.W)
    b = second.b + np.einsum("omyx,m->o", second.W, first.b)
    return Conv2d(W, b, first.in_shape, stride=s1 * second.stride, padding=first.padding, relu=second.relu)


def compose(first: Layer, second: Layer) -> Layer:
    """``second`` applied to the output of ``first`` (which must have no ReLU) as one layer: a conv
    when both are convs and ``second`` has no padding, else a dense layer reading ``first``'s input."""
    if isinstance(first, Conv2d) and isinstance(second, Conv2d) and second.padding == 0:
        return _compose_convs(first, second)
    W = second.matrix @ first.matrix
    W = W.toarray() if sp.issparse(W) else np.asarray(W)
    b = np.asarray(second.matrix @ first.bias).reshape(-1) + second.bias
    return Dense(W, b, relu=second.relu, in_shape=first.in_shape)


def fold_linear(layers: Sequence[Layer]) -> list[Layer]:
    """The same function with every layer that has no ReLU merged into the layer after it; only the
    last layer may be left without a ReLU."""
    out: list[Layer] = []
    for layer in layers:
        if out and not out[-1].relu:
            layer = compose(out.pop(), layer)
        out.append(layer)
    return out


class LayerChain:
    """Turns a linear chain of tensor ops, fed in forward order, into lrmilp layers.

    ``shape`` is the current value's shape (no batch dimension).  BatchNorms fold into the affine
    layer before them, or, after a ReLU, into the one after them; :meth:`network` then merges layers
    without a ReLU into their successors, so the result computes exactly the chain's function.
    """

    def __init__(self, input_shape: Sequence[int]) -> None:
        self.input_shape = tuple(int(s) for s in input_shape)
        if not self.input_shape or any(s < 1 for s in self.input_shape):
            raise InputError(f"input shape {self.input_shape} must have positive sizes")
        self.shape = self.input_shape
        self.layers: list[Layer] = []
        self._layer_shape = self.input_shape  # output shape of the last layer, before any Flatten
        self._pending: tuple[np.ndarray, np.ndarray] | None = None  # BatchNorm after a ReLU, not yet folded

    def _push(self, layer: Layer) -> None:
        if self._pending is not None:
            layer = fold_bn_before(*self._pending, layer)
            self._pending = None
        self.layers.append(layer)
        self.shape = self._layer_shape = layer.out_shape

    def _flush(self) -> None:
        """Give a pending BatchNorm that no affine layer can absorb a layer of its own."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._push(scale_layer(*pending, self.shape))

    def dense(self, W: np.ndarray, b: np.ndarray, *, op: str) -> None:
        """Append y = W x + b (W of shape (out, in)) on a flat input."""
        with named(op):
            W = np.asarray(W, dtype=float)
            if len(self.shape) != 1:
                raise InputError(f"a dense layer needs a flat input, got shape {self.shape} (add a Flatten)")
            if W.ndim != 2 or W.shape[1] != self.shape[0]:
                raise InputError(f"weight of shape {W.shape} does not take an input of size {self.shape[0]}")
            self._push(Dense(W, b, relu=False, in_shape=self._layer_shape))

    def conv(self, W: np.ndarray, b: np.ndarray, *, stride: int, padding: int, op: str) -> None:
        """Append a 2-D convolution (square stride, symmetric zero padding) on a (C, H, W) input."""
        with named(op):
            if len(self.shape) != 3:
                raise InputError(f"a convolution needs a (C, H, W) input, got shape {self.shape}")
            self._push(Conv2d(W, b, self.shape, stride=stride, padding=padding, relu=False))

    def avgpool(self, kernel: tuple[int, int], stride: int, *, ceil_mode: bool = False,
                divisor: int | None = None, op: str) -> None:
        """Append average pooling without padding on a (C, H, W) input."""
        with named(op):
            if len(self.shape) != 3:
                raise InputError(f"average pooling needs a (C, H, W) input, got shape {self.shape}")
            # ceil_mode only matters when a partial window is left over at the border.
            if ceil_mode and any((n - k) % stride for n, k in zip(self.shape[1:], kernel)):
                raise InputError("average pooling with ceil_mode and partial border windows is not supported")
            self._push(avgpool_layer(self.shape, kernel, stride, divisor=divisor))

    def batchnorm(self, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float,
                  *, op: str) -> None:
        """Apply an inference-mode BatchNorm over channel axis ``shape[0]``."""
        with named(op):
            scale, shift = bn_affine(gamma, beta, mean, var, eps, self.shape)
            if self._pending is not None:  # BatchNorm after BatchNorm: compose the two maps
                s0, t0 = self._pending
                self._pending = (scale * s0, scale * t0 + shift)
            elif self.layers and not self.layers[-1].relu:
                self.layers[-1] = fold_bn_into(self.layers[-1], scale, shift)
            else:  # after a ReLU or on the input: fold into the next affine layer
                self._pending = (scale, shift)

    def relu(self, *, op: str) -> None:
        """Apply a ReLU to the current value."""
        self._flush()  # a BatchNorm between two ReLUs has no affine layer to fold into
        if not self.layers:
            raise InputError(f"{op}: a ReLU on the network input is not supported")
        self.layers[-1].relu = True

    def flatten(self) -> None:
        self.shape = (int(np.prod(self.shape)),)

    def network(self, *, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> Network:
        """The finished network, with layers lacking a ReLU merged into their successors."""
        self._flush()
        if not self.layers:
            raise InputError("the network has no affine layer (Linear, Gemm, Conv, ...)")
        return Network(fold_linear(self.layers), self.input_shape, lo=lo, hi=hi)
