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
