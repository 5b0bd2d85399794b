"""One data source per provider API; `source_class(kind)` finds the class for a kind."""

from __future__ import annotations

from gateway.datasources.base import (
    Capabilities,
    DataSource,
    OffsetSource,
    PaginationStyle,
    SequentialSource,
)
from gateway.providers import KINDS, provider


def available_kinds() -> tuple[str, ...]:
    return KINDS


def source_class(kind: str) -> type[DataSource]:
    """The data source class for provider `kind`."""
    try:
        entry = provider(kind)
    except ValueError:
        raise ValueError(f"no data source for kind {kind!r}") from None
    cls = entry.source_class()
    if not issubclass(cls, DataSource):
        raise TypeError(f"{entry.source} is not a DataSource")
    return cls


__all__ = [
    "Capabilities",
    "DataSource",
    "OffsetSource",
    "PaginationStyle",
    "SequentialSource",
    "available_kinds",
    "source_class",
]
