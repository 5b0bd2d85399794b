"""Staying within a provider's limits and surviving its failures.

Per provider instance (and so per credential): a client-side rate limiter
over the provider's documented windows, which also pauses when the provider's
headers say the budget is spent; a retry policy (exponential backoff with full
jitter, idempotent requests only, within a deadline and a retry budget so a
dead upstream cannot multiply load); and a circuit breaker that answers at
once while a provider is down (too large a share of recent requests failed)
and lets one probe through now and then. The limiter and the breaker read the
time through an injected `clock` (and the limiter waits through `sleep`).
"""

from __future__ import annotations

import asyncio
import bisect
import enum
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
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


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Slot:
    """One request's place in the limiter's windows: in flight until `done`, then it counts
    from the moment the request finished."""

    __slots__ = ("finished",)

    def __init__(self) -> None:
        self.finished: float | None = None


class _Waiter:
    """A request queued for a slot; `turn` says True when it is first in line, False when
    its slot can no longer come before its deadline."""

    __slots__ = ("deadline", "turn")

    def __init__(self, deadline: float, turn: asyncio.Future[bool]) -> None:
        self.deadline = deadline
        self.turn = turn


class RateLimiter:
    """Sliding-window limiter over several windows (e.g. 100/minute and 1,000/hour).

    A slot counts from when its request *finished*, not from when it was granted: the
    provider counts a request when it arrives, which is somewhere in between, however
    late the request leaves. A request still in flight counts as sent just now.

    Requests get slots in arrival order: they queue, and only the first in line waits for
    the windows. One whose slot, given the queue ahead of it, would come after its deadline
    is refused at once, on arrival or as soon as the queue ahead is seen to move slower
    than foreseen; a request in flight is foreseen to finish at once, so a refusal is
    never premature. `clock` and `sleep` are parameters so tests run on a fake clock.
    """

    def __init__(
        self,
        windows: tuple[Window, ...],
        *,
        enabled: bool = True,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.windows = windows
        self.enabled = enabled and bool(windows)
        self.clock = clock
        self.sleep = sleep
        self._slots: deque[Slot] = deque()
        self._paused_until = 0.0
        self._queue: deque[_Waiter] = deque()

    def pause_until(self, moment: float) -> None:
        """Send nothing before `moment` (on `clock`): the provider said its budget is spent."""
        self._paused_until = max(self._paused_until, moment)

    def delay(self, now: float) -> float:
        """How long the next request must wait."""
        earliest, times = self._timeline(now)
        return self._when(times, earliest) - now

    def _timeline(self, now: float) -> tuple[float, list[float]]:
        """The earliest a slot may be granted, and the times the windows count (sorted;
        a request in flight counts as sent now, as if it finished at once)."""
        earliest = max(now, self._paused_until)
        if not self.enabled:
            return earliest, []
        horizon = max(_padded(w.seconds) for w in self.windows)
        while self._slots:
            finished = self._slots[0].finished
            if finished is None or now - finished < horizon:
                break
            self._slots.popleft()
        # Finished slots are not always in order (requests end out of turn); sorting a few
        # hundred floats is cheap next to an HTTP request.
        return earliest, sorted(now if s.finished is None else s.finished for s in self._slots)

    def _when(self, times: list[float], earliest: float) -> float:
        """When the next slot opens, not before `earliest`, which is at or after every one
        of `times`: so waiting until a full window's n-th latest time has left it frees room
        in it, and waiting longer for another window only frees more."""
        moment = earliest
        if self.enabled:
            for window in self.windows:
                span = _padded(window.seconds)
                recent = len(times) - bisect.bisect_right(times, earliest - span)
                if recent >= window.requests:
                    moment = max(moment, times[-window.requests] + span)
        return moment

    async def acquire(self, deadline: float) -> Slot | None:
        """Wait for a slot, in arrival order; None (and no slot taken) when it would come
        after `deadline`.

        The caller passes the slot to `done` when its request has finished (or failed).
        """
        now = self.clock()
        earliest, times = self._timeline(now)
        for _ in self._queue:  # the slots of those ahead, in turn
            earliest = self._when(times, earliest)
            times.append(earliest)
        moment = self._when(times, earliest)
        if not self._queue and moment <= now:
            return self._grant()
        if moment > deadline:
            return None
        waiter = _Waiter(deadline, asyncio.get_running_loop().create_future())
        self._queue.append(waiter)
        if len(self._queue) == 1:
            waiter.turn.set_result(True)
        try:
            if not await waiter.turn:
                return None
            while True:
                now = self.clock()
                wait = self.delay(now)
                if wait <= 0:
                    return self._grant()
                if now + wait > deadline:
                    return None
                self._refuse_late(now)
                await self.sleep(wait)
        finally:
            self._leave(waiter)

    def _grant(self) -> Slot:
        slot = Slot()
        if self.enabled:
            self._slots.append(slot)
        return slot

    def _refuse_late(self, now: float) -> None:
        """Refuse now, rather than at their deadline, the waiters behind the first whose
        slot can no longer come in time (the queue moves slower than foreseen)."""
        earliest, times = self._timeline(now)
        for waiter in list(self._queue):
            if waiter.turn.cancelled():
                continue  # leaving: it takes no slot
            moment = self._when(times, earliest)
            if waiter is not self._queue[0] and moment > waiter.deadline:
                self._queue.remove(waiter)  # takes no slot: the next is foreseen in its place
                waiter.turn.set_result(False)
                continue
            earliest = moment
            times.append(moment)

    def _leave(self, waiter: _Waiter) -> None:
        """`waiter` is served, refused or cancelled: the next in line goes first."""
        if waiter in self._queue:
            first = self._queue[0] is waiter
            self._queue.remove(waiter)
            if first and self._queue and not self._queue[0].turn.done():
                self._queue[0].turn.set_result(True)

    def done(self, slot: Slot) -> None:
        """The slot's request has finished: from now on it counts from this moment."""
        if slot.finished is None:
            slot.finished = self.clock()


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
    """Opens when at least `failure_ratio` of the requests that finished in the last
    `window` seconds failed, once there were `min_requests` of them; after `cooldown`
    seconds lets one probe through, whose outcome closes or reopens it.

    Only what says the provider is unwell counts (5xx, timeouts, transport errors, via
    `failure`); `success` counts a good answer. Answers a client caused (4xx) or the limiter's
    business (429) go to `answered`: they count neither way, so no client can open a
    provider's circuit for everybody, nor hold it shut, by sending bad requests.
    """

    def __init__(
        self,
        *,
        failure_ratio: float = 0.5,
        min_requests: int = 10,
        window: float = 30.0,
        cooldown: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.failure_ratio = failure_ratio
        self.min_requests = min_requests
        self.window = window
        self.cooldown = cooldown
        self.clock = clock
        self._outcomes: deque[tuple[float, bool]] = deque()  # (when, failed)
        self._failures = 0
        self.opened_at: float | None = None
        self._probe_sent: float | None = None  # a probe lost to cancellation must not jam it

    @property
    def state(self) -> CircuitState:
        if self.opened_at is None:
            return CircuitState.CLOSED
        if self.clock() - self.opened_at >= self.cooldown:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def allow(self) -> bool:
        """Whether a request may go now (in HALF_OPEN, only the one probe)."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        now = self.clock()
        if state is CircuitState.HALF_OPEN and (
            self._probe_sent is None or now - self._probe_sent >= self.cooldown
        ):
            self._probe_sent = now
            return True
        return False

    def retry_in(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.cooldown - self.clock())

    def release(self) -> None:
        """A request that `allow` let through was never sent."""
        self._probe_sent = None

    def success(self) -> None:
        """The provider answered well."""
        if self._settle(failed=False):
            self._record(failed=False)

    def failure(self) -> None:
        """A 5xx, a timeout or a transport error."""
        if self._settle(failed=True):
            self._record(failed=True)

    def answered(self) -> None:
        """The provider answered, but with what a client caused (4xx) or a 429: it is up,
        so a probe that gets this closes the circuit, but it counts neither way."""
        self._settle(failed=False)

    def _settle(self, *, failed: bool) -> bool:
        """Let an outcome decide an open circuit; True when the circuit was closed."""
        if self.opened_at is None:
            return True
        if self.state is CircuitState.HALF_OPEN:  # the probe's outcome (or a late one's)
            if failed:
                self._open()
            else:
                self.opened_at = None
                self._probe_sent = None
        # While OPEN, requests sent before it opened are still finishing: they decide nothing.
        return False

    def _record(self, *, failed: bool) -> None:
        now = self.clock()
        self._outcomes.append((now, failed))
        self._failures += failed
        while self._outcomes and now - self._outcomes[0][0] >= self.window:
            _, old = self._outcomes.popleft()
            self._failures -= old
        total = len(self._outcomes)
        if total >= self.min_requests and self._failures >= self.failure_ratio * total:
            self._open()

    def _open(self) -> None:
        self.opened_at = self.clock()
        self._probe_sent = None
        self._outcomes.clear()
        self._failures = 0
