"""Sequential answers on one kept-alive connection, from the servers the command line starts:
none may wait for the client's delayed ACK (Nagle's algorithm left on, ~40 ms an answer)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gateway.servers import LOOPBACK, free_port
from tests.support.servers import running, wait_for

pytestmark = pytest.mark.integration

REQUESTS = 50
# The stall holds every answer at least 40 ms, however idle the machine; an unstalled answer
# takes 1-3 ms. The median answer is the measure: a busy machine slows some answers a lot, and
# the median little, while the stall moves every one past 40 ms.
BOUND = 0.030


def _sequential(request: Callable[[], httpx.Response]) -> float:
    """The median seconds of REQUESTS answers one after the other, after one to open the
    connection."""
    request().raise_for_status()
    times = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        request().raise_for_status()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
    assert upstream < BOUND, f"the median emulator answer took {upstream * 1000:.1f} ms"
    assert query < BOUND, f"the median gateway answer took {query * 1000:.1f} ms"
