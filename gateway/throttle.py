"""Keeping to a provider's rate limits on the way out: the upstream's throttle layer.

Each try takes a slot in this process's `RateLimiter` and, when replicas share Redis, in
their common `SharedBudget`; no slot before the call's deadline is a refusal, never sent.
On the way back the layer reads what the provider says of its budget: rate-limit headers
that say it is spent pause the limiter (and every replica) until their reset, and a 429
pauses every replica as its `Retry-After` says.
"""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import dataclass

import httpx

from gateway import metrics
from gateway.answers import seconds_until
from gateway.calls import Call, Layer
from gateway.errors import ClientRateLimited, NoRateLimitSlot, UpstreamNotSent
from gateway.limiter import RateLimiter, Refused, Slot
from gateway.shared import RedisDown
from gateway.shared_budget import SharedBudget

# A pause longer than this is not believed: a provider's reset is minutes away, not days.
_LONGEST_PAUSE = 3600


@dataclass
class RateLimitState:
    """What the provider's last rate-limit headers said (none: unknown)."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # Unix time

    def update(self, headers: httpx.Headers, now: float | None = None) -> None:
        now = time.time() if now is None else now
        limit, remaining = headers.get("X-RateLimit-Limit"), headers.get("X-RateLimit-Remaining")
        if limit and limit.strip().isdigit():
            self.limit = int(limit)
        if remaining and remaining.strip().isdigit():
            self.remaining = int(remaining)
        wait = seconds_until(headers.get("X-RateLimit-Reset"), now)
        if wait is not None:
            self.reset_at = now + wait


class Throttle:
    """The layer that sends a call only in a slot of `limiter` (and of `shared`, the
    replicas' budget, when there is one), and pauses them as the provider's answers say.

    The limiter's clock and sleep are the layer's too. `state` keeps what the provider's
    headers last said.
    """

    def __init__(
        self,
        below: Layer,
        limiter: RateLimiter,
        *,
        provider: str,
        shared: SharedBudget | None = None,
        state: RateLimitState | None = None,
    ) -> None:
        self.below = below
        self.limiter = limiter
        self.provider = provider
        self.shared = shared
        self.state = RateLimitState() if state is None else state

    async def send(self, call: Call) -> httpx.Response:
        clock = self.limiter.clock
        queued = clock()
        slot = await self._slot(call.deadline)
        metrics.limiter_wait(self.provider, clock() - queued)
        if isinstance(slot, Refused):
            raise self._refusal(slot)
        try:
            response = await self.below.send(call)
        finally:
            self.limiter.done(slot)
        self.state.update(response.headers)
        await self._adapt()
        if response.status_code == 429 and 429 not in call.ok_statuses:
            # The provider's budget is spent: every replica pauses, not only this one.
            wait = seconds_until(response.headers.get("Retry-After"))
            await self._pause_replicas(wait if wait else 1.0)
        return response

    def _refusal(self, slot: Refused) -> UpstreamNotSent:
        if slot.by_share:
            return ClientRateLimited(
                f"this client's share of {self.provider}'s rate limit leaves it no slot "
                f"before the request deadline; retry in {slot.retry_after:.1f} s.",
                provider=self.provider,
                retry_after=slot.retry_after,
            )
        return NoRateLimitSlot(
            f"{self.provider}'s rate limit leaves no slot before the request deadline.",
            provider=self.provider,
        )

    async def _slot(self, deadline: float) -> Slot | Refused:
        """A slot in this process's limiter and, with replicas, in their common budget."""
        while True:
            slot = await self.limiter.take(deadline)
            if isinstance(slot, Refused):
                if self.shared is not None:
                    await self.shared.state.recover()
                return slot
            whole = self.limiter.replicas() == 1
            if refused := await self._shared_slot(deadline):
                self.limiter.cancel(slot)
                return refused
            if whole and self.limiter.replicas() > 1:
                # Granted on the whole budget, then Redis was found away: it must fit in this
                # replica's share instead.
                self.limiter.cancel(slot)
                if self.shared is not None:
                    self.shared.unsent()
                continue
            return slot

    async def _shared_slot(self, deadline: float) -> Refused | None:
        """None when the replicas together leave this request room before `deadline` (waiting
        for it, with the local slot held so this process's order stays as it was)."""
        if self.shared is None or not self.limiter.enabled:
            return None
        while True:
            try:
                wait, by_share = await self.shared.take()
            except RedisDown:
                return None  # from now on the limiter keeps to this replica's share
            self.limiter.elsewhere(self.shared.others)
            if wait <= 0:
                return None
            if self.limiter.clock() + wait > deadline:
                return Refused(wait, by_share)
            await self.limiter.sleep(wait)

    async def _adapt(self) -> None:
        """Pause when the provider's headers say its budget is spent until the reset."""
        state = self.state
        if state.remaining == 0 and state.reset_at is not None:
            wait = state.reset_at - time.time()
            if 0 < wait < _LONGEST_PAUSE:
                self.limiter.pause_until(self.limiter.clock() + wait)
                await self._pause_replicas(wait)

    async def _pause_replicas(self, seconds: float) -> None:
        if self.shared is not None and 0 < seconds < _LONGEST_PAUSE:
            with suppress(RedisDown):
                await self.shared.pause(seconds)
