"""No function outside the tests is longer than 60 lines: a reader sees each one whole."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 60
MODULES = sorted(
    str(path.relative_to(ROOT))
    for folder in ("gateway", "schema", "resolvers", "emulators", "bench", "scripts")
    for path in (ROOT / folder).rglob("*.py")
)


def long_functions(source: str) -> list[tuple[str, int]]:
    """(name, lines) of every function or method in `source` longer than LIMIT lines."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            assert node.end_lineno is not None
            if node.end_lineno - start + 1 > LIMIT:
                found.append((node.name, node.end_lineno - start + 1))
    return found


def test_the_measure_sees_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    assert long_functions(f"def short():\n    pass\n\ndef long():\n{body}\n") == [
        ("long", LIMIT + 1)
    ]


@pytest.mark.parametrize("module", MODULES)
def test_no_function_over_the_limit(module: str) -> None:
    assert long_functions((ROOT / module).read_text()) == []
