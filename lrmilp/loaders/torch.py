"""PyTorch reader and writer.

Files read by :func:`load_torch`: the ``state_dict`` of an ``nn.Sequential`` of Linear and ReLU layers
(no code runs), and, only with ``trust=True`` (loading runs code from the file), a whole module saved
with ``torch.save(model)``, a TorchScript archive (``torch.jit.save``) or a ``torch.export`` program
(``torch.export.save``, ``.pt2``).

Modules read by :func:`network_from_module`: an ``nn.Sequential`` of Linear, Conv2d, ReLU, Flatten,
BatchNorm1d/2d (inference form), AvgPool2d, Dropout, Identity and nested Sequentials, read module by
module; any other ``nn.Module`` through ``torch.export`` (its forward must be a chain of the ops of
:mod:`lrmilp.loaders.aten`); a TorchScript module; an ``ExportedProgram``.  A CNN's input shape comes
from the ``input_shape=`` argument or the model's ``input_shape`` attribute (which
:func:`module_from_network` sets).
"""

from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..network import Conv2d, Network
from .aten import as_array, exported_program_type, import_torch, pair, square
from .fold import LayerChain, first_line
from .torch_graph import network_from_custom_module, network_from_exported, network_from_torchscript

_STATE_KEY = re.compile(r"(\d+)\.(weight|bias)")
_CONVERT = ("build the model in Python, load the state_dict into it and convert it: "
            "save_npz(network_from_module(model, input_shape=...), 'model.npz') (both from lrmilp.loaders), "
            "or save it as TorchScript (torch.jit.save(torch.jit.script(model), 'model.pt')) or with "
            "torch.export.save (.pt2)")


def _archive_kind(path: Path) -> str | None:
    """'TorchScript' or 'torch.export' for those zip archives (by their entries), else None."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = {name.split("/", 1)[-1] for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError):
        return None
    if "constants.pkl" in names:
        return "TorchScript"
    if "archive_format" in names:
        return "torch.export"
    return None


def load_torch(path: str | Path, *, trust: bool = False, input_shape: Sequence[int] | None = None) -> Network:
    """Read a PyTorch file as a network.

    Parameters
    ----------
    path : str or Path
        A ``state_dict`` (always read with ``weights_only=True``); with ``trust=True`` also a whole
        module (``torch.save(model)``), a TorchScript archive (``torch.jit.save``) or a
        ``torch.export`` program (``torch.export.save``).
    trust : bool
        Allow the formats whose loading runs code from the file (unpickling, ``torch.jit.load``,
        ``torch.export.load``).
    input_shape : sequence of int, optional
        The shape of one input without the batch dimension, e.g. ``(1, 28, 28)``: needed by a model
        that starts with a convolution (unless it is a ``torch.export`` program, which records it).

    Returns
    -------
    Network

    Raises
    ------
    InputError
        Anything unreadable or unsupported, naming the file and, where there is one, the layer or op.
    """
    torch = import_torch()
    path = Path(path)
    kind = _archive_kind(path)
    if kind is not None:
        if not trust:
            raise InputError(f"{path} is a {kind} archive: loading it runs code from the file, so pass --trust "
                             f"(trust=True) if you trust it")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated in recent torch
                if kind == "TorchScript":
                    obj = torch.jit.load(str(path), map_location="cpu")
                else:
                    obj = torch.export.load(path)
        except Exception as e:  # the loaders raise many types for damaged archives
            raise InputError(f"cannot read {path} as a {kind} archive: {first_line(e)}") from None
    else:
        obj = _torch_load(torch, path, trust)
    try:
        if isinstance(obj, (torch.nn.Module, exported_program_type(torch))):
            return network_from_module(obj, input_shape=input_shape)
        if isinstance(obj, Mapping):
            return _network_from_state_dict(torch, obj, input_shape=input_shape)
    except InputError as e:
        raise InputError(f"{path}: {e}", param=e.param) from None
    raise InputError(f"{path} holds a {type(obj).__name__}, not an nn.Module or a state_dict")


def _torch_load(torch: Any, path: Path, trust: bool) -> Any:
    """``torch.load`` with ``weights_only=True``, then, only if trusted, without."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch.load raises many unrelated types for bad files
        # A torch.save zip archive that weights_only refuses holds pickled objects such as a module.
        if not trust and zipfile.is_zipfile(path):
            raise InputError(f"{path} holds a pickled PyTorch object (a whole model?); unpickling runs code from "
                             f"the file, so pass --trust (trust=True) if you trust it, or save model.state_dict() "
                             f"instead") from None
        if not trust:
            raise InputError(f"cannot read {path} as a PyTorch file: neither a torch.save archive nor old-format "
                             f"weights (an old-format whole model you trust needs --trust)") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError) as e:  # the pickled model's class cannot be imported here
        raise InputError(f"cannot unpickle {path}: {first_line(e)}; a custom module's class must be importable, "
                         f"so instead {_CONVERT}") from None
    except Exception as e:  # as above
        raise InputError(f"cannot read {path} as a PyTorch file: {first_line(e)}") from None


def _network_from_state_dict(torch: Any, state: Mapping, *, input_shape: Sequence[int] | None) -> Network:
    """Dense layers from the keys '0.weight', '0.bias', '2.weight', ... of a Sequential of Linear/ReLU.

    The state_dict has no architecture: a parameter-free module between two Linear layers is taken to
    be a ReLU (adjacent indices mean none is there), and the last layer has none.
    """
    params: dict[int, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        match = _STATE_KEY.fullmatch(str(key))
        if match is None or not isinstance(value, torch.Tensor):
            raise InputError(f"state_dict key '{key}' is not from an nn.Sequential (keys '0.weight', '0.bias', "
                             f"'2.weight', ...): a state_dict holds no forward, so the order of a custom module's "
                             f"layers and what lies between them is unknown; {_CONVERT}")
        params.setdefault(int(match[1]), {})[match[2]] = as_array(value)
    if not params:
        raise InputError("the state_dict is empty")
    indices = sorted(params)
    for i in indices:
        if "weight" not in params[i]:
            raise InputError(f"state_dict has '{i}.bias' without '{i}.weight'")
        if params[i]["weight"].ndim != 2:
            raise InputError(f"state_dict layer {i} has a {params[i]['weight'].ndim}-D weight: only Linear layers "
                             f"can be read from a state_dict (it does not hold a convolution's stride and "
                             f"padding); {_CONVERT}, or save the whole model and load it with --trust")
    first = params[indices[0]]["weight"]
    if input_shape is not None and int(np.prod(input_shape)) != first.shape[1]:
        raise InputError(f"input_shape {tuple(input_shape)} has {int(np.prod(input_shape))} values, the first "
                         f"layer takes {first.shape[1]}", param="input_shape")
    chain = LayerChain(input_shape if input_shape is not None else (first.shape[1],))
    chain.flatten()
    for pos, i in enumerate(indices):
        W = params[i]["weight"]
        chain.dense(W, params[i].get("bias", np.zeros(W.shape[0])), op=f"state_dict layer {i}")
        if pos + 1 < len(indices) and indices[pos + 1] - i >= 2:
            chain.relu(op=f"state_dict layer {i + 1}")
    return chain.network()


def _leaves(module: Any, torch: Any) -> Iterator[Any]:
    for child in module:
        if isinstance(child, torch.nn.Sequential):
            yield from _leaves(child, torch)
        else:
            yield child


def _guess_input_shape(modules: list[Any], torch: Any) -> tuple[int, ...]:
    """(in_features,) when the first layer with a shape requirement is a Linear."""
    nn = torch.nn
    for m in modules:
        if isinstance(m, nn.Linear):
            return (m.in_features,)
        if isinstance(m, (nn.Conv2d, nn.AvgPool2d, nn.BatchNorm2d)):
            raise InputError(f"the first {type(m).__name__} needs the input shape: pass input_shape=(C, H, W) "
                             f"(command line: --input-shape C,H,W), or set model.input_shape = (C, H, W) "
                             f"before torch.save")
        if isinstance(m, nn.BatchNorm1d):
            return (m.num_features,)
    raise InputError("the model has no Linear or Conv2d layer")


def network_from_module(module: Any, *, input_shape: Sequence[int] | None = None) -> Network:
    """The network of a PyTorch model in inference form (BatchNorm uses its running statistics,
    Dropout is the identity); the model itself is left as it was.

    This is the way in for any model built in Python: convert it, then save it with
    :func:`lrmilp.loaders.save_npz` for the command line.

    Parameters
    ----------
    module : torch.nn.Module or torch.export.ExportedProgram
        An ``nn.Sequential`` of the modules this file's docstring lists (read module by module), any
        other ``nn.Module`` (traced with ``torch.export``: its forward must be a chain of the ops of
        :mod:`lrmilp.loaders.aten`), a TorchScript module or an ``ExportedProgram``.
    input_shape : sequence of int, optional
        The shape of one input without the batch dimension, e.g. ``(1, 28, 28)``; overrides
        ``module.input_shape``.  Needed by a model that starts with a convolution and by any module
        that is not an ``nn.Sequential`` (traced on an input of this shape); an ``ExportedProgram``
        records its own, which this must match.

    Returns
    -------
    Network

    Raises
    ------
    InputError
        An unsupported module or op (named), a missing input shape, or a module that is not a chain.

    Examples
    --------
    >>> import torch  # doctest: +SKIP
    >>> from lrmilp.loaders import network_from_module, save_npz  # doctest: +SKIP
    >>> model = MyNet()  # doctest: +SKIP
    >>> save_npz(network_from_module(model, input_shape=(1, 28, 28)), "mynet.npz")  # doctest: +SKIP
    """
    torch = import_torch()
    nn = torch.nn
    if input_shape is None:
        input_shape = getattr(module, "input_shape", None)
    if isinstance(module, exported_program_type(torch)):
        return network_from_exported(module, input_shape=input_shape)
    if isinstance(module, torch.jit.ScriptModule):
        return network_from_torchscript(module, input_shape=input_shape)
    if not isinstance(module, nn.Module):
        raise InputError(f"expected a torch.nn.Module, got '{type(module).__name__}'")
    modules = list(_leaves(module, torch)) if isinstance(module, nn.Sequential) else []
    if not modules or not all(type(m).__module__.startswith("torch.nn.") for m in modules):
        # A custom module (or a Sequential holding one): its forward says what it computes.
        if input_shape is None:
            raise InputError(f"a {type(module).__name__} is read by tracing it with torch.export, which needs "
                             f"the input shape: pass input_shape=(C, H, W) or (n,) (command line: "
                             f"--input-shape C,H,W)")
        return network_from_custom_module(module, input_shape)
    chain = LayerChain(input_shape if input_shape is not None else _guess_input_shape(modules, torch))
    for k, m in enumerate(modules):
        op = f"layer {k} ({type(m).__name__})"
        if isinstance(m, nn.Linear):
            chain.dense(as_array(m.weight), np.zeros(m.out_features) if m.bias is None else as_array(m.bias), op=op)
        elif isinstance(m, nn.Conv2d):
            _conv(chain, m, op)
        elif isinstance(m, nn.ReLU):
            chain.relu(op=op)
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise InputError(f"{op}: only Flatten(start_dim=1, end_dim=-1) is supported")
            chain.flatten()
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if m.running_mean is None or m.running_var is None:
                raise InputError(f"{op}: BatchNorm without running statistics (track_running_stats=False) "
                                 f"has no inference form")
            gamma = as_array(m.weight) if m.affine else np.ones(m.num_features)
            beta = as_array(m.bias) if m.affine else np.zeros(m.num_features)
            chain.batchnorm(gamma, beta, as_array(m.running_mean), as_array(m.running_var), m.eps, op=op)
        elif isinstance(m, nn.AvgPool2d):
            if any(pair(m.padding, "padding", op)):
                raise InputError(f"{op}: padded average pooling is not supported")
            kernel = pair(m.kernel_size, "kernel_size", op)
            stride = square(m.stride if m.stride is not None else m.kernel_size, "stride", op)
            chain.avgpool(kernel, stride, ceil_mode=m.ceil_mode, divisor=m.divisor_override, op=op)
        elif not isinstance(m, (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)):
            raise InputError(f"unsupported PyTorch module '{type(m).__name__}' ({op})")
    return chain.network()


def _conv(chain: LayerChain, m: Any, op: str) -> None:
    if m.groups != 1:
        raise InputError(f"{op}: grouped convolution (groups={m.groups}) is not supported")
    if pair(m.dilation, "dilation", op) != (1, 1):
        raise InputError(f"{op}: dilated convolution {m.dilation} is not supported")
    if m.padding_mode != "zeros":
        raise InputError(f"{op}: padding_mode '{m.padding_mode}' is not supported (only zeros)")
    kh, kw = m.kernel_size
    if m.padding == "valid":
        padding = 0
    elif m.padding == "same" and kh == kw and kh % 2 == 1:
        padding = kh // 2  # symmetric for an odd square kernel
    elif isinstance(m.padding, str):
        raise InputError(f"{op}: padding='{m.padding}' with kernel {m.kernel_size} is not symmetric")
    else:
        padding = square(m.padding, "padding", op)
    bias = np.zeros(m.out_channels) if m.bias is None else as_array(m.bias)
    chain.conv(as_array(m.weight), bias, stride=square(m.stride, "stride", op), padding=padding, op=op)


def module_from_network(net: Network, *, dtype: Any = None) -> Any:
    """An ``nn.Sequential`` (eval mode, float64 unless ``dtype`` is given) computing ``net`` (including a
    ReLU on the last layer, if it has one), with ``input_shape`` set so that a ``torch.save``-d copy
    loads back as the same network."""
    torch = import_torch()
    nn = torch.nn
    dtype = dtype or torch.float64
    modules: list[Any] = []
    shape = net.input_shape
    for k, layer in enumerate(net.layers):
        if isinstance(layer, Conv2d):
            if shape != layer.in_shape:
                raise InputError(f"conv layer {k} reads shape {layer.in_shape}, the value before it has shape {shape}")
            oc, ic, kh, kw = layer.W.shape
            module = nn.Conv2d(ic, oc, (kh, kw), stride=layer.stride, padding=layer.padding, dtype=dtype)
        else:
            if len(shape) != 1:
                modules.append(nn.Flatten())
            module = nn.Linear(layer.in_size, layer.out_size, dtype=dtype)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(layer.W))
            module.bias.copy_(torch.from_numpy(layer.b))
        modules.append(module)
        if layer.relu:
            modules.append(nn.ReLU())
        shape = layer.out_shape
    seq = nn.Sequential(*modules).eval()
    seq.input_shape = tuple(net.input_shape)
    return seq
