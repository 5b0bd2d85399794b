"""The unified CRM types. Scalar fields are plain attributes, set once from a record."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from gateway.records import CompanyRecord, Entity, Link
from resolvers.context import Info
from schema import filters as f

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


def _company(record: Any, info: Info, link: Link, remote_id: str | None) -> Any:
    """A to-one company link: the object itself when this request already looked it up (a
    sync resolver: no coroutine, no task per node), else the awaitable lookup."""
    from resolvers.loaders import NOT_READY
    from resolvers.queries import ready_link
    from schema import convert, links

    found = ready_link(info.context, record.provider, link, Entity.COMPANY, remote_id)
    if found is NOT_READY:
        return links.one(record, info, link, remote_id)
    return convert.company(found) if isinstance(found, CompanyRecord) else None


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

    @strawberry.field(description="The company the contact belongs to; null if none.")
    def company(self, info: Info) -> Company | None:
        # The object, or an awaitable of it: graphql-core awaits what needs awaiting.
        found: Company | None = _company(self.record, info, Link.CONTACT_COMPANY, self.company_id)
        return found

    @strawberry.field(description="The contact's deals.")
    async def deals(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            f.DealFilter | None,
            strawberry.argument(
                description="Only these (applied by the gateway to the whole list)."
            ),
        ] = None,
        order_by: Annotated[
            list[f.DealOrder] | None,
            strawberry.argument(description="Sort keys, most significant first."),
        ] = None,
    ) -> DealConnection | None:
        from schema import links

        query = f.list_query(filter, order_by, self.provider)
        return await links.connection(
            DealConnection, self.record, info, Link.CONTACT_DEALS, first, after, last, before, query
        )

    @strawberry.field(description="Notes about the contact.")
    async def notes(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            f.NoteFilter | None,
            strawberry.argument(
                description="Only these (applied by the gateway to the whole list)."
            ),
        ] = None,
        order_by: Annotated[
            list[f.NoteOrder] | None,
            strawberry.argument(description="Sort keys, most significant first."),
        ] = None,
    ) -> NoteConnection | None:
        from schema import links

        query = f.list_query(filter, order_by, self.provider)
        return await links.connection(
            NoteConnection, self.record, info, Link.CONTACT_NOTES, first, after, last, before, query
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

    @strawberry.field(description="The company's contacts.")
    async def contacts(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            f.ContactFilter | None,
            strawberry.argument(
                description="Only these (applied by the gateway to the whole list)."
            ),
        ] = None,
        order_by: Annotated[
            list[f.ContactOrder] | None,
            strawberry.argument(description="Sort keys, most significant first."),
        ] = None,
    ) -> ContactConnection | None:
        from schema import links

        query = f.list_query(filter, order_by, self.provider)
        return await links.connection(
            ContactConnection,
            self.record,
            info,
            Link.COMPANY_CONTACTS,
            first,
            after,
            last,
            before,
            query,
        )

    @strawberry.field(description="The company's deals.")
    async def deals(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            f.DealFilter | None,
            strawberry.argument(
                description="Only these (applied by the gateway to the whole list)."
            ),
        ] = None,
        order_by: Annotated[
            list[f.DealOrder] | None,
            strawberry.argument(description="Sort keys, most significant first."),
        ] = None,
    ) -> DealConnection | None:
        from schema import links

        query = f.list_query(filter, order_by, self.provider)
        return await links.connection(
            DealConnection, self.record, info, Link.COMPANY_DEALS, first, after, last, before, query
        )

    @strawberry.field(description="Notes about the company.")
    async def notes(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            f.NoteFilter | None,
            strawberry.argument(
                description="Only these (applied by the gateway to the whole list)."
            ),
        ] = None,
        order_by: Annotated[
            list[f.NoteOrder] | None,
            strawberry.argument(description="Sort keys, most significant first."),
        ] = None,
    ) -> NoteConnection | None:
        from schema import links

        query = f.list_query(filter, order_by, self.provider)
        return await links.connection(
            NoteConnection, self.record, info, Link.COMPANY_NOTES, first, after, last, before, query
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

    @strawberry.field(description="The company the deal is with; null if none.")
    def company(self, info: Info) -> Company | None:
        # The object, or an awaitable of it: graphql-core awaits what needs awaiting.
        found: Company | None = _company(self.record, info, Link.DEAL_COMPANY, self.company_id)
        return found

    @strawberry.field(description="The people on the deal.")
    async def contacts(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            f.ContactFilter | None,
            strawberry.argument(
                description="Only these (applied by the gateway to the whole list)."
            ),
        ] = None,
        order_by: Annotated[
            list[f.ContactOrder] | None,
            strawberry.argument(description="Sort keys, most significant first."),
        ] = None,
    ) -> ContactConnection | None:
        from schema import links

        query = f.list_query(filter, order_by, self.provider)
        return await links.connection(
            ContactConnection,
            self.record,
            info,
            Link.DEAL_CONTACTS,
            first,
            after,
            last,
            before,
            query,
        )

    @strawberry.field(description="Notes about the deal.")
    async def notes(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            f.NoteFilter | None,
            strawberry.argument(
                description="Only these (applied by the gateway to the whole list)."
            ),
        ] = None,
        order_by: Annotated[
            list[f.NoteOrder] | None,
            strawberry.argument(description="Sort keys, most significant first."),
        ] = None,
    ) -> NoteConnection | None:
        from schema import links

        query = f.list_query(filter, order_by, self.provider)
        return await links.connection(
            NoteConnection, self.record, info, Link.DEAL_NOTES, first, after, last, before, query
        )


@strawberry.type(description="A note attached to a contact, company or deal.")
class Note(relay.Node, Record):
    key: relay.NodeID[str]
    title: str | None = strawberry.field(description="Title, where the provider has one.")
    body: str | None = strawberry.field(description="The note's text.")
    author: str | None = strawberry.field(description="Who wrote it, as the provider names them.")
    target_entity: strawberry.Private[Any]
    target_id: strawberry.Private[str | None]

    @strawberry.field(description="The contact, company or deal the note is about.")
    async def target(
        self, info: Info
    ) -> (
        Annotated[
            Contact | Company | Deal,
            strawberry.union("NoteTarget", description="What a note can be attached to."),
        ]
        | None
    ):
        from schema import links

        return await links.target(self.record, info)


@strawberry.enum(description="State of a provider's circuit breaker.")
class CircuitState(enum.Enum):
    CLOSED = strawberry.enum_value("CLOSED", description="Requests flow normally.")
    OPEN = strawberry.enum_value(
        "OPEN", description="It failed repeatedly: requests fail at once without being sent."
    )
    HALF_OPEN = strawberry.enum_value(
        "HALF_OPEN", description="Cooling down is over: the next request probes it."
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
