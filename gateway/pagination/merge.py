"""Lists across providers: one Relay connection cut from several providers' own windows.

Each provider is a lane: its list, in its own order, read only through its own Relay
windows (`first/after`, `last/before` with its own cursors). The merged list is the lanes'
lists in one total order: without a key, lane after lane (concatenation); with one, a k-way
merge by (key, lane position, the lane's own order). Because each lane's list is already in
that order, every prefix of the merged list is a prefix of each lane: a merged cursor holds,
per lane, where that prefix ends, as one of

    "s"        nothing of the lane consumed yet (its whole list lies after the edge),
    "e"        all of it consumed (its whole list lies before the edge, or it is empty),
    [a, b]     consumed through the lane's edge `a`; `b` is the lane's next edge,

plus the edge's own lane and lane cursor, and whether the edge starts or ends the merged
list (so `hasPreviousPage` after `after`, `hasNextPage` before `before`, cost nothing).
Elements after a merged edge are, per lane, those after `a` (all for "s", none for "e");
elements before it those before `b` (none for "s", all for "e"), and before the edge
itself in its own lane. A window of n reads n + 1 elements toward its far end (to tell
whether more lie there), from every lane when keyed, lane by lane as needed when not.

Nothing here knows GraphQL or a provider: lanes are plain callables.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from gateway.errors import BadUserInput, Unsupported
from gateway.pagination.connection import ConnectionArgs, ConnectionSlice, Edge, PageInfo
from gateway.pagination.cursors import CursorCodec
from gateway.pagination.offset import paginate_list

T = TypeVar("T")

START = "s"
END = "e"
State = Any  # START, END or [a, b] (a JSON value inside a signed cursor)


@dataclass(frozen=True)
class Lane(Generic[T]):
    """One provider's list: a window of it, and its total (None: the provider cannot tell)."""

    name: str
    read: Callable[[ConnectionArgs], Awaitable[ConnectionSlice[T]]]
    count: Callable[[], Awaitable[int | None]]


@dataclass(frozen=True)
class _Cursor:
    lane: int
    own: str  # the lane's cursor of the edge
    states: list[State]
    first: bool  # the edge starts the merged list
    last: bool  # the edge ends it

    def encode(self, codec: CursorCodec, binding: str) -> str:
        # The lanes' cursors are kept as their bindings and positions, unsigned: this
        # cursor's own signature covers them, and a cursor inside a cursor would not fit
        # the gateway's bound on argument length.
        bindings: list[str | None] = [None] * len(self.states)

        def pack(lane: int, cursor: str) -> Any:
            bindings[lane], position = codec.open(cursor, "cursor")
            return position

        states = [
            s if s in (START, END) else [pack(i, s[0]), pack(i, s[1])]
            for i, s in enumerate(self.states)
        ]
        mine = self.states[self.lane]
        own = (
            None if mine not in (START, END) and mine[0] == self.own else pack(self.lane, self.own)
        )
        # Texts several positions hold (a block's start, the next one's token) go once.
        texts = _shared([p for s in states if s not in (START, END) for p in s] + [own or {}])
        states = [s if s in (START, END) else [_refer(p, texts) for p in s] for s in states]
        own = None if own is None else _refer(own, texts)
        position = {"l": self.lane, "k": bindings, "s": states, "c": own, "t": texts}
        return codec.encode(binding, {**position, "f": self.first, "z": self.last})

    @classmethod
    def decode(
        cls, codec: CursorCodec, value: str | None, binding: str, argument: str, lanes: int
    ) -> _Cursor | None:
        if value is None:
            return None
        p = _resolved(codec.decode(value, binding, argument), argument)
        lane, bindings, states = p.get("l"), p.get("k"), p.get("s")
        if not (
            isinstance(lane, int)
            and 0 <= lane < lanes
            and isinstance(bindings, list)
            and isinstance(states, list)
            and len(states) == len(bindings) == lanes
            and all(_valid_state(s, b) for s, b in zip(states, bindings, strict=True))
            and (
                (isinstance(p.get("c"), dict) and isinstance(bindings[lane], str))
                or states[lane] not in (START, END)
            )
        ):
            raise BadUserInput(f"`{argument}` is not a merged list's cursor.", argument=argument)

        def unpack(lane: int, position: dict[str, Any]) -> str:
            return codec.encode(bindings[lane], position)

        full = [
            s if s in (START, END) else [unpack(i, s[0]), unpack(i, s[1])]
            for i, s in enumerate(states)
        ]
        own = unpack(lane, p["c"]) if isinstance(p.get("c"), dict) else full[lane][0]
        return cls(lane, own, full, bool(p.get("f")), bool(p.get("z")))


def _shared(positions: list[dict[str, Any]]) -> list[str]:
    """The texts (longer than a reference) more than once in `positions`."""
    counts = Counter(v for p in positions for v in p.values() if isinstance(v, str) and len(v) > 4)
    return [text for text, n in counts.items() if n > 1]


def _refer(position: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    """`position` with each of `texts` it holds written as [its index]."""
    index = {text: i for i, text in enumerate(texts)}
    return {k: [index[v]] if isinstance(v, str) and v in index else v for k, v in position.items()}


def _resolved(p: dict[str, Any], argument: str) -> dict[str, Any]:
    """A merged cursor's position with its references to shared texts (`t`) written out."""
    texts = p.get("t", [])

    def text(value: Any) -> Any:
        if not isinstance(value, list):
            return value
        if not (len(value) == 1 and type(value[0]) is int and 0 <= value[0] < len(texts)):
            raise BadUserInput(f"`{argument}` is not a merged list's cursor.", argument=argument)
        return texts[value[0]]

    def written(position: Any) -> Any:
        return {k: text(v) for k, v in position.items()} if isinstance(position, dict) else position

    if not (isinstance(texts, list) and all(isinstance(t, str) for t in texts)):
        raise BadUserInput(f"`{argument}` is not a merged list's cursor.", argument=argument)
    states = p.get("s")
    if isinstance(states, list):
        states = [[written(x) for x in s] if isinstance(s, list) else s for s in states]
    return {**p, "s": states, "c": written(p.get("c"))}


def _valid_state(state: Any, binding: Any) -> bool:
    if state in (START, END):
        return True
    return (
        isinstance(binding, str)
        and isinstance(state, list)
        and len(state) == 2
        and all(isinstance(x, dict) for x in state)
    )


@dataclass(frozen=True)
class _Bounds:
    """Where a lane's part of the window lies: read it or not, and the lane cursors."""

    read: bool
    after: str | None
    before: str | None


def _bounds(lane: int, after: _Cursor | None, before: _Cursor | None) -> _Bounds:
    lo: str | None = None
    hi: str | None = None
    if after is not None:
        state = after.states[lane]
        if state == END:
            return _Bounds(False, None, None)
        lo = None if state == START else state[0]
    if before is not None:
        state = before.states[lane]
        if lane == before.lane:
            hi = before.own
        elif state == START:
            return _Bounds(False, None, None)
        elif state != END:
            hi = state[1]
    return _Bounds(True, lo, hi)


@dataclass
class _Run(Generic[T]):
    """What a window read of one lane: its edges in lane order."""

    edges: list[Edge[T]]
    bounds: _Bounds
    read: bool


class Merge(Generic[T]):
    """One merged connection: lanes, the key of the total order (None: concatenation),
    and the codec and binding its cursors are signed with."""

    def __init__(
        self,
        lanes: Sequence[Lane[T]],
        key: Callable[[T], Any] | None,
        codec: CursorCodec,
        binding: str,
    ) -> None:
        self.lanes = list(lanes)
        self.key = key
        self.codec = codec
        self.binding = binding

    async def window(self, args: ConnectionArgs) -> ConnectionSlice[T]:
        """The window `args` (already checked) of the merged list."""
        n = len(self.lanes)
        after = _Cursor.decode(self.codec, args.after, self.binding, "after", n)
        before = _Cursor.decode(self.codec, args.before, self.binding, "before", n)
        forward = args.first is not None
        size = max(args.first or 0, args.last or 0) + 1
        runs = await self._read(after, before, forward, size)
        merged = self._merge(runs)
        if forward:
            span = merged[:size]
            assert args.first is not None
            window = list(range(min(len(span), args.first)))
            if args.last is not None:
                window = window[max(0, len(window) - args.last) :]
                has_previous = len(span) > args.last
            else:
                has_previous = after is not None and not after.first
            has_next = len(span) > args.first
        else:
            span = merged[max(0, len(merged) - size) :]
            assert args.last is not None
            window = list(range(max(0, len(span) - args.last), len(span)))
            has_previous = len(span) > args.last
            has_next = before is not None and not before.last
        offset = 0 if forward else len(merged) - len(span)
        consumed = _consumed(merged, len(runs))
        edges = [
            self._edge(span, i, runs, consumed[offset + i], after, before, forward, size)
            for i in window
        ]
        info = PageInfo(
            has_next_page=has_next,
            has_previous_page=has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )
        return ConnectionSlice(edges=edges, page_info=info, total_count=None, count=self._count)

    async def _count(self) -> int | None:
        counts = await asyncio.gather(*(lane.count() for lane in self.lanes))
        return None if any(c is None for c in counts) else sum(c or 0 for c in counts)

    # --- reading ---------------------------------------------------------------------------

    async def _read_lane(self, lane: int, bounds: _Bounds, forward: bool, size: int) -> _Run[T]:
        if not bounds.read or size <= 0:
            return _Run([], bounds, bounds.read and size > 0)
        if forward:
            args = ConnectionArgs(first=size, after=bounds.after, before=bounds.before)
        else:
            args = ConnectionArgs(last=size, after=bounds.after, before=bounds.before)
        window = await self.lanes[lane].read(args)
        return _Run(list(window.edges), bounds, True)

    async def _read(
        self, after: _Cursor | None, before: _Cursor | None, forward: bool, size: int
    ) -> list[_Run[T]]:
        bounds = [_bounds(i, after, before) for i in range(len(self.lanes))]
        if self.key is not None:
            # Any lane may hold the next smallest key: each reads its n + 1.
            return list(
                await asyncio.gather(
                    *(self._read_lane(i, b, forward, size) for i, b in enumerate(bounds))
                )
            )
        # One lane after another: a lane is read only while the window still needs it.
        runs: list[_Run[T]] = [_Run([], b, False) for b in bounds]
        order = range(len(self.lanes)) if forward else range(len(self.lanes) - 1, -1, -1)
        have = 0
        for i in order:
            if have >= size:
                break
            runs[i] = await self._read_lane(i, bounds[i], forward, size - have)
            have += len(runs[i].edges)
        return runs

    def _merge(self, runs: list[_Run[T]]) -> list[tuple[int, int]]:
        """(lane, index in its run) of every element read, in the total order."""
        tagged = [[(lane, i) for i in range(len(run.edges))] for lane, run in enumerate(runs)]
        key = self.key
        if key is None:
            return [item for run in tagged for item in run]
        return list(
            heapq.merge(*tagged, key=lambda item: (key(runs[item[0]].edges[item[1]].node), item[0]))
        )

    # --- edges -----------------------------------------------------------------------------

    def _edge(
        self,
        span: list[tuple[int, int]],
        at: int,
        runs: list[_Run[T]],
        consumed: list[int],
        after: _Cursor | None,
        before: _Cursor | None,
        forward: bool,
        size: int,
    ) -> Edge[T]:
        lane, index = span[at]
        states = [
            self._state(k, run, consumed[k], after, before, forward) for k, run in enumerate(runs)
        ]
        if forward:
            first = after is None and at == 0
            last = before is None and at == len(span) - 1 and len(span) < size
        else:
            first = after is None and at == 0 and len(span) < size
            last = before is None and at == len(span) - 1
        edge = runs[lane].edges[index]
        cursor = _Cursor(lane, edge.cursor, states, first, last)
        return Edge(cursor.encode(self.codec, self.binding), edge.node)

    @staticmethod
    def _state(
        lane: int,
        run: _Run[T],
        consumed: int,
        after: _Cursor | None,
        before: _Cursor | None,
        forward: bool,
    ) -> State:
        if not run.read and not forward and run.bounds.read:
            # Not reached going backward (concatenation): lies wholly before the window.
            return before.states[lane] if before is not None else END
        if consumed == 0:
            return after.states[lane] if after is not None else START
        edges = run.edges
        if consumed < len(edges):
            return [edges[consumed - 1].cursor, edges[consumed].cursor]
        following = run.bounds.before
        return END if following is None else [edges[-1].cursor, following]


def _consumed(merged: list[tuple[int, int]], lanes: int) -> list[list[int]]:
    """Per element of `merged`: how many of each lane's elements lie at or before it."""
    counts = [0] * lanes
    out = []
    for lane, index in merged:
        counts[lane] = index + 1
        out.append(list(counts))
    return out


# --- a lane read whole ------------------------------------------------------------------


def whole_lane(
    name: str,
    read: Callable[[ConnectionArgs], Awaitable[ConnectionSlice[T]]],
    key: Callable[[T], Any],
    *,
    limit: int,
    page: int,
    codec: CursorCodec,
    binding: str,
    what: str,
) -> Lane[T]:
    """A lane whose provider cannot give the merged order: its whole list, read in its own
    windows of `page` (cached blocks, shared with its single lists), sorted by `key` (stable:
    ties keep the provider's order). Its cursors are offsets into the sorted list. A list
    over `limit` records is UNSUPPORTED (`what` says why it would be read whole)."""

    held: list[list[T]] = []  # read once per lane (a lane lives for one window)

    async def records() -> list[T]:
        if not held:
            held.append(await read_all())
        return held[0]

    async def read_all() -> list[T]:
        items: list[T] = []
        after = None
        while True:
            window = await read(ConnectionArgs(first=page, after=after))
            items += [edge.node for edge in window.edges]
            known = window.total_count
            if len(items) > limit or (known is not None and known > limit):
                raise Unsupported(
                    f"{what}, and its list holds more than {limit} records to sort itself "
                    "(`merge_whole_max`); filter the list, order it otherwise, or leave "
                    "that provider out.",
                    provider=name,
                )
            if not window.page_info.has_next_page:
                return sorted(items, key=key)
            after = window.page_info.end_cursor

    async def lane_read(args: ConnectionArgs) -> ConnectionSlice[T]:
        items = await records()

        return await paginate_list(args, items, codec=codec, binding=binding)

    async def count() -> int | None:
        return len(await records())

    return Lane(name, lane_read, count)


# --- the total order's key ---------------------------------------------------------------


class _Descending:
    """A value compared the other way round."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and bool(self.value == other.value)

    def __hash__(self) -> int:
        return hash(self.value)


def _comparable(value: Any, casefold: bool) -> Any:
    if isinstance(value, str) and casefold:
        return value.lower()
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # providers that send no offset mean UTC
    return value


def order_key(
    sorts: Sequence[tuple[str, bool]],
    value_of: Callable[[T, str], Any],
    casefold: bool,
) -> Callable[[T], Any]:
    """The key of the total order for `sorts` ((field, descending), most significant first):
    nulls after every value ascending, before every value descending (nulls are the
    largest); text compared lowercased when `casefold`."""

    def key(item: T) -> tuple[Any, ...]:
        parts: list[Any] = []
        for field, descending in sorts:
            value = value_of(item, field)
            if value is None:
                parts.append((0,) if descending else (1,))
                continue
            value = _comparable(value, casefold)
            parts.append((1, _Descending(value)) if descending else (0, value))
        return tuple(parts)

    return key
