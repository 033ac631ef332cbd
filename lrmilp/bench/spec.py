"""Bench specs: a TOML file naming models x domains x tasks, expanded into runs.

```toml
output = "results/digits-count"      # stem: .jsonl and .csv next to it (default results/<spec name>)
time_limit = 60                      # seconds per run (a task may set its own)
jobs = 1                             # runs in parallel (--jobs overrides)
models = ["../models/digits-mlp-64-*-10.npz"]   # globs, relative to this file
exclude = ["../models/*-epoch*.npz"]

[domains.data]                       # named domains; default: one "model" domain
kind = "model"                       # the model file's own lo/hi
[domains.cube]
kind = "box"                         # lo, hi: numbers or lists; also kind = "unbounded", kind = "file" (file = "box.json")
lo = -1
hi = 1

[[tasks]]
kind = "count"                       # count, lower-bound, bounds, sample, line, faces, slice-faces, or module:function
method = "tree"                      # every other key is an option of the task's function ...
time_limit = 30                      # ... except: time_limit, sweep, domains, models, value
sweep = { tol = [1e-6, 1e-7] }       # one run per combination of these values
domains = ["data"]                   # only these domains (default: all)
models = ["*-11-11-*"]               # only models whose file name matches (default: all)
```

A run is (model, domain, task, options); its ``run_id`` hashes the model's path and content, the
domain's name and definition, the task and its options (not the time limit), so a rerun of the
spec recognises finished runs and a retrained model file is run again.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import numpy as np

from ..errors import InputError, parse_file
from .adapters import DATA_PREFIX
from .tasks import TaskKind, check_options, task_kind

DEFAULT_TIME_LIMIT = 60.0  # seconds per run
GRACE_MIN = 2.0  # seconds a run may overrun its limit (worker start-up, a graceful stop) before it is killed
GRACE_FRACTION = 0.1  # ... or this fraction of the limit, whichever is larger
TOP_KEYS = {"output", "time_limit", "grace", "jobs", "models", "exclude", "domains", "tasks", "title", "description"}
TASK_KEYS = {"kind", "time_limit", "sweep", "domains", "models", "value"}
DOMAIN_KEYS = {"model": set(), "box": {"lo", "hi"}, "unbounded": set(), "file": {"file"}}


@dataclass(frozen=True)
class Run:
    """One (model, domain, task, options) of a spec."""

    model: str  # path as shown and keyed: relative to the spec's folder, '/'-separated
    model_path: Path
    model_sha256: str
    domain: str | None  # None for tasks that take no domain
    domain_spec: dict | None
    task: str
    kind: TaskKind = field(compare=False)
    options: dict = field(default_factory=dict)  # as written in the spec
    time_limit: float = DEFAULT_TIME_LIMIT
    grace: float | None = None

    @property
    def run_id(self) -> str:
        key = [self.model, self.model_sha256, self.domain, self.domain_spec, self.task, self.options]
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def hard_limit(self) -> float:
        """Seconds after which the run's process is killed."""
        grace = self.grace if self.grace is not None else max(GRACE_MIN, GRACE_FRACTION * self.time_limit)
        return self.time_limit + grace

    def label(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options.items())
        return f"{Path(self.model).stem} {self.domain or '-'} {self.task}" + (f"({opts})" if opts else "")


@dataclass
class BenchSpec:
    path: Path
    output: Path  # stem
    jobs: int
    runs: list[Run]


def _toml(text: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"invalid TOML: {e}") from None


def load_spec(path: str | Path, *, output: str | Path | None = None, trust: bool = False) -> BenchSpec:
    """Parse and validate a bench spec (TOML).

    Parameters
    ----------
    path : str or Path
        The spec file.
    output : str or Path, optional
        Result file stem, instead of the spec's ``output``.
    trust : bool
        Allow ``module:function`` task kinds, whose modules are imported (their code runs).

    Returns
    -------
    BenchSpec
        The runs (models x domains x tasks), resolved.

    Raises
    ------
    InputError
        One line naming the spec and the key that is bad.

    Examples
    --------
    >>> spec = load_spec("bench.toml")  # doctest: +SKIP
    >>> len(spec.runs)  # doctest: +SKIP
    12
    """
    path = Path(path)
    data = parse_file(path, "spec file", _toml)
    try:
        return _parse(path, data, output, trust)
    except InputError as e:
        raise InputError(f"spec {path}: {e}", param=e.param) from None


def _parse(path: Path, data: dict, output, trust: bool = False) -> BenchSpec:
    base = path.resolve().parent
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise InputError(f"unknown key '{sorted(unknown)[0]}' (expected {', '.join(sorted(TOP_KEYS))})")
    time_limit = _positive(data.get("time_limit", DEFAULT_TIME_LIMIT), "time_limit")
    grace = None if "grace" not in data else _positive(data["grace"], "grace", allow_zero=True)
    jobs = data.get("jobs", 1)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise InputError(f"jobs must be a positive integer, got {jobs!r}")
    if output is None:
        output = data.get("output", f"results/{path.stem}")
        if not isinstance(output, str) or not output:
            raise InputError("output must be a file name stem (a string)")
        output = base / output
    models = _models(base, data.get("models"), data.get("exclude", []))
    domains = _domains(data.get("domains", {"model": {"kind": "model"}}))
    tasks = data.get("tasks")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, dict) for t in tasks):
        raise InputError("needs at least one [[tasks]] table")
    runs: dict[str, Run] = {}
    for i, task in enumerate(tasks):
        for run in _task_runs(base, f"tasks[{i}]", task, models, domains, time_limit, grace, trust):
            runs.setdefault(run.run_id, run)  # a task repeated in the spec is one run
    return BenchSpec(path, Path(str(output).removesuffix(".jsonl").removesuffix(".csv")), jobs, list(runs.values()))


def _positive(value, name: str, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise InputError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _strings(value, name: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InputError(f"{name} must be a string or a list of strings")
    return value


def _natural(p: Path) -> list:
    """Sort key putting digits-mlp-64-2-20 before digits-mlp-64-10-12."""
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", p.name)]


def _expand(base: Path, pattern: str, what: str) -> list[Path]:
    full = pattern if Path(pattern).is_absolute() else str(base / pattern)
    if glob.has_magic(pattern):
        found = sorted((Path(p) for p in glob.glob(full) if Path(p).is_file()), key=_natural)
        if not found:
            raise InputError(f"{what} '{pattern}' matches no file")
        return found
    if not Path(full).is_file():
        raise InputError(f"{what} '{pattern}': no such file")
    return [Path(full)]


def _models(base: Path, models, exclude) -> list[tuple[str, Path, str]]:
    if models is None:
        raise InputError("needs models = [...] (files or globs)")
    drop = {p.resolve() for pat in _strings(exclude, "exclude") for p in _expand_loose(base, pat)}
    out, seen = [], set()
    for pattern in _strings(models, "models"):
        for p in _expand(base, pattern, "models"):
            rp = p.resolve()
            if rp in drop or rp in seen:
                continue
            seen.add(rp)
            rel = Path(os.path.relpath(rp, base)).as_posix()
            out.append((rel, rp, hashlib.sha256(rp.read_bytes()).hexdigest()[:16]))
    if not out:
        raise InputError("no model left after exclude")
    return out


def _expand_loose(base: Path, pattern: str) -> list[Path]:
    try:
        return _expand(base, pattern, "exclude")
    except InputError:
        return []  # excluding nothing is not a mistake


def _domains(domains) -> dict[str, dict]:
    if not isinstance(domains, dict) or not domains:
        raise InputError("domains must be a table of named domains, e.g. [domains.box]")
    out = {}
    for name, d in domains.items():
        if not isinstance(d, dict):
            raise InputError(f"domains.{name} must be a table with a kind")
        kind = d.get("kind")
        if kind not in DOMAIN_KEYS:
            raise InputError(f"domains.{name}: kind must be one of {', '.join(DOMAIN_KEYS)}, got {kind!r}")
        extra = set(d) - {"kind"} - DOMAIN_KEYS[kind]
        missing = DOMAIN_KEYS[kind] - set(d)
        if extra or missing:
            raise InputError(f"domains.{name}: kind '{kind}' takes exactly {sorted(DOMAIN_KEYS[kind]) or 'no keys'}")
        if kind == "box":
            for side in ("lo", "hi"):
                try:
                    arr = np.asarray(d[side], dtype=float)
                except (TypeError, ValueError):
                    raise InputError(f"domains.{name}.{side} must be a number or a list of numbers") from None
                if arr.ndim > 1 or np.isnan(arr).any():
                    raise InputError(f"domains.{name}.{side} must be a number or a list of numbers")
        out[name] = dict(d)
    return out


def _task_runs(base: Path, where: str, task: dict, models, domains, time_limit, grace,
               trust: bool = False) -> list[Run]:
    name = task.get("kind")
    if not isinstance(name, str):
        raise InputError(f"{where}: needs kind = \"count\" (or another task kind)")
    value = task.get("value")
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where}: value must name a result key")
    try:
        kind = task_kind(name, value=value, search_path=str(base), trust=trust)
    except InputError as e:
        raise InputError(f"{where}: {e}", param=e.param) from None
    limit = _positive(task.get("time_limit", time_limit), f"{where}.time_limit")
    options = {k: v for k, v in task.items() if k not in TASK_KEYS}
    sweep = task.get("sweep", {})
    if not isinstance(sweep, dict) or not all(isinstance(v, list) and v for v in sweep.values()):
        raise InputError(f"{where}: sweep must be a table of non-empty lists, e.g. sweep = {{ tol = [1e-6, 1e-7] }}")
    both = set(sweep) & set(options)
    if both:
        raise InputError(f"{where}: option '{sorted(both)[0]}' is both fixed and swept")
    combos = [dict(zip(sweep, vals)) for vals in itertools.product(*sweep.values())] or [{}]
    for combo in combos:
        check_options(kind, {**options, **combo}, where=where)
    if kind.uses_domain:
        names = _strings(task.get("domains", list(domains)), f"{where}.domains")
        for n in names:
            if n not in domains:
                raise InputError(f"{where}: no domain named '{n}' (have {', '.join(domains)})")
        doms = [(n, domains[n]) for n in names]
    else:
        doms = [(None, None)]
    pats = _strings(task.get("models", ["*"]), f"{where}.models")
    chosen = [m for m in models if any(fnmatch(Path(m[0]).name, p) for p in pats)]
    if not chosen:
        raise InputError(f"{where}: models {pats} match none of the spec's models")
    return [Run(rel, path, sha, dname, dspec, name, kind, {**options, **combo}, limit, grace)
            for rel, path, sha in chosen for dname, dspec in doms for combo in combos]


def resolve_paths(run: Run, base: Path) -> dict:
    """The run's options with file-name options made absolute (relative to the spec's folder)."""
    out = dict(run.options)
    for k in run.kind.path_options:
        v = out.get(k)
        if isinstance(v, str) and not v.startswith(DATA_PREFIX):
            out[k] = str(base / v)
    return out


def domain_payload(spec: dict | None, base: Path) -> dict | None:
    if spec is not None and spec["kind"] == "file":
        return {**spec, "file": str(base / spec["file"])}
    return spec
