"""Which tests are integration tests: by the folder they live in or the fixtures they use."""

from __future__ import annotations

import pytest

# Tests that talk over loopback HTTP, by where they live or the fixtures they use: each must
# carry the `integration` marker, so `pytest -m "not integration"` is the fast unit layer.
INTEGRATION_DIRS = ("integration",)
INTEGRATION_FIXTURES = frozenset({"emulators", "gateway", "emulator_stats", "redis_server"})


def unmarked_integration(items: list[pytest.Item]) -> list[str]:
    """The ids of tests that are integration tests by place or fixture but lack the marker."""
    return [
        item.nodeid
        for item in items
        if item.get_closest_marker("integration") is None
        and (
            item.path.parent.name in INTEGRATION_DIRS
            or INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ()))
        )
    ]
