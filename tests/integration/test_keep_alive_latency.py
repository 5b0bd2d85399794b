"""Sequential answers on one kept-alive connection, from the servers the command line starts:
none may wait for the client's delayed ACK (Nagle's algorithm left on, ~40 ms an answer)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gateway.servers import LOOPBACK, free_port
from tests.integration.test_cli import running, wait_for

pytestmark = pytest.mark.integration

REQUESTS = 50
# The stall costs at least 40 ms an answer, 2 s for 50; an unstalled answer takes 1-3 ms. Half
# the stall (1 s for 50) leaves a busy 2-core machine some ten times what it needs, and still
# fails if only half the answers stall.
BOUND = REQUESTS * 0.020


def _sequential(request: Callable[[], httpx.Response]) -> float:
    """Seconds for REQUESTS answers one after the other, after one to open the connection."""
    request().raise_for_status()
    start = time.perf_counter()
    for _ in range(REQUESTS):
        request().raise_for_status()
    return time.perf_counter() - start


def test_emulate_and_serve_answer_a_kept_alive_connection_without_delay(
    tmp_path: Path,
) -> None:
    emulator_port, gateway_port = free_port(), free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[[providers]]\nname = "crm"\nkind = "revyops"\n'
        f'base_url = "http://{LOOPBACK}:{emulator_port}"\n'
        'credentials = { client_id = "revyops-demo-client" }\n'
    )
    emulate = ("emulate", "revyops", "--port", str(emulator_port), "--log-level", "warning")
    serve = ("serve", "--config", str(config), "--port", str(gateway_port))
    with running(*emulate) as emulator, running(*serve, "--log-level", "warning") as gateway:
        stats = f"http://{LOOPBACK}:{emulator_port}/_emulator/stats"
        graphql = f"http://{LOOPBACK}:{gateway_port}/graphql"
        wait_for(stats, emulator)
        wait_for(f"http://{LOOPBACK}:{gateway_port}/healthz", gateway)
        with httpx.Client(timeout=10) as client:
            upstream = _sequential(lambda: client.get(stats))
            query = _sequential(lambda: client.post(graphql, json={"query": "{ __typename }"}))
    assert upstream < BOUND, f"{REQUESTS} emulator answers took {upstream:.2f} s"
    assert query < BOUND, f"{REQUESTS} gateway answers took {query:.2f} s"
