"""Reading traced PyTorch programs: TorchScript (``torch.jit.script`` / ``torch.jit.trace`` /
``torch.jit.load``) and ``torch.export`` programs, and through ``torch.export`` any custom ``nn.Module``.

Both are graphs of aten ops, read by :class:`lrmilp.loaders.aten.AtenChain` (which lists the ops it
reads); ops on constants only are evaluated.  Anything else raises :class:`InputError` naming the node.
"""

from __future__ import annotations

import operator
import warnings
from typing import Any, Callable, Iterable, Sequence

from ..errors import InputError
from ..network import Network
from .aten import BATCH, DATA, AtenChain, bind, check_input_shape, import_torch, numeric, op_name
from .fold import first_line


# --- torch.export ----------------------------------------------------------------------------------
def network_from_exported(program: Any, *, input_shape: Sequence[int] | None = None) -> Network:
    """The network of a ``torch.export`` program.

    Parameters
    ----------
    program : torch.export.ExportedProgram
        From ``torch.export.export(model, (x,))`` or ``torch.export.load``.
    input_shape : sequence of int, optional
        One input's shape without the batch dimension; checked against the program's (needed only
        where the program's input has dynamic dimensions besides the batch).

    Returns
    -------
    Network

    Raises
    ------
    InputError
        An op that is not read (named with its node), a graph that is not one chain, or a shape mismatch.
    """
    torch = import_torch()
    sig, graph = program.graph_signature, program.graph
    consts: dict[str, Any] = {}
    for mapping, store in ((sig.inputs_to_parameters, program.state_dict), (sig.inputs_to_buffers, None),
                           (getattr(sig, "inputs_to_lifted_tensor_constants", {}), program.constants)):
        for name, fqn in mapping.items():
            consts[name] = store[fqn] if store is not None else (
                program.state_dict[fqn] if fqn in program.state_dict else program.constants[fqn])
    if len(sig.user_inputs) != 1 or len(sig.user_outputs) != 1:
        raise InputError(f"expected one input and one output, the program has {len(sig.user_inputs)} and "
                         f"{len(sig.user_outputs)}")
    nodes = {n.name: n for n in graph.nodes}
    val = nodes[sig.user_inputs[0]].meta.get("val")
    if val is None or len(val.shape) < 2:
        raise InputError("the program's input must have a batch dimension and input dimensions")
    shape = check_input_shape(tuple(d if isinstance(d, int) else None for d in val.shape[1:]), input_shape)
    walk = AtenChain(shape, sig.user_inputs[0])
    values: dict[str, Any] = {}

    def resolve(a: Any, op: str) -> Any:
        if isinstance(a, torch.fx.Node):
            return DATA if walk.data(a.name, op) else values[a.name]
        if isinstance(a, (list, tuple)):
            return type(a)(resolve(x, op) for x in a)
        return a

    for node in graph.nodes:
        op = f"torch.export node '{node.name}' ({node.target if node.op == 'call_function' else node.op})"
        if node.op == "placeholder":
            if node.name in consts:
                values[node.name] = consts[node.name]
            elif node.name != sig.user_inputs[0]:
                raise InputError(f"{op}: an input that is neither the model input nor a weight")
            continue
        if node.op == "get_attr":
            values[node.name] = operator.attrgetter(node.target)(program.graph_module)
            continue
        if node.op == "output":
            outs = list(node.args[0])[-1:]
            if not outs or not isinstance(outs[0], torch.fx.Node) or not walk.data(outs[0].name, op):
                raise InputError("the program's output is not the end of the chain of ops from its input")
            return walk.network()
        if node.op != "call_function":
            raise InputError(f"unsupported {op}")
        args, kwargs = resolve(node.args, op), {k: resolve(v, op) for k, v in node.kwargs.items()}
        reads = any(v is DATA for v in _flat(args, kwargs.values()))
        target = node.target
        schema = getattr(target, "_schema", None)
        name = "getitem" if target is operator.getitem else (op_name(schema) if schema is not None else None)
        if not reads:
            if not (schema is not None or getattr(target, "__module__", None) in ("_operator", "operator")):
                raise InputError(f"unsupported {op}")
            try:  # ops on constants only: evaluate them
                values[node.name] = target(*args, **kwargs)
            except Exception as e:  # any error of the op itself
                raise InputError(f"{op}: cannot evaluate on constants: {first_line(e)}") from None
        elif name == "getitem":
            if not walk.tuple_out or args[1] != 0:
                raise InputError(f"{op}: only the first result of a BatchNorm may be used")
            walk.tuple_out = False
            walk.advance(node.name)
        elif name in ("sym_size", "size"):
            values[node.name] = walk.size(int(args[1]), op)
        elif name is not None and name.startswith("_assert"):
            continue
        elif schema is None:
            raise InputError(f"unsupported {op}")
        else:
            walk.apply(name, {k: numeric(v, torch) for k, v in bind(schema, args, kwargs).items()}, op)
            walk.advance(node.name)
    raise InputError("the program's graph has no output")


def network_from_custom_module(module: Any, input_shape: Sequence[int]) -> Network:
    """The network of any ``nn.Module`` whose forward is a chain of the ops :mod:`lrmilp.loaders.aten` reads.

    Parameters
    ----------
    module : torch.nn.Module
        Traced with ``torch.export`` on one zero input, in eval mode (its mode is restored after).
    input_shape : sequence of int
        One input's shape without the batch dimension.

    Returns
    -------
    Network

    Raises
    ------
    InputError
        When ``torch.export`` cannot trace the module, or its graph is not read.
    """
    torch = import_torch()
    param = next(iter(module.parameters()), None)
    x = torch.zeros(1, *input_shape, dtype=torch.float32 if param is None else param.dtype)
    was_training = module.training
    module.eval()
    try:
        program = torch.export.export(module, (x,))
    except Exception as e:  # torch.export raises many types for code it cannot trace
        raise InputError(f"torch.export could not trace {type(module).__name__}: {first_line(e)}") from None
    finally:
        module.train(was_training)
    return network_from_exported(program, input_shape=input_shape)


# --- TorchScript -----------------------------------------------------------------------------------
_SCALAR_OPS: dict[str, Callable[..., Any]] = {
    "aten::eq": operator.eq, "aten::ne": operator.ne, "aten::lt": operator.lt, "aten::le": operator.le,
    "aten::gt": operator.gt, "aten::ge": operator.ge, "aten::__not__": operator.not_,
    "aten::__and__": operator.and_, "aten::__or__": operator.or_, "aten::add": operator.add,
    "aten::sub": operator.sub, "aten::mul": operator.mul, "aten::floordiv": operator.floordiv,
    "aten::neg": operator.neg, "aten::__is__": operator.is_, "aten::__isnot__": operator.is_not,
    "aten::__getitem__": operator.getitem, "aten::len": len, "aten::Int": lambda v: v if v is BATCH else int(v),
    "aten::Float": float, "aten::Bool": bool, "prim::NumToTensor": lambda v: v, "aten::ScalarImplicit": lambda v: v,
    "prim::unchecked_cast": lambda v: v, "prim::ListConstruct": lambda *v: list(v),
    "prim::TupleConstruct": lambda *v: tuple(v), "aten::format": lambda *v: None,
    "aten::warn": lambda *v: None, "prim::Uninitialized": lambda: None,
}

_BATCH_OK = {"aten::Int", "prim::NumToTensor", "aten::ScalarImplicit", "prim::unchecked_cast", "prim::ListConstruct",
             "prim::TupleConstruct"}  # ops that may carry the batch size (into a view's size)


def network_from_torchscript(module: Any, *, input_shape: Sequence[int] | None = None) -> Network:
    """The network of a TorchScript module.

    Parameters
    ----------
    module : torch.jit.ScriptModule
        From ``torch.jit.script``, ``torch.jit.trace`` or ``torch.jit.load``; frozen
        (``torch.jit.freeze``) in eval mode, its mode restored after.
    input_shape : sequence of int, optional
        One input's shape without the batch dimension.  TorchScript does not record it: without it
        the input is flat, its size that of the first Linear (a model that starts with a convolution
        or a normalisation needs it).

    Returns
    -------
    Network

    Raises
    ------
    InputError
        An op that is not read (named with its node), a graph that is not one chain, a branch on a
        value that is not constant, or a missing input shape.
    """
    torch = import_torch()
    was_training = module.training
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated in recent torch
            frozen = torch.jit.freeze(module.eval())
    except Exception as e:  # freezing raises RuntimeError and others for modules it cannot inline
        raise InputError(f"cannot freeze the TorchScript module: {first_line(e)}") from None
    finally:
        module.train(was_training)
    graph = frozen.graph
    inputs, outputs = list(graph.inputs())[1:], list(graph.outputs())
    if len(inputs) != 1 or len(outputs) != 1:
        raise InputError(f"expected one input and one output, forward has {len(inputs)} and {len(outputs)}")
    walk = AtenChain(input_shape, inputs[0].unique())
    _ts_block(torch, walk, graph.nodes(), {})
    if not walk.data(outputs[0].unique(), "the output"):
        raise InputError("forward's output is not the end of the chain of ops from its input")
    return walk.network()


def _ts_block(torch: Any, walk: AtenChain, nodes: Iterable[Any], values: dict[int, Any]) -> None:
    for node in nodes:
        kind = node.kind()
        outs = list(node.outputs())
        op = f"TorchScript node '%{outs[0].debugName() if outs else '?'}' ({kind})"
        if kind == "prim::Constant":
            try:
                values[outs[0].unique()] = outs[0].toIValue()
            except RuntimeError:  # a constant of a type Python cannot hold (a function, a class)
                values[outs[0].unique()] = None
            continue
        args = []
        for v in node.inputs():
            args.append(DATA if walk.data(v.unique(), op) else values.get(v.unique()))
        if kind == "prim::If":
            if not isinstance(args[0], bool):
                raise InputError(f"{op}: a branch on a value that is not a constant")
            block = list(node.blocks())[0 if args[0] else 1]
            _ts_block(torch, walk, block.nodes(), values)
            for out, ret in zip(outs, block.returnNode().inputs()):
                if walk.data(ret.unique(), op):
                    walk.advance(out.unique(), alias=True)
                else:
                    values[out.unique()] = values.get(ret.unique())
            continue
        if kind == "prim::RaiseException":
            raise InputError(f"{op}: the model raises for its input: {args[0]}")
        if not any(a is DATA for a in args):
            if kind in ("prim::ListUnpack", "prim::TupleUnpack"):
                for out, item in zip(outs, args[0]):
                    values[out.unique()] = item
                continue
            if (kind not in _SCALAR_OPS or any(isinstance(a, torch.Tensor) for a in args)
                    or (kind not in _BATCH_OK and any(a is BATCH for a in args))):
                raise InputError(f"unsupported {op} on constants")
            values[outs[0].unique()] = _SCALAR_OPS[kind](*args)
        elif kind == "aten::size" and len(args) == 2:
            values[outs[0].unique()] = walk.size(int(args[1]), op)
        elif kind == "aten::dim":
            values[outs[0].unique()] = len(walk.shape(op)) + 1
        elif kind.startswith("aten::") and len(outs) == 1:
            schema = torch._C.parse_schema(node.schema())
            name = op_name(schema)
            walk.apply(name, {k: numeric(v, torch) for k, v in bind(schema, args, {}).items()}, op)
            in_place = name.endswith("_") and not name.startswith("_")
            walk.advance(outs[0].unique(), alias=in_place)
        else:
            raise InputError(f"unsupported {op}")


def _flat(args: Iterable[Any], more: Iterable[Any] = ()) -> Iterable[Any]:
    for a in (*args, *more):
        if isinstance(a, (list, tuple)):
            yield from _flat(a)
        else:
            yield a
