"""What a poller knows of one list of one provider, and how it finds what changed since.

Two ways, as the provider allows (`gateway/datasources/<kind>.py`):
- `WholeTracker`: the list read whole (at most `merge_whole_max` records) and compared
  with the last read, record by record (a digest of each).
- `StampedTracker`: where the API filters by update time (`stamped`), only the records
  updated after the newest time seen, and the list's size; only when the size is not what
  those reads account for (a record deleted, or one created with an older time) are every
  record's id and time read again, to find which.

The first poll of a list only records what it holds: changes are what later polls find.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from gateway.datasources.hooks import StampRead
from gateway.datasources.lookups import WholeList
from gateway.live.changes import ChangeKind
from gateway.live.diff import Change, diff, digests
from gateway.records import Entity


class Polled(Protocol):
    """What the trackers read of a data source."""

    @property
    def whole_page_size(self) -> int: ...
    async def whole_list(self, entity: Entity, limit: int, size: int) -> WholeList: ...
    async def stamps_since(self, entity: Entity, since: datetime | None) -> StampRead: ...


class ListTooLong(Exception):
    """The list holds more records than a poll may read whole."""


class Tracker(Protocol):
    async def poll(self) -> list[Change]:
        """What changed since the last poll (nothing on the first)."""
        ...


class WholeTracker:
    """A list read whole and compared with the last read."""

    def __init__(self, source: Polled, entity: Entity, limit: int) -> None:
        self.source = source
        self.entity = entity
        self.limit = limit
        self.before: dict[str, str] | None = None

    async def poll(self) -> list[Change]:
        read = await self.source.whole_list(self.entity, self.limit, self.source.whole_page_size)
        if not read.complete:
            raise ListTooLong(f"more than {self.limit} {self.entity.plural}")
        after = digests(read.records)
        before, self.before = self.before, after
        return [] if before is None else diff(before, after)


class StampedTracker:
    """A list whose records carry an update time the API filters by.

    `mark` is the newest update time seen: each poll reads the records updated after it.
    A record updated within that same instant after the read that saw it is missed (until
    its next update): the APIs this serves stamp to the microsecond (Redivis), and change
    their data all at once.
    """

    def __init__(self, source: Polled, entity: Entity) -> None:
        self.source = source
        self.entity = entity
        self.known: set[str] | None = None
        self.mark: datetime | None = None

    async def poll(self) -> list[Change]:
        if self.known is None:
            first = await self.source.stamps_since(self.entity, None)
            self.known, self.mark = set(first.stamps), newest(first.stamps, None)
            return []
        changes: list[Change] = []
        if self.mark is not None:  # else no record has an update time yet: ids alone tell
            read = await self.source.stamps_since(self.entity, self.mark)
            changes = [
                (i, ChangeKind.UPDATED if i in self.known else ChangeKind.CREATED)
                for i in read.stamps
            ]
            created = {i for i, kind in changes if kind is ChangeKind.CREATED}
            if read.total == len(self.known) + len(created):
                self.known |= created
                self.mark = newest(read.stamps, self.mark)
                return changes
        return self._recount(await self.source.stamps_since(self.entity, None), changes)

    def _recount(self, read: StampRead, changes: list[Change]) -> list[Change]:
        """`changes` completed by a read of every record: those created or updated unseen
        (since the count was taken), and those deleted (a record updated, then deleted,
        counts as deleted only)."""
        assert self.known is not None
        listed = {record_id for record_id, _ in changes}
        found = [(i, kind) for i, kind in changes if i in read.stamps]
        for record_id, stamp in read.stamps.items():
            if record_id in listed:
                continue
            if record_id not in self.known:
                found.append((record_id, ChangeKind.CREATED))
            elif stamp is not None and (self.mark is None or stamp > self.mark):
                found.append((record_id, ChangeKind.UPDATED))
        found += [(i, ChangeKind.DELETED) for i in sorted(self.known - set(read.stamps))]
        self.known = set(read.stamps)
        self.mark = newest(read.stamps, self.mark)
        return found


def newest(stamps: Mapping[str, datetime | None], mark: datetime | None) -> datetime | None:
    """The latest of `stamps` and `mark`."""
    return max((s for s in (*stamps.values(), mark) if s is not None), default=None)
