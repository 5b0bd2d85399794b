"""The gateway's own writes, announced as changes the moment they succeed: subscribers hear
them at once, and their echoes (the provider's webhook, the next poll) only once."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.live.changes import ChangeKind, ChangeSource, RecordChange
from gateway.records import Entity
from resolvers.context import Context


def announce(
    context: Context, provider: str, entity: Entity, kind: ChangeKind, *remote_ids: str
) -> None:
    """Records of `provider` the gateway just wrote (its write forgot the caches already)."""
    at = datetime.now(UTC)
    for remote_id in remote_ids:
        change = RecordChange(provider, entity, remote_id, kind, ChangeSource.GATEWAY, at)
        context.gateway.changes.written(change)
