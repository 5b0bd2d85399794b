"""`filter:` and `orderBy:` inputs of the root connections, and their translation to a
`ListQuery` in unified field names (what each data source then maps to its API)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from types import GenericAlias
from typing import Annotated, Any, TypeVar

import strawberry

from gateway.errors import BadUserInput
from gateway.listquery import All, AnyOf, Cond, Expr, ListQuery, Sort
from gateway.records import Entity
from resolvers.globalids import parse_global_id

_U = strawberry.UNSET
T = TypeVar("T")


def _op(description: str) -> Any:
    """An optional input field: an operator, or the conditions on one field."""
    return strawberry.field(default=None, description=description)


def _combinable(description: str) -> Callable[[type[T]], type[T]]:
    """A list's filter input, given its fields: it also takes `and` and `or`, lists of
    filters of its own type."""

    def make(cls: type[T]) -> type[T]:
        for name, graphql_name, how in (("and_", "and", "All"), ("or_", "or", "Any")):
            cls.__annotations__[name] = f"list[{cls.__name__}] | None"
            field = strawberry.field(
                default=None, name=graphql_name, description=f"{how} of these."
            )
            setattr(cls, name, field)
        return strawberry.input(cls, description=description)

    return make


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


@_combinable("Which contacts to list; all given conditions must hold.")
class ContactFilter:
    first_name: StringFilter | None = _op("Given name.")
    last_name: StringFilter | None = _op("Family name.")
    email: StringFilter | None = _op("Primary email address.")
    status: StringFilter | None = _op("The provider's status.")
    company_id: IDFilter | None = _op("The contact's company.")
    created_at: DateTimeFilter | None = _op("Creation time.")


@_combinable("Which companies to list; all given conditions must hold.")
class CompanyFilter:
    name: StringFilter | None = _op("Company name.")
    domain: StringFilter | None = _op("Primary web domain.")
    industry: StringFilter | None = _op("Industry or category.")
    description: StringFilter | None = _op("Description.")
    created_at: DateTimeFilter | None = _op("Creation time.")


@_combinable("Which deals to list; all given conditions must hold.")
class DealFilter:
    name: StringFilter | None = _op("Deal name.")
    stage: StringFilter | None = _op("Pipeline stage.")
    amount: DecimalFilter | None = _op("Deal value.")
    company_id: IDFilter | None = _op("The deal's company.")
    created_at: DateTimeFilter | None = _op("Creation time.")


@_combinable("Which notes to list; all given conditions must hold.")
class NoteFilter:
    title: StringFilter | None = _op("Title.")
    body: StringFilter | None = _op("Text.")
    created_at: DateTimeFilter | None = _op("Creation time.")


@strawberry.enum(description="Sort direction.")
class SortDirection(enum.Enum):
    ASC = strawberry.enum_value("ASC", description="Smallest first.")
    DESC = strawberry.enum_value("DESC", description="Largest first.")


# Each list's sort keys: unified field -> its description.
SORT_FIELDS: dict[Entity, dict[str, str]] = {
    Entity.CONTACT: {
        "first_name": "Given name.",
        "last_name": "Family name.",
        "email": "Email address.",
        "created_at": "Creation time.",
        "updated_at": "Last change, where the providers sort by it.",
    },
    Entity.COMPANY: {
        "name": "Name.",
        "domain": "Web domain.",
        "industry": "Industry.",
        "created_at": "Creation time.",
        "updated_at": "Last change, where the providers sort by it.",
    },
    Entity.DEAL: {
        "name": "Name.",
        "stage": "Pipeline stage.",
        "amount": "Deal value.",
        "created_at": "Creation time.",
        "updated_at": "Last change, where the providers sort by it.",
    },
    Entity.NOTE: {"title": "Title.", "created_at": "Creation time."},
}
# The functional Enum API with a computed name, which mypy only accepts untyped.
_enum: Any = enum.Enum


def _order(entity: Entity) -> type:
    """`<Type>Order`, one sort key of a list of `entity`, with its `<Type>OrderField` enum."""
    noun = entity.value.title()
    values = {
        name.upper(): strawberry.enum_value(name, description=text)
        for name, text in SORT_FIELDS[entity].items()
    }
    fields = strawberry.enum(
        _enum(f"{noun}OrderField", values), description=f"Fields {entity.plural} sort by."
    )
    namespace = {
        "__annotations__": {"field": fields, "direction": SortDirection},
        "field": strawberry.field(description="What to sort by."),
        "direction": strawberry.field(default=SortDirection.ASC, description="Direction."),
    }
    return strawberry.input(
        type(f"{noun}Order", (), namespace), description=f"One sort key for {entity.plural}."
    )


# Each list's filter input and orderBy sort key.
FILTERS: dict[Entity, type] = {
    Entity.CONTACT: ContactFilter,
    Entity.COMPANY: CompanyFilter,
    Entity.DEAL: DealFilter,
    Entity.NOTE: NoteFilter,
}
LIST_INPUTS: dict[Entity, tuple[type, Any]] = {
    entity: (filter_type, _order(entity)) for entity, filter_type in FILTERS.items()
}


def list_arguments(entity: Entity, filter_docs: str) -> dict[str, object]:
    """The annotations of the `filter` and `orderBy` arguments of a list of `entity`, for
    resolvers made by a factory (Strawberry reads a resolver's annotations)."""
    filter_type, order = LIST_INPUTS[entity]
    return {
        "filter": Annotated[filter_type | None, strawberry.argument(description=filter_docs)],
        "order_by": Annotated[
            GenericAlias(list, order) | None,  # list[order]: `order` is made, not named
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


def _decimal(value: str, field: str) -> None:
    """BAD_USER_INPUT unless `value` is a number providers can compare with: some send it as
    a JSON number (a double), which has no infinity or NaN."""
    try:
        number = float(Decimal(value))
    except InvalidOperation:
        number = math.nan
    if not math.isfinite(number):
        raise BadUserInput(
            f"`filter.{field}` takes a decimal number, not {value!r}.", argument="filter"
        )


def _expr(data: Any, provider: str) -> Expr:
    """All the conditions of one filter object. Empty groups stay: `ListQuery` folds them
    (an `or` of nothing matches nothing, an empty object or `and` everything)."""
    parts: list[Expr] = []
    for f in dataclasses.fields(data):
        value = getattr(data, f.name)
        if value is None or value is _U:
            continue
        if f.name in ("and_", "or_"):
            nested = tuple(_expr(item, provider) for item in value)
            parts.append(All(nested) if f.name == "and_" else AnyOf(nested))
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
            elif isinstance(value, DecimalFilter) and op.name != "is_null":
                for number in operand if isinstance(operand, list) else [operand]:
                    _decimal(number, f.name)
            parts.append(Cond(f.name, OPERATOR_NAMES.get(op.name, op.name), operand))
    return All(tuple(parts))


def list_query(filter: Any, order_by: list[Any] | None, provider: str) -> ListQuery:
    """The unified query of a connection's `filter` and `orderBy` arguments."""
    expr = None if filter is None else _expr(filter, provider)
    order = tuple(
        Sort(item.field.value, item.direction is SortDirection.DESC) for item in order_by or []
    )
    return ListQuery(expr, order)
