"""What every emulator repeats around its API: two seeded tenants and per-caller rate windows.

Each emulator serves two tenants, the seed world and a different one (seed + 1),
so tests can tell tenants apart; and each counts its callers' requests in
windows, sliding (a log of hit times) or fixed (a count from the first hit).
How a provider answers a refused request stays in its own module. Clocks are
parameters so the windows can be tested without waiting.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from emulators.control import EmulatorOptions
from emulators.seed import SeedWorld, build_world

Clock = Callable[[], float]
S = TypeVar("S")


def tenant_worlds(options: EmulatorOptions) -> tuple[SeedWorld, SeedWorld]:
    """The demo tenant's world (the seed) and the second tenant's (seed + 1), alike in size."""
    sizes = {
        "companies": options.companies,
        "contacts": options.contacts,
        "deals": options.deals,
        "notes": options.notes,
    }
    return build_world(options.seed, **sizes), build_world(options.seed + 1, **sizes)


class Tenants(ABC, Generic[S]):
    """An emulator's state when its callers share one sliding log: the workspace (`S`) each
    credential reaches; `reset` builds them again from the two tenants' worlds."""

    def __init__(self, options: EmulatorOptions, windows: Sequence[tuple[int, float]]) -> None:
        self.options = options
        self.spaces: dict[str, S] = {}
        self.log = SlidingLog(windows)
        self.reset()

    def reset(self) -> None:
        self.spaces = self.workspaces(*tenant_worlds(self.options))
        self.log.clear()

    @abstractmethod
    def workspaces(self, demo: SeedWorld, other: SeedWorld) -> dict[str, S]:
        """The workspace each credential reaches."""


@dataclass(frozen=True)
class Window:
    """One sliding window of one caller as it stands at `now`."""

    limit: int
    seconds: float
    hits: list[float]  # the caller's hits inside the window, oldest first
    now: float

    @property
    def remaining(self) -> int:
        return self.limit - len(self.hits)


class SlidingLog:
    """Hit times per caller, counted against one or more `(limit, seconds)` windows."""

    def __init__(self, windows: Sequence[tuple[int, float]], clock: Clock = time.time) -> None:
        self.windows = tuple(windows)
        self.clock = clock
        self.hits: dict[Hashable, deque[float]] = {}

    def clear(self) -> None:
        self.hits.clear()

    def check(self, key: Hashable) -> list[Window]:
        """Every window of `key` now, hits older than the longest window forgotten."""
        now = self.clock()
        hits = self.hits.setdefault(key, deque())
        longest = max(seconds for _, seconds in self.windows)
        while hits and now - hits[0] >= longest:
            hits.popleft()
        return [
            Window(limit, seconds, [t for t in hits if now - t < seconds], now)
            for limit, seconds in self.windows
        ]

    def spend(self, key: Hashable, at: float) -> None:
        self.hits.setdefault(key, deque()).append(at)

    def admit(self, key: Hashable) -> Window | None:
        """The first full window of `key`, or None once this hit is counted."""
        windows = self.check(key)
        for window in windows:
            if window.remaining <= 0:
                return window
        self.spend(key, windows[0].now)
        return None


@dataclass(frozen=True)
class Span:
    """One caller's fixed window as it stands at `now`."""

    start: float
    used: int
    now: float
    limit: int
    seconds: float

    @property
    def remaining(self) -> int:
        return self.limit - self.used

    @property
    def end(self) -> float:
        return self.start + self.seconds


class FixedWindow:
    """Requests per caller in windows of `seconds` opened by the caller's first request."""

    def __init__(self, limit: int, seconds: float, clock: Clock = time.time) -> None:
        self.limit = limit
        self.seconds = seconds
        self.clock = clock
        self.counts: dict[Hashable, tuple[float, int]] = {}

    def clear(self) -> None:
        self.counts.clear()

    def current(self, key: Hashable) -> Span:
        """The window of `key` now; a new one once the last has run out."""
        now = self.clock()
        start, used = self.counts.get(key, (now, 0))
        if now - start >= self.seconds:
            start, used = now, 0
        self.counts[key] = (start, used)
        return Span(start, used, now, self.limit, self.seconds)

    def spend(self, key: Hashable) -> None:
        start, used = self.counts[key]
        self.counts[key] = (start, used + 1)
