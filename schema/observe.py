"""Per-operation observability: metrics, a span, a `Server-Timing` header, one log line.

Hooked on the operation only (never on field resolution, which would turn every field
into a coroutine). The log line replaces uvicorn's access lines: one per operation, in
`key=value` form on the `gateway.operation` logger, with the same values as `extra`
attributes for a JSON formatter. It names the operation but never holds its variables,
headers or anything a credential could hide in.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionContext

from gateway import metrics, tracing
from gateway.errors import GatewayError

log = logging.getLogger("gateway.operation")

_PLAIN = re.compile(r"[\w.,:/@-]+")


def _value(value: object) -> str:
    """A log value: bare when plain, JSON-quoted otherwise (no spaces or newlines leak)."""
    text = str(value)
    return text if _PLAIN.fullmatch(text) else json.dumps(text)


def _codes(errors: list[GraphQLError] | None) -> list[str]:
    """The distinct error codes, in order of first appearance."""
    codes: dict[str, None] = {}
    for error in errors or ():
        code = (error.extensions or {}).get("code", "INTERNAL_SERVER_ERROR")
        codes[str(code)] = None
    return list(codes)


def _refusal_code(error: BaseException) -> str:
    """The code a client gets for an exception that ended the operation before it ran: the
    endpoint answers these refusals itself; anything else is a bug of ours."""
    if isinstance(error, CannotGetOperationTypeError):
        return "OPERATION_RESOLUTION_FAILURE"
    if isinstance(error, InvalidOperationTypeError):
        return "METHOD_NOT_ALLOWED"  # a mutation sent with GET
    if isinstance(error, MissingQueryError):
        return "BAD_REQUEST"
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    if isinstance(error, GatewayError):
        return error.code
    return "INTERNAL_SERVER_ERROR"


def _request_error(errors: list[GraphQLError] | None, data: object) -> bool:
    """Whether the operation was refused before it ran (no data, no error at a field)."""
    return data is None and bool(errors) and all(e.path is None for e in errors or ())


def _operation_type(ec: ExecutionContext) -> str | None:
    if ec.graphql_document is None:
        return None
    try:
        return ec.operation_type.value
    except RuntimeError:  # no operation of the name the client gave
        return None


def _client_name(context: Any) -> str | None:
    # Set by authentication when clients are configured; absent otherwise.
    client = getattr(context, "client", None)
    if client is None or isinstance(client, str):
        return client
    name = getattr(client, "name", None)
    return name if isinstance(name, str) else None


def _request_id(context: Any) -> str | None:
    # Chosen by the route (gateway.headers) before the operation ran; absent in-process.
    request = getattr(context, "request", None)
    state = getattr(request, "scope", {}).get("state") or {}
    found = state.get("request_id")
    return found if isinstance(found, str) else None


class Observe(SchemaExtension):
    """Times each operation and counts what it sent upstream (see `gateway.metrics`)."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        request = getattr(context, "request", None)
        app_metrics = getattr(getattr(context, "gateway", None), "metrics", None)
        stats = metrics.OperationStats(
            app_metrics if isinstance(app_metrics, metrics.Metrics) else None
        )
        token = metrics.begin(stats)
        start = time.perf_counter()
        headers = request.headers if request is not None else {}
        with tracing.operation_span(headers) as span:
            failed: str | None = "INTERNAL_SERVER_ERROR"
            try:
                yield
                failed = None
            except BaseException as error:
                failed = _refusal_code(error)
                raise
            finally:
                metrics.end(token)
                self._report(context, stats, span, time.perf_counter() - start, failed)

    def _report(
        self,
        context: Any,
        stats: metrics.OperationStats,
        span: Any,
        seconds: float,
        failed: str | None,
    ) -> None:
        ec = self.execution_context
        result = ec.result
        errors = (result.errors if result is not None else None) or ec.pre_execution_errors
        codes = [failed] if failed else _codes(errors)
        name = metrics.operation_name(ec.operation_name)
        kind = _operation_type(ec)
        tracing.finish_operation(span, name, kind, codes)
        if stats.metrics is not None:
            # Only a name that ran becomes a label: junk names are refused before they run.
            ran = failed is None and not _request_error(errors, result and result.data)
            outcome = codes[0] if codes else "ok"
            stats.metrics.operation(name, outcome, seconds, stats.requests, admit=ran)
        response = getattr(context, "response", None)
        if response is not None:
            response.headers["Server-Timing"] = (
                f"total;dur={seconds * 1000:.1f}, upstream;dur={stats.upstream_seconds * 1000:.1f}"
                f';desc="{stats.requests} requests"'
            )
        fields = {
            "operation": name,
            "duration_ms": round(seconds * 1000, 1),
            "cost": stats.requests,
            "errors": ",".join(codes) or "-",
            "client": _client_name(context) or "-",
            "request_id": _request_id(context) or "-",
        }
        log.info(" ".join(f"{key}={_value(value)}" for key, value in fields.items()), extra=fields)
