"""How a poller finds what changed in one list: by comparing whole reads, or by update
times where the API filters by them; the first poll only records what the list holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.datasources.hooks import StampRead
from gateway.datasources.lookups import WholeList
from gateway.live.changes import ChangeKind
from gateway.live.tracking import ListTooLong, StampedTracker, WholeTracker
from gateway.records import AnyRecord, ContactRecord, Entity

CREATED, UPDATED, DELETED = ChangeKind.CREATED, ChangeKind.UPDATED, ChangeKind.DELETED
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Fake:
    """A provider's list as the trackers read it: records by id, each (name, updated time);
    `reads` says what was asked (`whole`, `all` stamps, or stamps `since` a time)."""

    whole_page_size = 100

    def __init__(self, rows: dict[str, tuple[str, datetime | None]]) -> None:
        self.rows = dict(rows)
        self.reads: list[str] = []
        self.hidden: set[str] = set()  # created with an old time: no "since" read finds them

    async def whole_list(self, entity: Entity, limit: int, size: int) -> WholeList:
        self.reads.append("whole")
        records: list[AnyRecord] = [
            ContactRecord(
                provider="crm",
                remote_id=i,
                created_at=None,
                updated_at=stamp,
                remote_data={"id": i, "name": name},
            )
            for i, (name, stamp) in self.rows.items()
        ]
        return WholeList(records[: limit + 1], complete=len(records) <= limit)

    async def stamps_since(self, entity: Entity, since: datetime | None) -> StampRead:
        self.reads.append("all" if since is None else "since")
        stamps = {i: s for i, (_, s) in self.rows.items()}
        if since is not None:
            stamps = {i: s for i, s in stamps.items() if s and s > since and i not in self.hidden}
        return StampRead(stamps, len(self.rows))


async def test_whole_reads_compared_find_every_change_after_a_silent_first_poll() -> None:
    source = Fake({"1": ("Ada", None), "2": ("Bob", None), "3": ("Cy", None)})
    tracker = WholeTracker(source, Entity.CONTACT, limit=10)
    assert await tracker.poll() == []  # the first poll records only
    assert await tracker.poll() == []
    source.rows["1"] = ("Ada L.", None)
    del source.rows["2"]
    source.rows["4"] = ("Dee", None)
    assert await tracker.poll() == [("1", UPDATED), ("4", CREATED), ("2", DELETED)]
    assert await tracker.poll() == []


async def test_a_list_too_long_to_read_whole_is_said_so() -> None:
    tracker = WholeTracker(Fake({str(n): ("x", None) for n in range(5)}), Entity.CONTACT, 4)
    with pytest.raises(ListTooLong, match="more than 4 contacts"):
        await tracker.poll()


async def test_update_times_find_updates_and_creations_with_one_read_and_the_count() -> None:
    source = Fake({"1": ("Ada", at(1)), "2": ("Bob", at(2))})
    tracker = StampedTracker(source, Entity.CONTACT)
    assert await tracker.poll() == []
    assert source.reads == ["all"]
    assert await tracker.poll() == []
    source.rows["1"] = ("Ada L.", at(5))
    source.rows["3"] = ("Cy", at(5))
    assert await tracker.poll() == [("1", UPDATED), ("3", CREATED)]
    assert await tracker.poll() == []
    assert source.reads == ["all", "since", "since", "since"]  # the count agreed each time


async def test_a_count_short_of_the_reads_finds_the_deletions_by_reading_every_id() -> None:
    source = Fake({"1": ("Ada", at(1)), "2": ("Bob", at(2)), "3": ("Cy", at(3))})
    tracker = StampedTracker(source, Entity.CONTACT)
    await tracker.poll()
    del source.rows["2"]
    source.rows["3"] = ("Cy D.", at(4))
    assert await tracker.poll() == [("3", UPDATED), ("2", DELETED)]
    assert source.reads == ["all", "since", "all"]
    assert await tracker.poll() == []


async def test_a_record_created_with_an_older_time_is_found_through_the_count() -> None:
    source = Fake({"1": ("Ada", at(5))})
    tracker = StampedTracker(source, Entity.CONTACT)
    await tracker.poll()
    source.rows["0"] = ("Old", at(1))
    source.hidden.add("0")
    source.rows["1"] = ("Ada L.", at(6))  # and one updated, seen by the "since" read
    assert await tracker.poll() == [("1", UPDATED), ("0", CREATED)]


async def test_a_record_updated_then_deleted_counts_as_deleted_only() -> None:
    source = Fake({"1": ("Ada", at(1)), "2": ("Bob", at(2))})
    tracker = StampedTracker(source, Entity.CONTACT)
    await tracker.poll()

    async def deleted_meanwhile(entity: Entity, since: datetime | None) -> StampRead:
        if since is not None:  # the "since" read saw it updated; it is gone by the count
            return StampRead({"2": at(3)}, 1)
        del source.rows["2"]
        return await Fake.stamps_since(source, entity, None)

    source.stamps_since = deleted_meanwhile  # type: ignore[method-assign]
    assert await tracker.poll() == [("2", DELETED)]


async def test_without_update_times_the_ids_alone_tell() -> None:
    source = Fake({"1": ("Ada", None)})
    tracker = StampedTracker(source, Entity.CONTACT)
    await tracker.poll()
    source.rows["2"] = ("Bob", None)
    assert await tracker.poll() == [("2", CREATED)]
    source.rows["1"] = ("Ada", at(1))  # its first update time: an update
    assert await tracker.poll() == [("1", UPDATED)]
    assert source.reads == ["all", "all", "all"]
