"""What a provider's webhook API is to the gateway: how a webhook is registered, listed and
deleted, how deliveries are signed, and what each event means.

A kind with webhooks sets its data source's `webhooks` (`ProviderHooks`) to a subclass of
`WebhookApi`; the gateway builds one per provider instance, over its upstream. The common
REST shape (GET, POST and DELETE on one collection) is here; a provider gives its paths,
bodies, events and signature scheme. The machinery that receives deliveries and keeps the
webhook registered is `gateway.live`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import httpx

from gateway.datasources.convert import segment
from gateway.live.changes import ChangeKind
from gateway.live.signatures import Signature
from gateway.records import Entity
from gateway.upstream import Upstream

T = TypeVar("T")


class Malformed(ValueError):
    """A delivery, correctly signed, that is not shaped as the provider's contract says."""


@dataclass(frozen=True)
class Registered:
    """One webhook as the provider lists it; `secret` only in the answer that created it."""

    id: str
    url: str
    events: frozenset[str]
    active: bool
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Event:
    """One record changed, as a delivery tells it (`at`: when, if it says)."""

    entity: Entity
    id: str
    kind: ChangeKind
    at: datetime | None = None


@dataclass(frozen=True)
class Delivery:
    """What one delivery tells: its events (those of records the gateway serves), and the
    provider's id of the delivery, the same on each retry (None: it sends none)."""

    events: tuple[Event, ...]
    id: str | None = None


class WebhookApi(ABC):
    """One provider instance's webhooks, over its upstream (see the module's docstring)."""

    # The collection of webhooks (GET lists, POST registers, DELETE `<path>/<id>`).
    path: ClassVar[str]
    # The events the gateway subscribes to, and the change each one is.
    events: ClassVar[Mapping[str, ChangeKind]]
    signature: ClassVar[Signature]

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def registered(self) -> list[Registered]:
        """Every webhook of the account, the gateway's and any other."""
        response = await self.upstream.request("GET", self.path, cached=False)
        return self._parsed(lambda body: [self.parse(raw) for raw in body["data"]], response)

    async def register(self, url: str) -> Registered:
        """A new webhook sending `events` to `url`, with its secret."""
        response = await self.upstream.request("POST", self.path, json_body=self.body(url))
        return self._parsed(lambda body: self.parse(body["data"]), response)

    async def unregister(self, hook_id: str) -> None:
        """Delete the webhook (one already gone is no error)."""
        path = f"{self.path}/{segment(hook_id)}"
        await self.upstream.request(
            "DELETE", path, ok_statuses=(404,), idempotent=True, cached=False
        )

    def _parsed(self, read: Callable[[Any], T], response: httpx.Response) -> T:
        try:
            return read(self.upstream.json(response))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise self.upstream.bad_response("unexpected webhook answer", response) from None

    @abstractmethod
    def body(self, url: str) -> Any:
        """The request body registering a webhook for `events` at `url`."""

    @abstractmethod
    def parse(self, raw: Any) -> Registered:
        """One webhook of the API's answers."""

    @abstractmethod
    async def delivery(self, body: Any) -> Delivery:
        """What a delivery's JSON `body` tells; Malformed when it is not shaped as it should."""
