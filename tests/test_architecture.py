"""The package's shape: imports run one way (no cycle, imports inside functions included), no module
uses another module's private names, no file is too long; and the import-linter contracts of
pyproject.toml hold."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lrmilp"
MAX_LINES = 500

LONG_FILES = {
    # Files allowed over MAX_LINES, each until the change that splits it lands.
}
PRIVATE_USES: set[tuple[str, str]] = set()
# Uses of another module's private names, as ("importer", "module.private"), each until its module is
# reworked.


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(importer: str, level: int, module: str | None) -> str:
    """The absolute name of ``from <level dots><module> import ...`` in ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".") if _is_package(importer) else importer.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _type_checking_only(node: ast.AST, parents: dict) -> bool:
    """Is ``node`` inside an ``if TYPE_CHECKING:`` block (typing only, never run)?"""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _imports(name: str) -> tuple[set[str], list[tuple[str, str]]]:
    """The lrmilp modules ``name`` imports (anywhere in the file, functions included; typing-only blocks
    excluded), and the private names of other modules it uses: (name, "module.private")."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    deps: set[str] = set()
    private: list[tuple[str, str]] = []
    aliases: dict[str, str] = {}  # local name -> lrmilp module it is bound to
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "lrmilp":
                    deps.add(alias.name)
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else "lrmilp"
            continue
        source = _resolve(name, node.level, node.module)
        if source.split(".")[0] != "lrmilp":
            continue
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            if sub in MODULES:  # a submodule: `from . import dualsplit as ds`
                deps.add(sub)
                aliases[alias.asname or alias.name] = sub
            else:
                deps.add(source)
                if _private(alias.name) and source != name:
                    private.append((name, f"{source}.{alias.name}"))
    for node in ast.walk(tree):  # module._private through an alias bound to an lrmilp module
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and _private(node.attr)):
            private.append((name, f"{aliases[node.value.id]}.{node.attr}"))
    for dep in deps:  # a private module may be imported from within its own package only (the package
        parts = dep.split(".")  # itself included, as import-linter's private_modules contract)
        for i, part in enumerate(parts[1:], 1):
            parent = ".".join(parts[:i])
            if _private(part) and not (name == parent or name.startswith(parent + ".")):
                private.append((name, dep))
    return {d for d in deps if d in MODULES and d != name}, private


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


GRAPH = {name: _imports(name) for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    cycles = _cycles({name: deps for name, (deps, _) in GRAPH.items()})
    assert cycles == [], "import cycles (imports inside functions included): " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_cycle_finder_sees_imports_inside_functions(tmp_path):
    """The check above is only as good as its graph: a cycle through a function-level import counts."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert "lrmilp.cells.dualgeom" in GRAPH["lrmilp.cells.dual"][0]  # imported inside DualCells methods only


def test_no_private_names_across_modules():
    uses = {use for _, (_, private) in GRAPH.items() for use in private}
    assert uses - PRIVATE_USES == set(), "private names used across modules: " + ", ".join(
        f"{a} uses {b}" for a, b in sorted(uses - PRIVATE_USES))
    assert PRIVATE_USES <= uses, f"stale allowances, remove them: {sorted(PRIVATE_USES - uses)}"


def test_no_file_over_the_limit():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert set(long) - set(LONG_FILES) == set(), f"files over {MAX_LINES} lines: {long}"
    assert all((ROOT / f).exists() for f in LONG_FILES), "an allowed long file moved: update LONG_FILES"


def test_import_linter_contracts_hold():
    """The layers, acyclic-siblings and private-modules contracts of pyproject.toml (import-linter)."""
    from importlinter.cli import lint_imports
    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    assert code == 0, "import-linter found a broken contract (run `lint-imports` for the details)"


def test_one_module_draws_progress():
    """Progress lines are drawn by lrmilp.progress only (tqdm, on stderr): no other module imports tqdm
    or writes a carriage return."""
    drawers = set()
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "\r" in node.value:
                drawers.add(name)
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(m.split(".")[0] == "tqdm" for m in mods):
                    drawers.add(name)
    assert drawers == {"lrmilp.progress"}
