"""The core every data source shares: one configured provider instance.

A data source maps one provider API to plain records (`gateway.records`) and knows
no GraphQL. `DataSource` holds what is the same for every provider: its settings,
upstream and caches, the check of a provider class where it is defined, and the entry
points for lists (`connection`, `nested_window` and their estimates). It is composed
with `Reader` (answers read), `Lookups` (records by id, children by parent), `Writer`
(writes) and `Estimates` (what reads cost). Its pagination family, `OffsetSource`
(offset.py) or `SequentialSource` (sequential.py), reads the lists and plans nested
windows. A provider's class derives from its family; what it declares and the hooks it
may implement, with their defaults and the refusals made from its capabilities, are
`ProviderHooks` (hooks.py).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from gateway.blocks import BlockCache
from gateway.cache import ReadCache, fingerprint, identity
from gateway.datasources.estimates import Estimates
from gateway.datasources.hooks import PaginationStyle, ProviderHooks
from gateway.datasources.lookups import Lookups, WholeList, WholeRead
from gateway.datasources.reads import Reader
from gateway.datasources.writes import Writer
from gateway.listquery import Cond, ListQuery, arrange
from gateway.operations import Op as Op
from gateway.pagination import ConnectionArgs, ConnectionSlice, CursorCodec, binding_key
from gateway.pagination.offset import paginate_list
from gateway.records import CHILD_ENTITY, AnyRecord, Entity, Link, field_value
from gateway.settings import ProviderSettings
from gateway.shared import RedisState, SharedCache
from gateway.upstream import STALE_ON, Replicas, build_upstream

# How a provider's `cache_max_bytes` is split between its read caches: blocks hold most.
CACHE_SHARES = {"blocks": 0.5, "responses": 0.25, "wholes": 0.25}
# The pagination family of each style, as the families declare theirs.
FAMILIES: dict[PaginationStyle, type[DataSource]] = {}


@dataclass(frozen=True)
class ListRead:
    """A window of `entity`'s list as `query` says, its cursors bound to `binding`."""

    entity: Entity
    args: ConnectionArgs
    codec: CursorCodec
    binding: str
    query: ListQuery


@dataclass(frozen=True)
class ByParent:
    """A nested window's plan where it reads blocks of the child list filtered by its
    parent (`field` equal to the parent's id) instead of the parent's whole child list;
    `alone`: only for a parent asked alone, where one request serves a batch of parents."""

    field: str
    alone: bool = False


class DataSource(ProviderHooks):
    """One configured provider instance (see the module's docstring).

    A provider derives from its pagination family, whose abstract methods it must
    implement: a class that misses one, or picks the wrong family for its `style`, fails
    where it is defined.
    """

    # A pagination family's styles (set by the families only).
    styles: ClassVar[frozenset[PaginationStyle]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "styles" in cls.__dict__:  # a pagination family
            FAMILIES.update(dict.fromkeys(cls.styles, cls))
            return
        if "kind" not in cls.__dict__:
            return  # another shared base, not a provider
        family = FAMILIES[cls.style]
        if not issubclass(cls, family):
            raise TypeError(f"{cls.__name__}: style {cls.style} needs a {family.__name__}")
        missing = sorted(
            name
            for name in dir(cls)
            if getattr(getattr(cls, name, None), "__isabstractmethod__", False)
        )
        if not hasattr(cls, "credentials_model"):
            missing.append("credentials_model")
        if cls.get is ProviderHooks.get:  # the plain REST read: its paths and conversion
            if not cls.entities <= cls.rest_paths.keys():
                missing.append("rest_paths (or get)")
            if cls.record is ProviderHooks.record and not cls.entities <= cls.converters.keys():
                missing.append("converters (or record)")
        if missing:
            raise TypeError(f"{cls.__name__} does not define {', '.join(missing)}")

    def __init__(
        self,
        settings: ProviderSettings,
        client: httpx.AsyncClient,
        *,
        cache: bool = True,
        blocks: bool = True,
        redis: RedisState | None = None,
        replicas_hint: int = 2,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.options = self.options_model.model_validate(settings.options)
        self.capabilities = self.describe(self.options)
        credentials = settings.resolved_credentials()
        tenant = fingerprint(settings.base_url, credentials)
        # What every cache key of this instance starts with; the tenant alone is the API and
        # credentials, which other instances (another Redivis dataset) may share.
        options = self.options.model_dump(mode="json")
        self.identity = identity(
            settings.name, settings.kind, settings.base_url, options, credentials
        )
        # With Redis, every replica's reads of this tenant share one store (gateway.shared).
        shared = SharedCache(redis, tenant) if redis is not None and cache else None

        def store(name: str, maxsize: int, enabled: bool = cache) -> ReadCache[Any]:
            return self._read_cache(name, maxsize, enabled, shared)

        responses = store("responses", settings.cache_size) if cache else None
        # Whole reads held as parsed records, one per entity; a write clears them.
        self.wholes: ReadCache[WholeRead] = store("wholes", len(Entity))
        # Block reads (off: each window fetched exactly, for comparisons). Without the cache
        # blocks still share identical concurrent reads, but are not kept.
        self.blocks: BlockCache | None = None
        if blocks:
            self.blocks = BlockCache(store("blocks", settings.cache_size), ttl=settings.cache_ttl)
        self.upstream = build_upstream(
            settings,
            client,
            self.error_message,
            windows=self.rate_limits,
            responses=responses,
            derived=(self.wholes, *([self.blocks] if self.blocks else [])),
            shared=shared,
            # Redis away: the replicas cannot see each other's requests, each keeps to its share.
            replicas=Replicas(redis, tenant, replicas_hint) if redis is not None else None,
        )
        self.max_request_size = settings.max_request_size or self.default_request_size
        self.reader = Reader(self, settings.max_pages_per_read)
        self.lookups = Lookups(self, settings.max_concurrency)
        self.writer = Writer(self)
        self.estimates = Estimates(self)
        self.configure()

    def _read_cache(
        self, name: str, maxsize: int, enabled: bool, shared: SharedCache | None
    ) -> ReadCache[Any]:
        """A read cache of this provider: its TTL, stale serving, bytes and Redis alike."""
        settings = self.settings
        return ReadCache(
            self.identity,
            ttl=settings.cache_ttl,
            maxsize=maxsize,
            max_bytes=int(settings.cache_max_bytes * CACHE_SHARES[name]),
            enabled=enabled,
            stale_ttl=settings.stale_ttl,
            stale_on=STALE_ON,
            provider=settings.name,
            shared=shared,
            name=name,
        )

    # --- lists -----------------------------------------------------------------------------

    def block_size(self, entity: Entity) -> int:
        """Records per block of the entity's lists: `block_size`, else the API's largest
        page; at most 100 unless set, and never above `max_request_size`."""
        largest = min(self.largest_pages.get(entity, self.max_request_size), self.max_request_size)
        return min(self.settings.block_size or 100, largest)

    async def connection(
        self,
        entity: Entity,
        args: ConnectionArgs,
        codec: CursorCodec,
        query: ListQuery | None = None,
    ) -> ConnectionSlice[AnyRecord]:
        """A Relay window of the entity's (filtered, ordered) list; `args` already checked."""
        self.require(entity)
        query = query or ListQuery()
        self.check_query(entity, query)
        binding = binding_key(self.name, entity.value, query.key())
        if query.matches_nothing:
            # No record can match: the empty list, without asking the provider.
            return await paginate_list(args, [], codec=codec, binding=binding)
        return await self.window(ListRead(entity, args, codec, binding, query))

    async def nested_window(
        self,
        parent: AnyRecord,
        link: Link,
        args: ConnectionArgs,
        codec: CursorCodec,
        query: ListQuery,
        *,
        children: Callable[[], Awaitable[list[AnyRecord]]],
        askers: Callable[[], Awaitable[int]],
    ) -> ConnectionSlice[AnyRecord]:
        """A Relay window over the records `link` leads to from `parent`; `args` checked.

        Read in blocks of the child list filtered by parent where the family's
        `nested_plan` says so (for a parent asked alone: `askers()`, how many parents
        ask in the same batch, is 1); else cut from the parent's whole child list,
        `children()` (read by the caller, through its loaders), filtered and ordered by
        the gateway. Both plans hand out the same offsets, so one continues the other.
        """
        self.require_link(link)
        binding = binding_key(self.name, f"{link.value}:{parent.remote_id}", query.key())
        plan = self.nested_plan(link, link in parent.linked, not query.empty)
        if plan is not None and (not plan.alone or await askers() == 1):
            by_parent = ListQuery(filter=Cond(plan.field, "eq", parent.remote_id))
            return await self.window(ListRead(CHILD_ENTITY[link], args, codec, binding, by_parent))
        items = [] if query.matches_nothing else await children()  # none can match: unread
        if not query.empty:
            items = arrange(list(items), query, field_value)

        return await paginate_list(args, items, codec=codec, binding=binding)

    def estimate_nested(
        self, link: Link, args: ConnectionArgs, parents: int, batching: bool
    ) -> int:
        """Requests the windows over `link` of `parents` parents cost (`args` checked):
        the dearer of the plans `nested_window` may take, since which one a parent takes
        is known only then (a filter empty once translated reads in blocks)."""
        whole = self.estimates.children(link, parents, batching)
        plan = self.nested_plan(link, link in self.inline_links, False)
        if plan is None:
            return whole
        per = self.estimate_list(CHILD_ENTITY[link], args, True, False)
        alone = batching and plan.alone  # then one request serves a batch of parents
        return max(whole, (per if parents == 1 else 0) if alone else parents * per)

    # What its family implements (offset.py, sequential.py).

    @abstractmethod
    async def window(self, read: ListRead) -> ConnectionSlice[AnyRecord]:
        """A window of a list (its query already checked)."""

    @abstractmethod
    async def whole_list(self, entity: Entity, limit: int, size: int) -> WholeList:
        """The entity's unfiltered list from its start in requests of `size` records, until
        it ends or holds more than `limit` records (for `Lookups.read_whole`)."""

    @abstractmethod
    def nested_plan(self, link: Link, listed_inline: bool, filtered: bool) -> ByParent | None:
        """How a nested window over `link` is read (see `nested_window`); None: cut from
        the parent's whole child list. `listed_inline`: the parent lists the children's
        ids; `filtered`: the client filters or orders them."""

    @abstractmethod
    def estimate_list(
        self,
        entity: Entity,
        args: ConnectionArgs,
        filtered: bool,
        count: bool,
        ordered: bool = False,
    ) -> int:
        """Requests a window of `entity`'s list costs; `args` already checked. `filtered`:
        the client filters or orders it; `ordered`: it orders it."""

    def known_size(self, entity: Entity) -> int | None:
        """How many records `entity`'s unfiltered list holds, where a cache tells (a
        complete whole read); None: only upstream knows."""
        whole = self.wholes.peek(entity)
        return len(whole.records) if whole is not None and whole.complete else None
