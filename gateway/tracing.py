"""OpenTelemetry spans when the `otel` extra is installed; nothing at all without it.

Only the OpenTelemetry API is used: spans go wherever the process's tracer provider
sends them (the operator sets one up with the SDK and an exporter, or runs under
`opentelemetry-instrument`); with no provider set they cost next to nothing. Trace
context travels as W3C `traceparent` headers: read from the client's request when no
span is current (a host app's HTTP instrumentation may have started one), and written
into every upstream request, so a provider's logs can be joined to the operation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

TRACER_NAME = "crm-gateway"

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
except ImportError:  # the `otel` extra is not installed: no tracer, and no span anywhere
    _tracer: Tracer | None = None
else:
    # A ProxyTracer until the operator sets a provider; it follows the provider once set.
    _tracer = trace.get_tracer(TRACER_NAME)


def enabled() -> bool:
    """Whether the OpenTelemetry API is importable."""
    return _tracer is not None


@contextmanager
def operation_span(headers: Mapping[str, str]) -> Iterator[Any]:
    """The span of one GraphQL operation (None without OpenTelemetry); `headers` are the
    client's, read for a `traceparent` when no span is current."""
    if _tracer is None:
        yield None
        return
    parent = None
    kind = SpanKind.INTERNAL
    if not trace.get_current_span().get_span_context().is_valid:
        parent = propagate.extract(headers)
        kind = SpanKind.SERVER
    with _tracer.start_as_current_span("GraphQL operation", context=parent, kind=kind) as span:
        yield span


def finish_operation(span: Any, name: str, operation_type: str | None, codes: list[str]) -> None:
    """Name the operation's span once the document is parsed, and mark errors."""
    if span is None:
        return
    span.update_name(f"GraphQL {operation_type or 'operation'} {name}")
    span.set_attribute("graphql.operation.name", name)
    if operation_type:
        span.set_attribute("graphql.operation.type", operation_type)
    if codes:
        span.set_attribute("crm_gateway.error_codes", codes)
        span.set_status(Status(StatusCode.ERROR, ", ".join(codes)))


@contextmanager
def upstream_span(
    provider: str, method: str, path: str, headers: MutableMapping[str, str]
) -> Iterator[Any]:
    """The span of one upstream request; writes its trace context into `headers`."""
    if _tracer is None:
        yield None
        return
    attributes = {"http.request.method": method, "url.path": path, "crm_gateway.provider": provider}
    with _tracer.start_as_current_span(
        f"{method} {provider}", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        propagate.inject(headers)
        yield span


def set_status_code(span: Any, status: int) -> None:
    if span is None:
        return
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
