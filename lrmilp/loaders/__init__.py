"""Readers and writers of network files: NPZ (CONTRACT.md §1), ONNX and PyTorch."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..network import Network
from .npz import load_npz, save_npz

__all__ = ["load_network", "load_npz", "save_npz"]


def load_network(path: str | Path, *, trust: bool = False) -> Network:
    """Load a network from ``.npz``, ``.onnx`` or ``.pt``/``.pth`` (by file ending).

    ``trust`` allows unpickling a whole PyTorch module (arbitrary code); without it only
    ``weights_only`` loads are attempted.  Raises :class:`InputError` for anything unreadable.
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
