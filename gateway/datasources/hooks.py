"""What a provider says and does: its declarations and the hooks the shared code calls.

A provider's class (`gateway/datasources/<kind>.py`) derives from its pagination
family (`OffsetSource` or `SequentialSource`), which derives from `DataSource`,
which derives from `ProviderHooks`. So this module is where a provider's author
reads what it may set and implement: its settings models, what it can do (each
declaration a class attribute with its default), and the hook methods with the
defaults most providers keep, which hand the work to the shared collaborators
(`Lookups`, `Writer`, `Estimates`). Its family adds the list fetches.
"""

from __future__ import annotations

import enum
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import partial
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from gateway.datasources.convert import segment
from gateway.datasources.estimates import Estimates
from gateway.datasources.lookups import Children, Lookups
from gateway.datasources.reads import Reader
from gateway.datasources.webhooks import WebhookApi
from gateway.datasources.writes import Operation, Outcome, Writer
from gateway.errors import BadUserInput, NotFound, Unsupported
from gateway.listquery import ListQuery, QuerySupport
from gateway.operations import Op
from gateway.records import AnyRecord, Entity, Link
from gateway.resilience import Window
from gateway.settings import ConfigError, ProviderSettings
from gateway.upstream import ClientAuth


class PaginationStyle(enum.StrEnum):
    PAGE_NUMBER = "PAGE_NUMBER"
    INDEX_RANGE = "INDEX_RANGE"
    CURSOR = "CURSOR"
    PAGE_TOKEN = "PAGE_TOKEN"


# The styles of each pagination family: a window at any offset, or read from a position.
OFFSET_STYLES = frozenset({PaginationStyle.PAGE_NUMBER, PaginationStyle.INDEX_RANGE})
SEQUENTIAL_STYLES = frozenset({PaginationStyle.CURSOR, PaginationStyle.PAGE_TOKEN})


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
    unset_fields: Mapping[Entity, frozenset[str]] = field(default_factory=dict)
    can_merge_contacts: bool = False
    can_restore_deals: bool = False
    can_archive_deals: bool = False
    can_bulk: frozenset[Entity] = frozenset()


@dataclass(frozen=True)
class StampRead:
    """What `stamps_since` read: the update time of each record it found, by id, and how
    many records the list holds now."""

    stamps: Mapping[str, datetime | None]
    total: int | None  # None: the API did not say


class ProviderOptions(BaseModel):
    """A kind's `options`: its settings that are not secrets (none unless it declares some)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderCredentials(BaseModel):
    """The credential names a kind takes (in `credentials`, `credentials_env` or
    `credentials_file`); a field without a default is required."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Optional credentials of which one is required (any will do: an API taking a token
    # or an API key).
    one_of: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _one_given(self) -> Self:
        if self.one_of and all(getattr(self, name) is None for name in self.one_of):
            raise ValueError(f"{' or '.join(self.one_of)} is required")
        return self


class TokenCredentials(ProviderCredentials):
    """A single API token, the most common case."""

    token: str


class KeyCredentials(ProviderCredentials):
    """A single API key."""

    api_key: str


class ProviderHooks(ABC):
    """The declarations and hooks of one provider API (see the module's docstring)."""

    # --- who it is, its settings -----------------------------------------------------------
    kind: ClassVar[str]
    display_name: ClassVar[str]
    # Where the API is served, as a starter config (`crm-gateway init`) suggests it.
    api_url: ClassVar[str] = "https://crm.example.com"
    style: ClassVar[PaginationStyle]
    # Its typed settings, chosen by `kind` and validated when the settings load.
    credentials_model: ClassVar[type[ProviderCredentials]]
    options_model: ClassVar[type[ProviderOptions]] = ProviderOptions
    # The provider's documented limits, kept by the client-side limiter.
    rate_limits: ClassVar[tuple[Window, ...]] = ()
    # The shape of the provider's remote ids, per entity (matched whole). A remote id inside
    # a global id is the client's to forge: one of another shape cannot exist upstream and
    # is refused before any request, so it never becomes another URL, query or SQL.
    id_formats: ClassVar[Mapping[Entity, re.Pattern[str]]] = {}

    # --- what it can read ------------------------------------------------------------------
    # All four entities unless the provider says fewer.
    entities: ClassVar[frozenset[Entity]] = frozenset(Entity)
    can_page_backward: ClassVar[bool] = True
    can_count: ClassVar[bool] = True
    # Filters and orders it can translate, per entity (none: lists come unfiltered only).
    query_support: ClassVar[Mapping[Entity, QuerySupport]] = {}
    # Record fields its conversion never sets, per entity (Attio sends no update time):
    # constant for it, they order nothing, so a list across providers ordered by them
    # reads it in its own order, a window at a time.
    unset_fields: ClassVar[Mapping[Entity, frozenset[str]]] = {}
    default_request_size: ClassVar[int] = 100
    # The API's largest page per entity where it is below `default_request_size`.
    largest_pages: ClassVar[Mapping[Entity, int]] = {}
    # Relationships: which links it has; those whose child ids the parent record lists
    # inline (`record.linked`); fields the API sends inline with a to-one link (hasteCRM's
    # `company {id, name}`).
    links: ClassVar[frozenset[Link]] = frozenset()
    inline_links: ClassVar[frozenset[Link]] = frozenset()
    inline_fields: ClassVar[Mapping[Link, frozenset[str]]] = {}
    # Collections a batch of lookups may read whole, in pages of `whole_page_size` (the
    # API's largest page), where that costs fewer requests than a GET per id: entity -> the
    # most records such a read holds.
    whole_reads: ClassVar[Mapping[Entity, int]] = {}
    whole_page_size: ClassVar[int] = 100

    # --- what it can write -----------------------------------------------------------------
    writes: ClassVar[frozenset[tuple[Entity, Op]]] = frozenset()
    write_fields: ClassVar[Mapping[Entity, frozenset[str]]] = {}
    # The decimal places a deal amount may have (None: any its digits allow).
    amount_places: ClassVar[int | None] = None
    can_merge_contacts: ClassVar[bool] = False
    can_restore_deals: ClassVar[bool] = False
    can_bulk: ClassVar[frozenset[Entity]] = frozenset()

    # --- what changed (the poller, gateway.live.poller) -------------------------------------
    # Entities whose records carry an update time the API can filter by (`stamps_since`):
    # a poll reads what changed since the last one. The others are read whole and compared.
    stamped: ClassVar[frozenset[Entity]] = frozenset()

    # --- its records, and plain REST -------------------------------------------------------
    # Its record conversion (`record`): entity -> function(provider name, the API's JSON).
    converters: ClassVar[Mapping[Entity, Callable[[str, Any], AnyRecord]]] = {}
    # Each entity's collection: `get` reads GET `<path>/<id>`, and writes (`Writer`) POST
    # `<path>`, update (`update_method`) and DELETE `<path>/<id>`; each request carries
    # `rest_params`. A body is made by `write_body`; an answer about one record holds it
    # under `envelope` (None: the answer is the record).
    rest_paths: ClassVar[Mapping[Entity, str]] = {}
    rest_params: ClassVar[Mapping[str, str]] = {}
    envelope: ClassVar[str | None] = None
    update_method: ClassVar[str] = "PATCH"

    # --- what it tells of changes ----------------------------------------------------------
    # Its webhook API, built by the gateway per instance (None: it has none, and
    # `webhooks = true` is refused for it).
    webhooks: ClassVar[type[WebhookApi] | None] = None

    # Set up by DataSource for every instance.
    name: str
    capabilities: Capabilities
    reader: Reader
    lookups: Lookups
    writer: Writer
    estimates: Estimates

    @property
    def label(self) -> str:
        """How refusals name this instance: the product and the configured name."""
        return f"{self.display_name} (provider {self.name!r})"

    def _unsupported(self, what: str) -> Unsupported:
        return Unsupported(f"{self.label} {what}.", provider=self.name)

    # --- what it declares, checked and gathered -------------------------------------------

    @classmethod
    def client_auth(cls, settings: ProviderSettings) -> ClientAuth:
        credentials = {k: v for k, v in settings.resolved_credentials().items() if v}
        where = f"providers.{settings.name}.credentials"
        first, *others = cls.credentials_model.one_of or ("",)
        if first and not any(credentials.get(name) for name in (first, *others)):
            alternatives = ", ".join(f"credentials.{name}" for name in others)
            raise ConfigError(
                f"{where}.{first}: required for kind {cls.kind!r} (or {alternatives}); set it "
                "in credentials, credentials_env or credentials_file"
            )
        try:
            cls.credentials_model.model_validate(credentials)
        except ValidationError as error:
            problem = error.errors()[0]
            if problem["type"] == "missing":
                raise ConfigError(
                    f"{where}.{problem['loc'][0]}: required for kind {cls.kind!r} (set it in "
                    "credentials, credentials_env or credentials_file)"
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

    # --- refusals, from what it declares ---------------------------------------------------

    def require(self, entity: Entity) -> None:
        """Unsupported unless this provider has `entity`."""
        if entity not in self.capabilities.entities:
            raise self._unsupported(f"has no {entity.plural}")

    def require_link(self, link: Link) -> None:
        if link not in self.capabilities.links:
            raise self._unsupported(f"cannot follow {link.value}")

    def require_write(self, entity: Entity, op: Op) -> None:
        if (entity, op) not in self.capabilities.writes:
            raise self._unsupported(f"cannot {op.value} {entity.plural} through its API")

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

    def check_query(self, entity: Entity, query: ListQuery) -> None:
        if query.empty:
            return
        support = self.capabilities.query_support.get(entity, QuerySupport({}))
        where = f"{self.label} {entity.value} lists"
        support.check(query, where, self.name)

    # --- hooks it must implement -----------------------------------------------------------

    @classmethod
    @abstractmethod
    def auth(cls, credentials: Mapping[str, str]) -> ClientAuth:
        """Headers and query parameters that carry the credentials."""

    @staticmethod
    @abstractmethod
    def error_message(body: Any) -> str | None:
        """The human message inside one of this API's error bodies."""

    # --- hooks with a default --------------------------------------------------------------

    def record(self, entity: Entity, raw: Any) -> AnyRecord:
        """The unified record of the API's JSON `raw` of an `entity`: its `converters`."""
        return self.converters[entity](self.name, raw)

    async def get(self, entity: Entity, remote_id: str) -> AnyRecord:
        """One record by its provider id; NotFound when it does not exist. Default: the
        plain REST read (`rest_paths`)."""
        self.require(entity)
        path = f"{self.rest_paths[entity]}/{segment(remote_id)}"
        return await self.reader.one(
            entity, remote_id, path, partial(self.answered, entity), **self.rest_params
        )

    def answered(self, entity: Entity, body: Any) -> AnyRecord:
        """The record in the API's answer about one record (under `envelope`)."""
        return self.record(entity, body if self.envelope is None else body[self.envelope])

    def configure(self) -> None:  # noqa: B027 (optional hook: most providers need none)
        """A provider's own set-up, after the shared one (`self.options` validated)."""

    async def stamps_since(self, entity: Entity, since: datetime | None) -> StampRead:
        """The update times of the `entity` records updated after `since` (None: of every
        record), and the list's size now (`stamped` entities only)."""
        raise self._unsupported(f"cannot read {entity.plural} by update time")

    async def get_many(self, entity: Entity, ids: list[str]) -> list[AnyRecord | Exception]:
        """Records by id, in order; an error in place of each one that failed. Default: the
        plan of `Lookups.by_id`; an API with an id-list filter does better."""
        return await self.lookups.by_id(entity, ids)

    async def children(self, link: Link, parent_ids: list[str]) -> list[Children]:
        """Every record `link` leads to from each parent, in the provider's order; in place
        of a parent's list, the error that failed that parent alone. Where the parents list
        the children inline (`inline_links`), the children by id; else `read_children`."""
        self.require_link(link)
        if link in self.inline_links:
            return await self.lookups.inline_children(link, parent_ids)
        return await self.read_children(link, parent_ids)

    async def read_children(self, link: Link, parent_ids: list[str]) -> list[Children]:
        """`children` over a link the parents do not list inline: one read per parent
        (`Lookups.per_parent`), or one serving several, which fails them all by raising."""
        raise self._unsupported(f"has no {link.value} link")

    async def create(self, entity: Entity, values: dict[str, Any]) -> AnyRecord:
        """A new record from unified `values` (only fields in `write_fields`)."""
        return await self.writer.create(entity, values)

    async def update(self, entity: Entity, remote_id: str, values: dict[str, Any]) -> AnyRecord:
        """The record with the given fields changed (absent: untouched, None: cleared)."""
        return await self.writer.update(entity, remote_id, values)

    async def delete(self, entity: Entity, remote_id: str) -> None:
        await self.writer.delete(entity, remote_id)

    def write_body(self, entity: Entity, values: dict[str, Any]) -> Any:
        """The API's request body for unified `values` (plain REST writes)."""
        raise NotImplementedError

    def written(self, entity: Entity, body: Any) -> AnyRecord:
        """The record in the API's answer to a write (plain REST writes)."""
        return self.answered(entity, body)

    def field_errors(self, body: Any) -> list[tuple[list[str], str]]:
        """The provider's validation body as (unified field path, message) pairs."""
        return [([], self.error_message(body) or "the provider refused the input")]

    async def merge_contacts(self, winner_id: str, loser_ids: list[str]) -> AnyRecord:
        """Fold the losers into the winner (notes and links move); the winner as it now is.
        An id that cannot be a contact here is refused first."""
        if not self.can_merge_contacts:
            raise self._unsupported("cannot merge contacts")
        self.require_id(Entity.CONTACT, winner_id, "winnerId")
        for loser in loser_ids:
            self.require_id(Entity.CONTACT, loser, "loserIds")
        return await self.merge(winner_id, loser_ids)

    async def merge(self, winner_id: str, loser_ids: list[str]) -> AnyRecord:
        """`merge_contacts` with its ids checked (where `can_merge_contacts`)."""
        raise NotImplementedError

    @classmethod
    def archives_deals(cls, options: ProviderOptions) -> bool:
        """Whether, configured with `options`, it can archive deals."""
        return False

    @property
    def can_archive_deals(self) -> bool:
        return self.capabilities.can_archive_deals

    async def archive_deal(self, remote_id: str) -> AnyRecord:
        """Set a deal aside without deleting it (restore_deal brings it back)."""
        raise self._unsupported("cannot archive deals")

    async def restore_deal(self, remote_id: str) -> AnyRecord:
        """Bring back an archived deal."""
        raise self._unsupported("cannot restore deals")

    async def bulk(self, entity: Entity, operations: list[Operation]) -> list[Outcome]:
        """Several writes in one call, each with its own outcome: the record written, the
        id deleted, or the error (InvalidInput, NotFound) of that operation alone."""
        raise self._unsupported("has no bulk writes")

    # --- what its reads cost (see gateway.datasources.estimates) ---------------------------

    def estimate_lookup(self, entity: Entity, n: int) -> int:
        """Requests `get_many` costs for one batch of `n` distinct ids (at most 100)."""
        return self.estimates.lookup(entity, n)

    def estimate_children(self, link: Link, n: int) -> int:
        """Requests `read_children` costs for one batch of `n` parents (at most 100)."""
        return n if link in self.links else 0

    def estimate_page(self, entity: Entity, filtered: bool) -> int:
        """Requests one page (block) of the entity's list costs."""
        return 1

    def estimate_count(self, entity: Entity, filtered: bool) -> int:
        """Requests `totalCount` costs beyond the list's own pages."""
        return 0

    def estimate_write(self, op: Op) -> int:
        """Requests one write costs (reads it makes first included)."""
        return 1
