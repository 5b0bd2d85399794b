"""Retries: the backoff, and the retry layer over a fake of the layer below."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gateway.calls import Call
from gateway.errors import (
    NoRateLimitSlot,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.retry import Retry, RetryBudget, RetryPolicy
from tests.unit.fake_layer import Below, ok, run
from tests.unit.fake_time import FakeTime

# --- retries --------------------------------------------------------------------------------


def test_backoff_is_full_jitter_capped():
    policy = RetryPolicy(max_retries=5, base_delay=0.1, max_delay=1.0)
    rng = random.Random(1)
    for attempt in range(6):
        ceiling = min(1.0, 0.1 * 2**attempt)
        samples = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # spread over the whole range, not fixed


# --- the retry layer, over a fake of the layer below ------------------------------------------


def retry_over(below: Below, time: FakeTime, **options: Any) -> tuple[Retry, list[float]]:
    """A Retry layer over `below` on `time`; the moments it paused the limiter until."""
    paused: list[float] = []
    settings: dict[str, Any] = {
        "policy": RetryPolicy(max_retries=2),
        "budget": RetryBudget(),
        "deadline": 10.0,
        "pause_until": paused.append,
        "circuit_closed": lambda: True,
        **options,
    }
    return Retry(below, clock=time, sleep=time.sleep, **settings), paused


def unavailable() -> UpstreamUnavailable:
    return UpstreamUnavailable("down", provider="crm", status=503)


def test_each_call_goes_down_with_its_deadline():
    time = FakeTime()
    below = Below(ok())
    retry, _ = retry_over(below, time, deadline=7.0)
    assert run(retry.send(Call("GET", "/x"))).status_code == 200
    assert below.calls == [Call("GET", "/x", deadline=time.now + 7.0)]


def test_an_idempotent_call_is_retried_after_a_backoff():
    time = FakeTime()
    below = Below(UpstreamTimeout("slow", provider="crm"), unavailable(), ok())
    retry, _ = retry_over(below, time)
    assert run(retry.send(Call("GET", "/x"))).status_code == 200
    assert len(below.calls) == 3
    assert len(time.slept) == 2
    assert retry.budget.tokens == pytest.approx(10.0 - 2)  # two retries; the deposit is capped


@pytest.mark.parametrize(
    "options",
    [{"circuit_closed": lambda: False}, {"budget": RetryBudget(reserve=0.5)}],
    ids=["circuit not closed", "budget spent"],
)
def test_no_retry_when_the_breaker_or_the_budget_says_no(options):
    time = FakeTime()
    below = Below(unavailable(), ok())
    retry, _ = retry_over(below, time, **options)
    assert isinstance(run(retry.send(Call("GET", "/x"))), UpstreamUnavailable)
    assert len(below.calls) == 1
    assert time.slept == []


def test_a_write_is_not_retried_on_a_failure_that_may_have_applied_it():
    time = FakeTime()
    below = Below(unavailable(), ok())
    retry, _ = retry_over(below, time)
    assert isinstance(run(retry.send(Call("POST", "/x", idempotent=False))), UpstreamUnavailable)
    assert len(below.calls) == 1


def test_a_refusal_is_never_retried_and_a_refused_retry_reports_the_try_before():
    time = FakeTime()
    refusal = NoRateLimitSlot("no slot", provider="crm")
    retry, _ = retry_over(Below(refusal), time)
    assert run(retry.send(Call("GET", "/x"))) is refusal
    assert retry.budget.tokens == pytest.approx(10.0)  # nothing sent: nothing deposited
    failure = unavailable()
    retry, _ = retry_over(Below(failure, refusal), time)
    assert run(retry.send(Call("GET", "/x"))) is failure


def test_a_429_waits_in_the_limiter_once_when_its_wait_fits_the_deadline():
    time = FakeTime()
    spent = UpstreamRateLimited("429", provider="crm", status=429, retry_after=3.0)
    below = Below(spent, spent)
    retry, paused = retry_over(below, time, deadline=10.0)
    assert run(retry.send(Call("POST", "/x", idempotent=False))) is spent  # a write too
    assert paused == [time.now + 3.0]  # the retry waits its turn in the limiter, not here
    assert len(below.calls) == 2
    assert time.slept == []
    far = UpstreamRateLimited("429", provider="crm", status=429, retry_after=30.0)
    retry, paused = retry_over(Below(far), time, deadline=10.0)
    assert run(retry.send(Call("GET", "/x"))) is far
    assert paused == []
