"""The unified CRM types. Scalar fields are plain attributes, set once from a record."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

import schema.cost as cost
import schema.filters as f
import schema.links as links
from gateway import records as r
from gateway.pagination.connection import ConnectionSlice
from gateway.records import CompanyRecord, Entity, Link
from resolvers.context import Info
from resolvers.globalids import TYPE_NAMES, node_key
from resolvers.loaders import NOT_READY
from resolvers.queries import ready_link

First = Annotated[
    int | None,
    strawberry.argument(description="Return the first n records (after `after`). Default 20."),
]
After = Annotated[
    str | None, strawberry.argument(description="Start after the record with this cursor.")
]
Last = Annotated[
    int | None, strawberry.argument(description="Return the last n records (before `before`).")
]
Before = Annotated[
    str | None, strawberry.argument(description="End before the record with this cursor.")
]


@strawberry.enum(description="How a provider's API pages through lists.")
class PaginationStyle(enum.Enum):
    PAGE_NUMBER = strawberry.enum_value("PAGE_NUMBER", description="`page` + page size.")
    INDEX_RANGE = strawberry.enum_value(
        "INDEX_RANGE", description="Inclusive index ranges with the total in `Content-Range`."
    )
    CURSOR = strawberry.enum_value("CURSOR", description="Opaque upstream cursors.")
    PAGE_TOKEN = strawberry.enum_value("PAGE_TOKEN", description="Forward-only page tokens.")


@strawberry.enum(description="The record types of the unified model.")
class EntityType(enum.Enum):
    CONTACT = strawberry.enum_value("contact", description="People.")
    COMPANY = strawberry.enum_value("company", description="Organisations.")
    DEAL = strawberry.enum_value("deal", description="Sales opportunities.")
    NOTE = strawberry.enum_value("note", description="Notes attached to a record.")


@strawberry.enum(description="Where a deal stands, derived from each provider's own stage.")
class DealStatus(enum.Enum):
    OPEN = strawberry.enum_value("OPEN", description="Still in the pipeline.")
    WON = strawberry.enum_value("WON", description="Closed and won.")
    LOST = strawberry.enum_value("LOST", description="Closed and lost.")
    OTHER = strawberry.enum_value("OTHER", description="A state the gateway cannot map.")


@strawberry.type(description="An email address.")
class Email:
    address: str = strawberry.field(description="The address as the provider stores it.")
    type: str | None = strawberry.field(description="Work, personal, … where the provider says.")
    is_primary: bool = strawberry.field(description="Whether this is the primary address.")


@strawberry.type(description="A phone number.")
class Phone:
    number: str = strawberry.field(description="The number as the provider stores it.")
    type: str | None = strawberry.field(description="Mobile, work, … where the provider says.")
    is_primary: bool = strawberry.field(description="Whether this is the primary number.")


@strawberry.type(description="A postal address; parts the provider lacks are null.")
class Address:
    street: str | None = strawberry.field(description="Street and number.")
    city: str | None = strawberry.field(description="City or locality.")
    region: str | None = strawberry.field(description="State, province or region.")
    postal_code: str | None = strawberry.field(description="Postal or ZIP code.")
    country: str | None = strawberry.field(description="Country (code or name, as stored).")


@strawberry.type(description="An amount of money.")
class Money:
    amount: str = strawberry.field(description="The amount as a decimal string, never rounded.")
    currency: str | None = strawberry.field(
        description="ISO 4217 code; null when the provider stores none."
    )


@strawberry.type(description="A provider field with no unified counterpart.")
class CustomField:
    key: str = strawberry.field(description="The provider's name for the field.")
    value: JSON | None = strawberry.field(description="The value, as JSON.")


@strawberry.interface(description="What every CRM record has.")
class Record:
    provider: str = strawberry.field(
        description="The configured provider instance holding the record, e.g. `attio-eu`."
    )
    remote_id: str = strawberry.field(description="The provider's own id of the record.")
    created_at: dt.datetime | None = strawberry.field(
        description="When the provider says the record was created; null if it does not say."
    )
    updated_at: dt.datetime | None = strawberry.field(
        description="When the provider says the record last changed; null if it does not say."
    )
    record: strawberry.Private[Any]

    @strawberry.field(description="Provider fields with no unified counterpart.")
    def custom_fields(self) -> list[CustomField]:
        # Built only when asked for: a list of objects per record on every read otherwise.
        fields: dict[str, Any] = self.record.custom_fields
        return [CustomField(key=k, value=v) for k, v in fields.items()]

    @strawberry.field(
        description="The provider's own payload for the record, untouched; null unless the "
        "provider is configured with `remote_data = true`."
    )
    def remote_data(self, info: Info) -> JSON | None:
        # Raw records carry what the unified fields leave out (internal user and
        # organization ids), so each deployment opts in per provider.
        source = info.context.sources.get(self.provider)
        if source is None or not source.settings.remote_data:
            return None
        data: JSON = self.record.remote_data
        return data


def _linked(entity: Entity, link: Link, description: str) -> Any:
    """A to-many relationship field: a connection of `entity` reached through `link`."""

    async def resolve(
        self: Record,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Any = None,
        order_by: Any = None,
    ) -> Any:
        query = f.list_query(filter, order_by, self.provider)
        window = await links.connection(self.record, info, link, first, after, last, before, query)
        return None if window is None else connection(CONNECTIONS[entity], window)

    resolve.__annotations__ |= f.list_arguments(
        entity, "Only these (applied by the gateway to the whole list)."
    )
    # A name: the connection types are defined below, after the node types they hold.
    resolve.__annotations__["return"] = f"{TYPE_NAMES[entity]}Connection | None"
    return strawberry.field(
        resolver=resolve, description=description, metadata=cost.declare(cost.linked(link))
    )


def _to_company(link: Link, description: str) -> Any:
    """A to-one company field. It answers the object itself when this request already looked
    the company up (a sync resolver: no coroutine, no task per node), else the awaitable
    lookup: graphql-core awaits what needs awaiting."""

    def resolve(self: Contact | Deal, info: Info) -> Any:
        remote_id = self.company_id
        found = ready_link(info.context, self.provider, link, Entity.COMPANY, remote_id)
        if found is NOT_READY:
            return _looked_up(self.record, info, link, remote_id)
        return Company.from_record(found) if isinstance(found, CompanyRecord) else None

    # The GraphQL type; the Python one (Any) also allows the awaitable.
    resolve.__annotations__["return"] = "Company | None"
    return strawberry.field(
        resolver=resolve, description=description, metadata=cost.declare(cost.to_company(link))
    )


async def _looked_up(record: Any, info: Info, link: Link, remote_id: str | None) -> Company | None:
    found = await links.one(record, info, link, remote_id)
    return None if found is None else Company.from_record(found)


def _address(a: r.Address | None) -> Address | None:
    if a is None:
        return None
    return Address(
        street=a.street, city=a.city, region=a.region, postal_code=a.postal_code, country=a.country
    )


def _money(m: r.Money | None) -> Money | None:
    return None if m is None else Money(amount=m.amount, currency=m.currency)


def _common(rec: r.Record) -> dict[str, Any]:
    return {
        "key": node_key(rec.provider, rec.remote_id),
        "provider": rec.provider,
        "remote_id": rec.remote_id,
        "created_at": rec.created_at,
        "updated_at": rec.updated_at,
        "record": rec,
    }


@strawberry.type(description="A person in a CRM.")
class Contact(relay.Node, Record):
    key: relay.NodeID[str]
    first_name: str | None = strawberry.field(description="Given name.")
    last_name: str | None = strawberry.field(description="Family name.")
    name: str | None = strawberry.field(description="Full name.")
    title: str | None = strawberry.field(description="Job title.")
    emails: list[Email] = strawberry.field(description="Email addresses.")
    phones: list[Phone] = strawberry.field(description="Phone numbers.")
    address: Address | None = strawberry.field(description="Postal address.")
    tags: list[str] = strawberry.field(description="Labels.")
    status: str | None = strawberry.field(description="The provider's status, as text.")
    company_id: strawberry.Private[str | None]

    company = _to_company(Link.CONTACT_COMPANY, "The company the contact belongs to; null if none.")

    deals = _linked(Entity.DEAL, Link.CONTACT_DEALS, "The contact's deals.")
    notes = _linked(Entity.NOTE, Link.CONTACT_NOTES, "Notes about the contact.")

    @classmethod
    def from_record(cls, rec: r.ContactRecord) -> Contact:
        return cls(
            **_common(rec),
            first_name=rec.first_name,
            last_name=rec.last_name,
            name=rec.name,
            title=rec.title,
            emails=[
                Email(address=e.address, type=e.type, is_primary=e.is_primary) for e in rec.emails
            ],
            phones=[
                Phone(number=p.number, type=p.type, is_primary=p.is_primary) for p in rec.phones
            ],
            address=_address(rec.address),
            tags=list(rec.tags),
            status=rec.status,
            company_id=rec.company_id,
        )


@strawberry.type(description="An organisation in a CRM.")
class Company(relay.Node, Record):
    key: relay.NodeID[str]
    name: str | None = strawberry.field(description="Company name.")
    domain: str | None = strawberry.field(description="Primary web domain.")
    industry: str | None = strawberry.field(description="Industry or category.")
    description: str | None = strawberry.field(description="Free-text description.")
    employee_count: int | None = strawberry.field(description="Number of employees.")
    annual_revenue: Money | None = strawberry.field(description="Yearly revenue.")
    address: Address | None = strawberry.field(description="Postal address.")
    tags: list[str] = strawberry.field(description="Labels.")

    contacts = _linked(Entity.CONTACT, Link.COMPANY_CONTACTS, "The company's contacts.")
    deals = _linked(Entity.DEAL, Link.COMPANY_DEALS, "The company's deals.")
    notes = _linked(Entity.NOTE, Link.COMPANY_NOTES, "Notes about the company.")

    @classmethod
    def from_record(cls, rec: r.CompanyRecord) -> Company:
        return cls(
            **_common(rec),
            name=rec.name,
            domain=rec.domain,
            industry=rec.industry,
            description=rec.description,
            employee_count=rec.employee_count,
            annual_revenue=_money(rec.annual_revenue),
            address=_address(rec.address),
            tags=list(rec.tags),
        )


@strawberry.type(description="A sales opportunity.")
class Deal(relay.Node, Record):
    key: relay.NodeID[str]
    name: str | None = strawberry.field(description="Deal name.")
    amount: Money | None = strawberry.field(description="Deal value.")
    status: DealStatus | None = strawberry.field(
        description="OPEN, WON or LOST, derived from the provider's stage or status."
    )
    stage: str | None = strawberry.field(description="The provider's pipeline stage, as text.")
    probability: float | None = strawberry.field(description="Chance of winning, 0 to 1.")
    close_date: dt.date | None = strawberry.field(description="Expected or actual close date.")
    company_id: strawberry.Private[str | None]
    contact_ids: strawberry.Private[list[str]]

    company = _to_company(Link.DEAL_COMPANY, "The company the deal is with; null if none.")

    contacts = _linked(Entity.CONTACT, Link.DEAL_CONTACTS, "The people on the deal.")
    notes = _linked(Entity.NOTE, Link.DEAL_NOTES, "Notes about the deal.")

    @classmethod
    def from_record(cls, rec: r.DealRecord) -> Deal:
        return cls(
            **_common(rec),
            name=rec.name,
            amount=_money(rec.amount),
            status=DealStatus[rec.status.value] if rec.status else None,
            stage=rec.stage,
            probability=rec.probability,
            close_date=rec.close_date,
            company_id=rec.company_id,
            contact_ids=list(rec.contact_ids),
        )


@strawberry.type(description="A note attached to a contact, company or deal.")
class Note(relay.Node, Record):
    key: relay.NodeID[str]
    title: str | None = strawberry.field(description="Title, where the provider has one.")
    body: str | None = strawberry.field(description="The note's text.")
    author: str | None = strawberry.field(description="Who wrote it, as the provider names them.")
    target_entity: strawberry.Private[Any]
    target_id: strawberry.Private[str | None]

    @strawberry.field(
        description="The contact, company or deal the note is about.",
        metadata=cost.declare(cost.note_target),
    )
    async def target(
        self, info: Info
    ) -> (
        Annotated[
            Contact | Company | Deal,
            strawberry.union("NoteTarget", description="What a note can be attached to."),
        ]
        | None
    ):
        found = await links.target(self.record, info)
        node = None if found is None else to_node(found)
        return None if isinstance(node, Note) else node

    @classmethod
    def from_record(cls, rec: r.NoteRecord) -> Note:
        return cls(
            **_common(rec),
            title=rec.title,
            body=rec.body,
            author=rec.author,
            target_entity=rec.target_entity,
            target_id=rec.target_id,
        )


AnyNode = Contact | Company | Deal | Note


def to_node(rec: r.AnyRecord) -> AnyNode:
    """The GraphQL object for any record."""
    if isinstance(rec, r.ContactRecord):
        return Contact.from_record(rec)
    if isinstance(rec, r.CompanyRecord):
        return Company.from_record(rec)
    if isinstance(rec, r.DealRecord):
        return Deal.from_record(rec)
    return Note.from_record(rec)


@strawberry.enum(description="State of a provider's circuit breaker.")
class CircuitState(enum.Enum):
    CLOSED = strawberry.enum_value("CLOSED", description="Requests flow normally.")
    OPEN = strawberry.enum_value(
        "OPEN", description="It failed repeatedly: requests fail at once without being sent."
    )
    HALF_OPEN = strawberry.enum_value(
        "HALF_OPEN", description="Cooling down is over: the next request probes it."
    )


@strawberry.enum(description="How the gateway hears of changes made in a provider itself.")
class ChangeFeed(enum.Enum):
    WEBHOOK = strawberry.enum_value("WEBHOOK", description="The provider's webhooks tell it.")
    POLL = strawberry.enum_value("POLL", description="It polls what changed (`poll_interval`).")
    NONE = strawberry.enum_value(
        "NONE", description="Not at all: a cached read stays until its `cache_ttl` runs out."
    )


@strawberry.type(description="What a provider can do.")
class ProviderCapabilities:
    entities: list[EntityType] = strawberry.field(description="The record types it holds.")
    can_page_backward: bool = strawberry.field(
        description="Whether `last`/`before` work on its lists."
    )
    can_count: bool = strawberry.field(
        description="Whether its connections can fill `totalCount` (else it is null)."
    )
    writable: list[str] = strawberry.field(
        description="The writes it allows, e.g. `Contact.create`, `Contact.merge`, "
        "`Deal.restore`; the others answer UNSUPPORTED."
    )
    filters: list[str] = strawberry.field(
        description="What its lists filter on, as `Type.field:operator` (e.g. "
        "`Contact.lastName:eq`), plus `Type:or` where conditions combine with `or`."
    )
    sortable: list[str] = strawberry.field(
        description="What its lists sort by, as `Type.FIELD` (e.g. `Contact.LAST_NAME`)."
    )
    relationships: list[str] = strawberry.field(
        description="The relationship fields it can follow, e.g. `Contact.company`; "
        "the others answer UNSUPPORTED."
    )
    changes: ChangeFeed = strawberry.field(
        description="How changes made in the provider itself reach the gateway's caches "
        "(and its subscribers)."
    )


@strawberry.type(description="A configured provider instance.")
class Provider:
    name: str = strawberry.field(description="Instance name, used as the `provider` argument.")
    kind: str = strawberry.field(description="Which API it speaks, e.g. `revyops`.")
    display_name: str = strawberry.field(description="The product's name.")
    pagination_style: PaginationStyle = strawberry.field(
        description="How its API pages through lists."
    )
    capabilities: ProviderCapabilities = strawberry.field(description="What it can do.")
    circuit: CircuitState = strawberry.field(
        description="Its circuit breaker: CLOSED when healthy, OPEN while it is failing."
    )


@strawberry.type
class Counted:
    """`totalCount`, asked of the provider only when the query selects it."""

    total: strawberry.Private[int | None] = None
    counter: strawberry.Private[Callable[[], Awaitable[int | None]] | None] = None

    @strawberry.field(
        description="How many records the whole list holds; null when the provider cannot tell."
    )
    async def total_count(self) -> int | None:
        if self.total is None and self.counter is not None:
            return await self.counter()
        return self.total


def _connection_docs(type_name: str) -> str:
    return f"A page of {type_name} records (Relay connection)."


@strawberry.type(description=_connection_docs("Contact"))
class ContactConnection(relay.Connection[Contact], Counted):
    pass


@strawberry.type(description=_connection_docs("Company"))
class CompanyConnection(relay.Connection[Company], Counted):
    pass


@strawberry.type(description=_connection_docs("Deal"))
class DealConnection(relay.Connection[Deal], Counted):
    pass


@strawberry.type(description=_connection_docs("Note"))
class NoteConnection(relay.Connection[Note], Counted):
    pass


CONNECTIONS: dict[Entity, Any] = {
    Entity.CONTACT: ContactConnection,
    Entity.COMPANY: CompanyConnection,
    Entity.DEAL: DealConnection,
    Entity.NOTE: NoteConnection,
}
C = TypeVar("C", ContactConnection, CompanyConnection, DealConnection, NoteConnection)


def connection(cls: type[C], window: ConnectionSlice[r.AnyRecord]) -> C:
    """The GraphQL connection of a resolved window."""
    info = window.page_info
    nodes: list[Any] = [to_node(e.node) for e in window.edges]  # the type `cls` holds
    return cls(
        edges=[
            relay.Edge(cursor=e.cursor, node=n) for e, n in zip(window.edges, nodes, strict=True)
        ],
        page_info=relay.PageInfo(
            has_next_page=info.has_next_page,
            has_previous_page=info.has_previous_page,
            start_cursor=info.start_cursor,
            end_cursor=info.end_cursor,
        ),
        total=window.total_count,
        counter=window.count,
    )
