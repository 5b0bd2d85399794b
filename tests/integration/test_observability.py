"""Observability over HTTP: /metrics, Server-Timing, the operation log line, traces, /healthz.

The gateway here has its own emulators, wrapped to record the requests (and headers) they
receive, so every count the gateway reports is checked against what really arrived.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from emulators import EmulatorOptions
from gateway.app import create_app, create_router
from gateway.demo import DEMO_CREDENTIALS, demo_provider
from gateway.providers import create_emulator
from gateway.servers import ServerThread, free_port
from gateway.settings import Settings

pytestmark = pytest.mark.integration

CONTACTS = 'query ListContacts { contacts(provider: "haste", first: 3) { edges { node { id } } } }'
TRACED = 'query Traced { contacts(provider: "haste", first: 7) { edges { node { id company { id domain } } } } }'
COMPANIES = (
    'query ListCompanies { companies(provider: "haste", first: 3) { edges { node { id } } } }'
)


@dataclass
class Recorder:
    """What an emulator received: (path, headers) per API request."""

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def wrap(self, app: Any) -> Any:
        async def recording(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and not scope["path"].startswith("/_emulator"):
                headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
                self.requests.append((scope["path"], headers))
            await app(scope, receive, send)

        return recording


@dataclass
class Observed:
    http: httpx.Client
    haste: Recorder
    revyops: Recorder

    def post(self, query: str, **extra: Any) -> httpx.Response:
        response = self.http.post("/graphql", json={"query": query, **extra})
        assert response.status_code == 200, response.text
        return response

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        response = self.http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }


def value(metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str):
    return metrics.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def observed() -> Iterator[Observed]:
    haste, revyops = Recorder(), Recorder()
    options = EmulatorOptions(rate_limits=False)
    with (
        ServerThread(haste.wrap(create_emulator("haste", options))) as haste_server,
        ServerThread(revyops.wrap(create_emulator("revyops", options))) as revyops_server,
    ):
        providers = [
            demo_provider("haste", haste_server.url).model_copy(update={"rate_limit": False}),
            # One request per 0.3 s (padded by the limiter): a second read must wait.
            demo_provider("revyops", revyops_server.url).model_copy(
                update={"rate_limit": True, "rate_limits": [(1, 0.3)]}
            ),
            # Nobody listens there: one failure opens its breaker, for a long while.
            demo_provider("haste", f"http://127.0.0.1:{free_port()}").model_copy(
                update={
                    "name": "down",
                    "rate_limit": False,
                    "max_retries": 0,
                    "breaker_min_requests": 1,
                    "breaker_cooldown": 3600.0,
                }
            ),
        ]
        settings = Settings(providers=providers, cursor_secret="test-cursor-secret-kQ3vX8wZ")
        with ServerThread(create_app(settings)) as gateway:
            http = httpx.Client(base_url=gateway.url, timeout=30)
            yield Observed(http, haste, revyops)
            http.close()


def test_metrics_count_upstream_requests_cache_and_operations(observed: Observed) -> None:
    sent = len(observed.haste.requests)
    observed.post(CONTACTS)
    first = observed.metrics()
    requests = value(first, "crm_gateway_upstream_requests_total", provider="haste", status="200")
    assert requests == len(observed.haste.requests) - sent > 0
    assert (
        value(first, "crm_gateway_upstream_request_duration_seconds_count", provider="haste")
        == requests
    )
    assert value(first, "crm_gateway_operations_total", operation="ListContacts", outcome="ok") == 1
    assert (
        value(first, "crm_gateway_operation_upstream_requests_sum", operation="ListContacts")
        == requests
    )
    assert value(first, "crm_gateway_circuit_state", provider="haste", state="CLOSED") == 1
    assert value(first, "crm_gateway_circuit_state", provider="haste", state="OPEN") == 0

    observed.post(CONTACTS)  # served from the cache: nothing new upstream
    observed.post(COMPANIES)
    second = observed.metrics()
    now = value(second, "crm_gateway_upstream_requests_total", provider="haste", status="200")
    assert now == len(observed.haste.requests) - sent > requests
    assert value(
        second, "crm_gateway_cache_requests_total", provider="haste", result="hit"
    ) > value(first, "crm_gateway_cache_requests_total", provider="haste", result="hit")
    assert value(second, "crm_gateway_cache_requests_total", provider="haste", result="miss") > 0
    assert (
        value(second, "crm_gateway_operations_total", operation="ListContacts", outcome="ok") == 2
    )
    assert (
        value(second, "crm_gateway_operation_upstream_requests_count", operation="ListContacts")
        == 2
    )
    # The cached run cost nothing: the sum is still the first run's.
    assert (
        value(second, "crm_gateway_operation_upstream_requests_sum", operation="ListContacts")
        == requests
    )


def test_metrics_count_outcomes_by_error_code(observed: Observed) -> None:
    query = 'query TooBig { contacts(provider: "haste", first: 100000) { edges { node { id } } } }'
    observed.post(query)
    observed.post(query)
    metrics = observed.metrics()
    assert (
        value(metrics, "crm_gateway_operations_total", operation="TooBig", outcome="BAD_USER_INPUT")
        == 2
    )
    assert value(metrics, "crm_gateway_operations_total", operation="TooBig", outcome="ok") == 0


def test_metrics_show_an_open_circuit_and_transport_errors(observed: Observed) -> None:
    body = observed.post(
        'query Down { contacts(provider: "down", first: 1) { edges { node { id } } } }'
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    metrics = observed.metrics()
    assert (
        value(
            metrics,
            "crm_gateway_upstream_requests_total",
            provider="down",
            status="transport_error",
        )
        == 1
    )
    assert value(metrics, "crm_gateway_circuit_state", provider="down", state="OPEN") == 1
    assert value(metrics, "crm_gateway_circuit_state", provider="down", state="CLOSED") == 0
    assert (
        value(
            metrics,
            "crm_gateway_operations_total",
            operation="Down",
            outcome="UPSTREAM_UNAVAILABLE",
        )
        == 1
    )


def test_metrics_count_rate_limiter_waits(observed: Observed) -> None:
    before = observed.metrics()
    observed.post('{ contacts(provider: "revyops", first: 2) { edges { node { id } } } }')
    observed.post('{ companies(provider: "revyops", first: 2) { edges { node { id } } } }')
    after = observed.metrics()
    waits = value(after, "crm_gateway_rate_limiter_waits_total", provider="revyops")
    assert waits >= 1 + value(before, "crm_gateway_rate_limiter_waits_total", provider="revyops")
    # The second read waited for the first one's slot: about half a second.
    assert value(after, "crm_gateway_rate_limiter_wait_seconds_total", provider="revyops") > 0.1
    assert value(after, "crm_gateway_rate_limiter_waits_total", provider="haste") == 0


SERVER_TIMING = re.compile(r'total;dur=(\d+\.\d), upstream;dur=(\d+\.\d);desc="(\d+) requests"')


def test_server_timing_reports_duration_and_upstream_requests(observed: Observed) -> None:
    sent = len(observed.haste.requests)
    response = observed.post('{ notes(provider: "haste", first: 4) { edges { node { id } } } }')
    timing = SERVER_TIMING.fullmatch(response.headers["server-timing"])
    assert timing is not None, response.headers["server-timing"]
    total, upstream, requests = float(timing[1]), float(timing[2]), int(timing[3])
    assert requests == len(observed.haste.requests) - sent > 0
    assert 0 < upstream <= total
    cached = observed.post('{ notes(provider: "haste", first: 4) { edges { node { id } } } }')
    assert cached.headers["server-timing"].endswith('upstream;dur=0.0;desc="0 requests"')


def test_one_log_line_per_operation_without_credentials(
    observed: Observed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.operation")
    sent = len(observed.haste.requests)
    query = (
        'query LogMe($q: String) { deals(provider: "haste", first: 2) { edges { node { id } } }'
        ' big: deals(provider: "haste", first: 5000) { edges { node { id name } } }'
        ' again: deals(provider: "haste", first: 2, filter: {name: {contains: $q}}) { edges { node { id } } } }'
    )
    body = observed.post(query, variables={"q": "hunter2-password"}).json()
    codes = {e["extensions"]["code"] for e in body["errors"]}
    assert "BAD_USER_INPUT" in codes
    lines = [r for r in caplog.records if r.name == "gateway.operation"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    line = lines[0]
    message = line.getMessage()
    cost = len(observed.haste.requests) - sent
    parsed = re.fullmatch(
        rf"operation=LogMe duration_ms=\d+\.\d cost={cost} errors=(\S+) client=- "
        r"request_id=([0-9a-f]{32})",
        message,
    )
    assert parsed is not None, message
    assert set(parsed[1].split(",")) == codes
    assert line.request_id == parsed[2]  # type: ignore[attr-defined]
    assert line.operation == "LogMe"  # type: ignore[attr-defined]
    assert line.cost == cost  # type: ignore[attr-defined]
    assert line.duration_ms > 0  # type: ignore[attr-defined]
    for secret in ("hunter2-password", *DEMO_CREDENTIALS["haste"].values()):
        assert all(secret not in r.getMessage() for r in caplog.records)


def test_log_line_quotes_what_is_not_a_name(
    observed: Observed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.operation")
    observed.http.post(
        "/graphql", json={"query": "query A { providers { name } }", "operationName": "A\nforged=1"}
    )
    [line] = [r.getMessage() for r in caplog.records if r.name == "gateway.operation"]
    assert line.startswith("operation=invalid ")
    assert "\n" not in line


def test_healthz_reports_the_version(observed: Observed) -> None:
    response = observed.http.get("/healthz")
    assert response.json() == {"status": "ok", "version": version("crm-gateway")}


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """Spans of this process, in memory (a provider set by an earlier test is reused)."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def _root(span: ReadableSpan, exporter: InMemorySpanExporter) -> ReadableSpan:
    """The first span of `span`'s chain of local parents. A host's HTTP span ends after the
    response has gone out, so it is waited for."""
    deadline = time.monotonic() + 20
    while span.parent is not None and not span.parent.is_remote:
        wanted = span.parent.span_id
        found = [s for s in exporter.get_finished_spans() if s.context.span_id == wanted]
        if found:
            span = found[0]
        else:
            assert time.monotonic() < deadline, "the parent span never ended"
            time.sleep(0.01)
    return span


def _host_without_tracing(settings: Settings) -> FastAPI:
    """A host app that starts no HTTP spans of its own: the gateway reads `traceparent`."""
    host = FastAPI(telemetry={"tracing": False})
    host.include_router(create_router(settings))
    return host


@pytest.mark.parametrize("host", [create_app, _host_without_tracing])
def test_traces_one_span_per_operation_and_upstream_request(
    host: Callable[[Settings], FastAPI], spans: InMemorySpanExporter
) -> None:
    spans.clear()
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    recorder = Recorder()
    emulator = recorder.wrap(create_emulator("haste", EmulatorOptions(rate_limits=False)))
    with ServerThread(emulator) as haste:
        provider = demo_provider("haste", haste.url).model_copy(update={"rate_limit": False})
        with ServerThread(host(Settings(providers=[provider]))) as gateway:
            response = httpx.post(
                f"{gateway.url}/graphql",
                json={"query": TRACED},
                headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
            )
    assert response.status_code == 200
    assert "errors" not in response.json()
    received = recorder.requests
    assert len(received) >= 2  # contacts, then their companies

    ours = [s for s in spans.get_finished_spans() if f"{s.context.trace_id:032x}" == trace_id]
    [operation] = [s for s in ours if s.name == "GraphQL query Traced"]
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.name"] == "Traced"
    # Joined to the client's trace: through the host's HTTP span, or directly.
    root = _root(operation, spans)
    assert root.parent is not None
    assert root.parent.is_remote
    assert f"{root.parent.span_id:016x}" == parent_id
    upstream = [s for s in ours if s.kind is SpanKind.CLIENT]
    assert len(upstream) == len(received)
    for span in upstream:
        assert span.parent is not None
        assert span.parent.span_id == operation.context.span_id
        assert span.attributes is not None
        assert span.attributes["crm_gateway.provider"] == "haste"
        assert span.attributes["http.response.status_code"] == 200
    # Each request carried its own span's context upstream.
    sent_parents = sorted(headers["traceparent"] for _, headers in received)
    expected = sorted(f"00-{trace_id}-{s.context.span_id:016x}-01" for s in upstream)
    assert sent_parents == expected


def test_traces_start_a_new_trace_without_traceparent(
    observed: Observed, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    observed.post("query Fresh { providers { name } }")
    finished = list(spans.get_finished_spans())
    [operation] = [s for s in finished if s.name == "GraphQL query Fresh"]
    assert _root(operation, spans).parent is None
