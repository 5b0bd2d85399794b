"""The throttle layer over a fake of the layer below, on a fake clock: a slot for every try,
refusals before the deadline, and pauses when the provider says its budget is spent.

(The replicas' shared budget needs Redis: tests/integration/test_shared_budget.py.)"""

from __future__ import annotations

import time as wall

import httpx
import pytest

from gateway.calls import Call
from gateway.errors import ClientRateLimited, NoRateLimitSlot, UpstreamTimeout
from gateway.limiter import RateLimiter, Share, Window, sharing
from gateway.throttle import Throttle
from tests.unit.fake_layer import Below, ok, run
from tests.unit.fake_time import FakeTime


def throttle_over(below: Below, time: FakeTime, *windows: Window, reserve: float = 0.0) -> Throttle:
    limiter = RateLimiter(windows, reserve=reserve, clock=time, sleep=time.sleep)
    return Throttle(below, limiter, provider="crm")


def test_a_call_is_sent_in_a_slot_that_counts_from_when_it_finished():
    time = FakeTime()
    below = Below(ok(), UpstreamTimeout("slow", provider="crm"), ok())
    layer = throttle_over(below, time, Window(2, 10.0))
    below.during.append(lambda: time.advance(4.0))  # each call is 4 s on the wire
    assert run(layer.send(Call("GET", "/a", deadline=time.now + 60))).status_code == 200
    first_finished = time.now
    assert isinstance(run(layer.send(Call("GET", "/b", deadline=time.now + 60))), UpstreamTimeout)
    # The window is full (a failure counts too): the third waits for the first to leave it.
    assert run(layer.send(Call("GET", "/c", deadline=time.now + 60))).status_code == 200
    assert time.now == pytest.approx(first_finished + Window(2, 10.0).span + 4.0)
    assert len(below.calls) == 3


def test_no_slot_before_the_deadline_is_refused_and_nothing_is_sent():
    time = FakeTime()
    below = Below(ok())
    layer = throttle_over(below, time, Window(1, 60.0))
    run(layer.send(Call("GET", "/a", deadline=time.now + 5)))
    error = run(layer.send(Call("GET", "/b", deadline=time.now + 5)))
    assert isinstance(error, NoRateLimitSlot)
    assert error.message == "crm's rate limit leaves no slot before the request deadline."
    assert len(below.calls) == 1
    assert time.slept == []


def test_a_client_at_its_share_is_refused_for_its_share():
    time = FakeTime()
    layer = throttle_over(Below(ok(), ok()), time, Window(2, 60.0), reserve=0.5)
    with sharing(Share("heavy")):
        run(layer.send(Call("GET", "/a", deadline=time.now + 5)))
        error = run(layer.send(Call("GET", "/b", deadline=time.now + 5)))
    assert isinstance(error, ClientRateLimited)
    assert error.retry_after == pytest.approx(Window(2, 60.0).span)


def test_headers_that_say_the_budget_is_spent_pause_the_limiter_until_the_reset():
    time = FakeTime()
    reset = str(int(wall.time()) + 30)
    spent = httpx.Response(
        200,
        headers={
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset,
        },
    )
    layer = throttle_over(Below(spent), time, Window(100, 60.0))
    run(layer.send(Call("GET", "/a", deadline=time.now + 5)))
    assert (layer.state.limit, layer.state.remaining) == (100, 0)
    assert 25 < layer.limiter.delay(time.now) <= 30


def test_a_429_alone_does_not_pause_this_limiter():
    """The retry layer decides whether to wait out a 429 (and pauses the limiter then)."""
    time = FakeTime()
    layer = throttle_over(Below(ok(429, **{"Retry-After": "20"})), time, Window(100, 60.0))
    assert run(layer.send(Call("GET", "/a", deadline=time.now + 5))).status_code == 429
    assert layer.limiter.delay(time.now) == 0
