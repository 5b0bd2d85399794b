"""The limiter, the retry backoff and the circuit breaker, on their own."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from gateway.resilience import (
    CircuitBreaker,
    CircuitState,
    RateLimiter,
    RetryPolicy,
    Window,
    _padded,
)


def test_limiter_delays_past_every_window():
    limiter = RateLimiter((Window(3, 1.0), Window(5, 10.0)))
    one, ten = _padded(1.0), _padded(10.0)  # a little longer than the provider's windows
    now = 100.0
    for _ in range(3):
        assert limiter.delay(now) == 0
        limiter._sent.append(now)
    assert limiter.delay(now) == pytest.approx(one)  # the 1 s window is full
    later = now + one
    for _ in range(2):
        assert limiter.delay(later) == 0
        limiter._sent.append(later)
    assert limiter.delay(later) == pytest.approx(now + ten - later)  # now the 10 s window is full


def test_limiter_gives_up_rather_than_miss_the_deadline():
    async def scenario() -> tuple[bool, bool]:
        limiter = RateLimiter((Window(1, 60.0),))
        first = await limiter.acquire(time.monotonic() + 1)
        second = await limiter.acquire(time.monotonic() + 1)
        return first, second

    assert asyncio.run(scenario()) == (True, False)


def test_limiter_pauses_when_the_provider_says_so():
    limiter = RateLimiter((), enabled=False)
    limiter.pause_until(50.0)
    assert limiter.delay(45.0) == pytest.approx(5.0)
    assert limiter.delay(51.0) == 0


def test_backoff_is_full_jitter_capped():
    policy = RetryPolicy(max_retries=5, base_delay=0.1, max_delay=1.0)
    rng = random.Random(1)
    for attempt in range(6):
        ceiling = min(1.0, 0.1 * 2**attempt)
        samples = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # spread over the whole range, not fixed


def state(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state  # read afresh each time: it moves with the clock


def test_breaker_opens_then_lets_one_probe_through():
    breaker = CircuitBreaker(threshold=3, cooldown=0.05)
    for _ in range(2):
        breaker.failure()
    assert state(breaker) is CircuitState.CLOSED
    assert breaker.allow()
    breaker.failure()
    assert state(breaker) is CircuitState.OPEN
    assert not breaker.allow()
    time.sleep(0.06)
    assert state(breaker) is CircuitState.HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one
    breaker.failure()  # the probe failed: open again
    assert state(breaker) is CircuitState.OPEN
    time.sleep(0.06)
    assert breaker.allow()
    breaker.success()
    assert state(breaker) is CircuitState.CLOSED
    assert breaker.allow()
