"""Writes through a provider: sent once, refusals turned into the client's errors.

`Writer` sends a data source's writes (never retried blind: a write may have
happened), maps the provider's refusal to InvalidInput with field paths, reads
the record out of the answer, and carries the plain REST defaults: POST
`rest_paths[entity]`, PATCH (or PUT) and DELETE `<path>/<id>`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import httpx

from gateway.datasources.convert import segment
from gateway.datasources.reads import Reader
from gateway.errors import GatewayError, InvalidInput, NotFound, UpstreamNotFound, UpstreamRejected
from gateway.operations import Op
from gateway.records import AnyRecord, Entity
from gateway.upstream import Upstream

R = TypeVar("R")
# One operation of a bulk write (what, which id, which values) and its outcome: the record
# written, the id deleted, or the error of that operation alone.
Operation = tuple[Op, str | None, dict[str, Any] | None]
Outcome = AnyRecord | str | GatewayError


def note_target(values: dict[str, Any]) -> tuple[Entity, str]:
    """The record a new note is about (its `target`): InvalidInput when it has none."""
    target: tuple[Entity, str] | None = values.get("target")
    if target is None:
        raise InvalidInput([(["targetId"], "a note needs the record it is about")])
    return target


class Source(Protocol):
    """What the writer uses of its data source."""

    @property
    def name(self) -> str: ...
    @property
    def upstream(self) -> Upstream: ...
    @property
    def reader(self) -> Reader: ...
    @property
    def rest_paths(self) -> Mapping[Entity, str]: ...
    @property
    def rest_params(self) -> Mapping[str, str]: ...
    @property
    def update_method(self) -> str: ...
    def valid_id(self, entity: Entity, remote_id: str) -> bool: ...
    def require_id(self, entity: Entity, remote_id: str, argument: str = "id") -> None: ...
    def not_found(self, entity: Entity, remote_id: str) -> NotFound: ...
    def field_errors(self, body: Any) -> list[tuple[list[str], str]]: ...
    def write_body(self, entity: Entity, values: dict[str, Any]) -> Any: ...
    def written(self, entity: Entity, body: Any) -> AnyRecord: ...


class Writer:
    """A data source's writes."""

    def __init__(self, source: Source) -> None:
        self.source = source

    async def send(
        self,
        entity: Entity,
        method: str,
        path: str,
        *,
        remote_id: str | None = None,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """Send a write once (never retried blind); a refusal becomes InvalidInput."""
        source = self.source
        if remote_id is not None:
            source.require_id(entity, remote_id)
        try:
            return await source.upstream.request(
                method, path, params=params, json_body=json_body, idempotent=False
            )
        except UpstreamNotFound:
            if remote_id is None:
                raise
            raise source.not_found(entity, remote_id) from None
        except UpstreamRejected as error:
            raise InvalidInput(source.field_errors(error.body), provider=source.name) from None

    async def answer(
        self,
        entity: Entity,
        method: str,
        path: str,
        convert: Callable[[Any], R],
        *,
        remote_id: str | None = None,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> R:
        """`send` the write, then `convert` the JSON it answered (UpstreamBadResponse when
        its shape is wrong)."""
        response = await self.send(
            entity, method, path, remote_id=remote_id, json_body=json_body, params=params
        )
        return self.source.reader.parse(convert, self.source.upstream.json(response), response)

    # --- plain REST ------------------------------------------------------------------------

    async def create(self, entity: Entity, values: dict[str, Any]) -> AnyRecord:
        return await self._rest(entity, "POST", self.source.rest_paths[entity], None, values)

    async def update(self, entity: Entity, remote_id: str, values: dict[str, Any]) -> AnyRecord:
        path = f"{self.source.rest_paths[entity]}/{segment(remote_id)}"
        return await self._rest(entity, self.source.update_method, path, remote_id, values)

    async def delete(self, entity: Entity, remote_id: str) -> None:
        path = f"{self.source.rest_paths[entity]}/{segment(remote_id)}"
        await self.send(entity, "DELETE", path, remote_id=remote_id)

    async def _rest(
        self, entity: Entity, method: str, path: str, remote_id: str | None, values: dict[str, Any]
    ) -> AnyRecord:
        source = self.source
        return await self.answer(
            entity,
            method,
            path,
            lambda body: source.written(entity, body),
            remote_id=remote_id,
            json_body=source.write_body(entity, values),
            params=source.rest_params or None,
        )

    # --- several at once -------------------------------------------------------------------

    async def bulk(
        self,
        entity: Entity,
        operations: list[Operation],
        send: Callable[[list[Operation]], Awaitable[list[Outcome]]],
        limit: int,
    ) -> list[Outcome]:
        """Each operation's outcome, in order: `send` gets the operations whose ids can be
        records here, at most `limit` at a time, one call after the other; one whose id
        cannot fails alone, unsent."""
        source = self.source
        refused: dict[int, GatewayError] = {
            index: InvalidInput([(["id"], f"not a {entity.value} id of provider {source.name!r}.")])
            for index, (_, remote_id, _) in enumerate(operations)
            if remote_id is not None and not source.valid_id(entity, remote_id)
        }
        sendable = [op for index, op in enumerate(operations) if index not in refused]
        outcomes: list[Outcome] = []
        for start in range(0, len(sendable), limit):
            outcomes += await send(sendable[start : start + limit])
        sent = iter(outcomes)
        return [refused[i] if i in refused else next(sent) for i in range(len(operations))]
