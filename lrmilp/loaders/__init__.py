"""Readers and writers of network files: NPZ (CONTRACT.md §1), ONNX and PyTorch.

A model built in Python (any PyTorch ``nn.Module``) becomes a :class:`~lrmilp.network.Network` with
:func:`network_from_module`, and a file for the command line with :func:`save_npz`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ..network import Network
from .npz import load_npz, save_npz
from .torch import module_from_network, network_from_module

__all__ = ["load_network", "load_npz", "module_from_network", "network_from_module", "save_npz"]

_TORCH_ENDINGS = (".pt", ".pth", ".pt2")


def _shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    """``input_shape`` as a tuple of positive ints, or InputError naming it."""
    try:
        dims = tuple(int(d) for d in input_shape)
        exact = all(float(d) == int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise InputError(f"input_shape must be a sequence of positive integers, got {input_shape!r}",
                         param="input_shape") from None
    if not dims or not exact or any(d < 1 for d in dims):
        raise InputError(f"input_shape must be positive integers, got {input_shape!r}", param="input_shape")
    return dims


def load_network(path: str | Path, *, trust: bool = False, input_shape: Sequence[int] | None = None) -> Network:
    """Load a network from ``.npz``, ``.onnx``, ``.pt``/``.pth`` or ``.pt2`` (by file ending).

    Parameters
    ----------
    path : str or Path
        The model file (CONTRACT.md section 1): NPZ, ONNX, a PyTorch ``state_dict``, a whole module,
        a TorchScript archive or a ``torch.export`` program (see :func:`lrmilp.loaders.torch.load_torch`).
    trust : bool
        Allow the PyTorch formats whose loading runs code from the file (a whole pickled module,
        TorchScript, ``torch.export``); without it only ``weights_only`` loads are attempted.
    input_shape : sequence of int, optional
        The shape of one input without the batch dimension, e.g. ``(1, 28, 28)``.  A PyTorch model
        that starts with a convolution needs it; for a PyTorch MLP it gives the flattened input its
        shape.  ``.npz``, ``.onnx`` and ``.pt2`` files record their input shape, which must equal it.

    Returns
    -------
    Network

    Raises
    ------
    InputError
        Anything unreadable, malformed or too large, or an ``input_shape`` the file contradicts.

    Examples
    --------
    >>> load_network("models/random-4-12-12-s0.npz").widths
    [12, 12]
    >>> load_network("models/random-4-12-12-s0.npz", input_shape=(4,)).input_shape
    (4,)
    """
    path = Path(path)
    shape = None if input_shape is None else _shape(input_shape)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    suffix = path.suffix.lower()
    if suffix in _TORCH_ENDINGS:
        from .torch import load_torch
        return load_torch(path, trust=trust, input_shape=shape)
    if suffix == ".npz":
        net = load_npz(path)
    elif suffix == ".onnx":
        from .onnx import load_onnx
        net = load_onnx(path)
    else:
        raise InputError(f"unknown network file type '{suffix}' for {path} (expected .npz, .onnx, .pt, .pth or "
                         f".pt2)")
    if shape is not None and tuple(net.input_shape) != shape:
        raise InputError(f"input_shape {shape} does not match the input shape {tuple(net.input_shape)} that {path} "
                         f"records (a {suffix} file carries its own input shape: leave input_shape out)",
                         param="input_shape")
    return net
