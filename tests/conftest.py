"""Shared fixtures: emulators and the gateway as real HTTP servers on 127.0.0.1.

Helpers live in `tests/support/`; this module holds only fixtures and hooks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from hypothesis import HealthCheck, settings

from gateway.demo import demo_kinds
from gateway.servers import RedisProcess, emulator_servers
from tests.support.clients import GraphQLClient, emulator_requests
from tests.support.markers import unmarked_integration
from tests.support.servers import client_on

# The properties test logic, not speed: no deadline and no complaint about slow generation, so
# a busy machine cannot fail them. On top of the profile hypothesis chose (its "ci" one, with
# derandomized examples, when CI is set); `HYPOTHESIS_PROFILE=default` brings its own back.
settings.register_profile(
    "suite",
    parent=settings.get_profile(settings.get_current_profile_name()),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


@pytest.fixture(scope="session")
def emulators() -> Iterator[dict[str, str]]:
    """Every demo emulator, rate limits off so the suite's traffic is not throttled."""
    with ExitStack() as stack:
        yield emulator_servers(stack, demo_kinds())


@pytest.fixture(scope="session")
def gateway(emulators: dict[str, str]) -> Iterator[GraphQLClient]:
    # The emulators do not throttle here, so neither does the gateway: the suite stays quick.
    with client_on(emulators, cursor_secret="test-cursor-secret-kQ3vX8wZ") as client:
        yield client


@pytest.fixture
def emulator_stats(emulators: dict[str, str]) -> Callable[[str], int]:
    """Reads an emulator's request counter."""
    return lambda kind: emulator_requests(emulators[kind])


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    """A real redis-server of its own (stop and start it to play an outage)."""
    with RedisProcess() as server:
        yield server


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = unmarked_integration(items)
    if unmarked:
        raise pytest.UsageError(
            "integration tests without `pytestmark = pytest.mark.integration`: "
            + ", ".join(unmarked[:10])
        )
