"""The package's shape: small modules, small classes, no import circle.

A module past about 450 lines or a class past about 250 holds two jobs
(the project's style); an import circle means two modules are one concern
split wrongly, or one reaches into the other.  These checks read the source
with :mod:`ast`, so they run in milliseconds and name the offender.
"""

from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "harness"
MODULE_LINES = 450
CLASS_LINES = 250
#: data tables may be longer than a module of code (the oops formats are one row a format)
TABLES = {"oops/formats.py"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(HARNESS.rglob("*.py")):
        parts = path.relative_to(HARNESS.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The harness modules ``name`` imports at module level (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    wanted: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            wanted |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            wanted.add(base)
            wanted |= {f"{base}.{a.name}" for a in node.names}
    return {w for w in wanted if w in known and w != name}


def test_no_module_is_past_the_size_of_one_job() -> None:
    big = {
        str(p.relative_to(HARNESS)): n
        for p in _modules().values()
        if (n := p.read_text().count("\n")) > MODULE_LINES
        and str(p.relative_to(HARNESS)) not in TABLES
    }
    assert big == {}, f"modules over {MODULE_LINES} lines: split them by concern"


def test_no_class_is_past_the_size_of_one_job() -> None:
    big = {}
    for path in _modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                size = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if size > CLASS_LINES:
                    big[f"{path.relative_to(HARNESS)}:{node.name}"] = size
    assert big == {}, f"classes over {CLASS_LINES} lines: split them by concern"


def test_the_package_has_no_import_circle() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    # a package's __init__ re-exporting its own modules is not a circle
    for name in graph:
        graph[name] = {d for d in graph[name] if not d.startswith(name + ".")}
    cycle = _find_cycle(graph)
    assert cycle is None, f"import circle: {' -> '.join(cycle or [])}"


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, else None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The circle check above could pass by never finding anything: it does find one."""
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None
