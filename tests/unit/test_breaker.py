"""The circuit breaker on its own, on a fake clock, and its layer of the upstream over a
fake of the layer below."""

from __future__ import annotations

import asyncio

import pytest

from gateway.breaker import Breaker, CircuitBreaker, CircuitState
from gateway.calls import Call
from gateway.errors import CircuitOpen, NoRateLimitSlot, UpstreamTimeout, UpstreamUnavailable
from tests.unit.fake_layer import Below, ok, run
from tests.unit.fake_time import FakeTime

# --- the breaker ----------------------------------------------------------------------------


def state(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state  # read afresh each time (mypy would narrow a property): it moves


def breaker_on(time: FakeTime, **options: float) -> CircuitBreaker:
    defaults: dict[str, float] = {
        "failure_ratio": 0.5,
        "min_requests": 10,
        "window": 30.0,
        "cooldown": 10.0,
    }
    defaults.update(options)
    return CircuitBreaker(
        failure_ratio=defaults["failure_ratio"],
        min_requests=int(defaults["min_requests"]),
        window=defaults["window"],
        cooldown=defaults["cooldown"],
        clock=time,
    )


def test_breaker_opens_on_a_failure_ratio_once_there_is_volume():
    time = FakeTime()
    breaker = breaker_on(time)
    for _ in range(5):
        breaker.success()
    for _ in range(4):
        breaker.failure()
    assert state(breaker) is CircuitState.CLOSED  # 4 of 9: too few requests to judge
    breaker.failure()
    assert state(breaker) is CircuitState.OPEN  # 5 of 10
    assert not breaker.allow()


def test_breaker_does_not_open_on_five_failures_in_a_row_among_many_successes():
    time = FakeTime()
    breaker = breaker_on(time)
    for _ in range(20):
        breaker.success()
        time.advance(0.1)
    for _ in range(9):
        breaker.failure()
    assert state(breaker) is CircuitState.CLOSED  # 9 of 29
    assert breaker.allow()


def test_breaker_needs_the_minimum_volume():
    time = FakeTime()
    breaker = breaker_on(time, min_requests=10)
    for _ in range(9):
        breaker.failure()
    assert state(breaker) is CircuitState.CLOSED  # all failed, but only 9 requests
    breaker.failure()
    assert state(breaker) is CircuitState.OPEN


def test_breaker_forgets_outcomes_older_than_its_window():
    time = FakeTime()
    breaker = breaker_on(time, window=30.0)
    for _ in range(9):
        breaker.failure()
    time.advance(30)
    breaker.failure()
    assert state(breaker) is CircuitState.CLOSED  # the first nine fell out of the window


def test_client_caused_answers_count_neither_way():
    time = FakeTime()
    breaker = breaker_on(time)
    for _ in range(100):
        breaker.answered()  # 400, 404, 409, 422, 429 ...
    for _ in range(9):
        breaker.failure()
    assert state(breaker) is CircuitState.CLOSED  # the 4xx neither opened it...
    breaker.failure()
    assert state(breaker) is CircuitState.OPEN  # ...nor diluted the failures


def test_breaker_lets_one_probe_through_after_the_cooldown():
    time = FakeTime()
    breaker = breaker_on(time, min_requests=1, cooldown=10.0)
    breaker.failure()
    assert state(breaker) is CircuitState.OPEN
    assert breaker.retry_in() == pytest.approx(10.0)
    time.advance(9.9)
    assert not breaker.allow()
    time.advance(0.1)
    assert state(breaker) is CircuitState.HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one
    breaker.failure()  # the probe failed: open again, for a whole cooldown
    assert state(breaker) is CircuitState.OPEN
    time.advance(10)
    assert breaker.allow()
    breaker.release()  # that probe was never sent (no rate-limit slot): another may go
    assert breaker.allow()
    breaker.answered()  # a 404 still shows the provider answers
    assert state(breaker) is CircuitState.CLOSED
    assert breaker.allow()


def test_a_lost_probe_does_not_jam_the_breaker():
    time = FakeTime()
    breaker = breaker_on(time, min_requests=1, cooldown=10.0)
    breaker.failure()
    time.advance(10)
    assert breaker.allow()  # a probe whose task is then cancelled, with no outcome
    time.advance(5)
    assert not breaker.allow()
    time.advance(5)
    assert breaker.allow()
    breaker.success()
    assert state(breaker) is CircuitState.CLOSED


def test_late_outcomes_do_not_decide_an_open_breaker():
    time = FakeTime()
    breaker = breaker_on(time, min_requests=1, cooldown=10.0)
    breaker.failure()
    breaker.success()  # a request sent before it opened, answered now
    assert state(breaker) is CircuitState.OPEN


# --- the breaker layer, over a fake of the layer below ----------------------------------------


def guarded(below: Below, time: FakeTime, **options: float) -> Breaker:
    return Breaker(below, breaker_on(time, **options), provider="crm")


def test_an_open_circuit_sends_nothing():
    time = FakeTime()
    below = Below(ok(500), ok())
    layer = guarded(below, time, min_requests=1)
    assert run(layer.send(Call("GET", "/x"))).status_code == 500  # statuses pass up as they are
    assert state(layer.circuit) is CircuitState.OPEN
    error = run(layer.send(Call("GET", "/x")))
    assert isinstance(error, CircuitOpen)
    assert error.message == "crm is failing; its circuit breaker is open (next try in 10 s)."
    assert len(below.calls) == 1


@pytest.mark.parametrize(
    ("outcome", "opens"),
    [
        (ok(500), True),
        (ok(408), True),
        (UpstreamTimeout("slow", provider="crm"), True),
        (UpstreamUnavailable("unreachable", provider="crm"), True),
        (ok(404), False),
        (ok(429), False),
        (ok(200), False),
    ],
    ids=["500", "408", "timeout", "unreachable", "404", "429", "200"],
)
def test_what_counts_against_the_provider(outcome, opens):
    time = FakeTime()
    layer = guarded(Below(outcome), time, min_requests=1)
    run(layer.send(Call("GET", "/x")))
    assert (state(layer.circuit) is CircuitState.OPEN) is opens


@pytest.mark.parametrize(
    "unsent",
    [NoRateLimitSlot("no slot", provider="crm"), asyncio.CancelledError()],
    ids=["refused below", "cancelled"],
)
def test_a_probe_that_was_not_sent_frees_the_probe(unsent):
    time = FakeTime()
    layer = guarded(Below(ok(500), unsent, ok()), time, min_requests=1, cooldown=10.0)
    run(layer.send(Call("GET", "/x")))
    time.advance(10.0)
    assert type(run(layer.send(Call("GET", "/x")))) is type(unsent)
    assert state(layer.circuit) is CircuitState.HALF_OPEN
    assert run(layer.send(Call("GET", "/x"))).status_code == 200  # the next probe goes at once
    assert state(layer.circuit) is CircuitState.CLOSED
