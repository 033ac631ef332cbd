"""Readers and writers of network files: NPZ (CONTRACT.md §1), ONNX and PyTorch."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..network import Network
from .npz import load_npz, save_npz

__all__ = ["load_network", "load_npz", "save_npz"]


def load_network(path: str | Path, *, trust: bool = False) -> Network:
    """Load a network from ``.npz``, ``.onnx`` or ``.pt``/``.pth`` (by file ending).

    Parameters
    ----------
    path : str or Path
        The model file (CONTRACT.md section 1).
    trust : bool
        Allow unpickling a whole PyTorch module (runs code from the file); without it only
        ``weights_only`` loads are attempted.

    Returns
    -------
    Network

    Raises
    ------
    InputError
        Anything unreadable, malformed or too large.

    Examples
    --------
    >>> load_network("models/random-4-12-12-s0.npz").widths  # doctest: +SKIP
    [12, 12]
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz(path)
    if suffix == ".onnx":
        from .onnx import load_onnx
        return load_onnx(path)
    if suffix in (".pt", ".pth"):
        from .torch import load_torch
        return load_torch(path, trust=trust)
    raise InputError(f"unknown network file type '{suffix}' for {path} (expected .npz, .onnx, .pt or .pth)")
