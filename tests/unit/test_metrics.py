"""What the upstream client reports per request (on a fake clock), the operation-name cap,
and the gateway working when OpenTelemetry is not installed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway import metrics
from gateway.app import create_app
from gateway.errors import UpstreamError
from gateway.metrics import Metrics, OperationStats
from gateway.settings import Settings
from tests.unit.fake_time import FakeTime
from tests.unit.test_upstream import answer, upstream_with

ROOT = Path(__file__).resolve().parents[2]


def sample(registry: Metrics, name: str, **labels: str) -> float:
    return registry.registry.get_sample_value(name, labels) or 0.0


def run_in_operation(stats: OperationStats, *calls: object) -> list[object]:
    async def run() -> list[object]:
        token = metrics.begin(stats)
        try:
            results: list[object] = []
            for call in calls:
                try:
                    results.append(await call)  # type: ignore[misc]
                except UpstreamError as error:
                    results.append(error)
            return results
        finally:
            metrics.end(token)

    return asyncio.run(run())


def test_requests_statuses_latency_cost_and_limiter_waits_are_counted():
    time = FakeTime()
    upstream, sent = upstream_with(answer(200), time, rate_limits=[(1, 1.0)])
    app = Metrics()
    stats = OperationStats(app)
    run_in_operation(stats, upstream.request("GET", "/a"), upstream.request("GET", "/b"))
    assert len(sent) == 2
    assert stats.requests == 2
    assert sample(app, "crm_gateway_upstream_requests_total", provider="crm", status="200") == 2
    assert sample(app, "crm_gateway_upstream_request_duration_seconds_count", provider="crm") == 2
    # The second request waited for the first one's slot: the padded window, 1.25 s.
    assert sample(app, "crm_gateway_rate_limiter_waits_total", provider="crm") == 1
    assert sample(app, "crm_gateway_rate_limiter_wait_seconds_total", provider="crm") == (
        pytest.approx(1.25)
    )


def test_every_attempt_counts_retries_included():
    time = FakeTime()
    upstream, sent = upstream_with(answer(503), time, max_retries=1, breaker_min_requests=100)
    app = Metrics()
    stats = OperationStats(app)
    [error] = run_in_operation(stats, upstream.request("GET", "/a"))
    assert isinstance(error, UpstreamError)
    assert len(sent) == stats.requests == 2
    assert sample(app, "crm_gateway_upstream_requests_total", provider="crm", status="503") == 2


def test_a_transport_error_is_counted_as_such():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    upstream, _ = upstream_with(refuse, FakeTime(), max_retries=0)
    app = Metrics()
    run_in_operation(OperationStats(app), upstream.request("GET", "/a"))
    labels = {"provider": "crm", "status": "transport_error"}
    assert sample(app, "crm_gateway_upstream_requests_total", **labels) == 1


def test_requests_outside_an_operation_are_not_attributed():
    upstream, sent = upstream_with(answer(200), FakeTime())
    asyncio.run(upstream.request("GET", "/a"))
    assert len(sent) == 1  # sent normally; there is no operation to charge


def test_upstream_time_is_the_union_of_overlapping_requests():
    now = [0.0]
    stats = OperationStats(None, clock=lambda: now[0])
    stats.started()  # 0 .. 3
    now[0] = 1.0
    stats.started()  # 1 .. 2, inside the first
    now[0] = 2.0
    stats.finished()
    now[0] = 3.0
    stats.finished()
    now[0] = 10.0
    stats.started()  # 10 .. 11
    now[0] = 11.0
    stats.finished()
    assert stats.requests == 3
    assert stats.upstream_seconds == 4.0


@pytest.mark.parametrize(
    ("name", "label"),
    [
        (None, "anonymous"),
        ("ListContacts", "ListContacts"),
        ("_x9", "_x9"),
        ("A\nforged=1", "invalid"),
        ("9lives", "invalid"),
        ("x" * 101, "invalid"),
    ],
)
def test_operation_names_are_graphql_names_or_a_placeholder(name, label):
    assert metrics.operation_name(name) == label


def test_distinct_operation_names_are_capped():
    app = Metrics()
    for index in range(metrics.MAX_OPERATION_NAMES + 5):
        app.operation(f"Op{index}", "ok", 0.01, 1)
    app.operation("Op0", "ok", 0.01, 1)  # a known name keeps its own series
    assert sample(app, "crm_gateway_operations_total", operation="Op0", outcome="ok") == 2
    assert sample(app, "crm_gateway_operations_total", operation="other", outcome="ok") == 5
    last = f"Op{metrics.MAX_OPERATION_NAMES}"
    assert sample(app, "crm_gateway_operations_total", operation=last, outcome="ok") == 0


def test_names_that_did_not_run_take_no_place():
    app = Metrics()
    for index in range(metrics.MAX_OPERATION_NAMES):
        app.operation(f"Junk{index}", "GRAPHQL_VALIDATION_FAILED", 0.01, 0, admit=False)
    app.operation("Real", "ok", 0.01, 1)
    assert sample(app, "crm_gateway_operations_total", operation="Real", outcome="ok") == 1
    labels = {"operation": "other", "outcome": "GRAPHQL_VALIDATION_FAILED"}
    assert sample(app, "crm_gateway_operations_total", **labels) == metrics.MAX_OPERATION_NAMES
    # A name that ran before keeps its series when it later fails up front.
    app.operation("Real", "GRAPHQL_VALIDATION_FAILED", 0.01, 0, admit=False)
    labels = {"operation": "Real", "outcome": "GRAPHQL_VALIDATION_FAILED"}
    assert sample(app, "crm_gateway_operations_total", **labels) == 1


def test_the_name_cap_frees_places_unused_for_a_while():
    now = [0.0]
    app = Metrics(clock=lambda: now[0])
    for index in range(metrics.MAX_OPERATION_NAMES):
        app.operation(f"Old{index}", "ok", 0.01, 1)
    now[0] = metrics.OPERATION_NAME_TTL - 1
    app.operation("Old0", "ok", 0.01, 1)  # seen again: keeps its place
    app.operation("Early", "ok", 0.01, 1)
    assert sample(app, "crm_gateway_operations_total", operation="Early", outcome="ok") == 0
    now[0] = metrics.OPERATION_NAME_TTL + 1
    app.operation("Late", "ok", 0.01, 1)
    assert sample(app, "crm_gateway_operations_total", operation="Late", outcome="ok") == 1
    # The least recently seen name gave its place up, and its series left the page.
    assert sample(app, "crm_gateway_operations_total", operation="Old1", outcome="ok") == 0
    page = generate_latest(app.registry).decode()
    assert 'operation="Old1"' not in page
    assert sample(app, "crm_gateway_operations_total", operation="Old0", outcome="ok") == 2
    assert sample(app, "crm_gateway_operations_total", operation="Old2", outcome="ok") == 1


async def test_refusals_count_by_their_own_codes_and_take_no_label():
    transport = httpx.ASGITransport(app=create_app(Settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        named = "query Named { providers { name } }"
        refused = [
            ({"query": named, "operationName": "Missing"}, "OPERATION_RESOLUTION_FAILURE"),
            ({"query": "query Broken { providers { name "}, "GRAPHQL_PARSE_FAILED"),
            ({"query": "query Junk { nope }"}, "GRAPHQL_VALIDATION_FAILED"),
        ]
        for body, _ in refused:
            await client.post("/graphql", json=body)
        await client.get("/graphql", params={"query": "mutation ViaGet { __typename }"})
        await client.post("/graphql", json={"query": named})
        page = (await client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(page)}
    counted = {
        (s.labels["operation"], s.labels["outcome"])
        for s in families["crm_gateway_operations"].samples
        if s.name.endswith("_total")
    }
    assert counted == {
        ("other", "OPERATION_RESOLUTION_FAILURE"),
        ("anonymous", "GRAPHQL_PARSE_FAILED"),  # unparsed: its name is unknown
        ("other", "GRAPHQL_VALIDATION_FAILED"),
        ("other", "METHOD_NOT_ALLOWED"),
        ("Named", "ok"),
    }


def test_cache_events_reported_by_hook_are_exported():
    app = Metrics()
    metrics.cache_event("crm", "stale")  # outside an operation: nowhere to count it
    token = metrics.begin(OperationStats(app))
    try:
        metrics.cache_event("crm", "stale")
        metrics.cache_event("crm", "stale")
    finally:
        metrics.end(token)
    assert sample(app, "crm_gateway_cache_requests_total", provider="crm", result="stale") == 2


def test_the_gateway_runs_without_opentelemetry():
    # A fresh interpreter where the gateway's `import opentelemetry` fails, as without the
    # `otel` extra. Recent FastAPI imports the OpenTelemetry API itself, so it is loaded first.
    script = textwrap.dedent(
        """
        import asyncio, sys
        import fastapi, strawberry.fastapi
        sys.modules["opentelemetry"] = None
        import httpx
        from gateway import tracing
        from gateway.app import create_app
        from gateway.settings import Settings

        assert not tracing.enabled()

        async def main():
            transport = httpx.ASGITransport(app=create_app(Settings()))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                response = await client.post("/graphql", json={"query": "{ providers { name } }"})
                assert response.status_code == 200, response.text
                assert response.json()["data"] == {"providers": []}, response.text
                assert response.headers["server-timing"].startswith("total;dur="), response.headers
                metrics = await client.get("/metrics")
                assert 'crm_gateway_operations_total{operation="anonymous",outcome="ok"} 1.0' in metrics.text
            print("ok")

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
