"""How many subscriptions each client holds open, across its connections and transports.

Counted per process: behind several replicas a client may hold this many on each.
"""

from __future__ import annotations

from collections import Counter

from gateway.errors import TooManySubscriptions


class SubscriptionSlots:
    """At most `limit` open subscriptions per client name ("" is the open gateway's one
    anonymous client, as in the providers' budgets)."""

    def __init__(self, limit: int = 20) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def take(self, client: str) -> None:
        """One more for `client`, or TOO_MANY_SUBSCRIPTIONS."""
        if self._open[client] >= self.limit:
            raise TooManySubscriptions(self.limit)
        self._open[client] += 1

    def give_back(self, client: str) -> None:
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]

    def held(self, client: str) -> int:
        return self._open[client]

    @property
    def total(self) -> int:
        return self._open.total()
