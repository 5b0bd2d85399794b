"""One data source per provider API; `source_class(kind)` finds the class for a kind."""

from __future__ import annotations

import importlib

from gateway.datasources.base import Capabilities, DataSource, PaginationStyle

_CLASSES = {
    "revyops": "RevyOps",
    "attio": "Attio",
    "haste": "Haste",
    "redivis": "Redivis",
    "basicsos": "BasicsOS",
}


def available_kinds() -> tuple[str, ...]:
    return tuple(_CLASSES)


def source_class(kind: str) -> type[DataSource]:
    """The data source class for provider `kind`."""
    if kind not in _CLASSES:
        raise ValueError(f"no data source for kind {kind!r}")
    module = importlib.import_module(f"gateway.datasources.{kind}")
    cls: type[DataSource] = getattr(module, _CLASSES[kind])
    return cls


__all__ = ["Capabilities", "DataSource", "PaginationStyle", "available_kinds", "source_class"]
