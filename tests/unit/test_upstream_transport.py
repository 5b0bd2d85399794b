"""`Upstream` over `httpx.MockTransport` on a fake clock: retries with backoff inside the
deadline and the retry budget, 429 and its `Retry-After` forms, the breaker, how each
failure maps to the gateway's errors, and the requests as they go on the wire."""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from gateway.breaker import CircuitState
from gateway.errors import (
    CircuitOpen,
    RequestNotSendable,
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.settings import ProviderSettings
from gateway.upstream import ClientAuth, Upstream, build_upstream, open_client
from tests.unit.fake_time import FakeTime
from tests.unit.mock_provider import Provider, ok


def upstream(provider: Provider, clock: FakeTime, **settings: Any) -> Upstream:
    config = ProviderSettings(
        name="crm", kind="revyops", base_url="http://crm.test/api", **settings
    )
    auth = ClientAuth(headers={"X-Key": "secret"}, params={"client_id": "c1"})
    client = open_client(config, auth, transport=httpx.MockTransport(provider))
    return build_upstream(
        config,
        client,
        lambda body: body.get("detail") if isinstance(body, dict) else None,
        clock=clock,
        sleep=clock.sleep,
    )


def call(up: Upstream, method: str = "GET", **kwargs: Any) -> httpx.Response | UpstreamError:
    async def run() -> httpx.Response | UpstreamError:
        try:
            return await up.request(method, "/things", **kwargs)
        except UpstreamError as error:
            return error

    return asyncio.run(run())


def failure(up: Upstream, method: str = "GET", **kwargs: Any) -> UpstreamError:
    """The error a request ends in (a test of one that must fail)."""
    outcome = call(up, method, **kwargs)
    assert isinstance(outcome, UpstreamError)
    return outcome


def state(up: Upstream) -> CircuitState:
    return up.breaker.state  # read afresh each time (mypy would narrow a property)


def fail(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"detail": f"said {status}"}, headers=headers)


def raising(error: type[httpx.TransportError]) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    return answer


# --- the request on the wire -------------------------------------------------------------


def test_a_request_carries_the_base_path_the_credentials_its_query_and_body():
    provider = Provider().queue(ok({"id": 1}, status=201))
    up = upstream(provider, FakeTime())
    response = call(up, "POST", params={"page": 2, "q": "a b"}, json_body={"name": "Ada"})
    assert isinstance(response, httpx.Response)
    assert response.status_code == 201
    request = provider.last
    assert request.method == "POST"
    assert request.url.host == "crm.test"
    assert request.url.path == "/api/things"
    assert dict(request.url.params) == {"client_id": "c1", "page": "2", "q": "a b"}
    assert request.headers["X-Key"] == "secret"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert request.content == b'{"name":"Ada"}'


def test_each_try_gets_the_time_left_before_the_deadline_at_most_the_read_timeout():
    provider = Provider().queue(ok({}))
    up = upstream(provider, FakeTime(), request_deadline=4.0, read_timeout=15.0)
    call(up)
    timeout = provider.last.extensions["timeout"]
    assert timeout["read"] == pytest.approx(4.0)
    assert timeout["connect"] == pytest.approx(4.0)
    provider.queue(ok({}))
    call(upstream(provider, FakeTime(), request_deadline=30.0, read_timeout=2.5))
    assert provider.last.extensions["timeout"]["read"] == pytest.approx(2.5)


def test_a_url_too_long_to_send_is_refused_before_any_request():
    provider = Provider().queue(ok({}))
    up = upstream(provider, FakeTime())
    error = call(up, params={"q": "x" * 70_000})
    assert isinstance(error, RequestNotSendable)
    assert error.extensions == {"code": "UPSTREAM_BAD_REQUEST", "provider": "crm"}
    assert error.not_applied
    assert provider.requests == []


# --- retries -------------------------------------------------------------------------------


def test_an_idempotent_read_is_retried_with_growing_jittered_backoff():
    provider = Provider().queue(fail(503), fail(502), ok({"fine": True}))
    clock = FakeTime()
    up = upstream(provider, clock, max_retries=2)
    response = call(up)
    assert isinstance(response, httpx.Response)
    assert response.json() == {"fine": True}
    assert len(provider.requests) == 3
    assert len(clock.slept) == 2
    first, second = clock.slept
    assert 0 <= first <= 0.1  # full jitter under base * 2^attempt
    assert 0 <= second <= 0.2


@pytest.mark.parametrize(
    "failure",
    [fail(500), raising(httpx.ReadTimeout), raising(httpx.ConnectError)],
    ids=["500", "timeout", "unreachable"],
)
def test_retries_stop_at_max_retries_and_the_last_failure_is_raised(failure):
    provider = Provider().queue(failure)
    clock = FakeTime()
    up = upstream(provider, clock, max_retries=2, breaker_min_requests=100)
    error = call(up)
    assert isinstance(error, UpstreamTimeout | UpstreamUnavailable)
    assert len(provider.requests) == 3
    assert len(clock.slept) == 2


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT", "DELETE"])
def test_a_write_is_never_retried_blind(method):
    provider = Provider().queue(fail(503))
    clock = FakeTime()
    error = call(upstream(provider, clock, max_retries=2), method)
    assert isinstance(error, UpstreamUnavailable)
    assert not error.not_applied  # a 5xx may have applied it
    assert len(provider.requests) == 1
    assert clock.slept == []


def test_an_idempotent_post_is_retried():
    provider = Provider().queue(fail(503), ok({}))
    up = upstream(provider, FakeTime(), max_retries=1)
    assert isinstance(call(up, "POST", idempotent=True), httpx.Response)
    assert len(provider.requests) == 2


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_a_client_error_is_not_retried(status):
    provider = Provider().queue(fail(status))
    assert isinstance(call(upstream(provider, FakeTime(), max_retries=2)), UpstreamError)
    assert len(provider.requests) == 1


def test_no_backoff_runs_past_the_deadline():
    clock = FakeTime()

    def slow_failure(request: httpx.Request) -> httpx.Response:
        clock.advance(1.0)  # the try itself used the whole deadline
        return fail(503)

    provider = Provider().queue(slow_failure)
    up = upstream(provider, clock, max_retries=5, request_deadline=1.0)
    error = call(up)
    assert isinstance(error, UpstreamUnavailable)
    assert error.status == 503
    assert len(provider.requests) == 1
    assert clock.slept == []


def test_an_empty_retry_budget_stops_retries():
    provider = Provider().queue(fail(503))
    clock = FakeTime()
    up = upstream(provider, clock, max_retries=2, breaker_min_requests=1000)
    up.budget.tokens = 0.0
    error = call(up)
    assert isinstance(error, UpstreamUnavailable)
    assert len(provider.requests) == 1  # the first try only: no token for a retry
    assert clock.slept == []
    assert up.budget.tokens == pytest.approx(0.2)  # the try deposited its share


def test_retries_spend_the_budget_and_requests_refill_it():
    provider = Provider().queue(fail(503))
    up = upstream(provider, FakeTime(), max_retries=2, breaker_min_requests=1000)
    before = up.budget.tokens
    call(up)
    assert up.budget.tokens == pytest.approx(before - 2)  # full at 10: the deposit is capped
    provider.queue(ok({}))
    call(up)
    assert up.budget.tokens == pytest.approx(before - 2 + 0.2)


# --- 429 and the provider's ways of saying when ----------------------------------------


def wall_retry_after(form: str, seconds: float) -> str:
    if form == "seconds":
        return str(int(seconds))
    if form == "http-date":
        return formatdate(time.time() + seconds, usegmt=True)
    return str(int((time.time() + seconds) * 1000))  # epoch milliseconds


@pytest.mark.parametrize("form", ["seconds", "http-date", "epoch-ms"])
def test_a_429_is_retried_once_after_its_retry_after(form):
    provider = Provider().queue(fail(429, **{"Retry-After": wall_retry_after(form, 5)}), ok({}))
    clock = FakeTime()
    up = upstream(provider, clock, max_retries=0, request_deadline=30.0)
    assert isinstance(call(up, "POST"), httpx.Response)  # even a write: nothing was processed
    assert len(provider.requests) == 2
    waited = clock.now - 1000.0
    assert 3.5 <= waited <= 5.0  # HTTP dates have whole seconds; the wall clock moved on


def test_a_429_without_retry_after_waits_a_second():
    provider = Provider().queue(fail(429), ok({}))
    clock = FakeTime()
    assert isinstance(call(upstream(provider, clock)), httpx.Response)
    assert clock.now - 1000.0 == pytest.approx(1.0)


def test_a_second_429_is_the_answer():
    provider = Provider().queue(fail(429, **{"Retry-After": "2"}))
    clock = FakeTime()
    error = call(upstream(provider, clock, max_retries=2))
    assert isinstance(error, UpstreamRateLimited)
    assert error.retry_after == pytest.approx(2.0)
    assert error.status == 429
    assert error.extensions == {"code": "UPSTREAM_RATE_LIMITED", "provider": "crm", "status": 429}
    assert "Retry after 2.0 s." in error.message
    assert len(provider.requests) == 2


def test_a_429_whose_wait_passes_the_deadline_is_not_waited_for():
    provider = Provider().queue(fail(429, **{"Retry-After": "120"}))
    clock = FakeTime()
    error = call(upstream(provider, clock, request_deadline=10.0))
    assert isinstance(error, UpstreamRateLimited)
    assert error.retry_after == pytest.approx(120.0)
    assert error.not_applied
    assert len(provider.requests) == 1
    assert clock.now == 1000.0


def test_a_429_pauses_the_limiter_for_every_request():
    provider = Provider().queue(fail(429, **{"Retry-After": "120"}))
    clock = FakeTime()
    up = upstream(provider, clock, request_deadline=10.0)
    call(up)
    assert up.limiter.delay(clock.now) == pytest.approx(0.0)  # past the deadline: not paused
    provider.queue(fail(429, **{"Retry-After": "3"}), ok({}))
    call(up)
    assert clock.now == pytest.approx(1003.0)


def test_a_spent_budget_in_the_headers_pauses_until_the_reset():
    reset = str(int(time.time()) + 30)
    headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    provider = Provider().queue(ok({}, headers=headers))
    clock = FakeTime()
    up = upstream(provider, clock)
    call(up)
    assert (up.rate_limit.limit, up.rate_limit.remaining) == (100, 0)
    assert 25 < up.limiter.delay(clock.now) <= 30


# --- the breaker ---------------------------------------------------------------------------


def test_an_open_circuit_lets_one_probe_through_after_its_cooldown():
    provider = Provider().queue(fail(500))
    clock = FakeTime()
    up = upstream(provider, clock, max_retries=0, breaker_min_requests=2, breaker_cooldown=10.0)
    call(up)
    call(up)
    assert state(up) is CircuitState.OPEN
    refused = call(up)
    assert isinstance(refused, CircuitOpen)
    assert "next try in 10 s" in refused.message
    assert len(provider.requests) == 2
    clock.advance(10.0)
    provider.queue(ok({}))
    assert isinstance(call(up), httpx.Response)  # the probe, answered: closed again
    assert state(up) is CircuitState.CLOSED
    assert len(provider.requests) == 3


# --- errors: class, code, provider, status, body -------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls", "code", "not_applied"),
    [
        (400, UpstreamRejected, "UPSTREAM_BAD_REQUEST", True),
        (401, UpstreamAuthError, "UPSTREAM_AUTH", True),
        (403, UpstreamAuthError, "UPSTREAM_AUTH", True),
        (404, UpstreamNotFound, "NOT_FOUND", True),
        (408, UpstreamTimeout, "UPSTREAM_TIMEOUT", False),
        (409, UpstreamRejected, "UPSTREAM_BAD_REQUEST", True),
        (422, UpstreamRejected, "UPSTREAM_BAD_REQUEST", True),
        (500, UpstreamUnavailable, "UPSTREAM_UNAVAILABLE", False),
        (503, UpstreamUnavailable, "UPSTREAM_UNAVAILABLE", False),
        (504, UpstreamTimeout, "UPSTREAM_TIMEOUT", False),
    ],
)
def test_a_status_maps_to_its_error_with_provider_status_and_body(status, cls, code, not_applied):
    provider = Provider().queue(fail(status))
    error = failure(upstream(provider, FakeTime(), max_retries=0), "POST")
    assert type(error) is cls
    assert error.extensions == {"code": code, "provider": "crm", "status": status}
    assert error.message == f"crm answered {status}: said {status}"
    assert error.body == {"detail": f"said {status}"}
    assert error.not_applied is not_applied


def test_an_error_body_that_is_not_json_leaves_the_message_plain():
    provider = Provider().queue(httpx.Response(502, text="<html>bad gateway</html>"))
    error = failure(upstream(provider, FakeTime(), max_retries=0))
    assert isinstance(error, UpstreamUnavailable)
    assert error.message == "crm answered 502."
    assert error.body is None


def test_statuses_a_caller_expects_pass_through():
    provider = Provider().queue(fail(404))
    response = call(upstream(provider, FakeTime()), ok_statuses=(404,))
    assert isinstance(response, httpx.Response)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("error", "cls", "not_applied"),
    [
        (httpx.ConnectError, UpstreamUnavailable, True),
        (httpx.ReadError, UpstreamUnavailable, False),
        (httpx.ConnectTimeout, UpstreamTimeout, True),
        (httpx.PoolTimeout, UpstreamTimeout, True),
        (httpx.ReadTimeout, UpstreamTimeout, False),
    ],
)
def test_transport_failures_say_whether_a_write_could_have_landed(error, cls, not_applied):
    provider = Provider().queue(raising(error))
    outcome = failure(upstream(provider, FakeTime()), "POST")
    assert type(outcome) is cls
    assert outcome.not_applied is not_applied
    assert outcome.extensions == {"code": outcome.code, "provider": "crm"}
    assert "secret" not in outcome.message
    assert "c1" not in outcome.message


def test_a_body_that_is_not_json_is_a_bad_response_with_its_status():
    provider = Provider().queue(httpx.Response(200, text="not json"))
    up = upstream(provider, FakeTime())
    response = call(up)
    assert isinstance(response, httpx.Response)
    with pytest.raises(UpstreamBadResponse) as caught:
        up.json(response)
    assert caught.value.extensions == {
        "code": "UPSTREAM_BAD_RESPONSE",
        "provider": "crm",
        "status": 200,
    }
