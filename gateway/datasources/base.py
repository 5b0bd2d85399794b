"""What every REST data source shares; each provider file holds only what differs.

A data source maps one provider API to plain records (`gateway.records`) and
knows no GraphQL. It says how the API pages (`style`), which entities it has,
how it authenticates (`auth`), how to read its error bodies
(`error_message`), and implements the fetches of its style; the shared
`connection` method runs the pagination engine over them.
"""

from __future__ import annotations

import asyncio
import enum
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, ClassVar, TypedDict, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.blocks import BlockCache
from gateway.cache import ReadCache, fingerprint, identity
from gateway.errors import (
    BadUserInput,
    GatewayError,
    InvalidInput,
    NotFound,
    Unsupported,
    UpstreamNotFound,
    UpstreamRejected,
)
from gateway.listquery import ListQuery, QuerySupport
from gateway.operations import Op as Op
from gateway.pagination import (
    BlockChain,
    ConnectionArgs,
    ConnectionSlice,
    CursorCodec,
    OffsetPage,
    SeqPage,
    binding_key,
    paginate_offsets,
    paginate_sequential,
)
from gateway.records import CHILD_ENTITY, PARENT_ENTITY, AnyRecord, Email, Entity, Link, full_name
from gateway.resilience import Window
from gateway.settings import ConfigError, ProviderSettings
from gateway.shared import RedisState, SharedCache
from gateway.upstream import STALE_ON, ClientAuth, Replicas, Upstream, build_upstream

R = TypeVar("R")
# How a provider's `cache_max_bytes` is split between its read caches: blocks hold most.
CACHE_SHARES = {"blocks": 0.5, "responses": 0.25, "wholes": 0.25}
# Per parent of a children read: its child records, or the error that failed it alone.
Children = list[AnyRecord] | Exception
# Positive integer ids as relational APIs hand them out; ASCII digits only ("²".isdigit()
# is true in Python) and short enough for a 64-bit column.
INTEGER_ID = re.compile(r"[1-9][0-9]{0,17}")


def segment(value: str) -> str:
    """`value` as one URL path segment: `/`, `?`, `#` and `%` percent-encoded, and a
    segment of dots too, since URL resolution would act on `.` and `..`."""
    text = quote(value, safe="")
    return text.replace(".", "%2E") if text.strip(".") == "" else text


def optional_text(value: Any) -> str | None:
    """A provider's value as text; None for null or empty."""
    return str(value) if value not in (None, "") else None


def iso_time(value: Any) -> datetime | None:
    """An ISO 8601 time as the APIs send it (a `Z` zone allowed); None for null or empty."""
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


class Origin(TypedDict):
    """The `Record` fields every mapper fills alike: whose record it is, when it changed."""

    provider: str
    remote_id: str
    created_at: datetime | None
    updated_at: datetime | None
    remote_data: dict[str, Any]


@dataclass(frozen=True)
class Stamps:
    """Where an API's record keeps its times (None: it sends none) and how they are written."""

    created: str | None
    updated: str | None = None
    parse: Callable[[Any], datetime | None] = iso_time

    def origin(self, provider: str, raw: dict[str, Any], remote_id: str | None = None) -> Origin:
        """`raw`'s origin: its `id` (unless `remote_id` is given), its times, and `raw` itself
        as the record's `remote_data`."""
        return Origin(
            provider=provider,
            remote_id=str(raw["id"]) if remote_id is None else remote_id,
            created_at=self.parse(raw.get(self.created)) if self.created else None,
            updated_at=self.parse(raw.get(self.updated)) if self.updated else None,
            remote_data=raw,
        )


class Person(TypedDict):
    """A contact's names and email, as `person` reads them."""

    first_name: str | None
    last_name: str | None
    name: str | None
    emails: list[Email]


def person(first: Any, last: Any, email: Any) -> Person:
    """A contact's names and its one email, from an API's flat first, last and email values."""
    return Person(
        first_name=optional_text(first),
        last_name=optional_text(last),
        name=full_name(first, last),
        emails=[Email(email, is_primary=True)] if email else [],
    )


async def _none(offset: int, size: int) -> OffsetPage[AnyRecord]:
    """The page of a list nothing is in."""
    return OffsetPage(offset, [], 0)


P = TypeVar("P", bound=Hashable)

# An upstream cursor or page token as APIs hand them out: base64(url), JWT-like or plain
# words. Anything else in a gateway cursor was not written by the upstream.
POSITION = re.compile(r"[A-Za-z0-9+/=_.~-]{1,1024}")


class PaginationStyle(enum.StrEnum):
    PAGE_NUMBER = "PAGE_NUMBER"
    INDEX_RANGE = "INDEX_RANGE"
    CURSOR = "CURSOR"
    PAGE_TOKEN = "PAGE_TOKEN"


@dataclass(frozen=True)
class WholeRead:
    """An entity's collection read whole for lookups: its records by id, and whether the
    read reached the list's end (a collection found too big is read only in part)."""

    records: dict[str, AnyRecord]
    complete: bool


OFFSET_STYLES = frozenset({PaginationStyle.PAGE_NUMBER, PaginationStyle.INDEX_RANGE})


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do: the one value its refusals (`require*`, `check_query`),
    the `providers` field and the tests read."""

    entities: frozenset[Entity]
    can_page_backward: bool
    can_count: bool
    links: frozenset[Link] = frozenset()
    writes: frozenset[tuple[Entity, Op]] = frozenset()
    query_support: Mapping[Entity, QuerySupport] = field(default_factory=dict)
    can_merge_contacts: bool = False
    can_restore_deals: bool = False
    can_archive_deals: bool = False
    can_bulk: frozenset[Entity] = frozenset()


class ProviderOptions(BaseModel):
    """A kind's `options`: its settings that are not secrets (none unless it declares some)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderCredentials(BaseModel):
    """The credential names a kind takes (in `credentials` or `credentials_env`); a field
    without a default is required."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenCredentials(ProviderCredentials):
    """A single API token, the most common case."""

    token: str


class DataSource(ABC):
    """One configured provider instance.

    A provider derives from its pagination family, `OffsetSource` or `SequentialSource`,
    whose abstract methods it must implement: a class that misses one, or picks the wrong
    family for its `style`, fails where it is defined.
    """

    kind: ClassVar[str]
    display_name: ClassVar[str]
    style: ClassVar[PaginationStyle]
    # All four entities unless the provider says fewer.
    entities: ClassVar[frozenset[Entity]] = frozenset(Entity)
    # Its typed settings, chosen by `kind` and validated when the settings load.
    credentials_model: ClassVar[type[ProviderCredentials]]
    options_model: ClassVar[type[ProviderOptions]] = ProviderOptions
    can_page_backward: ClassVar[bool] = True
    can_count: ClassVar[bool] = True
    default_request_size: ClassVar[int] = 100
    # The provider's documented limits, kept by the client-side limiter.
    rate_limits: ClassVar[tuple[Window, ...]] = ()
    # The shape of the provider's remote ids, per entity (matched whole). A remote id inside
    # a global id is the client's to forge: one of another shape cannot exist upstream and
    # is refused before any request, so it never becomes another URL, query or SQL.
    id_formats: ClassVar[Mapping[Entity, re.Pattern[str]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" not in cls.__dict__:
            return  # a family or another shared base, not a provider
        family = OffsetSource if cls.style in OFFSET_STYLES else SequentialSource
        if not issubclass(cls, family):
            raise TypeError(f"{cls.__name__}: style {cls.style} needs a {family.__name__}")
        missing = sorted(
            name
            for name in dir(cls)
            if getattr(getattr(cls, name, None), "__isabstractmethod__", False)
        )
        if not hasattr(cls, "credentials_model"):
            missing.append("credentials_model")
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
        # Collection sizes whole reads found: the next plan costs them by what they hold.
        self.sizes: dict[Entity, int] = {}
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
        self._bound = asyncio.Semaphore(settings.max_concurrency)
        self.max_request_size = settings.max_request_size or self.default_request_size
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

    @property
    def label(self) -> str:
        """How refusals name this instance: the product and the configured name."""
        return f"{self.display_name} (provider {self.name!r})"

    def configure(self) -> None:  # noqa: B027 (optional hook: most providers need none)
        """A provider's own set-up, after the shared one (`self.options` validated)."""

    # --- what each provider says -------------------------------------------------------

    @classmethod
    @abstractmethod
    def auth(cls, credentials: Mapping[str, str]) -> ClientAuth:
        """Headers and query parameters that carry the credentials."""

    @staticmethod
    @abstractmethod
    def error_message(body: Any) -> str | None:
        """The human message inside one of this API's error bodies."""

    @abstractmethod
    async def get(self, entity: Entity, remote_id: str) -> AnyRecord:
        """One record by its provider id; NotFound when it does not exist."""

    async def fetch_offset(
        self, entity: Entity, offset: int, size: int, query: ListQuery
    ) -> OffsetPage[AnyRecord]:
        """Rows [offset, offset+size) of the entity's list (offset-addressable styles)."""
        raise NotImplementedError

    # The API's largest page per entity where it is below `default_request_size`.
    largest_pages: ClassVar[Mapping[Entity, int]] = {}

    def block_size(self, entity: Entity) -> int:
        """Records per block of the entity's lists: `block_size`, else the API's largest
        page; at most 100 unless set, and never above `max_request_size`."""
        largest = min(self.largest_pages.get(entity, self.max_request_size), self.max_request_size)
        return min(self.settings.block_size or 100, largest)

    # Cursor and page-token styles: the list as `gateway.pagination.SequentialAPI` sees it.
    has_previous: ClassVar[bool] = False

    async def open_list(
        self, entity: Entity, reverse: bool, after_key: str | None, query: ListQuery
    ) -> str:
        """A handle on the entity's list, reversed and/or after a key (see SequentialAPI).

        A handle is a small token `valid_handle` recognises, never request parameters:
        cursors carry it, and whoever holds the cursor secret can write one.
        """
        raise NotImplementedError

    def valid_handle(self, handle: str) -> bool:
        """Whether `handle` is one `open_list` can return."""
        return False

    def valid_position(self, position: str) -> bool:
        """Whether `position` looks like one of the API's cursors or page tokens."""
        return POSITION.fullmatch(position) is not None

    async def fetch_page(
        self, entity: Entity, handle: str, position: str | None, limit: int, query: ListQuery
    ) -> SeqPage[AnyRecord]:
        """Up to `limit` records of list `handle` from `position` (None: its start).

        The request is built from `query` (validated) and the handle's direction;
        `position` goes only as the value of the API's own cursor parameter.
        """
        raise NotImplementedError

    async def count(self, entity: Entity, query: ListQuery) -> int | None:
        """The entity's total, where the API can tell it without reading the list."""
        return None

    # Relationships: which links it has, and how it fetches many at once.
    links: ClassVar[frozenset[Link]] = frozenset()
    # Links whose child ids the parent record lists inline (`record.linked`).
    inline_links: ClassVar[frozenset[Link]] = frozenset()

    # Collections a batch of lookups may read whole, in pages of `whole_page_size` (the
    # API's largest page), where that costs fewer requests than a GET per id: entity -> the
    # most records such a read holds.
    whole_reads: ClassVar[Mapping[Entity, int]] = {}
    whole_page_size: ClassVar[int] = 100

    async def get_many(self, entity: Entity, ids: list[str]) -> list[AnyRecord | Exception]:
        """Records by id, in order; an error in place of each one that failed.

        Without an id-list filter: the collection read whole when the plan says it is
        cheaper (`whole_reads`), then concurrent single fetches for the ids it did not
        hold, at most `max_concurrency` at a time.
        """
        wanted = list(dict.fromkeys(i for i in ids if self.valid_id(entity, i)))
        found: dict[str, AnyRecord | Exception] = {}
        if self.reads_whole(entity, len(wanted)):
            try:
                whole = await self.read_whole(entity)
            except GatewayError as error:
                return [
                    error if self.valid_id(entity, i) else self.not_found(entity, i) for i in ids
                ]
            found = {i: whole.records[i] for i in wanted if i in whole.records}

        async def one(remote_id: str) -> AnyRecord | Exception:
            if not self.valid_id(entity, remote_id):
                return self.not_found(entity, remote_id)
            async with self._bound:
                try:
                    return await self.get(entity, remote_id)
                except GatewayError as error:
                    return error

        missing = [i for i in dict.fromkeys(ids) if i not in found]
        found.update(zip(missing, await asyncio.gather(*(one(i) for i in missing)), strict=True))
        return [found[i] for i in ids]

    def reads_whole(self, entity: Entity, distinct: int) -> bool:
        """Whether reading `entity` whole costs fewer requests than `distinct` single GETs:
        its pages by the size the last whole read found, else by the declared maximum."""
        limit = self.whole_reads.get(entity)
        if limit is None:
            return False
        size = self.sizes.get(entity, limit)
        return size <= limit and -(-max(size, 1) // self.whole_page_size) < distinct

    async def read_whole(self, entity: Entity) -> WholeRead:
        """`entity`'s list read whole through the data source's own list methods, cached
        for `cache_ttl`; a list longer than `whole_reads[entity]` stops after the page
        that shows it (its records still serve the lookups)."""
        return await self.wholes.get(entity, lambda: self._read_whole(entity))

    async def _read_whole(self, entity: Entity) -> WholeRead:
        limit, size, query = self.whole_reads[entity], self.whole_page_size, ListQuery()
        records: list[AnyRecord] = []
        complete = False
        if self.style in (PaginationStyle.PAGE_NUMBER, PaginationStyle.INDEX_RANGE):
            offset = 0
            while len(records) <= limit:
                page = await self.fetch_offset(entity, offset, size, query)
                records += page.items
                offset += len(page.items)
                if not page.items or offset >= page.total:
                    complete = True
                    break
                if page.total > limit:
                    self.sizes[entity] = page.total
                    break
                # An API that caps pages below what was asked: page by its own size.
                size = min(size, len(page.items))
        else:
            handle = await self.open_list(entity, False, None, query)
            position: str | None = None
            given: set[str] = set()
            while len(records) <= limit:
                read = await self.fetch_page(entity, handle, position, size, query)
                records += read.items
                if read.next is None:
                    complete = True
                    break
                if read.next in given:
                    raise self.upstream.bad_response(
                        f"it repeated a page position while listing {entity.plural}"
                    )
                given.add(read.next)
                position = read.next
        if complete:
            self.sizes[entity] = len(records)
        else:
            self.sizes[entity] = max(self.sizes.get(entity, 0), len(records), limit + 1)
        return WholeRead({r.remote_id: r for r in records}, complete)

    async def listed_by_id(
        self,
        entity: Entity,
        ids: list[str],
        size: int,
        fetch: Callable[[list[str]], Awaitable[list[AnyRecord]]],
    ) -> list[AnyRecord | Exception]:
        """`get_many` through an API call that takes a list of ids (at most `size` of them):
        each id asked once, answers in order, NotFound for an id that came back empty
        or cannot exist."""
        wanted = list(dict.fromkeys(i for i in ids if self.valid_id(entity, i)))
        found: dict[str, AnyRecord] = {}
        for start in range(0, len(wanted), size):
            found.update((r.remote_id, r) for r in await fetch(wanted[start : start + size]))
        return [found.get(i) or self.not_found(entity, i) for i in ids]

    async def children(self, link: Link, parent_ids: list[str]) -> list[Children]:
        """Every record `link` leads to from each parent, in the provider's order; in place
        of a parent's list, the error that failed that parent alone (one request per parent).
        A request serving several parents fails them all by raising."""
        raise Unsupported(
            f"{self.label} has no {link.value} link.",
            provider=self.name,
        )

    async def inline_children(self, link: Link, parent_ids: list[str]) -> list[Children]:
        """Children a link's parents list inline (`record.linked`): the parents, then the
        children by id, two batches in all. A parent or child gone counts as no child; any
        other failure fails the parents it concerns."""

        def listed(parent: AnyRecord | Exception) -> list[str] | Exception:
            if isinstance(parent, NotFound):
                return []
            return parent if isinstance(parent, Exception) else parent.linked.get(link, [])

        ids = [listed(p) for p in await self.get_many(PARENT_ENTITY[link], parent_ids)]
        flat = list(dict.fromkeys(i for group in ids if isinstance(group, list) for i in group))
        found = dict(zip(flat, await self.get_many(CHILD_ENTITY[link], flat), strict=True))

        def children(group: list[str] | Exception) -> Children:
            if isinstance(group, Exception):
                return group
            records = [found[i] for i in group]
            failed = [
                r for r in records if isinstance(r, Exception) and not isinstance(r, NotFound)
            ]
            return failed[0] if failed else [r for r in records if not isinstance(r, Exception)]

        return [children(group) for group in ids]

    async def per_parent(
        self,
        link: Link,
        parent_ids: list[str],
        read: Callable[[str], Awaitable[list[AnyRecord]]],
    ) -> list[Children]:
        """`children` where the API reads one parent at a time: each read on its own (at
        most `max_concurrency` at once), so a failing one fails only its parent."""
        entity = PARENT_ENTITY[link]

        async def one(parent: str) -> Children:
            if not self.valid_id(entity, parent):
                return self.not_found(entity, parent)
            async with self._bound:
                try:
                    return await read(parent)
                except GatewayError as error:
                    return error

        return list(await asyncio.gather(*(one(p) for p in parent_ids)))

    # Links whose children the API lists by parent with paging: link -> the child entity's
    # field equal to the parent's id. A nested window then reads only the blocks of that
    # filtered list it reaches. Offset styles only: the window's cursors are the offsets
    # the whole-list plan hands out too, so the two plans can take turns on one list.
    paged_links: ClassVar[Mapping[Link, str]] = {}
    # Of those, the links whose `children` serves many parents in one request: blocks are
    # read only for a parent asked alone, where they cost less.
    batched_links: ClassVar[frozenset[Link]] = frozenset()

    def require_link(self, link: Link) -> None:
        if link not in self.capabilities.links:
            raise Unsupported(
                f"{self.label} cannot follow {link.value}.",
                provider=self.name,
            )

    # Writes: what it can write, which unified fields, and how.
    writes: ClassVar[frozenset[tuple[Entity, Op]]] = frozenset()
    write_fields: ClassVar[Mapping[Entity, frozenset[str]]] = {}
    # The decimal places a deal amount may have (None: any its digits allow).
    amount_places: ClassVar[int | None] = None

    def require_write(self, entity: Entity, op: Op) -> None:
        if (entity, op) not in self.capabilities.writes:
            raise Unsupported(
                f"{self.label} cannot {op.value} {entity.plural} through its API.",
                provider=self.name,
            )

    # Plain REST writes, as the defaults below send them: POST `write_paths[entity]`, PATCH
    # and DELETE `<path>/<id>`, the body from `write_body`, the record from `written`.
    write_paths: ClassVar[Mapping[Entity, str]] = {}
    write_params: ClassVar[Mapping[str, str] | None] = None

    def write_body(self, entity: Entity, values: dict[str, Any]) -> Any:
        """The API's request body for unified `values`."""
        raise NotImplementedError

    def written(self, entity: Entity, body: Any) -> AnyRecord:
        """The record in the API's answer to a write."""
        raise NotImplementedError

    async def create(self, entity: Entity, values: dict[str, Any]) -> AnyRecord:
        """A new record from unified `values` (only fields in `write_fields`)."""
        return await self._rest_write(entity, "POST", self.write_paths[entity], None, values)

    async def update(self, entity: Entity, remote_id: str, values: dict[str, Any]) -> AnyRecord:
        """The record with the given fields changed (absent: untouched, None: cleared)."""
        path = f"{self.write_paths[entity]}/{segment(remote_id)}"
        return await self._rest_write(entity, "PATCH", path, remote_id, values)

    async def delete(self, entity: Entity, remote_id: str) -> None:
        path = f"{self.write_paths[entity]}/{segment(remote_id)}"
        await self.write(entity, "DELETE", path, remote_id=remote_id)

    async def _rest_write(
        self, entity: Entity, method: str, path: str, remote_id: str | None, values: dict[str, Any]
    ) -> AnyRecord:
        response = await self.write(
            entity,
            method,
            path,
            remote_id=remote_id,
            json_body=self.write_body(entity, values),
            params=self.write_params,
        )
        raw = self.upstream.json(response)
        return self.parse(lambda body: self.written(entity, body), raw, response)

    # Provider-specific writes, where the API has them.
    can_merge_contacts: ClassVar[bool] = False
    can_restore_deals: ClassVar[bool] = False

    async def merge_contacts(self, winner_id: str, loser_ids: list[str]) -> AnyRecord:
        """Fold the losers into the winner (notes and links move); the winner as it now is."""
        raise Unsupported(
            f"{self.label} cannot merge contacts.",
            provider=self.name,
        )

    can_bulk: ClassVar[frozenset[Entity]] = frozenset()

    @property
    def can_archive_deals(self) -> bool:
        return self.capabilities.can_archive_deals

    @classmethod
    def archives_deals(cls, options: ProviderOptions) -> bool:
        """Whether, configured with `options`, it can archive deals."""
        return False

    async def archive_deal(self, remote_id: str) -> AnyRecord:
        """Set a deal aside without deleting it (restore_deal brings it back)."""
        raise Unsupported(
            f"{self.label} cannot archive deals.",
            provider=self.name,
        )

    async def bulk(
        self, entity: Entity, operations: list[tuple[Op, str | None, dict[str, Any] | None]]
    ) -> list[AnyRecord | str | GatewayError]:
        """Several writes in one call, each with its own outcome: the record written, the
        id deleted, or the error (InvalidInput, NotFound) of that operation alone."""
        raise Unsupported(
            f"{self.label} has no bulk writes.",
            provider=self.name,
        )

    async def restore_deal(self, remote_id: str) -> AnyRecord:
        """Bring back an archived deal."""
        raise Unsupported(
            f"{self.label} cannot restore deals.",
            provider=self.name,
        )

    def field_errors(self, body: Any) -> list[tuple[list[str], str]]:
        """The provider's validation body as (unified field path, message) pairs."""
        return [([], self.error_message(body) or "the provider refused the input")]

    async def write(
        self,
        entity: Entity,
        method: str,
        path: str,
        *,
        remote_id: str | None = None,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """Send a write once (never retried blind); a refusal becomes InvalidInput."""
        if remote_id is not None:
            self.require_id(entity, remote_id)
        try:
            return await self.upstream.request(
                method, path, params=params, json_body=json_body, idempotent=False
            )
        except UpstreamNotFound:
            if remote_id is None:
                raise
            raise self.not_found(entity, remote_id) from None
        except UpstreamRejected as error:
            raise InvalidInput(self.field_errors(error.body), provider=self.name) from None

    # --- cost estimates: pure, nothing sent (schema.cost sums them per operation) ---------
    #
    # Each says how many upstream requests a read will send at most, from what is known
    # before it runs: the arguments, and what the block and whole-read caches hold (peeked,
    # never counted as hits). Retries of a failed request and polls of a running Redivis
    # query are not counted (they are waits on the same request, not part of the plan).
    # Where a number is only known upstream, the estimate assumes a parent's own child list
    # fits the first page of its read and a record lists at most ASSUMED_CHILDREN children
    # inline, and that links point at records that exist.

    ASSUMED_CHILDREN: ClassVar[int] = 10
    # Fields the API sends inline with a to-one link (hasteCRM's `company {id, name}`).
    inline_fields: ClassVar[Mapping[Link, frozenset[str]]] = {}

    def estimate_page(self, entity: Entity, filtered: bool) -> int:
        """Requests one page (block) of the entity's list costs."""
        return 1

    def estimate_open(self, entity: Entity, reverse: bool, keyset: bool, filtered: bool) -> int:
        """Requests `open_list` costs (sequential styles)."""
        return 0

    def estimate_count(self, entity: Entity, filtered: bool) -> int:
        """Requests `totalCount` costs beyond the list's own pages."""
        return 0

    def estimate_list(
        self, entity: Entity, args: ConnectionArgs, filtered: bool, count: bool
    ) -> int:
        """Requests a window of `entity`'s list costs; `args` already checked."""
        if entity not in self.entities:
            return 0
        size = self.block_size(entity) if self.blocks is not None else self.max_request_size
        n = args.first if args.first is not None else (args.last or 0)
        blocks = max(1, -(-n // size))
        spans = blocks + 1  # an unaligned window of n rows spans one block more
        page = self.estimate_page(entity, filtered)
        cursors = args.after is not None or args.before is not None
        total = self.estimate_count(entity, filtered) if count and self.can_count else 0
        if self.style in (PaginationStyle.PAGE_NUMBER, PaginationStyle.INDEX_RANGE):
            if self.blocks is None:
                return total + 2 * (spans + 1) * page
            if not cursors and args.last is None:
                keys = [k * size for k in range(blocks)]
                return total + page * sum(
                    1 for o in keys if filtered or self._peek_offset(entity, o, size) is None
                )
            if not cursors and args.first is None:
                head = None if filtered else self._peek_offset(entity, 0, size)
                if head is None:
                    return total + (1 + spans) * page
                lo = max(0, head.total - n)
                tail = range(lo // size, max(lo + 1, head.total) // size + 1)
                missing = [k for k in tail if self._peek_offset(entity, k * size, size) is None]
                return total + page * len(missing)
            return total + (2 + spans) * page
        if not cursors and args.last is None:
            opened = self.estimate_open(entity, False, False, filtered)
            return total + opened + page * self._uncached_head(entity, blocks, size, filtered)
        if args.last is None:
            return total + spans * page + (page if args.before is not None else 0)
        # Backward: the chain's blocks, a `previous` probe per block, or a reversed read.
        reverse = self.estimate_open(entity, True, True, filtered)
        return total + reverse + (3 * spans + 2) * page

    def _peek_offset(self, entity: Entity, offset: int, size: int) -> Any:
        if self.blocks is None:
            return None
        return self.blocks.peek(("offset", entity.value, ListQuery().key(), offset, size))

    def _uncached_head(self, entity: Entity, blocks: int, size: int, filtered: bool) -> int:
        """Blocks of an unfiltered list's first `blocks` not cached, following each cached
        block's `next`; every block when the list's handle is only known upstream."""
        if filtered or self.blocks is None:
            return blocks
        handle = self.head_handle(entity)
        if handle is None:
            return blocks
        position: str | None = None
        for done in range(blocks):
            key = ("seq", entity.value, ListQuery().key(), handle, position, size)
            page = self.blocks.peek(key)
            if page is None:
                return blocks - done
            if page.next is None or len(page.items) < size:
                return 0
            position = page.next
        return 0

    def head_handle(self, entity: Entity) -> str | None:
        """The handle `open_list` gives an unfiltered forward list without a request."""
        return None

    def estimate_lookup(self, entity: Entity, n: int) -> int:
        """Requests `get_many` costs for one batch of `n` distinct ids (at most 100)."""
        if n <= 0 or entity not in self.entities:
            return 0
        return self.estimate_singles(entity, n)

    def estimate_singles(self, entity: Entity, n: int) -> int:
        """The base `get_many`: a whole read where the plan takes one, else a GET per id."""
        if not self.reads_whole(entity, n):
            return n
        limit = self.whole_reads[entity]
        known = self.sizes.get(entity)
        complete = known is not None and known <= limit
        if self.wholes.peek(entity) is not None:
            return 0 if complete else n
        # Unknown size: taken to fit the declared limit (a collection past it would add
        # the GETs the plan then falls back to; README, "Cost").
        size = known if complete and known else limit
        return -(-max(size, 1) // self.whole_page_size)

    def estimate_children(self, link: Link, n: int) -> int:
        """Requests `children` costs for one batch of `n` parents (at most 100)."""
        return n if link in self.links else 0

    def estimate_paged(self, link: Link, args: ConnectionArgs) -> int:
        """Requests one parent's window over `link` costs where it is read in blocks of
        the child list filtered by parent (`paged_links`); 0 where it never is."""
        if link not in self.paged_links or link in self.inline_links:
            return 0
        if self.style not in (PaginationStyle.PAGE_NUMBER, PaginationStyle.INDEX_RANGE):
            return 0
        return self.estimate_list(CHILD_ENTITY[link], args, True, False)

    def estimate_inline_children(self, link: Link, n: int) -> int:
        """`inline_children`: the parents by id, then their children by id."""
        return self.estimate_lookup(PARENT_ENTITY[link], n) + self.estimate_lookups(
            CHILD_ENTITY[link], n * self.ASSUMED_CHILDREN
        )

    def estimate_lookups(self, entity: Entity, n: int) -> int:
        """`n` distinct ids, in the loaders' batches of 100."""
        return sum(self.estimate_lookup(entity, min(100, n - s)) for s in range(0, n, 100))

    def estimate_write(self, op: Op) -> int:
        """Requests one write costs (reads it makes first included)."""
        return 1

    # --- shared ------------------------------------------------------------------------

    @classmethod
    def client_auth(cls, settings: ProviderSettings) -> ClientAuth:
        credentials = {k: v for k, v in settings.resolved_credentials().items() if v}
        try:
            cls.credentials_model.model_validate(credentials)
        except ValidationError as error:
            problem = error.errors()[0]
            where = f"providers.{settings.name}.credentials"
            if problem["type"] == "missing":
                raise ConfigError(
                    f"{where}.{problem['loc'][0]}: required for kind {cls.kind!r} (set it in "
                    "credentials or credentials_env)"
                ) from None
            raise ConfigError(f"{where}: {problem['msg']}") from None
        return cls.auth(credentials)

    @classmethod
    def describe(cls, options: ProviderOptions | None = None) -> Capabilities:
        """What the provider can do, configured with `options` (None: the defaults). Each
        capability is the class attribute of its name, but archiving, which options decide."""
        declared = {
            name: getattr(cls, name)
            for name in (f.name for f in fields(Capabilities))
            if name != "can_archive_deals"
        }
        archives = cls.archives_deals(options or cls.options_model())
        return Capabilities(**declared, can_archive_deals=archives)

    def require(self, entity: Entity) -> None:
        """Unsupported unless this provider has `entity`."""
        if entity not in self.capabilities.entities:
            raise Unsupported(
                f"{self.label} has no {entity.plural}.",
                provider=self.name,
            )

    def not_found(self, entity: Entity, remote_id: str) -> NotFound:
        return NotFound(f"{entity.value} {remote_id!r} does not exist in provider {self.name!r}.")

    def valid_id(self, entity: Entity, remote_id: str) -> bool:
        """Whether `remote_id` has the shape of this provider's `entity` ids."""
        pattern = self.id_formats.get(entity)
        return pattern is not None and pattern.fullmatch(remote_id) is not None

    def require_id(self, entity: Entity, remote_id: str, argument: str = "id") -> None:
        """BAD_USER_INPUT naming `argument` unless `remote_id` can be an `entity` id here."""
        if not self.valid_id(entity, remote_id):
            raise BadUserInput(
                f"`{argument}` is not the id of a {entity.value} of provider {self.name!r}.",
                argument=argument,
            )

    # Filters and orders it can translate, per entity (none: lists come unfiltered only).
    query_support: ClassVar[Mapping[Entity, QuerySupport]] = {}

    def check_query(self, entity: Entity, query: ListQuery) -> None:
        if query.empty:
            return
        support = self.capabilities.query_support.get(entity, QuerySupport({}))
        where = f"{self.label} {entity.value} lists"
        support.check(query, where, self.name)

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
            return await paginate_offsets(
                args, fetch=_none, codec=codec, binding=binding, max_request_size=1, aligned=False
            )
        if self.style in (PaginationStyle.PAGE_NUMBER, PaginationStyle.INDEX_RANGE):
            return await self.offset_window(entity, args, codec, binding, query)
        block = self.block_size(entity) if self.blocks is not None else None
        listed = _EntityList(self, entity, query, block)
        window = await paginate_sequential(
            args,
            api=listed,
            codec=codec,
            binding=binding,
            provider=self.name,
            block_size=block,
            chain=listed.chain,
        )
        if not self.can_count:
            return window

        async def count() -> int | None:
            return await self.count(entity, query)

        return replace(window, count=count)

    async def offset_window(
        self,
        entity: Entity,
        args: ConnectionArgs,
        codec: CursorCodec,
        binding: str,
        query: ListQuery,
    ) -> ConnectionSlice[AnyRecord]:
        """A window of an offset-addressed list (`query` already checked), read in cached
        blocks; its cursors are offsets bound to `binding`."""
        blocks = self.blocks

        async def fetch(offset: int, size: int) -> OffsetPage[AnyRecord]:
            if blocks is None:
                return await self.fetch_offset(entity, offset, size, query)

            async def read() -> OffsetPage[AnyRecord]:
                with Upstream.uncached():
                    return await self.fetch_offset(entity, offset, size, query)

            key = ("offset", entity.value, query.key(), offset, size)
            return await blocks.read(key, read)

        return await paginate_offsets(
            args,
            fetch=fetch,
            codec=codec,
            binding=binding,
            max_request_size=self.max_request_size,
            aligned=self.style is PaginationStyle.PAGE_NUMBER,
            block_size=self.block_size(entity) if blocks is not None else None,
        )

    async def read_pages(
        self,
        fetch: Callable[[P | None], Awaitable[tuple[Sequence[R], P | None, httpx.Response]]],
        what: str,
    ) -> list[R]:
        """Every item of a list read page after page, the one loop every data source uses.

        `fetch(position)` (None: the start) answers a page's items, the position of the
        next page (None: the list ends) and its response. Bounded: more than
        `max_pages_per_read` pages, or a next position this read was already given (the
        upstream would loop forever), fail with UpstreamBadResponse.
        """
        items: list[R] = []
        given: set[P] = set()
        position: P | None = None
        for _ in range(self.settings.max_pages_per_read):
            batch, following, response = await fetch(position)
            items += batch
            if following is None:
                return items
            if following in given:
                raise self.upstream.bad_response(
                    f"it repeated a page position while listing {what} (it would loop forever)",
                    response,
                )
            given.add(following)
            position = following
        raise self.upstream.bad_response(
            f"the list of {what} is longer than {self.settings.max_pages_per_read} pages "
            "(max_pages_per_read), more than the gateway reads whole",
            response,
        )

    def parse(self, convert: Callable[[Any], R], raw: Any, response: httpx.Response) -> R:
        """`convert(raw)`, with a wrong-shaped payload turned into UpstreamBadResponse."""
        try:
            return convert(raw)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise self.upstream.bad_response(
                f"unexpected shape ({type(error).__name__}: {error})", response
            ) from None

    async def get_one(
        self,
        entity: Entity,
        remote_id: str,
        path: str,
        convert: Callable[[Any], AnyRecord],
        **params: Any,
    ) -> AnyRecord:
        """GET one record at `path` and `convert` its JSON. An upstream 404 becomes NotFound
        for that id, as does an id that cannot exist (never sent)."""
        if not self.valid_id(entity, remote_id):
            raise self.not_found(entity, remote_id)
        try:
            response = await self.upstream.request("GET", path, params=params or None)
        except UpstreamNotFound:
            raise self.not_found(entity, remote_id) from None
        return self.parse(convert, self.upstream.json(response), response)


class OffsetSource(DataSource):
    """The page-number and index-range family: any window is addressed by its offset."""

    @abstractmethod
    async def fetch_offset(
        self, entity: Entity, offset: int, size: int, query: ListQuery
    ) -> OffsetPage[AnyRecord]:
        """Rows [offset, offset+size) of the entity's list."""


class SequentialSource(DataSource):
    """The cursor and page-token family: a list is read from its start or a position."""

    @abstractmethod
    async def open_list(
        self, entity: Entity, reverse: bool, after_key: str | None, query: ListQuery
    ) -> str:
        """A handle on the entity's list (see `DataSource.open_list`)."""

    @abstractmethod
    def valid_handle(self, handle: str) -> bool:
        """Whether `handle` is one `open_list` can return."""

    @abstractmethod
    async def fetch_page(
        self, entity: Entity, handle: str, position: str | None, limit: int, query: ListQuery
    ) -> SeqPage[AnyRecord]:
        """Up to `limit` records of list `handle` from `position` (None: its start)."""


class _EntityList:
    """One entity's list of a data source, as the sequential pagination engine reads it."""

    def __init__(
        self, source: DataSource, entity: Entity, query: ListQuery, block: int | None = None
    ) -> None:
        self.source = source
        self.entity = entity
        self.query = query
        # In block mode every read is one block: a cursor's index stays below its size.
        self.max_request_size = block or source.max_request_size
        self.has_previous = source.has_previous
        self.can_reverse = source.can_page_backward
        self.block = block
        self.chain: BlockChain | None = None
        if block is not None and source.blocks is not None:
            prefix = (source.blocks.tenant, entity.value, query.key(), block)
            self.chain = BlockChain(source.blocks.links, prefix)

    def key(self, item: AnyRecord) -> str:
        return item.remote_id

    def valid_handle(self, handle: str) -> bool:
        return self.source.valid_handle(handle)

    def valid_position(self, position: str) -> bool:
        return self.source.valid_position(position)

    async def open(self, reverse: bool, after_key: str | None) -> str:
        return await self.source.open_list(self.entity, reverse, after_key, self.query)

    async def fetch(self, handle: str, position: str | None, limit: int) -> SeqPage[AnyRecord]:
        # The validated query, not anything a cursor held, shapes the request.
        blocks = self.source.blocks
        if blocks is None or limit != self.block:
            return await self.source.fetch_page(self.entity, handle, position, limit, self.query)

        async def read() -> SeqPage[AnyRecord]:
            with Upstream.uncached():
                return await self.source.fetch_page(
                    self.entity, handle, position, limit, self.query
                )

        key = ("seq", self.entity.value, self.query.key(), handle, position, limit)
        return await blocks.read(key, read)
