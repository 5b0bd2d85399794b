"""The wall between the runtime and the emulators, read from the source of every module.

The runtime (`gateway`, `schema`, `resolvers`) imports nothing from `emulators`, at any
level: not at the top, not inside a function, not under TYPE_CHECKING. It reaches an
emulator only by the module name its registry gives, through importlib
(`gateway/providers.py`). The emulators import nothing from the runtime at all, so a
contract test of an emulator never runs the gateway's own code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ("gateway", "schema", "resolvers")
EMULATORS = "emulators"
# Each package, and the top-level packages its modules must not import.
WALLS = {**dict.fromkeys(RUNTIME, (EMULATORS,)), EMULATORS: RUNTIME}
LOADERS = ("import_module", "__import__")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(node: ast.AST) -> list[str]:
    """The modules `node` imports, if it is an import, or a load through importlib or
    `__import__` of a name written out in the source. A relative import stays inside its
    own package: it crosses no wall."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module] if node.level == 0 and node.module else []
    if isinstance(node, ast.Call) and node.args:
        called = node.func.attr if isinstance(node.func, ast.Attribute) else None
        called = node.func.id if isinstance(node.func, ast.Name) else called
        first = node.args[0]
        if isinstance(first, ast.JoinedStr) and first.values:
            first = first.values[0]
        if called in LOADERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
            return [first.value]
    return []


def crossings(source: str, module: str, forbidden: tuple[str, ...]) -> list[str]:
    """`module:line name` of every import in `source` of a package in `forbidden`."""
    found = sorted(
        (node.lineno, name)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Call))
        for name in imported(node)
        if name.split(".")[0] in forbidden
    )
    return [f"{module}:{line} {name}" for line, name in found]


def test_the_walk_sees_every_way_in() -> None:
    source = "\n".join(
        [
            "import emulators",
            "import os, emulators.attio as a",
            "from emulators.seed import DEFAULT_SEED",
            "def later():",
            "    from emulators import EmulatorOptions",
            "    importlib.import_module('emulators.haste')",
            "    __import__(f'emulators.{kind}')",
            "if TYPE_CHECKING:",
            "    from emulators.control import Faults",
            "from . import emulators",  # relative: gateway.emulators, not the package
            "import emulatorsish, gateway.providers",
            "importlib.import_module(provider(kind).emulator)",  # by the registry's name
        ]
    )
    assert crossings(source, "gateway.x", (EMULATORS,)) == [
        "gateway.x:1 emulators",
        "gateway.x:2 emulators.attio",
        "gateway.x:3 emulators.seed",
        "gateway.x:5 emulators",
        "gateway.x:6 emulators.haste",
        "gateway.x:7 emulators.",
        "gateway.x:9 emulators.control",
    ]


@pytest.mark.parametrize("package", sorted(WALLS))
def test_no_import_crosses_the_wall(package: str) -> None:
    paths = sorted((ROOT / package).rglob("*.py"))
    assert paths
    found = [
        crossing
        for path in paths
        for crossing in crossings(path.read_text(), module_name(path), WALLS[package])
    ]
    assert found == [], f"{package} imports {' or '.join(WALLS[package])}: {found}"
