"""The poller's part of a provider's rate budget: at most `poll_share` of each of its rate
windows, and only room no client is waiting for.

Every request of a poll waits here first (`Upstream.polling`), then takes its slot in the
provider's limiter like any other, so the provider's limits hold for all requests together
and an emulator enforcing them never answers 429. The poller's own limiter keeps its
share: the provider's windows, each scaled by `poll_share` (at least one request), and
divided among the replicas as the provider's are while their Redis is away.
"""

from __future__ import annotations

import math

from gateway.calls import Clock, Sleep
from gateway.limiter import RateLimiter, Window

# How often a poll waiting behind clients looks again whether they are served.
PAUSE = 0.05


def shares(windows: tuple[Window, ...], share: float) -> tuple[Window, ...]:
    """`share` of each window, rounded down, and at least one request."""
    return tuple(Window(max(1, math.floor(w.requests * share + 1e-9)), w.seconds) for w in windows)


class PollBudget:
    """Where a provider's poller waits before each request: for a slot of its own share,
    then for a moment when the provider's limiter has room and no client queues.

    `clock` and `sleep` default to the provider limiter's (tests pass fakes)."""

    def __init__(
        self,
        limiter: RateLimiter,
        share: float,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self.provider = limiter
        self.clock = clock or limiter.clock
        self.sleep = sleep or limiter.sleep
        self.own = RateLimiter(
            shares(limiter.full, share),
            enabled=limiter.enabled,
            replicas=limiter.replicas,
            clock=self.clock,
            sleep=self.sleep,
        )
        self.waited = 0.0  # seconds spent here, all polls together

    async def wait(self) -> None:
        """Until the poller may send its next request."""
        started = self.clock()
        slot = await self.own.acquire(math.inf)
        assert slot is not None  # no deadline: never refused
        while (wait := self.provider.spare(self.clock())) != 0:
            await self.sleep(PAUSE if wait is None else wait)
        self.own.done(slot)
        self.waited += self.clock() - started
