"""`filter:` and `orderBy:` inputs of the root connections, and their translation to a
`ListQuery` in unified field names (what each data source then maps to its API)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Annotated, Any

import strawberry

from gateway.errors import BadUserInput
from gateway.listquery import All, AnyOf, Cond, Expr, ListQuery, Sort
from gateway.records import Entity
from resolvers.globalids import parse_global_id

_U = strawberry.UNSET


def _op(description: str) -> Any:
    """An optional input field: an operator, or the conditions on one field."""
    return strawberry.field(default=None, description=description)


@strawberry.input(description="Conditions on a text field; several are all required.")
class StringFilter:
    eq: str | None = _op("Equal to.")
    neq: str | None = _op("Not equal to.")
    in_: list[str] | None = strawberry.field(default=None, name="in", description="One of.")
    contains: str | None = _op("Contains (case-insensitive where the provider is).")
    starts_with: str | None = _op("Starts with.")
    gt: str | None = _op("Greater than.")
    gte: str | None = _op("Greater than or equal to.")
    lt: str | None = _op("Less than.")
    lte: str | None = _op("Less than or equal to.")
    is_null: bool | None = _op("true: the field is empty; false: it is set.")


@strawberry.input(description="Conditions on a reference to another record (global ids).")
class IDFilter:
    eq: strawberry.ID | None = _op("The record with this global id.")
    neq: strawberry.ID | None = _op("Not this record.")
    in_: list[strawberry.ID] | None = strawberry.field(
        default=None, name="in", description="One of these records."
    )
    is_null: bool | None = _op("true: no record is referenced; false: one is.")


@strawberry.input(description="Conditions on a date-time field.")
class DateTimeFilter:
    eq: dt.datetime | None = _op("At this instant.")
    neq: dt.datetime | None = _op("Not at this instant.")
    gt: dt.datetime | None = _op("After.")
    gte: dt.datetime | None = _op("At or after.")
    lt: dt.datetime | None = _op("Before.")
    lte: dt.datetime | None = _op("At or before.")
    is_null: bool | None = _op("true: not set; false: set.")


@strawberry.input(description="Conditions on a decimal amount, given as a decimal string.")
class DecimalFilter:
    eq: str | None = _op("Equal to.")
    neq: str | None = _op("Not equal to.")
    in_: list[str] | None = strawberry.field(default=None, name="in", description="One of.")
    gt: str | None = _op("Greater than.")
    gte: str | None = _op("Greater than or equal to.")
    lt: str | None = _op("Less than.")
    lte: str | None = _op("Less than or equal to.")
    is_null: bool | None = _op("true: not set; false: set.")


@strawberry.input(description="Which contacts to list; all given conditions must hold.")
class ContactFilter:
    first_name: StringFilter | None = _op("Given name.")
    last_name: StringFilter | None = _op("Family name.")
    email: StringFilter | None = _op("Primary email address.")
    status: StringFilter | None = _op("The provider's status.")
    company_id: IDFilter | None = _op("The contact's company.")
    created_at: DateTimeFilter | None = _op("Creation time.")
    and_: list[ContactFilter] | None = strawberry.field(
        default=None, name="and", description="All of these."
    )
    or_: list[ContactFilter] | None = strawberry.field(
        default=None, name="or", description="Any of these."
    )


@strawberry.input(description="Which companies to list; all given conditions must hold.")
class CompanyFilter:
    name: StringFilter | None = _op("Company name.")
    domain: StringFilter | None = _op("Primary web domain.")
    industry: StringFilter | None = _op("Industry or category.")
    description: StringFilter | None = _op("Description.")
    created_at: DateTimeFilter | None = _op("Creation time.")
    and_: list[CompanyFilter] | None = strawberry.field(
        default=None, name="and", description="All of these."
    )
    or_: list[CompanyFilter] | None = strawberry.field(
        default=None, name="or", description="Any of these."
    )


@strawberry.input(description="Which deals to list; all given conditions must hold.")
class DealFilter:
    name: StringFilter | None = _op("Deal name.")
    stage: StringFilter | None = _op("Pipeline stage.")
    amount: DecimalFilter | None = _op("Deal value.")
    company_id: IDFilter | None = _op("The deal's company.")
    created_at: DateTimeFilter | None = _op("Creation time.")
    and_: list[DealFilter] | None = strawberry.field(
        default=None, name="and", description="All of these."
    )
    or_: list[DealFilter] | None = strawberry.field(
        default=None, name="or", description="Any of these."
    )


@strawberry.input(description="Which notes to list; all given conditions must hold.")
class NoteFilter:
    title: StringFilter | None = _op("Title.")
    body: StringFilter | None = _op("Text.")
    created_at: DateTimeFilter | None = _op("Creation time.")
    and_: list[NoteFilter] | None = strawberry.field(
        default=None, name="and", description="All of these."
    )
    or_: list[NoteFilter] | None = strawberry.field(
        default=None, name="or", description="Any of these."
    )


@strawberry.enum(description="Sort direction.")
class SortDirection(enum.Enum):
    ASC = strawberry.enum_value("ASC", description="Smallest first.")
    DESC = strawberry.enum_value("DESC", description="Largest first.")


@strawberry.enum(description="Fields contacts sort by.")
class ContactOrderField(enum.Enum):
    FIRST_NAME = strawberry.enum_value("first_name", description="Given name.")
    LAST_NAME = strawberry.enum_value("last_name", description="Family name.")
    EMAIL = strawberry.enum_value("email", description="Email address.")
    CREATED_AT = strawberry.enum_value("created_at", description="Creation time.")


@strawberry.enum(description="Fields companies sort by.")
class CompanyOrderField(enum.Enum):
    NAME = strawberry.enum_value("name", description="Name.")
    DOMAIN = strawberry.enum_value("domain", description="Web domain.")
    INDUSTRY = strawberry.enum_value("industry", description="Industry.")
    CREATED_AT = strawberry.enum_value("created_at", description="Creation time.")


@strawberry.enum(description="Fields deals sort by.")
class DealOrderField(enum.Enum):
    NAME = strawberry.enum_value("name", description="Name.")
    STAGE = strawberry.enum_value("stage", description="Pipeline stage.")
    AMOUNT = strawberry.enum_value("amount", description="Deal value.")
    CREATED_AT = strawberry.enum_value("created_at", description="Creation time.")


@strawberry.enum(description="Fields notes sort by.")
class NoteOrderField(enum.Enum):
    TITLE = strawberry.enum_value("title", description="Title.")
    CREATED_AT = strawberry.enum_value("created_at", description="Creation time.")


@strawberry.input(description="One sort key for contacts.")
class ContactOrder:
    field: ContactOrderField = strawberry.field(description="What to sort by.")
    direction: SortDirection = strawberry.field(default=SortDirection.ASC, description="Direction.")


@strawberry.input(description="One sort key for companies.")
class CompanyOrder:
    field: CompanyOrderField = strawberry.field(description="What to sort by.")
    direction: SortDirection = strawberry.field(default=SortDirection.ASC, description="Direction.")


@strawberry.input(description="One sort key for deals.")
class DealOrder:
    field: DealOrderField = strawberry.field(description="What to sort by.")
    direction: SortDirection = strawberry.field(default=SortDirection.ASC, description="Direction.")


@strawberry.input(description="One sort key for notes.")
class NoteOrder:
    field: NoteOrderField = strawberry.field(description="What to sort by.")
    direction: SortDirection = strawberry.field(default=SortDirection.ASC, description="Direction.")


# Each list's filter input and orderBy type.
LIST_INPUTS: dict[Entity, tuple[type, Any]] = {
    Entity.CONTACT: (ContactFilter, list[ContactOrder]),
    Entity.COMPANY: (CompanyFilter, list[CompanyOrder]),
    Entity.DEAL: (DealFilter, list[DealOrder]),
    Entity.NOTE: (NoteFilter, list[NoteOrder]),
}


def list_arguments(entity: Entity, filter_docs: str) -> dict[str, object]:
    """The annotations of the `filter` and `orderBy` arguments of a list of `entity`, for
    resolvers made by a factory (Strawberry reads a resolver's annotations)."""
    filter_type, orders = LIST_INPUTS[entity]
    return {
        "filter": Annotated[filter_type | None, strawberry.argument(description=filter_docs)],
        "order_by": Annotated[
            orders | None,
            strawberry.argument(description="Sort keys, most significant first."),
        ],
    }


# --- to a ListQuery ---------------------------------------------------------------------

OPERATOR_NAMES = {"in_": "in", "starts_with": "startsWith", "is_null": "isNull"}
REFERENCE_FIELDS = {"company_id": Entity.COMPANY}


def _reference(value: Any, field: str, provider: str) -> str:
    entity, owner, remote_id = parse_global_id(str(value), "filter")
    if entity is not REFERENCE_FIELDS[field] or owner != provider:
        raise BadUserInput(
            f"`filter.{field}` takes ids of {REFERENCE_FIELDS[field].value}s of provider "
            f"{provider!r}.",
            argument="filter",
        )
    return remote_id


def _expr(data: Any, provider: str) -> Expr | None:
    parts: list[Expr] = []
    for f in dataclasses.fields(data):
        value = getattr(data, f.name)
        if value is None or value is _U:
            continue
        if f.name in ("and_", "or_"):
            nested = [e for e in (_expr(item, provider) for item in value) if e is not None]
            if nested:
                parts.append(All(tuple(nested)) if f.name == "and_" else AnyOf(tuple(nested)))
            continue
        for op in dataclasses.fields(value):
            operand = getattr(value, op.name)
            if operand is None or operand is _U:
                continue
            if f.name in REFERENCE_FIELDS and op.name != "is_null":
                operand = (
                    [_reference(v, f.name, provider) for v in operand]
                    if isinstance(operand, list)
                    else _reference(operand, f.name, provider)
                )
            parts.append(Cond(f.name, OPERATOR_NAMES.get(op.name, op.name), operand))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else All(tuple(parts))


def list_query(filter: Any, order_by: list[Any] | None, provider: str) -> ListQuery:
    """The unified query of a connection's `filter` and `orderBy` arguments."""
    expr = None if filter is None else _expr(filter, provider)
    order = tuple(
        Sort(item.field.value, item.direction is SortDirection.DESC) for item in order_by or []
    )
    return ListQuery(expr, order)
