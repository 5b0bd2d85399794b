"""Every integration test carries the `integration` marker, so `make unit`
(`pytest -m "not integration"`) leaves out exactly the tests that need servers."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.markers import INTEGRATION_DIRS, unmarked_integration

TESTS = Path(__file__).resolve().parents[1]


def marks_integration(path: Path) -> bool:
    """Whether the module sets `pytestmark` to (a list holding) `pytest.mark.integration`."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            return "pytest.mark.integration" in ast.unparse(node.value)
    return False


@pytest.mark.parametrize("folder", INTEGRATION_DIRS)
def test_every_module_of_the_integration_folders_is_marked(folder: str) -> None:
    modules = sorted((TESTS / folder).glob("test_*.py"))
    assert modules
    assert [m.name for m in modules if not marks_integration(m)] == []


def test_the_emulators_contract_tests_are_in_the_fast_layer() -> None:
    """In process, like the unit layer: they count towards its coverage floor."""
    modules = sorted((TESTS / "emulators").glob("test_*.py"))
    assert modules
    assert [m.name for m in modules if marks_integration(m)] == []


def item(path: str, fixtures: tuple[str, ...], marked: bool) -> Any:
    """Just what the collection check reads of a pytest item."""
    return SimpleNamespace(
        nodeid=f"{path}::test",
        path=TESTS / path,
        fixturenames=fixtures,
        get_closest_marker=lambda name: object() if marked and name == "integration" else None,
    )


def test_the_collection_check_finds_integration_tests_without_the_marker() -> None:
    items = [
        item("unit/test_a.py", (), marked=False),  # a unit test
        item("unit/test_b.py", ("gateway",), marked=False),  # a server by fixture
        item("unit/test_c.py", ("redis_server",), marked=True),
        item("integration/test_d.py", (), marked=False),  # by place
        item("integration/test_e.py", ("emulators",), marked=True),
    ]
    assert unmarked_integration(items) == ["unit/test_b.py::test", "integration/test_d.py::test"]
