"""Filters and orders of a list, in unified field names, before any provider sees them.

A filter is a tree: conditions (field, operator, value) combined with `and`
and `or`. A `ListQuery` holds it simplified (`simplify`): an `and` of nothing
matches everything, an `or` of nothing and an `in` of nothing match nothing.
So no data source translates an empty group or list (each API reads those its
own way), and a filter nothing can match is answered without asking anyone.
Each data source declares which fields take which operators, which fields
sort, and whether it can combine with `or`; `check` refuses anything else up
front with an error naming the operator, field and provider, because
filtering in memory behind the client's back would break pagination.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.errors import Unsupported

OPERATORS = ("eq", "neq", "in", "contains", "startsWith", "gt", "gte", "lt", "lte", "isNull")
# Fields holding a number, a reference or a time: compared, never matched as text.
VALUE_FIELDS = frozenset({"amount", "company_id", "created_at"})
COMPARISONS = frozenset(OPERATORS) - {"contains", "startsWith"}


@dataclass(frozen=True)
class Cond:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class All:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Expr, ...]


Expr = Cond | All | AnyOf

# The filter nothing matches (`or` of nothing); the one everything matches is None.
NOTHING = AnyOf(())


@dataclass(frozen=True)
class Sort:
    field: str
    descending: bool = False


@dataclass(frozen=True)
class ListQuery:
    """What to list: a filter (None: everything) and an order (empty: the provider's)."""

    filter: Expr | None = None
    order: tuple[Sort, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "filter", simplify(self.filter))

    def key(self) -> str:
        """A canonical text of the query: cursors are bound to it."""
        return json.dumps(
            {"f": _plain(self.filter), "o": [[s.field, s.descending] for s in self.order]},
            sort_keys=True,
            default=str,
            separators=(",", ":"),
        )

    @property
    def empty(self) -> bool:
        return self.filter is None and not self.order

    @property
    def matches_nothing(self) -> bool:
        return self.filter == NOTHING


def _plain(expr: Expr | None) -> Any:
    if expr is None:
        return None
    if isinstance(expr, Cond):
        return [expr.field, expr.op, expr.value]
    return {"and" if isinstance(expr, All) else "or": [_plain(p) for p in expr.parts]}


def conditions(expr: Expr | None) -> list[Cond]:
    if expr is None:
        return []
    if isinstance(expr, Cond):
        return [expr]
    return [c for part in expr.parts for c in conditions(part)]


@dataclass(frozen=True)
class QuerySupport:
    """What one provider can filter and sort on one entity's list."""

    operators: dict[str, frozenset[str]]  # unified field -> operators
    sortable: frozenset[str] = frozenset()
    can_or: bool = False
    can_nest: bool = False  # and inside or (or the other way round)
    # How its upstream sort orders, which lists merged across providers must match:
    # where nulls go ("largest": last ascending, first descending; "last": last both ways),
    # and whether text compares lowercased.
    sort_nulls: str = "largest"
    sort_casefold: bool = False
    max_sorts: int | None = None  # sort keys one order may have (None: any number)

    @classmethod
    def by_parameters(
        cls, names: Iterable[tuple[str, str]], sortable: frozenset[str] = frozenset()
    ) -> QuerySupport:
        """What an API filters with one query parameter per (field, operator), AND-ed
        (see `parameters`)."""
        operators: dict[str, frozenset[str]] = {}
        for field, op in names:
            operators[field] = operators.get(field, frozenset()) | {op}
        return cls(operators, sortable=sortable)

    @classmethod
    def every_operator(
        cls,
        fields: Iterable[str],
        sortable: frozenset[str] = frozenset(),
        can_or: bool = False,
        can_nest: bool = False,
        sort_nulls: str = "largest",
        max_sorts: int | None = None,
    ) -> QuerySupport:
        """Every operator on each of `fields`, as an API that filters on any column does:
        comparisons only on VALUE_FIELDS, text matching too on the others."""
        operators = {f: COMPARISONS if f in VALUE_FIELDS else frozenset(OPERATORS) for f in fields}
        return cls(
            operators,
            sortable=sortable,
            can_or=can_or,
            can_nest=can_nest,
            sort_nulls=sort_nulls,
            max_sorts=max_sorts,
        )

    def check(self, query: ListQuery, where: str, provider: str) -> None:
        """Unsupported, naming what, unless the provider can do all of `query`."""
        for cond in conditions(query.filter):
            allowed = self.operators.get(cond.field)
            name = camel(cond.field)
            if allowed is None:
                known = ", ".join(sorted(camel(f) for f in self.operators))
                raise Unsupported(
                    f"{where} cannot filter on `{name}`"
                    + (f"; it filters on {known}." if known else "."),
                    provider=provider,
                )
            if cond.op not in allowed:
                supported = ", ".join(o for o in OPERATORS if o in allowed)
                raise Unsupported(
                    f"{where} cannot apply `{cond.op}` to `{name}`; it supports {supported} there.",
                    provider=provider,
                )
        if _uses_or(query.filter) and not self.can_or:
            raise Unsupported(f"{where} cannot combine filters with `or`.", provider=provider)
        if _nested(query.filter) and not self.can_nest:
            raise Unsupported(
                f"{where} cannot nest `and` inside `or` (or `or` inside `and`).", provider=provider
            )
        if self.max_sorts is not None and len(query.order) > self.max_sorts:
            raise Unsupported(
                f"{where} cannot sort by more than {self.max_sorts} field(s) at once.",
                provider=provider,
            )
        for sort in query.order:
            if sort.field not in self.sortable:
                known = ", ".join(sorted(f.upper() for f in self.sortable))
                raise Unsupported(
                    f"{where} cannot order by {sort.field.upper()}"
                    + (f"; it orders by {known}." if known else "."),
                    provider=provider,
                )


def parameters(query: ListQuery, names: Mapping[tuple[str, str], str]) -> dict[str, str]:
    """A filter checked against `QuerySupport.by_parameters(names)` as the API's query
    parameters: the parameter `names` gives each (field, operator), times in ISO 8601."""
    params: dict[str, str] = {}
    for cond in conditions(query.filter):
        value = cond.value
        text = value.isoformat() if isinstance(value, datetime) else str(value)
        params[names[(cond.field, cond.op)]] = text
    return params


def snake(name: str) -> str:
    """A camelCase name in snake_case: `startsWith` as `starts_with`."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def camel(name: str) -> str:
    """A snake_case name in camelCase: a unified field as the GraphQL input names it."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _uses_or(expr: Expr | None) -> bool:
    if expr is None or isinstance(expr, Cond):
        return False
    return (isinstance(expr, AnyOf) and len(expr.parts) > 1) or any(_uses_or(p) for p in expr.parts)


def _nested(expr: Expr | None) -> bool:
    """Whether and and or mix (in the simplified filter: same-kind groups are merged)."""
    if expr is None or isinstance(expr, Cond):
        return False
    return any(not isinstance(p, Cond) for p in expr.parts)


def simplify(expr: Expr | None) -> Expr | None:
    """The same filter with its constants folded: None when it matches everything, NOTHING
    when it matches nothing, else a tree without empty groups or empty `in`, one-part groups
    unwrapped and same-kind groups merged."""
    if expr is None:
        return None
    if isinstance(expr, Cond):
        return NOTHING if expr.op == "in" and not expr.value else expr
    kind = type(expr)
    parts: list[Expr] = []
    for part in expr.parts:
        flat = simplify(part)
        if flat is None or flat == NOTHING:
            # A constant decides an `or` when true and an `and` when false; else it drops out.
            if (flat is None) is (kind is AnyOf):
                return flat
            continue
        parts.extend(flat.parts if isinstance(flat, kind) else (flat,))
    if not parts:
        return None if kind is All else NOTHING
    return parts[0] if len(parts) == 1 else kind(tuple(parts))


# --- applied by the gateway, to a list it holds whole --------------------------------------
#
# Nested connections fetch a parent's whole child list (APIs filter by parent, not page per
# parent), so their filters and orders can be applied exactly here. Text `eq`/`in` compare
# exactly; `contains` and `startsWith` ignore case; ranges compare typed values.


def _matches(value: Any, op: str, operand: Any) -> bool:
    if op == "isNull":
        return (value is None or value == "") == bool(operand)
    if value is None:
        return op == "neq"
    if op == "contains":
        return str(operand).lower() in str(value).lower()
    if op == "startsWith":
        return str(value).lower().startswith(str(operand).lower())
    if op == "in":
        return any(_matches(value, "eq", item) for item in operand)
    left, right = _comparable(value, operand)
    if op == "eq":
        return bool(left == right)
    if op == "neq":
        return bool(left != right)
    try:
        return bool(
            {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]
        )
    except TypeError:
        return False


def _comparable(value: Any, operand: Any) -> tuple[Any, Any]:
    if isinstance(value, Decimal):
        try:
            return value, Decimal(str(operand))
        except InvalidOperation:
            return str(value), str(operand)
    return value, operand


def evaluate(expr: Expr | None, value_of: Callable[[str], Any]) -> bool:
    """Whether a record, read through `value_of(field)`, passes the filter."""
    if expr is None:
        return True
    if isinstance(expr, All):
        return all(evaluate(p, value_of) for p in expr.parts)
    if isinstance(expr, AnyOf):
        return any(evaluate(p, value_of) for p in expr.parts)
    return _matches(value_of(expr.field), expr.op, expr.value)


def _key(value_of: Callable[[Any, str], Any], name: str) -> Callable[[Any], Any]:
    return lambda item: value_of(item, name)


def arrange(items: list[Any], query: ListQuery, value_of: Callable[[Any, str], Any]) -> list[Any]:
    """`items` filtered and ordered as `query` says (`value_of(item, field)`); nulls last."""

    def reader(item: Any) -> Callable[[str], Any]:
        return lambda name: value_of(item, name)

    kept = [i for i in items if evaluate(query.filter, reader(i))]
    for sort in reversed(query.order):
        present = [i for i in kept if value_of(i, sort.field) is not None]
        missing = [i for i in kept if value_of(i, sort.field) is None]
        present.sort(key=_key(value_of, sort.field), reverse=sort.descending)
        kept = present + missing
    return kept
