"""Plain records: what data sources return, and what the schema builds GraphQL objects from.

They know no GraphQL. Relationships are held as remote ids; the resolvers turn
them into objects through loaders.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any


class Entity(enum.StrEnum):
    CONTACT = "contact"
    COMPANY = "company"
    DEAL = "deal"
    NOTE = "note"

    @property
    def plural(self) -> str:
        """The entity's name for many of them, as messages say it."""
        return "companies" if self is Entity.COMPANY else f"{self.value}s"


class Link(enum.StrEnum):
    """A relationship between records, named by the field that follows it."""

    CONTACT_COMPANY = "Contact.company"
    CONTACT_DEALS = "Contact.deals"
    CONTACT_NOTES = "Contact.notes"
    COMPANY_CONTACTS = "Company.contacts"
    COMPANY_DEALS = "Company.deals"
    COMPANY_NOTES = "Company.notes"
    DEAL_COMPANY = "Deal.company"
    DEAL_CONTACTS = "Deal.contacts"
    DEAL_NOTES = "Deal.notes"
    NOTE_TARGET = "Note.target"


# Links read from ids the record holds (by-id lookups); the others are child lists.
TO_ONE = frozenset({Link.CONTACT_COMPANY, Link.DEAL_COMPANY, Link.NOTE_TARGET})
PARENT_ENTITY = {
    Link.CONTACT_DEALS: Entity.CONTACT,
    Link.CONTACT_NOTES: Entity.CONTACT,
    Link.COMPANY_CONTACTS: Entity.COMPANY,
    Link.COMPANY_DEALS: Entity.COMPANY,
    Link.COMPANY_NOTES: Entity.COMPANY,
    Link.DEAL_CONTACTS: Entity.DEAL,
    Link.DEAL_NOTES: Entity.DEAL,
}
CHILD_ENTITY = {
    Link.CONTACT_DEALS: Entity.DEAL,
    Link.CONTACT_NOTES: Entity.NOTE,
    Link.COMPANY_CONTACTS: Entity.CONTACT,
    Link.COMPANY_DEALS: Entity.DEAL,
    Link.COMPANY_NOTES: Entity.NOTE,
    Link.DEAL_CONTACTS: Entity.CONTACT,
    Link.DEAL_NOTES: Entity.NOTE,
}


class DealStatus(enum.StrEnum):
    OPEN = "OPEN"
    WON = "WON"
    LOST = "LOST"
    OTHER = "OTHER"


@dataclass(frozen=True)
class Email:
    address: str
    type: str | None = None
    is_primary: bool = False


@dataclass(frozen=True)
class Phone:
    number: str
    type: str | None = None
    is_primary: bool = False


@dataclass(frozen=True)
class Address:
    street: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class Money:
    amount: str  # a decimal as text, so no float rounding reaches the client
    currency: str | None = None


@dataclass
class Record:
    """What every record has: where it lives, its provider timestamps, its raw payload."""

    provider: str
    remote_id: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    custom_fields: dict[str, Any] = field(default_factory=dict)
    remote_data: dict[str, Any] = field(default_factory=dict)
    # Ids of related records the API sent inline with this one (e.g. Attio's
    # `associated_deals`): following such a link needs no list request.
    linked: dict[Link, list[str]] = field(default_factory=dict)
    # Unified fields of a to-one linked record the API sent inline (hasteCRM's contact
    # `company {id, name}`: {Link.CONTACT_COMPANY: {"name": ...}}): a selection asking
    # only for those needs no lookup.
    inline: dict[Link, dict[str, Any]] = field(default_factory=dict)

    entity: Entity = field(init=False, default=Entity.CONTACT)


@dataclass
class ContactRecord(Record):
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    title: str | None = None
    emails: list[Email] = field(default_factory=list)
    phones: list[Phone] = field(default_factory=list)
    address: Address | None = None
    tags: list[str] = field(default_factory=list)
    status: str | None = None
    company_id: str | None = None

    entity: Entity = field(init=False, default=Entity.CONTACT)


@dataclass
class CompanyRecord(Record):
    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    description: str | None = None
    employee_count: int | None = None
    annual_revenue: Money | None = None
    address: Address | None = None
    tags: list[str] = field(default_factory=list)

    entity: Entity = field(init=False, default=Entity.COMPANY)


@dataclass
class DealRecord(Record):
    name: str | None = None
    amount: Money | None = None
    status: DealStatus | None = None
    stage: str | None = None
    probability: float | None = None
    close_date: date | None = None
    company_id: str | None = None
    contact_ids: list[str] = field(default_factory=list)

    entity: Entity = field(init=False, default=Entity.DEAL)


@dataclass
class NoteRecord(Record):
    title: str | None = None
    body: str | None = None
    author: str | None = None
    target_entity: Entity | None = None
    target_id: str | None = None

    entity: Entity = field(init=False, default=Entity.NOTE)


AnyRecord = ContactRecord | CompanyRecord | DealRecord | NoteRecord


def full_name(first: str | None, last: str | None) -> str | None:
    """`first last`, or whichever part exists, or None."""
    parts = [p for p in (first, last) if p]
    return " ".join(parts) or None


def field_value(record: Record, name: str) -> Any:
    """A unified field of a record, as filters and orders see it: an email is its first
    address, an amount its decimal value."""
    if name == "email":
        emails = getattr(record, "emails", [])
        return emails[0].address if emails else None
    if name == "amount":
        amount = getattr(record, "amount", None)
        return None if amount is None else Decimal(amount.amount)
    return getattr(record, name, None)
