"""Records to GraphQL objects, in one step per record."""

from __future__ import annotations

from typing import Any, TypeVar

from strawberry import relay

from gateway import records as r
from gateway.pagination import ConnectionSlice
from schema import types as t


def _address(a: r.Address | None) -> t.Address | None:
    if a is None:
        return None
    return t.Address(
        street=a.street, city=a.city, region=a.region, postal_code=a.postal_code, country=a.country
    )


def _money(m: r.Money | None) -> t.Money | None:
    return None if m is None else t.Money(amount=m.amount, currency=m.currency)


def node_key(provider: str, remote_id: str) -> str:
    """The node id inside a global id: provider instance and remote id."""
    return f"{provider}:{remote_id}"


def _common(rec: r.Record) -> dict[str, Any]:
    return {
        "key": node_key(rec.provider, rec.remote_id),
        "provider": rec.provider,
        "remote_id": rec.remote_id,
        "created_at": rec.created_at,
        "updated_at": rec.updated_at,
        "record": rec,
    }


def contact(rec: r.ContactRecord) -> t.Contact:
    return t.Contact(
        **_common(rec),
        first_name=rec.first_name,
        last_name=rec.last_name,
        name=rec.name,
        title=rec.title,
        emails=[
            t.Email(address=e.address, type=e.type, is_primary=e.is_primary) for e in rec.emails
        ],
        phones=[t.Phone(number=p.number, type=p.type, is_primary=p.is_primary) for p in rec.phones],
        address=_address(rec.address),
        tags=list(rec.tags),
        status=rec.status,
        company_id=rec.company_id,
    )


def company(rec: r.CompanyRecord) -> t.Company:
    return t.Company(
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


def deal(rec: r.DealRecord) -> t.Deal:
    return t.Deal(
        **_common(rec),
        name=rec.name,
        amount=_money(rec.amount),
        status=t.DealStatus[rec.status.value] if rec.status else None,
        stage=rec.stage,
        probability=rec.probability,
        close_date=rec.close_date,
        company_id=rec.company_id,
        contact_ids=list(rec.contact_ids),
    )


def note(rec: r.NoteRecord) -> t.Note:
    return t.Note(
        **_common(rec),
        title=rec.title,
        body=rec.body,
        author=rec.author,
        target_entity=rec.target_entity,
        target_id=rec.target_id,
    )


AnyNode = t.Contact | t.Company | t.Deal | t.Note


def to_node(rec: r.AnyRecord) -> AnyNode:
    """The GraphQL object for any record."""
    if isinstance(rec, r.ContactRecord):
        return contact(rec)
    if isinstance(rec, r.CompanyRecord):
        return company(rec)
    if isinstance(rec, r.DealRecord):
        return deal(rec)
    return note(rec)


C = TypeVar("C", t.ContactConnection, t.CompanyConnection, t.DealConnection, t.NoteConnection)


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
