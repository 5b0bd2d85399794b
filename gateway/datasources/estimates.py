"""What a data source's reads will cost, in upstream requests: pure, nothing is sent.

`schema.cost` sums these per operation. Each says how many requests a read sends at
most, from what is known before it runs: the arguments, and what the block and
whole-read caches hold (peeked, never counted as hits). Retries of a failed request
and polls of a running Redivis query are not counted (they are waits on the same
request, not part of the plan). Where a number is only known upstream, an estimate
assumes a parent's own child list fits the first page of its read, a record lists at
most ASSUMED_CHILDREN children inline, and links point at records that exist.

`Estimates` holds what every provider's estimates share; a pagination family costs
its own list windows from `shape`, and a provider's hooks (`estimate_lookup`,
`estimate_children`, `estimate_page`...) say where its plan differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from gateway.blocks import BlockCache
from gateway.cache import ReadCache
from gateway.datasources.lookups import Lookups, WholeRead
from gateway.pagination import ConnectionArgs
from gateway.records import CHILD_ENTITY, PARENT_ENTITY, Entity, Link

ASSUMED_CHILDREN = 10
# Ids and parents per loader batch (resolvers.loaders).
BATCH = 100


class Source(Protocol):
    """What the estimates use of their data source."""

    @property
    def entities(self) -> frozenset[Entity]: ...
    @property
    def inline_links(self) -> frozenset[Link]: ...
    @property
    def whole_reads(self) -> Mapping[Entity, int]: ...
    @property
    def whole_page_size(self) -> int: ...
    @property
    def can_count(self) -> bool: ...
    @property
    def wholes(self) -> ReadCache[WholeRead]: ...
    @property
    def blocks(self) -> BlockCache | None: ...
    @property
    def lookups(self) -> Lookups: ...
    @property
    def max_request_size(self) -> int: ...
    def block_size(self, entity: Entity) -> int: ...
    def estimate_lookup(self, entity: Entity, n: int) -> int: ...
    def estimate_children(self, link: Link, n: int) -> int: ...
    def estimate_page(self, entity: Entity, filtered: bool) -> int: ...
    def estimate_count(self, entity: Entity, filtered: bool) -> int: ...


@dataclass(frozen=True)
class ListShape:
    """A window of a list as the estimates see it, before its family's plan."""

    size: int  # records a read asks for: a block, or the largest request
    n: int  # records the window asks for
    blocks: int  # reads its records fill
    spans: int  # reads an unaligned window of them spans (one more)
    page: int  # requests one read costs
    cursors: bool  # whether it starts or ends at a cursor
    total: int  # requests `totalCount` costs beyond the pages


class Estimates:
    """The estimates every data source shares."""

    def __init__(self, source: Source) -> None:
        self.source = source

    def shape(self, entity: Entity, args: ConnectionArgs, filtered: bool, count: bool) -> ListShape:
        """A window of `entity`'s list (`args` already checked), for its family to cost."""
        source = self.source
        size = source.block_size(entity) if source.blocks is not None else source.max_request_size
        n = args.first if args.first is not None else (args.last or 0)
        blocks = max(1, -(-n // size))
        total = source.estimate_count(entity, filtered) if count and source.can_count else 0
        return ListShape(
            size=size,
            n=n,
            blocks=blocks,
            spans=blocks + 1,
            page=source.estimate_page(entity, filtered),
            cursors=args.after is not None or args.before is not None,
            total=total,
        )

    def lookup(self, entity: Entity, n: int) -> int:
        """The default `get_many` for one batch of `n` distinct ids: a whole read where the
        plan takes one, else a GET per id."""
        source = self.source
        if n <= 0 or entity not in source.entities:
            return 0
        if not source.lookups.reads_whole(entity, n):
            return n
        limit = source.whole_reads[entity]
        known = source.lookups.sizes.get(entity)
        complete = known is not None and known <= limit
        if source.wholes.peek(entity) is not None:
            return 0 if complete else n
        # Unknown size: taken to fit the declared limit (a collection past it would add
        # the GETs the plan then falls back to; README, "Cost").
        size = known if complete and known else limit
        return -(-max(size, 1) // source.whole_page_size)

    def lookups(self, entity: Entity, n: int) -> int:
        """`n` distinct ids, in the loaders' batches."""
        lookup = self.source.estimate_lookup
        return sum(lookup(entity, min(BATCH, n - s)) for s in range(0, n, BATCH))

    def inline_children(self, link: Link, n: int) -> int:
        """`Lookups.inline_children`: the parents by id, then their children by id."""
        return self.source.estimate_lookup(PARENT_ENTITY[link], n) + self.lookups(
            CHILD_ENTITY[link], n * ASSUMED_CHILDREN
        )

    def children(self, link: Link, n: int, batching: bool) -> int:
        """`children` of `n` parents over `link`, in the loaders' batches (one call per
        parent without batching)."""
        source = self.source
        inline = link in source.inline_links
        batch = partial(self.inline_children if inline else source.estimate_children, link)
        if not batching:
            return n * batch(1)
        batches = sum(batch(min(BATCH, n - s)) for s in range(0, n, BATCH))
        if not inline:
            return batches
        # Parents that list their children's ids inline look the children up by id instead.
        return max(batches, self.lookups(CHILD_ENTITY[link], n * ASSUMED_CHILDREN))
