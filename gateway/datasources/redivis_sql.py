"""The GoogleSQL text of Redivis queries (contract §7's subset): conditions from unified
filters, `ORDER BY` lists, and literals that mean exactly their value.

Every value a client or a cursor supplies reaches the query only as a literal written
here, so none can end its literal and run as SQL.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.errors import BadUserInput
from gateway.listquery import All, AnyOf, Expr, Sort

COMPARE = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def condition(expr: Expr) -> str:
    """A filter (or a keyset's condition) on unified fields, which are Redivis's columns."""
    if isinstance(expr, All | AnyOf):
        joiner = " AND " if isinstance(expr, All) else " OR "
        return "(" + joiner.join(condition(part) for part in expr.parts) + ")"
    column, value = expr.field, expr.value
    if column == "amount" and expr.op not in ("isNull", "in"):
        value = _number(value)
    if expr.op == "isNull":
        return f"{column} IS {'' if value else 'NOT '}NULL"
    if expr.op == "in":
        values = [_number(v) if column == "amount" else v for v in value]
        return f"{column} IN ({', '.join(_value(v) for v in values)})"
    if expr.op == "contains":
        return f"LOWER({column}) LIKE {literal('%' + _like_text(str(value).lower()) + '%')}"
    if expr.op == "startsWith":
        return f"LOWER({column}) LIKE {literal(_like_text(str(value).lower()) + '%')}"
    return f"{column} {COMPARE[expr.op]} {_value(value)}"


def order_by(order: Sequence[Sort]) -> str:
    """An `ORDER BY` list (without the words) of unified fields."""
    return ", ".join(f"{s.field} {'DESC' if s.descending else 'ASC'}" for s in order)


def _value(value: Any) -> str:
    if isinstance(value, datetime):
        return literal(value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # finite (see _number): digits, `.`, `e` and a sign only
    return literal(str(value))


def _number(value: Any) -> float:
    """An amount operand as a finite float; anything else is the client's mistake."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise BadUserInput(
            f"`filter.amount` takes a decimal number, not {value!r}.", argument="filter"
        )
    return number


# GoogleSQL (BigQuery) string literals: a backslash escapes, `''` does not (it would end
# the literal and let the rest of the value run as SQL), and no raw newline is allowed.
_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if unicodedata.category(ch) == "Cc":  # NUL and other controls: never raw in the query
        return f"\\x{ord(ch):02x}"  # every Cc is below U+00A0
    if unicodedata.category(ch) == "Cs":
        # A lone surrogate is not text: it cannot be sent as UTF-8, nor escaped in GoogleSQL.
        raise BadUserInput("A filter value holds a lone UTF-16 surrogate.", argument="filter")
    return ch


def literal(value: str) -> str:
    """`value` as a quoted GoogleSQL string literal that means exactly `value`."""
    return "'" + "".join(_escape(ch) for ch in value) + "'"


def _like_text(value: str) -> str:
    """`value` for inside a LIKE pattern, its `%`, `_` and backslashes matching themselves."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
