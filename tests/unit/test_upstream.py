"""The upstream client: reading each provider's way of saying "wait" (seconds, HTTP dates,
epoch instants), and what it retries and what counts against a provider's circuit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.answers import Answers, seconds_until
from gateway.breaker import Breaker, CircuitState
from gateway.cache import ReadCache
from gateway.errors import (
    CircuitOpen,
    NoRateLimitSlot,
    UpstreamError,
    UpstreamNotSent,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.responses import ResponseCache
from gateway.retry import Retry
from gateway.settings import ProviderSettings
from gateway.throttle import RateLimitState, Throttle
from gateway.upstream import Upstream, build_upstream
from gateway.wire import Sendable, Wire
from tests.unit.fake_time import FakeTime

NOW = 1_780_000_000.0  # a fixed "now", Unix seconds


@pytest.mark.parametrize(
    ("value", "wait"),
    [
        ("3", 3.0),  # delay seconds (RevyOps, BasicsOS, hasteCRM Retry-After)
        ("0", 0.0),
        (str(int(NOW) + 42), 42.0),  # Unix seconds (hasteCRM X-RateLimit-Reset)
        (str(int(NOW * 1000) + 1500), 1.5),  # milliseconds since the epoch (Redivis)
        (str(int(NOW * 1000) - 5000), 0.0),  # an instant already past: no wait
        ("Thu, 28 May 2026 20:27:00 GMT", 20.0),  # HTTP date (Attio)
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_seconds_until(value, wait):
    result = seconds_until(value, NOW)
    assert result == pytest.approx(wait) if wait is not None else result is None


def test_rate_limit_state_reads_headers():
    state = RateLimitState()
    headers = httpx.Headers(
        {
            "X-RateLimit-Limit": "1000",
            "X-RateLimit-Remaining": "998",
            "X-RateLimit-Reset": str(int(NOW * 1000) + 60_000),
        }
    )
    state.update(headers, NOW)
    assert (state.limit, state.remaining) == (1000, 998)
    assert state.reset_at == pytest.approx(NOW + 60)
    state.update(httpx.Headers({}), NOW)  # a response without headers keeps what was known
    assert state.remaining == 998


# --- retries and the breaker, over httpx.MockTransport on a fake clock -----------------------


def upstream_with(
    handler: Callable[[httpx.Request], httpx.Response],
    time: FakeTime,
    *,
    responses: ReadCache[httpx.Response] | None = None,
    **settings: Any,
) -> tuple[Upstream, list[httpx.Request]]:
    """An Upstream whose provider answers with `handler` (its reads cached in `responses`);
    the requests that reached it."""
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return handler(request)

    provider = ProviderSettings(name="crm", kind="revyops", base_url="http://crm.test", **settings)
    client = httpx.AsyncClient(base_url=provider.base_url, transport=httpx.MockTransport(record))
    upstream = build_upstream(
        provider, client, lambda body: None, responses=responses, clock=time, sleep=time.sleep
    )
    return upstream, sent


def circuit(upstream: Upstream) -> CircuitState:
    return upstream.breaker.state  # read afresh each time (mypy would narrow a property)


def answer(status: int) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json={"detail": "no"})


def outcome(upstream: Upstream, method: str = "GET") -> UpstreamError | None:
    async def call() -> UpstreamError | None:
        try:
            await upstream.request(method, "/things")
        except UpstreamError as error:
            return error
        return None

    return asyncio.run(call())


def test_an_open_circuit_is_not_retried_and_spends_no_budget():
    time = FakeTime()
    upstream, sent = upstream_with(
        answer(500), time, max_retries=2, breaker_min_requests=3, breaker_cooldown=10.0
    )
    first = outcome(upstream)
    assert isinstance(first, UpstreamUnavailable)
    assert first.status == 500
    assert len(sent) == 3  # one try, two retries: then the ratio (3 of 3) opens the circuit
    assert circuit(upstream) is CircuitState.OPEN
    tokens, slept = upstream.budget.tokens, len(time.slept)
    for method in ("GET", "POST"):
        error = outcome(upstream, method)
        assert isinstance(error, CircuitOpen)
        assert isinstance(error, UpstreamNotSent)
        assert error.extensions == {"code": "UPSTREAM_UNAVAILABLE", "provider": "crm"}
        assert error.not_applied  # a write that met it can safely be sent again
    assert len(sent) == 3  # nothing reached the provider
    assert len(time.slept) == slept  # no backoff
    assert upstream.budget.tokens == tokens  # no retry budget spent, none earned either


def test_a_retry_does_not_wait_on_a_circuit_its_failure_opened():
    time = FakeTime()
    upstream, sent = upstream_with(answer(503), time, max_retries=2, breaker_min_requests=1)
    error = outcome(upstream)
    assert isinstance(error, UpstreamUnavailable)
    assert error.status == 503  # the failure itself, not the circuit it opened
    assert len(sent) == 1
    assert time.slept == []


def test_no_rate_limit_slot_before_the_deadline_is_not_retried():
    time = FakeTime()
    upstream, sent = upstream_with(answer(200), time, rate_limits=[(1, 60.0)], request_deadline=5.0)
    assert outcome(upstream) is None
    tokens = upstream.budget.tokens
    for method in ("GET", "POST"):
        error = outcome(upstream, method)
        assert isinstance(error, NoRateLimitSlot)
        assert isinstance(error, UpstreamNotSent)
        assert error.extensions == {"code": "UPSTREAM_RATE_LIMITED", "provider": "crm"}
        assert error.not_applied
    assert len(sent) == 1
    assert time.slept == []  # it neither waited for the slot nor backed off to try again
    assert upstream.budget.tokens == tokens
    assert upstream.limiter.delay(time.now) > 50  # and it did not pause the limiter further


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429])
def test_answers_a_client_caused_never_open_the_circuit(status):
    time = FakeTime()
    upstream, _ = upstream_with(answer(status), time, breaker_min_requests=2)
    for _ in range(20):
        assert outcome(upstream) is not None
        time.advance(0.5)
    assert circuit(upstream) is CircuitState.CLOSED
    assert upstream.breaker.allow()


def too_slow(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("slow", request=request)


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


@pytest.mark.parametrize(
    "failure",
    [answer(500), answer(502), answer(504), too_slow, unreachable],
    ids=["500", "502", "504", "timeout", "unreachable"],
)
def test_server_failures_open_the_circuit_on_their_ratio(failure):
    time = FakeTime()
    answers = [answer(200), answer(200), failure, failure]
    upstream, sent = upstream_with(
        lambda request: answers.pop(0)(request), time, max_retries=0, breaker_min_requests=4
    )
    for _ in range(3):
        outcome(upstream)
    assert circuit(upstream) is CircuitState.CLOSED  # 1 of 3, and too few to judge
    assert outcome(upstream) is not None
    assert circuit(upstream) is CircuitState.OPEN  # 2 of 4: the ratio 0.5
    assert isinstance(outcome(upstream), CircuitOpen)
    assert len(sent) == 4


def test_a_retry_left_unsent_reports_the_try_before_it():
    time = FakeTime()
    upstream, sent = upstream_with(
        too_slow, time, max_retries=2, rate_limits=[(1, 60.0)], request_deadline=5.0
    )
    error = outcome(upstream)
    assert isinstance(error, UpstreamTimeout)  # not the retry's NoRateLimitSlot
    assert not error.not_applied  # the request was sent: it may have been applied
    assert len(sent) == 1


def test_the_factory_stacks_the_layers_in_their_order():
    """Retries above the breaker and the throttle: every try passes both anew."""
    upstream, _ = upstream_with(answer(200), FakeTime())
    stack: list[type] = []
    layer: Any = upstream.top
    while layer is not None:
        stack.append(type(layer))
        layer = getattr(layer, "below", None)
    assert stack == [ResponseCache, Sendable, Retry, Answers, Breaker, Throttle, Wire]
