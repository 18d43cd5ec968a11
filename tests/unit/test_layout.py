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
FUNCTION_LINES = 80
#: data tables may be longer than a module of code (the oops formats are one row a format)
TABLES = {"oops/formats.py"}
#: functions over FUNCTION_LINES still to split, in a module its owner is changing now
#: (issue 27); each is named so a new one cannot hide behind it, and one that shrank fails
LONG_FUNCTIONS: set[str] = set()


def _modules(package: Path = HARNESS) -> dict[str, Path]:
    """Every module of ``package`` (a directory) by its dotted name."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import of ``tree``, in functions and classes too, but not under TYPE_CHECKING.

    An import inside a function is a dependency all the same: it runs on the
    first call, and a circle through it is still two modules that need each
    other (only later, where it is harder to see).
    """
    found: list[ast.Import | ast.ImportFrom] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``name`` imports, wherever in it the import is."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    wanted: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            wanted |= {a.name for a in node.names}
        else:
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            wanted.add(base)
            wanted |= {f"{base}.{a.name}" for a in node.names}
    return {w for w in wanted if w in known and w != name}


def _import_graph(package: Path) -> dict[str, set[str]]:
    """Which modules of ``package`` each of its modules imports."""
    modules = _modules(package)
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    # a module importing from its own package (whose __init__ may re-export it)
    # is not a circle; the package importing its modules is an edge like any other,
    # so a circle through a package's __init__ is still found
    return {name: {d for d in deps if not name.startswith(d + ".")} for name, deps in graph.items()}


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


def _long_functions(package: Path = HARNESS) -> dict[str, int]:
    """Every function (methods and nested ones too) over FUNCTION_LINES, by module:name."""
    found = {}
    for path in _modules(package).values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if size > FUNCTION_LINES:
                    found[f"{path.relative_to(package)}:{node.name}"] = size
    return found


def test_no_function_is_past_the_size_of_one_step() -> None:
    """A function over 80 lines does several steps: name each (a function, a table)."""
    long = _long_functions()
    assert set(long) - LONG_FUNCTIONS == set(), f"functions over {FUNCTION_LINES} lines: split"
    assert set(long) >= LONG_FUNCTIONS, "a listed function got short: take it off LONG_FUNCTIONS"


def test_the_function_rule_counts_methods_and_async_functions(tmp_path: Path) -> None:
    """The rule could pass by never finding anything: an 81-line async method is found,
    an 80-line function is not."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    lines = [f"x{i} = {i}" for i in range(FUNCTION_LINES - 1)]
    (pkg / "__init__.py").write_text("def fits():\n" + "".join(f"    {x}\n" for x in lines))
    method = "".join(f"        {x}\n" for x in [*lines, "y = 1"])
    (pkg / "m.py").write_text("class C:\n    async def over(self):\n" + method)
    assert _long_functions(pkg) == {"m.py:over": FUNCTION_LINES + 1}


def test_the_package_has_no_import_circle() -> None:
    cycle = _find_cycle(_import_graph(HARNESS))
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


def test_the_circle_check_reads_imports_inside_functions(tmp_path: Path) -> None:
    """A circle closed by an import in a function, through a package's __init__, is found.

    One under TYPE_CHECKING is not, nor a module importing from its own package.
    """
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.b import late\n")
    (pkg / "sub" / "d.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import late\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from pkg.sub import d\n"
        "if TYPE_CHECKING:\n    from pkg import a\n"
        "def late():\n    from ..c import helper\n    return helper\n"
    )
    (pkg / "c.py").write_text("class C:\n    def m(self):\n        import pkg.a\n")
    graph = _import_graph(pkg)
    assert graph["pkg.sub.b"] == {"pkg.c", "pkg.sub.d"}
    assert graph["pkg.c"] == {"pkg.a"}
    assert graph["pkg.sub"] == {"pkg.sub.b"}
    assert _find_cycle(graph) == ["pkg.a", "pkg.sub", "pkg.sub.b", "pkg.c", "pkg.a"]
    (pkg / "c.py").write_text("def helper():\n    return 1\n")
    assert _find_cycle(_import_graph(pkg)) is None


def test_unit_and_plumbing_tests_import_nothing_from_the_integration_suite() -> None:
    """What they share with it lives in tests/support: tests/integration may change freely."""
    tests = HARNESS.parent / "tests"
    found = []
    for path in sorted([*(tests / "unit").rglob("*.py"), *(tests / "plumbing").rglob("*.py")]):
        for node in _import_nodes(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == "tests.integration" or n.startswith("tests.integration.") for n in names):
                found.append(f"{path.relative_to(tests)}:{node.lineno}")
    assert found == [], "import it from tests/support instead"
