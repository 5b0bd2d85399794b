"""Acme's registry line, for one pytest run: `pytest -p tests.stub.registry ...`.

Loaded as a plugin, before any conftest or test module reads the registry, it adds the
entry `gateway/providers.py` would hold, so every list of kinds (settings, demo,
emulators, parametrize lists) has acme. Its contract tests stand where a provider's do
(`tests/emulators/test_acme.py`) for the knowledge loader. Only the tests parametrized
with acme run.
"""

from __future__ import annotations

import importlib
import sys
from types import MappingProxyType

import pytest

from gateway import providers
from tests.support.knowledge import module_of

ACME = providers.Provider(
    kind="acme",
    source="tests.stub.acme:Acme",
    emulator="tests.stub.acme_emulator",
    demo_port=8106,
    demo_credentials=MappingProxyType({"token": "acme-demo-token"}),
)
providers.PROVIDERS = MappingProxyType({**providers.PROVIDERS, ACME.kind: ACME})
providers.KINDS = tuple(providers.PROVIDERS)


def pytest_configure(config: pytest.Config) -> None:
    sys.modules[module_of(ACME.kind)] = importlib.import_module("tests.stub.test_acme")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keeps the tests parametrized with acme (a kind, or a case naming it)."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        (kept if ACME.kind in params.values() else dropped).append(item)
    config.hook.pytest_deselected(items=dropped)
    items[:] = kept
