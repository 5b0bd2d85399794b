"""No module of the runtime is longer than 500 lines: one that grows past it holds more than
one thing, and is split where its concerns part (the emulators, each one API's whole
contract, are measured by their contract instead)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 500
MODULES = sorted(
    str(path.relative_to(ROOT))
    for folder in ("gateway", "schema", "resolvers")
    for path in (ROOT / folder).rglob("*.py")
)


@pytest.mark.parametrize("module", MODULES)
def test_no_module_over_the_limit(module: str) -> None:
    lines = len((ROOT / module).read_text().splitlines())
    assert lines <= LIMIT, f"{module} has {lines} lines; split it where its concerns part"
