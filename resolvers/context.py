"""The per-request GraphQL context, built fresh for every request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import strawberry
from strawberry.fastapi import BaseContext

from gateway.datasources import DataSource
from gateway.errors import BadUserInput
from gateway.pagination import CursorCodec, PageLimits
from resolvers.loaders import Loaders


@dataclass
class Gateway:
    """What lives as long as the app: data sources, cursor codec, limits."""

    sources: Mapping[str, DataSource]
    codec: CursorCodec
    limits: PageLimits
    batching: bool = True

    def source(self, provider: str) -> DataSource:
        """The data source of a configured provider instance, or BAD_USER_INPUT."""
        source = self.sources.get(provider)
        if source is None:
            known = ", ".join(sorted(self.sources)) or "none"
            raise BadUserInput(
                f"unknown provider {provider!r}; configured providers: {known}.",
                argument="provider",
            )
        return source


class Context(BaseContext):
    """Typed request context: the app-wide gateway state and this request's loaders."""

    def __init__(self, gateway: Gateway) -> None:
        super().__init__()
        self.gateway = gateway
        self.loaders = Loaders(gateway.sources, batching=gateway.batching)


Info = strawberry.Info[Context, None]
