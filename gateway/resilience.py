"""Staying within a provider's limits and surviving its failures.

Per provider instance (and so per credential): a client-side rate limiter
over the provider's documented windows, which also pauses when the provider's
headers say the budget is spent; a retry policy (exponential backoff with full
jitter, idempotent requests only, within a deadline and a retry budget so a
dead upstream cannot multiply load); and a circuit breaker that answers at
once while a provider is down and lets one probe through now and then.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """At most `requests` requests in any `seconds`-long window."""

    requests: int
    seconds: float


def _padded(seconds: float) -> float:
    """A window a little longer than the provider's: requests sent in time can still arrive
    late and bunched, and the provider counts arrivals."""
    return seconds * 1.05 + 0.2


class RateLimiter:
    """Sliding-window limiter over several windows (e.g. 100/minute and 1,000/hour)."""

    def __init__(self, windows: tuple[Window, ...], *, enabled: bool = True) -> None:
        self.windows = windows
        self.enabled = enabled and bool(windows)
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause_until(self, moment: float) -> None:
        """Send nothing before `moment` (monotonic): the provider said its budget is spent."""
        self._paused_until = max(self._paused_until, moment)

    def delay(self, now: float) -> float:
        """How long the next request must wait."""
        wait = max(0.0, self._paused_until - now)
        if not self.enabled:
            return wait
        horizon = max(_padded(w.seconds) for w in self.windows)
        while self._sent and now - self._sent[0] >= horizon:
            self._sent.popleft()
        for window in self.windows:
            span = _padded(window.seconds)
            recent = [t for t in self._sent if now - t < span]
            if len(recent) >= window.requests:
                wait = max(wait, recent[-window.requests] + span - now)
        return wait

    async def acquire(self, deadline: float) -> bool:
        """Wait for a slot; False (and no slot taken) when it would come after `deadline`."""
        async with self._lock:
            while True:
                now = time.monotonic()
                wait = self.delay(now)
                if wait <= 0:
                    if self.enabled:
                        self._sent.append(now)
                    return True
                if now + wait > deadline:
                    return False
                await asyncio.sleep(wait)


class RetryBudget:
    """Retries may add at most `ratio` of the requests made (plus a small reserve)."""

    def __init__(self, ratio: float = 0.2, reserve: float = 10.0) -> None:
        self.ratio = ratio
        self.cap = reserve
        self.tokens = reserve

    def deposit(self) -> None:
        self.tokens = min(self.cap, self.tokens + self.ratio)

    def withdraw(self) -> bool:
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    base_delay: float = 0.1
    max_delay: float = 2.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2^attempt)]."""
        ceiling = min(self.max_delay, self.base_delay * 2**attempt)
        return (rng or random).uniform(0, ceiling)


class CircuitState(enum.StrEnum):
    CLOSED = "CLOSED"  # requests flow
    OPEN = "OPEN"  # the provider is failing: answer at once
    HALF_OPEN = "HALF_OPEN"  # one probe request decides


class CircuitBreaker:
    """Opens after `threshold` failures in a row; after `cooldown` s lets one probe through."""

    def __init__(self, threshold: int = 5, cooldown: float = 10.0) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.opened_at: float | None = None
        self._probe_sent: float | None = None  # a probe lost to cancellation must not jam it

    @property
    def state(self) -> CircuitState:
        if self.opened_at is None:
            return CircuitState.CLOSED
        if time.monotonic() - self.opened_at >= self.cooldown:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def allow(self) -> bool:
        """Whether a request may go now (in HALF_OPEN, only the one probe)."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        now = time.monotonic()
        if state is CircuitState.HALF_OPEN and (
            self._probe_sent is None or now - self._probe_sent >= self.cooldown
        ):
            self._probe_sent = now
            return True
        return False

    def retry_in(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.cooldown - time.monotonic())

    def release(self) -> None:
        """A request that `allow` let through was never sent."""
        self._probe_sent = None

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self._probe_sent = None

    def failure(self) -> None:
        self.failures += 1
        if self._probe_sent is not None or self.failures >= self.threshold:
            self.opened_at = time.monotonic()
        self._probe_sent = None
