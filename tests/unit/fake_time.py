"""A fake monotonic clock for the limiter, the breaker and the upstream client."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable


class FakeTime:
    """Time that moves only when a test advances it or code sleeps on it.

    Callbacks scheduled with `at` run in time order as time passes them, so a
    test can finish a request "later" while another one is waiting for a slot.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    def at(self, moment: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._events, (moment, next(self._order), callback))

    def advance_to(self, moment: float) -> None:
        while self._events and self._events[0][0] <= moment:
            when, _, callback = heapq.heappop(self._events)
            self.now = max(self.now, when)
            callback()
        self.now = max(self.now, moment)

    def advance(self, seconds: float) -> None:
        self.advance_to(self.now + seconds)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


class SteppedTime:
    """Time for many tasks at once: it moves only when the test steps it, and each sleeper
    wakes, and runs until it waits again, at its own moment before time moves on."""

    # Loop turns that let every woken task run until it waits again (a handful suffice).
    TURNS = 30

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), future))
        await future

    async def settle(self) -> None:
        for _ in range(self.TURNS):
            await asyncio.sleep(0)

    async def advance_to(self, moment: float) -> None:
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= moment:
            when, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, when)
            if not future.done():
                future.set_result(None)
            await self.settle()
        self.now = max(self.now, moment)
        await self.settle()

    async def run_out(self) -> None:
        """Step through every sleeper, including those that sleep again."""
        await self.settle()
        while self._sleepers:
            await self.advance_to(self._sleepers[0][0])
