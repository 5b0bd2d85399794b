"""What every provider's record conversion uses: API values to unified ones and back.

A provider file turns its API's JSON into plain records (`gateway.records`) with
these: text and times as the APIs send them, the fields every record fills alike
(`Stamps`), a contact's names, and ids put into URLs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypedDict
from urllib.parse import quote

from gateway.records import DealStatus, Email, Money, full_name

# Positive integer ids as relational APIs hand them out; ASCII digits only ("²".isdigit()
# is true in Python) and short enough for a 64-bit column.
INTEGER_ID = re.compile(r"[1-9][0-9]{0,17}")


def integer_id(value: Any) -> Any:
    """An id as an integer, as relational APIs want it sent; anything else as it is (the
    API refuses it itself)."""
    return int(value) if INTEGER_ID.fullmatch(str(value)) else value


def segment(value: str) -> str:
    """`value` as one URL path segment: `/`, `?`, `#` and `%` percent-encoded, and a
    segment of dots too, since URL resolution would act on `.` and `..`."""
    text = quote(value, safe="")
    return text.replace(".", "%2E") if text.strip(".") == "" else text


def optional_text(value: Any) -> str | None:
    """A provider's value as text; None for null or empty."""
    return str(value) if value not in (None, "") else None


def iso_time(value: Any) -> datetime | None:
    """An ISO 8601 time as the APIs send it (a `Z` zone allowed); None for null or empty."""
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def iso_date(value: Any) -> date | None:
    """The date of an ISO 8601 date or time; None for null or empty."""
    return date.fromisoformat(str(value)[:10]) if value else None


def money(amount: Any, currency: Any = None) -> Money | None:
    """An amount the API sends as a number or a numeric string, exactly; None for null.
    Anything else is a malformed answer (ValueError)."""
    if amount is None:
        return None
    try:
        return Money(str(Decimal(str(amount))), optional_text(currency))
    except InvalidOperation:
        raise ValueError(f"amount {amount!r} is not a number") from None


# Deal statuses as APIs that keep one write them; any other word is OTHER.
STATUSES = {"open": DealStatus.OPEN, "won": DealStatus.WON, "lost": DealStatus.LOST}


def deal_status(value: Any) -> DealStatus | None:
    """A deal's status from an API's `open`, `won` or `lost`; None for null or empty."""
    text = optional_text(value)
    return STATUSES.get(text, DealStatus.OTHER) if text else None


def utc_text(moment: datetime, digits: int) -> str:
    """`moment` in UTC as ISO 8601 text with `digits` (at most 9) fraction digits and `Z`,
    as APIs that compare times as text want it."""
    fraction = f"{moment.astimezone(UTC).microsecond:06d}000"[:digits]
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + fraction + "Z"


class Origin(TypedDict):
    """The `Record` fields every mapper fills alike: whose record it is, when it changed."""

    provider: str
    remote_id: str
    created_at: datetime | None
    updated_at: datetime | None
    remote_data: dict[str, Any]


@dataclass(frozen=True)
class Stamps:
    """Where an API's record keeps its times (None: it sends none) and how they are written."""

    created: str | None
    updated: str | None = None
    parse: Callable[[Any], datetime | None] = iso_time

    @property
    def unset(self) -> frozenset[str]:
        """The record fields these stamps never set (the API sends no such time)."""
        return frozenset(
            name
            for name, where in (("created_at", self.created), ("updated_at", self.updated))
            if where is None
        )

    def origin(self, provider: str, raw: dict[str, Any], remote_id: str | None = None) -> Origin:
        """`raw`'s origin: its `id` (unless `remote_id` is given), its times, and `raw` itself
        as the record's `remote_data`."""
        return Origin(
            provider=provider,
            remote_id=str(raw["id"]) if remote_id is None else remote_id,
            created_at=self.parse(raw.get(self.created)) if self.created else None,
            updated_at=self.parse(raw.get(self.updated)) if self.updated else None,
            remote_data=raw,
        )


class Person(TypedDict):
    """A contact's names and email, as `person` reads them."""

    first_name: str | None
    last_name: str | None
    name: str | None
    emails: list[Email]


def person(first: Any, last: Any, email: Any) -> Person:
    """A contact's names and its one email, from an API's flat first, last and email values."""
    return Person(
        first_name=optional_text(first),
        last_name=optional_text(last),
        name=full_name(first, last),
        emails=[Email(email, is_primary=True)] if email else [],
    )
