"""The NPZ network format of CONTRACT.md §1: W0, b0, W1, b1, ..., input_shape, stride{k}, padding{k},
relu, lo, hi."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..network import Conv2d, Dense, Network


def load_npz(path: str | Path) -> Network:
    """Read a network; every malformed file raises :class:`InputError` naming the problem."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: np.asarray(data[key]) for key in data.files}
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise InputError(f"cannot read {path} as an NPZ network: {e}") from None
    return network_from_arrays(arrays, source=str(path))


def network_from_arrays(arrays: dict[str, np.ndarray], *, source: str = "arrays") -> Network:
    n_layers = 0
    while f"W{n_layers}" in arrays:
        n_layers += 1
    if n_layers == 0:
        raise InputError(f"{source}: no layer weights (expected keys W0, b0, ...)")
    for k in range(n_layers):
        if f"b{k}" not in arrays:
            raise InputError(f"{source}: W{k} has no bias b{k}")
    if "input_shape" in arrays:
        shape = tuple(int(s) for s in np.asarray(arrays["input_shape"]).reshape(-1))
    else:
        w0 = arrays["W0"]
        shape = (w0.shape[1],) if w0.ndim == 2 else None
        if shape is None:
            raise InputError(f"{source}: a conv first layer needs input_shape (C, H, W)")
    if any(s < 1 for s in shape):
        raise InputError(f"{source}: input_shape {shape} has a non-positive entry")
    relu = arrays.get("relu")
    if relu is None:
        relu = np.array([1] * (n_layers - 1) + [0])
    relu = np.asarray(relu).reshape(-1)
    if relu.size != n_layers:
        raise InputError(f"{source}: relu has {relu.size} entries for {n_layers} layers")
    layers = []
    cur_shape = shape
    for k in range(n_layers):
        W, b = np.asarray(arrays[f"W{k}"]), np.asarray(arrays[f"b{k}"])
        if not (np.issubdtype(W.dtype, np.number) and np.issubdtype(b.dtype, np.number)):
            raise InputError(f"{source}: W{k}/b{k} are not numeric")
        try:
            if W.ndim == 4:
                if len(cur_shape) != 3:
                    raise InputError(f"conv layer {k} needs a (C, H, W) input, got shape {cur_shape}")
                stride = int(np.asarray(arrays.get(f"stride{k}", 1)).reshape(-1)[0])
                padding = int(np.asarray(arrays.get(f"padding{k}", 0)).reshape(-1)[0])
                layer = Conv2d(W, b, cur_shape, stride=stride, padding=padding, relu=bool(relu[k]))
            elif W.ndim == 2:
                in_size = int(np.prod(cur_shape))
                if W.shape[1] != in_size:
                    raise InputError(f"layer {k} weight W{k} has {W.shape[1]} columns, "
                                     f"previous layer gives {in_size} values")
                layer = Dense(W, b, relu=bool(relu[k]), in_shape=cur_shape)
            else:
                raise InputError(f"W{k} has {W.ndim} dimensions (expected 2 for dense, 4 for conv)")
        except InputError as e:
            raise InputError(f"{source}: {e}") from None
        layers.append(layer)
        cur_shape = layer.out_shape
    lo = arrays.get("lo")
    hi = arrays.get("hi")
    try:
        return Network(layers, shape, lo=None if lo is None else np.asarray(lo, dtype=float),
                       hi=None if hi is None else np.asarray(hi, dtype=float))
    except InputError as e:
        raise InputError(f"{source}: {e}") from None


def save_npz(net: Network, path: str | Path) -> None:
    """Write ``net`` in the NPZ form of CONTRACT.md (written to a temporary file, then renamed)."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {"input_shape": np.array(net.input_shape, dtype=np.int64),
                                     "relu": np.array([int(layer.relu) for layer in net.layers], dtype=np.int64)}
    for k, layer in enumerate(net.layers):
        arrays[f"W{k}"] = layer.W
        arrays[f"b{k}"] = layer.b
        if isinstance(layer, Conv2d):
            arrays[f"stride{k}"] = np.array(layer.stride)
            arrays[f"padding{k}"] = np.array(layer.padding)
    if net.lo is not None:
        arrays["lo"] = np.asarray(net.lo, dtype=float)
    if net.hi is not None:
        arrays["hi"] = np.asarray(net.hi, dtype=float)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
