"""Lists read forward from opaque positions (cursors, page tokens): the API's shape,
where an edge sits, and which block precedes which.

Such an API reads a list forward from a position it handed out (`next`), and
cursor APIs also hand out `previous`, the position `limit` items back. The
gateway cursor stores the position its page was read from and the index in
that page, so any forward window costs exactly the pages it spans. Backward
windows step back with `previous`, else read the list the other way from the
edge's key (a reversed sort or a keyset query), which the API opens as
another list: a *handle*.

A cursor is signed, but whoever holds the secret can write one, so what it
holds is checked before use: the API must recognise the handle as one of its
own small tokens (never request parameters) and the positions as its own
cursors or tokens; anything else is a BAD_USER_INPUT naming the argument and
no request goes out. Requests are built from the validated query; a position
travels only as the value of its own parameter.
"""

from __future__ import annotations

from collections.abc import Hashable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from gateway.errors import BadUserInput
from gateway.pagination.cursors import CursorCodec

T = TypeVar("T")

# Keys are record ids: short and printable.
_MAX_KEY = 256


@dataclass(frozen=True)
class SeqPage(Generic[T]):
    """One upstream page read from a position with some `limit`.

    `next`: where the following page starts, None when the list ends here.
    `previous`: the position `limit` items before this page (clamped to the
    list start), None when this page starts the list; only APIs with
    `has_previous` fill it.
    """

    items: Sequence[T]
    next: str | None
    previous: str | None = None


class SequentialAPI(Protocol[T]):
    """An upstream list addressed by opaque positions, as a data source exposes it."""

    max_request_size: int
    has_previous: bool  # pages carry `previous` positions
    can_reverse: bool  # `open(reverse, after_key)` works for both directions and any key

    def key(self, item: T) -> str:
        """The record's id, unique in the list."""
        ...

    def valid_handle(self, handle: str) -> bool:
        """Whether `handle` is one `open` can return (a cursor's handle is checked with it)."""
        ...

    def valid_position(self, position: str) -> bool:
        """Whether `position` has the form of the API's own cursors or page tokens."""
        ...

    async def open(self, reverse: bool, after_key: str | None) -> str:
        """A handle on the list in forward or reverse order, starting after `after_key`."""
        ...

    async def fetch(self, handle: str, position: str | None, limit: int) -> SeqPage[T]:
        """Up to `limit` items of list `handle` from `position` (None: its start)."""
        ...


@dataclass(frozen=True)
class Pos:
    """Where an edge sits.

    `h`: the list handle, `r`: whether it runs in reverse, `s`: whether it is a
    keyset slice (so items precede its start); `c`: the position its page was
    read from (None: the list start), `i`: its index in that page, `k`: its key.
    On a page's last edge `n` is the next position, or `z` marks the list end;
    on a first edge `p` is the page's `previous` for limit `l`.
    """

    h: str
    k: str
    i: int = 0
    c: str | None = None
    r: bool = False
    s: bool = False
    n: str | None = None
    z: bool = False
    p: str | None = None
    l: int | None = None  # noqa: E741

    def encode(self, codec: CursorCodec, binding: str) -> str:
        defaults = Pos(h="", k="")
        data = {
            name: value
            for name, value in self.__dict__.items()
            if name in ("h", "k") or value != getattr(defaults, name)
        }
        return codec.encode(binding, data)

    @classmethod
    def decode(
        cls,
        codec: CursorCodec,
        cursor: str | None,
        binding: str,
        argument: str,
        api: SequentialAPI[Any],
    ) -> Pos | None:
        if cursor is None:
            return None
        data = codec.decode(cursor, binding, argument)
        try:
            pos = cls(**data)
        except TypeError:
            pos = None
        if pos is None or not pos._valid(api):
            raise BadUserInput(f"`{argument}` is not a cursor of this list.", argument=argument)
        return pos

    def _valid(self, api: SequentialAPI[Any]) -> bool:
        """Whether every field has its type and the API recognises the handle and positions."""
        positions = [p for p in (self.c, self.n, self.p) if p is not None]
        return (
            isinstance(self.h, str)
            and api.valid_handle(self.h)
            and isinstance(self.k, str)
            and 0 < len(self.k) <= _MAX_KEY
            and self.k.isprintable()
            and type(self.i) is int
            and 0 <= self.i < api.max_request_size
            and all(isinstance(p, str) and api.valid_position(p) for p in positions)
            and all(type(flag) is bool for flag in (self.r, self.s, self.z))
            and (self.l is None or (type(self.l) is int and 0 < self.l <= api.max_request_size))
        )

    @property
    def starts_list(self) -> bool:
        """Whether nothing precedes this edge in its list."""
        return self.i == 0 and self.c is None and not self.s


Items = list[tuple[Pos, T]]

UNKNOWN = object()


class BlockChain:
    """What block reads learnt about a list's order: which block precedes which.

    In block mode every page is a block of the same size read from a position,
    so the block whose `next` is P is the one before the block at P: reading
    backward then costs only blocks not yet cached. The block that ends the list
    is remembered too, so `last` alone continues from a list read forward.
    `store` is shared and bounded (a TTL cache); `prefix` names the list.
    """

    def __init__(self, store: MutableMapping[Hashable, Any], prefix: Hashable = ()) -> None:
        self._store = store
        self._prefix = prefix

    def link(self, handle: str, start: str | None, following: str) -> None:
        """The block of `handle` at `start` is followed by the one at `following`."""
        self._store[(self._prefix, handle, following)] = start

    def before(self, handle: str, start: str | None) -> Any:
        """Where the block before the one at `start` starts, or `UNKNOWN`."""
        return self._store.get((self._prefix, handle, start), UNKNOWN)

    def set_end(self, handle: str, start: str | None) -> None:
        self._store[(self._prefix, "end")] = (handle, start)

    def end(self) -> tuple[str, str | None] | None:
        """The forward list's handle and where its last block starts, if known."""
        value = self._store.get((self._prefix, "end"))
        return value if isinstance(value, tuple) else None
