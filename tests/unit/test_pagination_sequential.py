"""Property tests of the Relay engine over cursor and page-token APIs.

Simulated upstreams read a list of random size forward from opaque
positions: a cursor API (hasteCRM-like: `next` and `previous`, reversible
sort) and a token API (Redivis-like: `next` only, reversible through keyset
queries), and a token API that can do neither. Random sequences of
`first/after/last/before` must give exactly the slice the Relay spec defines,
exact `pageInfo`, and forward windows must cost the fewest pages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import BadUserInput, Unsupported
from gateway.pagination.connection import ConnectionArgs, ConnectionSlice, PageLimits, check_args
from gateway.pagination.cursors import CursorCodec, binding_key
from gateway.pagination.positions import BlockChain, SeqPage
from gateway.pagination.sequential import paginate_sequential
from tests.support.relay_spec import expected
from tests.support.walk import Page, Paging, relay_page, walk

LIMITS = PageLimits(default_size=20, max_size=100)
CODEC = CursorCodec(b"test-secret")
BINDING = binding_key("haste", "contact", None, None)


@dataclass
class Upstream:
    """A list of `size` items `0..size-1`, read from positions that encode an index.

    A handle is `f|r` plus an optional keyset key: `r>7` is "in reverse, after 7".
    Positions are `<handle>@<index in that list>`; the engine must treat them as opaque.
    """

    size: int
    max_request_size: int
    has_previous: bool
    can_reverse: bool
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)
    opened: list[tuple[bool, str | None]] = field(default_factory=list)

    def key(self, item: int) -> str:
        return str(item)

    def valid_handle(self, handle: str) -> bool:
        direction, mark, after = handle.partition(">")
        return direction in ("f", "r") and (not mark or (after.isascii() and after.isdigit()))

    def valid_position(self, position: str) -> bool:
        handle, _, index = position.partition("@")
        return self.valid_handle(handle) and index.isascii() and index.isdigit()

    def view(self, handle: str) -> list[int]:
        direction, _, after = handle.partition(">")
        items = list(range(self.size))
        if direction == "r":
            items.reverse()
        if after:
            items = items[items.index(int(after)) + 1 :]
        return items

    async def open(self, reverse: bool, after_key: str | None) -> str:
        assert self.can_reverse or (not reverse and after_key is None)
        self.opened.append((reverse, after_key))
        return ("r" if reverse else "f") + (f">{after_key}" if after_key is not None else "")

    async def fetch(self, handle: str, position: str | None, limit: int) -> SeqPage[int]:
        assert 1 <= limit <= self.max_request_size, f"limit {limit}"
        self.requests.append((handle, position, limit))
        start = 0
        if position is not None:
            owner, _, index = position.partition("@")
            assert owner == handle, "position used with another list"
            start = int(index)
        items = self.view(handle)
        page = items[start : start + limit]
        following = f"{handle}@{start + limit}" if start + limit < len(items) else None
        previous = None
        if self.has_previous and start > 0:
            previous = f"{handle}@{max(0, start - limit)}"
        return SeqPage(page, following, previous)


def pages(need: int, remaining: int, max_size: int) -> int:
    """Pages read forward to collect `need` items with `remaining` items left, stopping at the end."""
    return min(-(-need // max_size), max(1, -(-remaining // max_size)))


def fewest_forward_requests(
    up: Upstream, args: ConnectionArgs, cursor: dict[str, Any] | None
) -> int | None:
    """Fewest requests for a forward window, from what the `after` cursor remembers."""
    count = args.first or 0
    if cursor is None:
        return pages(max(count, 1), up.size, up.max_request_size)
    if cursor.get("r"):
        return None
    if cursor.get("z"):
        return 0
    after = int(cursor["k"])
    if cursor.get("n"):
        return pages(count, up.size - after - 1, up.max_request_size) if count else 0
    start = after - cursor.get("i", 0)
    return pages(cursor.get("i", 0) + 1 + count, up.size - start, up.max_request_size)


def run(up: Upstream, args: ConnectionArgs) -> ConnectionSlice[int]:
    return asyncio.run(
        paginate_sequential(
            check_args(args, LIMITS), api=up, codec=CODEC, binding=BINDING, provider="sim"
        )
    )


def item(cursor: str | None) -> int | None:
    return None if cursor is None else int(CODEC.decode(cursor, BINDING, "x")["k"])


count = st.integers(min_value=0, max_value=LIMITS.max_size)
step = st.tuples(
    st.sampled_from(
        [
            "first",
            "last",
            "first_after",
            "last_before",
            "after",
            "before",
            "between",
            "last_between",
        ]
    ),
    count,
    st.sampled_from(["start", "end", "random"]),
    st.integers(min_value=0, max_value=10_000),
)


@settings(max_examples=400)
@given(
    total=st.integers(min_value=0, max_value=2500),
    max_size=st.one_of(st.just(100), st.integers(min_value=1, max_value=100)),
    flavour=st.sampled_from(["cursor", "token"]),
    steps=st.lists(step, min_size=1, max_size=8),
)
def test_windows_are_exact_slices(total, max_size, flavour, steps):
    up = Upstream(total, max_size, has_previous=flavour == "cursor", can_reverse=True)
    edges_seen: list[str] = []
    for kind, n, pick, r in steps:
        cursor = other = None
        if edges_seen:
            cursor = {"start": edges_seen[0], "end": edges_seen[-1]}.get(pick) or edges_seen[
                r % len(edges_seen)
            ]
            other = edges_seen[(r // 7) % len(edges_seen)]
            # Crossed cursors (`before` ahead of `after`) are only detected near the list end.
            if (item(other) or 0) < (item(cursor) or 0):
                cursor, other = other, cursor
        args = {
            "first": ConnectionArgs(first=n),
            "last": ConnectionArgs(last=n),
            "first_after": ConnectionArgs(first=n, after=cursor),
            "last_before": ConnectionArgs(last=n, before=cursor),
            "after": ConnectionArgs(after=cursor),
            "before": ConnectionArgs(before=cursor),
            "between": ConnectionArgs(first=n, after=cursor, before=other),
            "last_between": ConnectionArgs(last=n, after=cursor, before=other),
        }[kind]
        effective = check_args(args, LIMITS)
        up.requests.clear()
        result = run(up, args)
        after, before = item(effective.after), item(effective.before)
        want, has_previous, has_next = expected(total, effective, after, before)
        assert [e.node for e in result.edges] == want
        assert [item(e.cursor) for e in result.edges] == want
        assert result.page_info.has_previous_page is has_previous
        assert result.page_info.has_next_page is has_next
        assert result.page_info.start_cursor == (result.edges[0].cursor if want else None)
        assert result.page_info.end_cursor == (result.edges[-1].cursor if want else None)
        assert result.total_count is None
        size = effective.first if effective.first is not None else effective.last or 0
        if effective.before is None and effective.last is None:
            memo = CODEC.decode(effective.after, BINDING, "x") if effective.after else None
            fewest = fewest_forward_requests(up, effective, memo)
            if fewest is not None:
                assert len(up.requests) == fewest
        # Any window: the pages it spans, plus at most two to find where to start.
        assert len(up.requests) <= -(-(size + 1) // max_size) + 2 + (size + 1 > max_size)
        if result.edges:
            edges_seen = [e.cursor for e in result.edges]


def pages_of(up: Upstream) -> Callable[[Paging], Page]:
    """Each page as the engine answers it, for the walker."""
    return lambda paging: relay_page(run(up, ConnectionArgs(**paging)))


def forward_nodes(up: Upstream, size: int) -> list[int]:
    return walk(pages_of(up), size).nodes


def backward_nodes(up: Upstream, size: int) -> list[int]:
    return walk(pages_of(up), size, forward=False).nodes


@pytest.mark.parametrize("flavour", ["cursor", "token"])
def test_walks_visit_every_item_once_one_page_per_window(flavour):
    up = Upstream(1000, 100, has_previous=flavour == "cursor", can_reverse=True)
    up.requests.clear()
    assert forward_nodes(up, 37) == list(range(1000))
    assert len(up.requests) == 28  # ceil(1000 / 37) windows, one page each
    up.requests.clear()
    assert backward_nodes(up, 23) == list(range(1000))
    assert len(up.requests) == 44  # ceil(1000 / 23)


def test_backward_from_the_end_needs_a_reversible_list():
    up = Upstream(50, 100, has_previous=False, can_reverse=False)
    with pytest.raises(Unsupported) as caught:
        run(up, ConnectionArgs(last=5))
    assert caught.value.extensions["code"] == "UNSUPPORTED"
    assert up.requests == []


def test_backward_inside_a_fetched_page_works_without_reverse():
    up = Upstream(50, 100, has_previous=False, can_reverse=False)
    page = run(up, ConnectionArgs(first=10))
    back = run(up, ConnectionArgs(last=4, before=page.edges[8].cursor))
    assert [e.node for e in back.edges] == [4, 5, 6, 7]
    assert back.page_info.has_previous_page is True
    later = run(up, ConnectionArgs(first=10, after=page.page_info.end_cursor))
    with pytest.raises(Unsupported):
        run(up, ConnectionArgs(last=15, before=later.edges[2].cursor))


def test_first_and_last_together_are_refused():
    up = Upstream(50, 100, has_previous=True, can_reverse=True)
    with pytest.raises(BadUserInput) as caught:
        run(up, ConnectionArgs(first=3, last=2))
    assert caught.value.argument == "last"


@pytest.mark.parametrize("argument", ["after", "before"])
@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        CODEC.encode(BINDING, {"o": 3}),
        CODEC.encode(BINDING, {"h": "f", "k": "3", "i": -1}),
        CODEC.encode(binding_key("redivis", "contact", None, None), {"h": "f", "k": "3"}),
    ],
)
def test_bad_cursors_name_their_argument(argument, cursor):
    up = Upstream(50, 100, has_previous=True, can_reverse=True)
    with pytest.raises(BadUserInput) as caught:
        run(up, ConnectionArgs(first=5, **{argument: cursor}))
    assert caught.value.argument == argument
    assert up.requests == []


json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
forged_field = st.one_of(
    json_value,
    st.sampled_from(["f", "r", "r>3", "f@5", "r@2", "3", "f@x", "../x", "", "f@5&limit=1000"]),
)


class Refused(Exception):
    """What a real upstream answers 400 to: a position of another list, an unknown key."""


class Strict(Upstream):
    """The simulated upstream, refusing what a real one would refuse instead of asserting."""

    async def open(self, reverse: bool, after_key: str | None) -> str:
        if after_key is not None and not (after_key.isdigit() and int(after_key) < self.size):
            raise Refused(after_key)
        return await super().open(reverse, after_key)

    async def fetch(self, handle: str, position: str | None, limit: int) -> SeqPage[int]:
        _, _, after = handle.partition(">")
        if after and int(after) >= self.size:
            raise Refused(handle)
        if position is not None and position.partition("@")[0] != handle:
            raise Refused(position)
        return await super().fetch(handle, position, limit)


@settings(max_examples=300)
@given(
    payload=st.dictionaries(st.sampled_from([*"hkicrsnzpl", "x"]), forged_field),
    argument=st.sampled_from(["after", "before"]),
    flavour=st.sampled_from(["cursor", "token", "plain"]),
)
def test_any_signed_payload_is_read_or_refused_before_a_request(payload, argument, flavour):
    """A cursor signed with the secret but written by hand (any JSON in any field) is
    a BAD_USER_INPUT naming its argument and sends nothing, or sends only handles and
    positions the API recognises; never another error."""
    up = Strict(30, 10, has_previous=flavour == "cursor", can_reverse=flavour != "plain")
    cursor = CODEC.encode(BINDING, payload)
    args = (
        ConnectionArgs(first=3, after=cursor)
        if argument == "after"
        else ConnectionArgs(last=3, before=cursor)
    )
    refusal: BadUserInput | None = None
    try:
        run(up, args)
    except BadUserInput as error:
        refusal = error
    except (Unsupported, Refused):
        pass  # the provider cannot go that way, or the upstream refused a well-formed position
    if refusal is not None:
        assert refusal.argument == argument
        assert up.requests == []
    for handle, position, _ in up.requests:
        assert up.valid_handle(handle)
        assert position is None or up.valid_position(position)


@dataclass
class Blocks:
    """Block mode: the upstream's blocks cached as a data source does, and their chain."""

    up: Upstream
    block: int
    cached: dict[tuple[str, str | None, int], SeqPage[int]] = field(default_factory=dict)
    links: dict[Any, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.max_request_size = self.block
        self.has_previous = self.up.has_previous
        self.can_reverse = self.up.can_reverse
        self.key, self.open = self.up.key, self.up.open
        self.valid_handle, self.valid_position = self.up.valid_handle, self.up.valid_position

    async def fetch(self, handle: str, position: str | None, limit: int) -> SeqPage[int]:
        assert limit == self.block, "block mode reads whole blocks only"
        if (handle, position, limit) not in self.cached:
            self.cached[handle, position, limit] = await self.up.fetch(handle, position, limit)
        return self.cached[handle, position, limit]

    def run(self, args: ConnectionArgs) -> ConnectionSlice[int]:
        return asyncio.run(
            paginate_sequential(
                check_args(args, LIMITS),
                api=self,
                codec=CODEC,
                binding=BINDING,
                provider="sim",
                block_size=self.block,
                chain=BlockChain(self.links),
            )
        )


@settings(max_examples=300)
@given(
    total=st.integers(min_value=0, max_value=2500),
    block=st.one_of(st.just(100), st.integers(min_value=1, max_value=100)),
    flavour=st.sampled_from(["cursor", "token"]),
    steps=st.lists(step, min_size=1, max_size=8),
)
def test_block_windows_are_exact_slices_and_cost_at_most_their_blocks(total, block, flavour, steps):
    up = Upstream(total, block, has_previous=flavour == "cursor", can_reverse=True)
    blocks = Blocks(up, block)
    edges_seen: list[str] = []
    for kind, n, pick, r in steps:
        cursor = other = None
        if edges_seen:
            cursor = {"start": edges_seen[0], "end": edges_seen[-1]}.get(pick) or edges_seen[
                r % len(edges_seen)
            ]
            other = edges_seen[(r // 7) % len(edges_seen)]
            if (item(other) or 0) < (item(cursor) or 0):
                cursor, other = other, cursor
        args = {
            "first": ConnectionArgs(first=n),
            "last": ConnectionArgs(last=n),
            "first_after": ConnectionArgs(first=n, after=cursor),
            "last_before": ConnectionArgs(last=n, before=cursor),
            "after": ConnectionArgs(after=cursor),
            "before": ConnectionArgs(before=cursor),
            "between": ConnectionArgs(first=n, after=cursor, before=other),
            "last_between": ConnectionArgs(last=n, after=cursor, before=other),
        }[kind]
        effective = check_args(args, LIMITS)
        up.requests.clear()
        cached_before = set(blocks.cached)
        result = blocks.run(args)
        after, before = item(effective.after), item(effective.before)
        want, has_previous, has_next = expected(total, effective, after, before)
        assert [e.node for e in result.edges] == want
        assert [item(e.cursor) for e in result.edges] == want
        assert result.page_info.has_previous_page is has_previous
        assert result.page_info.has_next_page is has_next
        # No block read twice; at most the blocks the window spans, plus two to find
        # where it starts (a cursor's own block, a neighbour telling whether more follow).
        assert all(limit == block for _, _, limit in up.requests)
        assert not set(up.requests) & cached_before
        size = effective.first if effective.first is not None else effective.last or 0
        assert len(up.requests) <= -(-size // block) + 2
        # The same window again costs nothing: its blocks are cached.
        up.requests.clear()
        again = blocks.run(args)
        assert [e.node for e in again.edges] == want
        assert up.requests == []
        if result.edges:
            edges_seen = [e.cursor for e in result.edges]


@pytest.mark.parametrize("flavour", ["cursor", "token"])
def test_block_walks_read_each_block_once(flavour):
    up = Upstream(1000, 100, has_previous=flavour == "cursor", can_reverse=True)
    blocks = Blocks(up, 100)

    def fetch(paging: Paging) -> Page:
        return relay_page(blocks.run(ConnectionArgs(**paging)))

    assert walk(fetch, 37).nodes == list(range(1000))
    assert len(up.requests) == 10  # one per block
    assert walk(fetch, 23, forward=False).nodes == list(range(1000))
    assert len(up.requests) == 10  # backward from the end: the chain of cached blocks
    assert up.opened == [(False, None)] * len(up.opened)
