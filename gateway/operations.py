"""The writes a record can take, shared by the data sources, the resolvers and the schema."""

from __future__ import annotations

import enum


class Op(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
