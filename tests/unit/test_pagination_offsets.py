"""Property tests of the Relay engine over offset-addressable APIs.

A simulated upstream holds a list of random size; random sequences of
`first/after/last/before` (cursors taken from earlier answers) must give
exactly the slice of the full list the Relay spec defines, the spec's
`pageInfo`, and cost the fewest upstream requests, computed here by a
breadth-first search that knows nothing of the engine's greedy planner.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import BadUserInput
from gateway.pagination.connection import ConnectionArgs, ConnectionSlice, PageLimits, check_args
from gateway.pagination.cursors import CursorCodec, binding_key
from gateway.pagination.offset import OffsetPage, cover, paginate_offsets
from tests.support.relay_spec import expected
from tests.support.walk import Page, Paging, relay_page, walk

LIMITS = PageLimits(default_size=20, max_size=100)
CODEC = CursorCodec(b"test-secret")
BINDING = binding_key("revyops", "contact", None, None)


@dataclass
class Upstream:
    """A page-number (aligned) or index-range API over `size` rows."""

    size: int
    max_page: int
    aligned: bool
    requests: list[tuple[int, int]] = field(default_factory=list)

    async def fetch(self, offset: int, size: int) -> OffsetPage[int]:
        assert 1 <= size <= self.max_page, f"page size {size} outside 1..{self.max_page}"
        if self.aligned:
            assert offset % size == 0, f"offset {offset} not aligned to page size {size}"
        self.requests.append((offset, size))
        return OffsetPage(offset, list(range(self.size))[offset : offset + size], self.size)


def fewest_requests(lo: int, hi: int, max_page: int, aligned: bool) -> int:
    """Breadth-first search over every page the API allows: fewest covering [lo, hi)."""
    return cheapest_cover(lo, hi, max_page, aligned)[0]


def cheapest_cover(lo: int, hi: int, max_page: int, aligned: bool) -> tuple[int, int]:
    """Fewest pages covering [lo, hi), and the furthest row end such a cover can reach."""
    if hi <= lo:
        return 0, lo
    if not aligned:
        count = -(-(hi - lo) // max_page)
        return count, lo + count * max_page
    frontier, depth, seen = {lo}, 0, {lo}
    while frontier:
        depth += 1
        reached = set()
        for position in frontier:
            for size in range(1, max_page + 1):
                reach = position // size * size + size
                if reach not in seen:
                    seen.add(reach)
                    reached.add(reach)
        if max(reached, default=lo) >= hi:
            return depth, max(reached)
        frontier = reached
    raise AssertionError("unreachable")


def minimum_requests(
    total: int, args: ConnectionArgs, after: int | None, before: int | None, up: Upstream
) -> int:
    start = after + 1 if after is not None else 0
    if before is not None or args.first is not None:
        reach = None if args.first is None else start + args.first
        hi = min(e for e in (before, reach) if e is not None)
        lo = max(start, hi - args.last) if args.last is not None and reach is None else start
        # One request at least: the total must be learnt even for an empty window.
        return max(1, fewest_requests(lo, min(hi, total), up.max_page, up.aligned))
    # `last` from the end: read `last` rows from the cursor (learning the total), then the rest.
    assert args.last is not None
    first_read, reach = cheapest_cover(
        start, min(start + args.last, total), up.max_page, up.aligned
    )
    first_read = max(1, first_read)
    # Rows the first read brought beyond what it needed are not read again.
    rest_lo = max(start + args.last, total - args.last, reach)
    return first_read + fewest_requests(rest_lo, total, up.max_page, up.aligned)


def position(cursor: str | None) -> int | None:
    return None if cursor is None else CODEC.decode(cursor, BINDING, "x")["o"]


def run(up: Upstream, args: ConnectionArgs) -> ConnectionSlice[int]:
    return asyncio.run(
        paginate_offsets(
            check_args(args, LIMITS),
            fetch=up.fetch,
            codec=CODEC,
            binding=BINDING,
            max_request_size=up.max_page,
            aligned=up.aligned,
        )
    )


count = st.integers(min_value=0, max_value=LIMITS.max_size)
step = st.tuples(
    st.sampled_from(["first", "last", "first_after", "last_before", "after", "before", "both"]),
    count,
    count,
    st.sampled_from(["start", "end", "random"]),
    st.integers(min_value=0, max_value=10_000),
)


@settings(max_examples=300)
@given(
    total=st.integers(min_value=0, max_value=2500),
    max_page=st.one_of(st.just(100), st.integers(min_value=1, max_value=100)),
    aligned=st.booleans(),
    steps=st.lists(step, min_size=1, max_size=6),
)
def test_windows_are_exact_slices_with_fewest_requests(total, max_page, aligned, steps):
    up = Upstream(total, max_page, aligned)
    edges_seen: list[str] = []
    for kind, n, m, pick, r in steps:
        cursor = None
        if edges_seen:
            cursor = {"start": edges_seen[0], "end": edges_seen[-1]}.get(pick) or edges_seen[
                r % len(edges_seen)
            ]
        args = {
            "first": ConnectionArgs(first=n),
            "last": ConnectionArgs(last=n),
            "first_after": ConnectionArgs(first=n, after=cursor),
            "last_before": ConnectionArgs(last=n, before=cursor),
            "after": ConnectionArgs(after=cursor),
            "before": ConnectionArgs(before=cursor),
            "both": ConnectionArgs(first=n, last=m, after=cursor),
        }[kind]
        effective = check_args(args, LIMITS)
        up.requests.clear()
        result = run(up, args)
        after, before = position(effective.after), position(effective.before)
        want, has_previous, has_next = expected(total, effective, after, before)
        assert [e.node for e in result.edges] == want
        assert [position(e.cursor) for e in result.edges] == want
        assert result.page_info.has_previous_page is has_previous
        assert result.page_info.has_next_page is has_next
        assert result.page_info.start_cursor == (result.edges[0].cursor if want else None)
        assert result.page_info.end_cursor == (result.edges[-1].cursor if want else None)
        assert result.total_count == total
        assert len(up.requests) == minimum_requests(total, effective, after, before, up)
        if result.edges:
            edges_seen = [e.cursor for e in result.edges]


@settings(max_examples=200)
@given(
    start=st.integers(min_value=0, max_value=3000),
    length=st.integers(min_value=1, max_value=300),
    max_page=st.integers(min_value=1, max_value=100),
    aligned=st.booleans(),
)
def test_cover_is_minimal_and_covers(start, length, max_page, aligned):
    plan = cover(start, start + length, max_page, aligned=aligned)
    rows: set[int] = set()
    for offset, size in plan:
        assert 1 <= size <= max_page
        assert not aligned or offset % size == 0
        rows.update(range(offset, offset + size))
    assert set(range(start, start + length)) <= rows
    assert len(plan) == fewest_requests(start, start + length, max_page, aligned)


def test_walk_forward_and_backward_visits_every_row_once():
    up = Upstream(1000, 100, aligned=True)

    def fetch(paging: Paging) -> Page:
        return relay_page(run(up, ConnectionArgs(**paging)))

    assert walk(fetch, 37).nodes == list(range(1000))
    assert walk(fetch, 23, forward=False).nodes == list(range(1000))


@pytest.mark.parametrize("argument", ["after", "before"])
@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "",
        "bm90LWEtY3Vyc29y",
        CODEC.encode(BINDING, {"o": 3})[:-2] + "AA",
        CODEC.encode(binding_key("basicsos", "contact", None, None), {"o": 3}),
        CursorCodec(b"other-secret").encode(BINDING, {"o": 3}),
        CODEC.encode(BINDING, {"o": "three"}),
        CODEC.encode(BINDING, {"o": -4}),
    ],
)
def test_bad_cursors_name_their_argument(argument, cursor):
    up = Upstream(50, 100, aligned=True)
    with pytest.raises(BadUserInput) as caught:
        run(up, ConnectionArgs(first=5, **{argument: cursor}))
    assert caught.value.argument == argument
    assert argument in caught.value.message
    assert up.requests == []


@dataclass
class Blocks:
    """Block mode: the engine asks whole aligned blocks, cached here as a data source does."""

    up: Upstream
    cached: dict[tuple[int, int], OffsetPage[int]] = field(default_factory=dict)

    async def fetch(self, offset: int, size: int) -> OffsetPage[int]:
        if (offset, size) not in self.cached:
            self.cached[offset, size] = await self.up.fetch(offset, size)
        return self.cached[offset, size]

    def run(self, args: ConnectionArgs, block: int) -> ConnectionSlice[int]:
        return asyncio.run(
            paginate_offsets(
                check_args(args, LIMITS),
                fetch=self.fetch,
                codec=CODEC,
                binding=BINDING,
                max_request_size=self.up.max_page,
                aligned=self.up.aligned,
                block_size=block,
            )
        )


@settings(max_examples=300)
@given(
    total=st.integers(min_value=0, max_value=2500),
    block=st.one_of(st.just(100), st.integers(min_value=1, max_value=100)),
    aligned=st.booleans(),
    steps=st.lists(step, min_size=1, max_size=8),
)
def test_block_windows_are_exact_slices_and_cost_at_most_their_blocks(total, block, aligned, steps):
    up = Upstream(total, block, aligned)
    blocks = Blocks(up)
    edges_seen: list[str] = []
    for kind, n, m, pick, r in steps:
        cursor = None
        if edges_seen:
            cursor = {"start": edges_seen[0], "end": edges_seen[-1]}.get(pick) or edges_seen[
                r % len(edges_seen)
            ]
        args = {
            "first": ConnectionArgs(first=n),
            "last": ConnectionArgs(last=n),
            "first_after": ConnectionArgs(first=n, after=cursor),
            "last_before": ConnectionArgs(last=n, before=cursor),
            "after": ConnectionArgs(after=cursor),
            "before": ConnectionArgs(before=cursor),
            "both": ConnectionArgs(first=n, last=m, after=cursor),
        }[kind]
        effective = check_args(args, LIMITS)
        up.requests.clear()
        cached_before = set(blocks.cached)
        result = blocks.run(args, block)
        after, before = position(effective.after), position(effective.before)
        want, has_previous, has_next = expected(total, effective, after, before)
        assert [e.node for e in result.edges] == want
        assert [position(e.cursor) for e in result.edges] == want
        assert result.page_info.has_previous_page is has_previous
        assert result.page_info.has_next_page is has_next
        assert result.total_count == total
        # Only whole aligned blocks, none read twice, and at most the window's blocks
        # plus the one that tells the total.
        assert all(offset % block == 0 and size == block for offset, size in up.requests)
        assert not set(up.requests) & cached_before
        spanned = {(i // block * block, block) for i in want}
        assert len(up.requests) <= len(spanned) + 1
        assert len(up.requests) <= len(spanned - cached_before) + 1
        if spanned and spanned <= cached_before and kind not in ("last", "both"):
            assert up.requests == []  # a window inside cached blocks costs nothing
        # The same window again: every block it needs is cached.
        up.requests.clear()
        assert blocks.run(args, block) == result
        assert up.requests == []
        if result.edges:
            edges_seen = [e.cursor for e in result.edges]


def test_block_walks_cost_each_block_once():
    up = Upstream(1000, 100, aligned=True)
    blocks = Blocks(up)

    def fetch(paging: Paging) -> Page:
        return relay_page(blocks.run(ConnectionArgs(**paging), 100))

    assert walk(fetch, 37).nodes == list(range(1000))
    assert sorted(up.requests) == [(k * 100, 100) for k in range(10)]
    assert walk(fetch, 23, forward=False).nodes == list(range(1000))
    assert len(up.requests) == 10  # backward: all from cached blocks
