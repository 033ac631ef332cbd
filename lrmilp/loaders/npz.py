"""The NPZ network format of CONTRACT.md §1: W0, b0, W1, b1, ..., input_shape, stride{k}, padding{k},
relu, lo, hi."""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..network import Conv2d, Dense, Network
from ..validation import MAX_LAYER_ENTRIES, MAX_NETWORK_ENTRIES, integer_array, npz_headers, real_array

_LAYER_KEY = re.compile(r"^(W|b|stride|padding)(\d+)$")


def _check_declared_sizes(path: Path) -> None:
    """Refuse, from the arrays' headers alone, a file declaring more values than the limits allow (so a
    tiny compressed file cannot make us allocate terabytes) or non-numeric arrays."""
    headers = npz_headers(path)
    total = 0
    for key, (shape, dtype) in headers.items():
        n = math.prod(shape)
        if _LAYER_KEY.match(key) and n > MAX_LAYER_ENTRIES:
            raise InputError(f"{path}: {key} declares shape {shape}: {n:,} values, more than the limit of "
                             f"{MAX_LAYER_ENTRIES:,} per layer")
        total += n
        if dtype.kind not in "biuf":
            raise InputError(f"{path}: {key} must hold real numbers, got dtype {dtype}")
    if total > MAX_NETWORK_ENTRIES:
        raise InputError(f"{path}: the arrays declare {total:,} values, more than the limit of "
                         f"{MAX_NETWORK_ENTRIES:,} per network")


def load_npz(path: str | Path) -> Network:
    """Read a network; every malformed file raises :class:`InputError` naming the problem.

    Array sizes are checked from their headers before any array is read (limits in
    :mod:`lrmilp.validation`)."""
    path = Path(path)
    try:
        _check_declared_sizes(path)
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: np.asarray(data[key]) for key in data.files}
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise InputError(f"cannot read {path} as an NPZ network: {e}") from None
    return network_from_arrays(arrays, source=str(path))


def _layer_count(arrays: dict[str, np.ndarray], source: str) -> int:
    """L for keys W0, b0, ..., W{L-1}, b{L-1}; InputError naming the first missing key of a gap, or a
    stride/padding key of no layer."""
    numbered = [(m.group(1), int(m.group(2))) for m in map(_LAYER_KEY.match, arrays) if m]
    if not any(kind == "W" for kind, _ in numbered):
        raise InputError(f"{source}: no layer weights (expected keys W0, b0, ...)")
    n_layers = 1 + max(k for kind, k in numbered if kind in ("W", "b"))
    for k in range(n_layers):
        for kind in ("W", "b"):
            if f"{kind}{k}" not in arrays:
                raise InputError(f"{source}: key {kind}{k} is missing (layer keys must run W0, b0, W1, b1, ... "
                                 f"without gaps up to the last layer, W{n_layers - 1}/b{n_layers - 1})")
    for kind, k in numbered:
        if k >= n_layers:
            raise InputError(f"{source}: {kind}{k} belongs to no layer (the file has {n_layers} layers)")
    return n_layers


def network_from_arrays(arrays: dict[str, np.ndarray], *, source: str = "arrays") -> Network:
    """The network of the NPZ keys of CONTRACT.md §1; InputError for any malformed or missing key."""
    n_layers = _layer_count(arrays, source)
    for key in ("input_shape", "relu", "lo", "hi"):
        if key in arrays:
            try:
                real_array(key, arrays[key])
            except InputError as e:
                raise InputError(f"{source}: {e}") from None
    if "input_shape" in arrays:
        try:
            shape = tuple(int(s) for s in integer_array("input_shape", arrays["input_shape"]).reshape(-1))
        except InputError as e:
            raise InputError(f"{source}: {e}") from None
        if not shape:
            raise InputError(f"{source}: input_shape is empty")
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
    if not np.all((relu == 0) | (relu == 1)):
        raise InputError(f"{source}: relu must hold 0 or 1 per layer, got {relu.tolist()}")
    layers = []
    cur_shape = shape
    for k in range(n_layers):
        W, b = np.asarray(arrays[f"W{k}"]), np.asarray(arrays[f"b{k}"])
        try:
            real_array(f"W{k}", W)
            real_array(f"b{k}", b)
            if W.ndim == 4:
                if len(cur_shape) != 3:
                    raise InputError(f"conv layer {k} needs a (C, H, W) input, got shape {cur_shape}")
                stride = _scalar_int(arrays, f"stride{k}", 1)
                padding = _scalar_int(arrays, f"padding{k}", 0)
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
    n0 = layers[0].in_size
    for name, side in (("lo", lo), ("hi", hi)):
        if side is None:
            continue
        side = np.asarray(side, dtype=float).reshape(-1)
        if side.size not in (1, n0):
            raise InputError(f"{source}: {name} has {side.size} entries, expected 1 or {n0} (the input size)")
        if np.any(np.isnan(side)):
            raise InputError(f"{source}: {name} contains NaN")
    if (lo is None) != (hi is None):
        raise InputError(f"{source}: has {'lo' if hi is None else 'hi'} but not {'hi' if hi is None else 'lo'}")
    try:
        return Network(layers, shape, lo=None if lo is None else np.asarray(lo, dtype=float),
                       hi=None if hi is None else np.asarray(hi, dtype=float))
    except InputError as e:
        raise InputError(f"{source}: {e}") from None


def _scalar_int(arrays: dict[str, np.ndarray], key: str, default: int) -> int:
    """The integer stored under ``key`` (a scalar or one-entry array), or ``default`` when absent."""
    if key not in arrays:
        return default
    values = integer_array(key, arrays[key]).reshape(-1)
    if values.size != 1:
        raise InputError(f"{key} must be one integer, got {values.size} values", param=key)
    return int(values[0])


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
