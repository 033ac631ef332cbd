"""Task kinds of ``lrmilp bench``: a registry mapping a name to a library function.

A task kind names a function ``fn(net, domain, **options)`` (or ``fn(net, **options)`` when it does
not use a domain) returning a result object with ``to_dict()`` or a dict.  Adding a kind is one
entry in :data:`TASKS`.  A spec may also name any importable function as ``"module:function"``
(the spec's folder is on ``sys.path``), with ``value = "key"`` naming its headline result; importing
it runs code from outside lrmilp, so such kinds need ``trust`` (``lrmilp bench --trust``).

Kinds whose module is not in this build (``line`` and ``faces`` before the geometry branch is
merged) stay registered but report their runs as ``unavailable``; they are never an error.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ..errors import InputError

# Options the bench sets itself: progress bars would garble the batch's stderr, and the run's time
# limit is passed as ``time_limit`` to every function that takes one.
BENCH_SET = ("progress", "time_limit")


@dataclass(frozen=True)
class TaskKind:
    """One kind of task.  ``value`` is the result key shown in summaries (the headline number)."""

    name: str
    target: str  # "module:function"
    value: str | None
    uses_domain: bool = True
    path_options: tuple[str, ...] = ()  # options holding file names, resolved against the spec's folder
    requires: tuple[str, ...] = field(default=())  # further modules that must import

    def function(self) -> Callable[..., Any]:
        """The target function; raises ImportError when its module (or a required one) is missing."""
        for mod in self.requires:
            importlib.import_module(mod)
        module, _, name = self.target.partition(":")
        fn = getattr(importlib.import_module(module), name, None)
        if fn is None:
            raise ImportError(f"{module} has no function {name}")
        return fn

    def unavailable(self) -> str | None:
        """Why this kind cannot run in this build, or None when it can."""
        try:
            self.function()
        except ImportError as e:
            return f"task '{self.name}' needs {self.target.partition(':')[0]}, which is not available: {e}"
        return None


TASKS: dict[str, TaskKind] = {k.name: k for k in [
    TaskKind("count", "lrmilp.counting:count_regions", "regions", path_options=("regions_out", "checkpoint")),
    TaskKind("lower-bound", "lrmilp.lowerbound:lower_bound", "lower_bound"),
    TaskKind("estimate", "lrmilp.estimate:estimate", "estimate"),
    TaskKind("bounds", "lrmilp.theory:bounds_for_network", "serra2018", uses_domain=False),
    TaskKind("serra2020", "lrmilp.empirical:serra2020", "value"),
    TaskKind("sample", "lrmilp.sampling:sample_patterns", "distinct_patterns", path_options=("data",)),
    TaskKind("line", "lrmilp.bench.adapters:random_lines", "mean_regions", path_options=("points",),
             requires=("lrmilp.geometry.lines",)),
    TaskKind("faces", "lrmilp.geometry.faces:region_faces", "mean_faces"),
    TaskKind("slice-faces", "lrmilp.bench.adapters:slice_faces", "mean_faces", uses_domain=False,
             path_options=("points",), requires=("lrmilp.geometry.faces",)),
]}


def task_kind(name: str, *, value: str | None = None, search_path: str | None = None,
              trust: bool = False) -> TaskKind:
    """The registered kind ``name``, or a plugin ``"module:function"`` (imported with ``search_path``
    first on sys.path), which only ``trust`` allows: importing it runs its code.  Raises InputError for
    an unknown name, an untrusted plugin (before importing anything) or a plugin that does not import."""
    if name in TASKS:
        kind = TASKS[name]
        return kind if value is None else replace(kind, value=value)
    if ":" not in name:
        raise InputError(f"unknown task kind '{name}' (expected one of {', '.join(TASKS)}, or module:function)")
    if not trust:
        raise InputError(f"task kind '{name}' would import and run {name.partition(':')[0]} (code from outside "
                         "lrmilp); allow it with trust", param="trust")
    kind = TaskKind(name, name, value)
    with _on_path(search_path):
        try:
            kind.function()
        except ImportError as e:
            raise InputError(f"task kind '{name}' does not import: {e}") from None
    return kind


class _on_path:
    def __init__(self, folder: str | None) -> None:
        self.folder = folder

    def __enter__(self) -> None:
        if self.folder:
            sys.path.insert(0, self.folder)

    def __exit__(self, *exc) -> None:
        if self.folder and self.folder in sys.path:
            sys.path.remove(self.folder)


def check_options(kind: TaskKind, options: dict, *, where: str) -> None:
    """Raise InputError for an option ``kind``'s function does not take, or of the wrong type
    (judged by the parameter's default).  Unavailable kinds are not checked."""
    try:
        fn = kind.function()
    except ImportError:
        return
    params = list(inspect.signature(fn).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    skip = 2 if kind.uses_domain else 1  # (net, domain) or (net)
    known = {p.name: p for p in params[skip:] if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    for name, value in options.items():
        if name in BENCH_SET:
            raise InputError(f"{where}: '{name}' is set by the bench itself (use the task's time_limit key)")
        if name not in known:
            raise InputError(f"{where}: '{kind.name}' has no option '{name}' "
                             f"(known: {', '.join(k for k in known if k not in BENCH_SET)})")
        default = known[name].default
        if not _type_fits(value, default):
            raise InputError(f"{where}: option '{name}' = {value!r} should be like {default!r}")


def _type_fits(value: Any, default: Any) -> bool:
    if default is inspect.Parameter.empty or default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    return True


def call_task(kind: TaskKind, net, domain, options: dict, *, time_limit: float | None) -> dict:
    """Run one task in this process; the result as a dict (``to_dict()`` of the library result)."""
    fn = kind.function()
    params = inspect.signature(fn).parameters
    extra = {}
    if "progress" in params:
        extra["progress"] = False
    if "time_limit" in params and time_limit is not None:
        extra["time_limit"] = time_limit
    res = fn(net, domain, **options, **extra) if kind.uses_domain else fn(net, **options, **extra)
    if hasattr(res, "to_dict"):
        res = res.to_dict()
    if not isinstance(res, dict):
        raise TypeError(f"task '{kind.name}' returned {type(res).__name__}, not a dict")
    return res
