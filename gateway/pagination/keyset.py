"""Keyset reads of a list sorted by one key that may be null, from an API that sorts and
filters (SQL `ORDER BY`, `WHERE`) but has no say over where its nulls go.

The list's order is the merged lists' (`merge.order_key`): the key in its direction, nulls
larger than every value (after them ascending, before them descending), then the record's
id ascending; read the other way (`reverse`), all of it turns round. Nulls go where the
API's SQL dialect puts them, so the list is read as two *segments*, each one upstream sort
without a null in its keys: the records whose key is set, by (key, id), and those whose key
is null, by id, in the order the nulls take. A position is a record's key and id as one
text (`Keyset.key`), which the sequential engine keeps as the edge's key; the records after
it are the rest of its own segment (a keyset condition on (key, id)) and the next segment
whole.

Conditions are `gateway.listquery` expressions on unified field names (and the id), for a
data source to translate as it translates filters. One key only: with two, records whose
first key is equal and second null fall between records whose second key is set, which no
split into upstream sorts without nulls can give.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from gateway.errors import BadUserInput
from gateway.listquery import All, AnyOf, Cond, Expr, Sort, simplify


@dataclass(frozen=True)
class Segment:
    """Records of the list read in one upstream sort: which (`where`) and how (`order`,
    most significant first, ending with the id)."""

    where: Expr
    order: tuple[Sort, ...]


class Keyset:
    """The segments of a list sorted by `sort` (then `id_field`), from its start or after
    a position."""

    def __init__(self, sort: Sort, id_field: str = "id") -> None:
        self.sort = sort
        self.id_field = id_field

    def key(self, value: Any, remote_id: str) -> str:
        """The position of the record with key `value` and id `remote_id`, as text."""
        return f"{_text(value)}~{remote_id}"

    def position(self, key: str) -> tuple[Any, str]:
        """The key value and id of a position `key` gave; BAD_USER_INPUT for anything else
        (only a holder of the cursor secret could send one)."""
        text, mark, remote_id = key.partition("~")
        try:
            if not (mark and remote_id):
                raise ValueError(key)
            return _value(text), remote_id
        except (ValueError, ArithmeticError):  # ArithmeticError: a bad decimal or time
            raise BadUserInput("A cursor holds a position its list cannot have.") from None

    def segments(self, reverse: bool, after: str | None = None) -> list[Segment]:
        """The segments of the list (`reverse`: read the other way), in order, holding the
        records after position `after` (None: all of them)."""
        field, by_id = self.sort.field, Sort(self.id_field, reverse)
        descending = self.sort.descending != reverse
        whole = {
            False: Segment(Cond(field, "isNull", False), (Sort(field, descending), by_id)),
            True: Segment(Cond(field, "isNull", True), (by_id,)),
        }
        # Nulls are the largest key: after every value ascending, before them descending.
        nulls = (True, False) if descending else (False, True)
        if after is None:
            return [whole[null] for null in nulls]
        value, remote_id = self.position(after)
        null = value is None
        keys = [(self.id_field, reverse, remote_id)]
        if not null:
            keys.insert(0, (field, descending, value))
        own = whole[null]
        rest = [whole[n] for n in nulls[nulls.index(null) + 1 :]]
        where = simplify(All((own.where, _following(keys))))
        assert where is not None  # a condition of some record's, never "everything"
        return [Segment(where, own.order), *rest]


def _following(keys: list[tuple[str, bool, Any]]) -> Expr:
    """Records after the values of `keys` ((field, descending, value), most significant
    first) in their lexicographic order: some key past its value, those before it equal."""
    parts: list[Expr] = []
    for index, (field, descending, value) in enumerate(keys):
        equal = [Cond(f, "eq", v) for f, _, v in keys[:index]]
        parts.append(All((*equal, Cond(field, "lt" if descending else "gt", value))))
    return AnyOf(tuple(parts))


# A position's key value as text, short (a merged cursor holds two positions per provider)
# and never holding the `~` before the id: a time is `t` and its microseconds since the
# epoch (UTC), a decimal `d` and its digits, an integer `i` and its digits, null nothing.
# Text keys are not kept: no sort that reads by keyset takes them.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)  # no offset means UTC
        return f"t{(moment - EPOCH) // MICROSECOND}"
    if isinstance(value, Decimal):
        return f"d{value}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"i{value}"
    raise TypeError(f"a keyset holds times and numbers, not a {type(value).__name__}")


def _value(text: str) -> Any:
    if not text:
        return None
    tag, rest = text[0], text[1:]
    if tag == "t":
        return EPOCH + int(rest) * MICROSECOND
    if tag == "d":
        return Decimal(rest)
    if tag == "i":
        return int(rest)
    raise ValueError(text)
