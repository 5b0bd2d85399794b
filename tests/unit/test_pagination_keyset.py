"""Keyset segments against an oracle: the list in the merged lists' total order (nulls the
largest key, then the id), turned round when read in reverse, from its start or after any
of its records. The segments, each filtered and sorted as an upstream would, must give
exactly that list: through an in-memory reading of their conditions, and through the SQL
the Redivis data source writes for them, run by the Redivis emulator's own parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.redivis import Parser, _sorted
from gateway.datasources import redivis_sql
from gateway.errors import BadUserInput
from gateway.listquery import Sort, evaluate
from gateway.pagination.keyset import Keyset, Segment
from gateway.pagination.merge import order_key

Row = dict[str, Any]
START = datetime(2024, 3, 1, 12, tzinfo=UTC)


@st.composite
def lists(draw: Any) -> tuple[list[Row], Sort, bool, Row | None]:
    """Rows with unique ids and few distinct keys (ties, nulls), an order, a direction to
    read, and the row to read after (None: the start)."""
    ids = draw(st.lists(st.text("abcxyz019_", min_size=1, max_size=4), unique=True, max_size=12))
    keys = st.none() | st.integers(0, 3).map(lambda n: START + timedelta(seconds=n))
    rows = [{"id": i, "created_at": draw(keys)} for i in ids]
    sort = Sort("created_at", draw(st.booleans()))
    after = draw(st.none() | st.sampled_from(rows)) if rows else None
    return rows, sort, draw(st.booleans()), after


def oracle(rows: list[Row], sort: Sort, reverse: bool, after: Row | None) -> list[str]:
    def value_of(row: Row, name: str) -> Any:
        return row[name]

    key = order_key([(sort.field, sort.descending)], value_of, False)
    ordered = sorted(rows, key=lambda row: (key(row), row["id"]), reverse=reverse)
    ids: list[str] = [row["id"] for row in ordered]
    return ids if after is None else ids[ids.index(after["id"]) + 1 :]


def read_in_memory(rows: list[Row], segment: Segment) -> list[str]:
    """The segment as an upstream gives it: filtered, then sorted by its keys, none null."""
    kept = [row for row in rows if evaluate(segment.where, row.get)]
    for sort in reversed(segment.order):
        assert all(row[sort.field] is not None for row in kept), "a null in a sort key"
        kept.sort(key=itemgetter(sort.field), reverse=sort.descending)  # stable both ways
    return [row["id"] for row in kept]


def position(keyset: Keyset, row: Row | None) -> str | None:
    return None if row is None else keyset.key(row["created_at"], row["id"])


@given(lists())
def test_the_segments_read_the_list_in_its_total_order(case: Any) -> None:
    rows, sort, reverse, after = case
    keyset = Keyset(sort)
    segments = keyset.segments(reverse, position(keyset, after))
    got = [i for segment in segments for i in read_in_memory(rows, segment)]
    assert got == oracle(rows, sort, reverse, after)


@given(lists())
def test_the_segments_as_redivis_sql_read_the_list_in_its_total_order(case: Any) -> None:
    rows, sort, reverse, after = case
    keyset = Keyset(sort)
    # As the emulator holds them: times as text, in the one format the data source writes.
    stored = [
        {**row, "created_at": None if row["created_at"] is None else _text(row["created_at"])}
        for row in rows
    ]
    got = []
    for segment in keyset.segments(reverse, position(keyset, after)):
        sql = (
            f"SELECT id FROM `acme.crm.contacts` WHERE {redivis_sql.condition(segment.where)} "
            f"ORDER BY {redivis_sql.order_by(segment.order)}"
        )
        _, _, where, order, _, _ = Parser(sql).parse()
        got += [row["id"] for row in _sorted([r for r in stored if where(r)], order)]
    assert got == oracle(rows, sort, reverse, after)


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


VALUES = (
    st.none() | st.datetimes(timezones=st.just(UTC)) | st.integers() | st.decimals(allow_nan=False)
)


@given(VALUES, st.text(min_size=1, max_size=20))
def test_a_position_holds_its_key_and_id_exactly(value: Any, remote_id: str) -> None:
    keyset = Keyset(Sort("created_at"))
    key = keyset.key(value, remote_id)
    assert key.isprintable() == remote_id.isprintable()
    back, same = keyset.position(key)
    assert same == remote_id
    assert type(back) is type(value)
    assert back == value
    if isinstance(value, datetime):  # short: a merged cursor holds two per provider
        assert len(key) <= len(remote_id) + 21


def test_a_time_without_an_offset_is_taken_as_utc() -> None:
    keyset = Keyset(Sort("created_at"))
    moment = datetime(2024, 3, 1, 12, 30, 0, 250)
    assert keyset.position(keyset.key(moment, "a")) == (moment.replace(tzinfo=UTC), "a")


@pytest.mark.parametrize(
    "key", ["", "a", "x~a", "tnope~a", "t5~", "d1.x~a", "s5~a", "t" + "9" * 40 + "~a"]
)
def test_a_position_it_never_gave_is_bad_input(key: str) -> None:
    with pytest.raises(BadUserInput):
        Keyset(Sort("created_at")).segments(False, key)


def test_the_segments_keep_the_nulls_where_the_order_has_them() -> None:
    def sql(segment: Segment) -> tuple[str, str]:
        return redivis_sql.condition(segment.where), redivis_sql.order_by(segment.order)

    # Ascending: the values, then the nulls; descending (or ascending read the other way):
    # the nulls, then the values, ties by id the way the list runs.
    assert [sql(s) for s in Keyset(Sort("updated_at")).segments(False)] == [
        ("updated_at IS NOT NULL", "updated_at ASC, id ASC"),
        ("updated_at IS NULL", "id ASC"),
    ]
    assert [sql(s) for s in Keyset(Sort("updated_at", True)).segments(False)] == [
        ("updated_at IS NULL", "id ASC"),
        ("updated_at IS NOT NULL", "updated_at DESC, id ASC"),
    ]
    assert [sql(s) for s in Keyset(Sort("updated_at")).segments(True)] == [
        ("updated_at IS NULL", "id DESC"),
        ("updated_at IS NOT NULL", "updated_at DESC, id DESC"),
    ]
    # After a record: the rest of its segment, then the next whole.
    keyset = Keyset(Sort("updated_at"))
    moment = datetime(2024, 3, 1, tzinfo=UTC)
    rest, nulls = keyset.segments(False, keyset.key(moment, "p1"))
    assert sql(rest)[0] == (
        "(updated_at IS NOT NULL AND (updated_at > '2024-03-01 00:00:00.000000' OR "
        "(updated_at = '2024-03-01 00:00:00.000000' AND id > 'p1')))"
    )
    assert sql(nulls) == ("updated_at IS NULL", "id ASC")
    [last] = keyset.segments(False, keyset.key(None, "p1"))
    assert sql(last) == ("(updated_at IS NULL AND id > 'p1')", "id ASC")
