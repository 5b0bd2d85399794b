"""No import circle among the modules of the runtime or the emulators, type-only imports
included: each module can be read, tested and moved after the ones it imports."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The runtime's packages and the emulators beside it (no import joins the two:
# test_import_walls.py): no circle in either.
PACKAGES = ("gateway", "schema", "resolvers", "emulators")
EXCLUDED: tuple[str, ...] = ()

Graph = dict[str, set[str]]


def module_files(
    root: Path, packages: tuple[str, ...], excluded: tuple[str, ...]
) -> dict[str, Path]:
    """Every module of `packages` under `root` by dotted name (a package by its own name)."""
    found = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if not any(name == e or name.startswith(f"{e}.") for e in excluded):
                found[name] = path
    return found


def _imported(
    name: str, path: Path, node: ast.Import | ast.ImportFrom, known: set[str]
) -> set[str]:
    """The modules one import statement of module `name` names."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:
        # Relative to the package: the module's own name for a package, else its parent's.
        parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    # `from package import module` imports that module; `from module import name`, the module.
    return {
        f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
    }


def import_graph(modules: dict[str, Path]) -> Graph:
    """What each module imports among `modules`, wherever the import stands (type-only too)."""
    known = set(modules)
    graph: Graph = {}
    for name, path in modules.items():
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imported |= _imported(name, path, node, known)
        graph[name] = (imported & known) - {name}
    return graph


def circles(graph: Graph) -> list[frozenset[str]]:
    """The modules of each circle: strongly connected groups of more than one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = {stack.pop()}
            while module not in group:
                group.add(stack.pop())
            if len(group) > 1:
                found.append(frozenset(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def one_loop(graph: Graph, circle: frozenset[str]) -> list[str]:
    """A shortest path round the circle from its first module, to show in a failure."""
    start = min(circle)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for module in frontier:
            for other in sorted(graph[module] & circle):
                if other == start:
                    return [*paths[module], start]
                if other not in paths:
                    paths[other] = [*paths[module], other]
                    following.append(other)
        frontier = following
    raise AssertionError(f"{sorted(circle)} is not a circle")


def describe(graph: Graph, found: list[frozenset[str]]) -> str:
    return "\n".join(
        f"circle of {', '.join(sorted(c))}: {' -> '.join(one_loop(graph, c))}" for c in found
    )


def test_the_measure_sees_every_kind_of_import(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "from pkg.a import A\n",
        "pkg/a.py": "from pkg import b\nA = 1\n",
        "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import c\n",
        "pkg/c.py": "def late():\n    import pkg.a\n",
        "pkg/d.py": "from pkg import A\n",
        "pkg/skipped/__init__.py": "import pkg.d\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(module_files(tmp_path, ("pkg",), ("pkg.skipped",)))
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.c"},
        "pkg.c": {"pkg.a"},
        "pkg.d": {"pkg"},
    }
    assert circles(graph) == [frozenset({"pkg.a", "pkg.b", "pkg.c"})]
    assert describe(graph, circles(graph)) == (
        "circle of pkg.a, pkg.b, pkg.c: pkg.a -> pkg.b -> pkg.c -> pkg.a"
    )


def test_no_import_circle() -> None:
    graph = import_graph(module_files(ROOT, PACKAGES, EXCLUDED))
    found = circles(graph)
    assert not found, "import circles:\n" + describe(graph, found)
