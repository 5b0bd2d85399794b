"""One change to one record, whatever noticed it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from gateway.records import Entity


class ChangeKind(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    MERGED = "merged"


class ChangeSource(enum.StrEnum):
    WEBHOOK = "webhook"
    POLL = "poll"
    GATEWAY = "gateway"


@dataclass(frozen=True)
class RecordChange:
    """`id` is the provider's own id of the record (the schema makes the global id);
    `provider` the instance's configured name."""

    provider: str
    entity: Entity
    id: str
    kind: ChangeKind
    source: ChangeSource
    at: datetime
