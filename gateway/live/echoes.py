"""Which changes are echoes of the gateway's own writes.

A write through the gateway is announced at once (`ChangeSource.GATEWAY`), and then comes
back: as the provider's webhook a moment later, or as what the next poll sees. Listeners
should hear it once. Each GATEWAY change is remembered for `window` seconds; a WEBHOOK or
POLL change of the same record (provider, entity, id) and kind within that time is its
echo, and swallows one remembered write: two writes of one record, two echoes.

The window bounds what may go wrong. A genuine change made in the CRM itself is taken for
an echo only when it is of the same record and kind, arrives within `window` seconds of a
gateway write, and that write's own echo has not come yet (a provider without webhooks for
it, or a poll that saw the write and the later change as one). Such a change still forgets
the provider's caches (the hub does that before asking here), so the next read is fresh;
only the event is lost. Ten seconds covers a webhook's delivery and a demo's poll; an
echo later than the window reaches the listeners twice, which costs them one extra read.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable

from gateway.live.changes import ChangeSource, RecordChange

ECHO_WINDOW = 10.0


def _key(change: RecordChange) -> Hashable:
    return (change.provider, change.entity, change.id, change.kind)


class Echoes:
    """Remembers the gateway's own changes and recognises their echoes. `clock` is for tests."""

    def __init__(
        self, window: float = ECHO_WINDOW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window
        self.clock = clock
        # Record key -> when each gateway change of it not echoed yet was seen, oldest first.
        self._written: dict[Hashable, deque[float]] = {}

    def is_echo(self, change: RecordChange) -> bool:
        """Whether listeners already heard `change` (as a GATEWAY change): an echo."""
        now = self.clock()
        self._expire(now)
        key = _key(change)
        if change.source is ChangeSource.GATEWAY:
            self._written.setdefault(key, deque()).append(now)
            return False
        seen = self._written.get(key)
        if not seen:
            return False
        seen.popleft()
        if not seen:
            del self._written[key]
        return True

    def _expire(self, now: float) -> None:
        # Few entries live at once (writes of the last `window` seconds): a sweep is cheap.
        for key in [k for k, seen in self._written.items() if now - seen[-1] > self.window]:
            del self._written[key]
        for seen in self._written.values():
            while now - seen[0] > self.window:
                seen.popleft()

    def __len__(self) -> int:
        return sum(len(seen) for seen in self._written.values())
