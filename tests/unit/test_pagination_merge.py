"""Property tests of lists merged across providers (gateway.pagination.merge), against an oracle.

Each lane is a simulated provider: a list of random values (nulls and ties included) in
its own order, served through the offset engine in blocks. The oracle is the lanes'
lists one after another, or sorted by (key, lane position, the lane's own order). Random
sequences of `first/after/last/before` (cursors from earlier answers) must give the slice
of the oracle and the `pageInfo` the Relay spec defines (tests/unit/relay_spec.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import BadUserInput
from gateway.pagination import (
    ConnectionArgs,
    ConnectionSlice,
    CursorCodec,
    OffsetPage,
    binding_key,
    paginate_offsets,
)
from gateway.pagination.merge import Lane, Merge, order_key
from tests.support.relay_spec import expected

CODEC = CursorCodec(b"merge-secret")


@dataclass(frozen=True)
class Item:
    lane: int
    own: int  # its index in its lane's list
    value: int | None


def value_of(item: Item, field: str) -> Any:
    return item.value


def lane_order(values: list[int | None], descending: bool) -> list[int | None]:
    """A provider's own sort: nulls after every value ascending, before them descending."""
    return sorted(values, key=lambda v: (v is None, v or 0), reverse=descending)


def offset_lane(name: str, items: list[Item], block: int) -> Lane[Item]:
    binding = binding_key(name)

    async def fetch(offset: int, size: int) -> OffsetPage[Item]:
        return OffsetPage(offset, items[offset : offset + size], len(items))

    async def read(args: ConnectionArgs) -> ConnectionSlice[Item]:
        return await paginate_offsets(
            args,
            fetch=fetch,
            codec=CODEC,
            binding=binding,
            max_request_size=block,
            aligned=True,
            block_size=block,
        )

    async def count() -> int | None:
        return len(items)

    return Lane(name, read, count)


@st.composite
def merges(draw: st.DrawFn) -> tuple[Merge[Item], list[Item]]:
    keyed = draw(st.booleans())
    descending = draw(st.booleans())
    values = st.lists(st.none() | st.integers(0, 4), max_size=12)
    lanes, every = [], []
    for lane, raw in enumerate(draw(st.lists(values, min_size=1, max_size=4))):
        ordered = lane_order(raw, descending) if keyed else raw
        items = [Item(lane, i, v) for i, v in enumerate(ordered)]
        lanes.append(offset_lane(f"p{lane}", items, draw(st.integers(1, 5))))
        every += items
    key = order_key([("value", descending)], value_of, False) if keyed else None
    if key is not None:
        every.sort(key=lambda item: (key(item), item.lane, item.own))
    merge = Merge(lanes, key, CODEC, binding_key("merged", keyed, descending, len(lanes)))
    return merge, every


def window_args(
    draw: Callable[[st.SearchStrategy[Any]], Any], cursors: list[str]
) -> ConnectionArgs:
    size = st.integers(0, 7)
    first = draw(st.none() | size)
    last = draw(size) if first is None else draw(st.none() | size)
    after = draw(st.none() | st.sampled_from(cursors)) if cursors else None
    before = draw(st.none() | st.sampled_from(cursors)) if cursors else None
    return ConnectionArgs(first=first, after=after, last=last, before=before)


@settings(max_examples=300, deadline=None)
@given(case=merges(), data=st.data())
def test_windows_are_slices_of_the_merged_order(
    case: tuple[Merge[Item], list[Item]], data: st.DataObject
) -> None:
    merge, every = case
    index = {item: i for i, item in enumerate(every)}
    at: dict[str, int] = {}

    async def check() -> None:
        for _ in range(6):
            args = window_args(data.draw, sorted(at))
            window = await merge.window(args)
            after = None if args.after is None else at[args.after]
            before = None if args.before is None else at[args.before]
            edges, has_previous, has_next = expected(len(every), args, after, before)
            assert [index[e.node] for e in window.edges] == edges
            assert window.page_info.has_previous_page == has_previous
            assert window.page_info.has_next_page == has_next
            for edge in window.edges:
                at[edge.cursor] = index[edge.node]
            assert window.count is not None
            assert await window.count() == len(every)

    asyncio.run(check())


@settings(max_examples=60, deadline=None)
@given(case=merges(), forward=st.integers(1, 7), backward=st.integers(1, 7))
def test_walks_both_ways_hold_every_record_once_in_order(
    case: tuple[Merge[Item], list[Item]], forward: int, backward: int
) -> None:
    merge, every = case

    async def walk() -> None:
        seen: list[Item] = []
        cursor = None
        while True:
            window = await merge.window(ConnectionArgs(first=forward, after=cursor))
            seen += [e.node for e in window.edges]
            if not window.page_info.has_next_page:
                break
            cursor = window.page_info.end_cursor
        assert seen == every
        back: list[Item] = []
        cursor = None
        while True:
            window = await merge.window(ConnectionArgs(last=backward, before=cursor))
            back = [e.node for e in window.edges] + back
            if not window.page_info.has_previous_page:
                break
            cursor = window.page_info.start_cursor
        assert back == every

    asyncio.run(walk())


def test_a_cursor_of_another_merge_is_refused() -> None:
    items = [Item(0, i, i) for i in range(3)]
    one = Merge([offset_lane("a", items, 2)], None, CODEC, binding_key("one"))
    other = Merge([offset_lane("a", items, 2)], None, CODEC, binding_key("other"))

    async def check() -> None:
        window = await one.window(ConnectionArgs(first=1))
        with pytest.raises(BadUserInput) as refused:
            await other.window(ConnectionArgs(first=1, after=window.page_info.end_cursor))
        assert refused.value.extensions["argument"] == "after"

    asyncio.run(check())


@pytest.mark.parametrize(
    ("texts", "reference"),
    [(["a-shared-text"], [3]), (["a-shared-text"], [True]), ("a-shared-text", [0]), ([], [0])],
)
def test_a_reference_to_no_shared_text_is_refused(texts: Any, reference: Any) -> None:
    # Texts several lane positions hold are kept once (`t`) and referred to by [index]:
    # a reference that names none, even signed, is not a cursor of the list.
    items = [Item(0, i, i) for i in range(3)]
    binding = binding_key("one")
    merge = Merge([offset_lane("a", items, 2), offset_lane("b", items, 2)], None, CODEC, binding)

    async def check() -> None:
        window = await merge.window(ConnectionArgs(first=1))
        cursor = window.page_info.end_cursor
        assert cursor is not None
        _, position = CODEC.open(cursor, "after")
        a, b = position["s"][0]
        forged = {**position, "t": texts, "s": [[{**a, "o": reference}, b], "s"]}
        with pytest.raises(BadUserInput) as refused:
            await merge.window(ConnectionArgs(first=1, after=CODEC.encode(binding, forged)))
        assert refused.value.extensions["argument"] == "after"

    asyncio.run(check())
