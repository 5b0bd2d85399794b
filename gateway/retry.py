"""Retrying a failed call: which failures, how often, how long apart.

Idempotent requests are retried on timeouts, unreachable hosts and 5xx, with exponential
backoff and full jitter, within the call's deadline and a retry budget, so a dead upstream
cannot multiply load; any request is retried once after a 429 (the provider processed
nothing), after waiting as its `Retry-After` says, when that fits in the deadline. A call
the layers below never sent (`UpstreamNotSent`) is never retried.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import httpx

from gateway.calls import Call, Clock, Layer, Sleep
from gateway.errors import (
    UpstreamError,
    UpstreamNotSent,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)


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


class Retry:
    """The layer that gives each call its deadline (`deadline` seconds from now) and sends
    it again as the module says.

    `pause_until` holds every request back until a moment (the limiter's pause: after a 429
    the retry waits in line with the others); `circuit_closed` says whether a retry could
    pass the breaker (a failure may just have opened it: a retry would only meet it).
    """

    def __init__(
        self,
        below: Layer,
        *,
        policy: RetryPolicy,
        budget: RetryBudget,
        deadline: float,
        pause_until: Callable[[float], None],
        circuit_closed: Callable[[], bool],
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.below = below
        self.policy = policy
        self.budget = budget
        self.deadline = deadline
        self.pause_until = pause_until
        self.circuit_closed = circuit_closed
        self.clock = clock
        self.sleep = sleep

    async def send(self, call: Call) -> httpx.Response:
        call = replace(call, deadline=self.clock() + self.deadline)
        attempt, throttled_once = 0, False
        previous: UpstreamError | None = None
        while True:
            outcome = await self._try(call)
            if previous is None and not isinstance(outcome, UpstreamNotSent):
                self.budget.deposit()  # the budget grows with requests sent, not refused
            if isinstance(outcome, httpx.Response):
                return outcome
            if isinstance(outcome, UpstreamNotSent):
                # A retry that was never sent: the try before it says what happened (and
                # whether a write may have been applied).
                raise previous or outcome
            previous = outcome
            now = self.clock()
            if isinstance(outcome, UpstreamRateLimited) and not throttled_once:
                wait = outcome.retry_after if outcome.retry_after is not None else 1.0
                if now + wait < call.deadline:
                    throttled_once = True
                    self.pause_until(now + wait)
                    continue
            if self._retryable(call, outcome) and attempt < self.policy.max_retries:
                pause = self.policy.backoff(attempt)
                if now + pause < call.deadline and self.budget.withdraw():
                    attempt += 1
                    await self.sleep(pause)
                    continue
            raise outcome

    async def _try(self, call: Call) -> httpx.Response | UpstreamError:
        """One try: the response, or the error it amounts to (not raised)."""
        try:
            return await self.below.send(call)
        except UpstreamError as error:
            return error

    def _retryable(self, call: Call, error: UpstreamError) -> bool:
        return (
            call.idempotent
            and isinstance(error, UpstreamTimeout | UpstreamUnavailable)
            and self.circuit_closed()
        )
