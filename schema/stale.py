"""`extensions.stale`: which providers' data in a response was served past its cache TTL.

The cache serves a read stale when the provider's rate limit is spent (see
gateway/cache.py); it notes the provider and the value's age in the operation's
`StaleReads`, which this extension installs for the operation and reports after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from gateway.cache import StaleReads, stale_reads


class StaleMarker(SchemaExtension):
    """Adds `"stale": [{"provider": ..., "ageSeconds": ...}]` when anything was stale."""

    reads: StaleReads | None = None

    def on_operation(self) -> Iterator[None]:
        # Set here, in the task that runs the resolvers: the tasks and dataloader batches
        # they start copy it, so every read of the operation reports to the same collector.
        self.reads = StaleReads()
        token = stale_reads.set(self.reads)
        try:
            yield
        finally:
            stale_reads.reset(token)

    def get_results(self) -> dict[str, Any]:
        if self.reads is None or not self.reads.ages:
            return {}
        return {
            "stale": [
                {"provider": provider, "ageSeconds": round(age, 1)}
                for provider, age in sorted(self.reads.ages.items())
            ]
        }
