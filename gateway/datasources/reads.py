"""Reading a provider's answers: one record by id, a list page after page, and JSON of
the wrong shape turned into the upstream's fault (UpstreamBadResponse), not a crash."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Protocol, TypeVar

import httpx

from gateway.errors import NotFound, UpstreamNotFound
from gateway.records import AnyRecord, Entity
from gateway.upstream import Upstream

R = TypeVar("R")
P = TypeVar("P", bound=Hashable)


class Source(Protocol):
    """What the reader uses of its data source."""

    @property
    def upstream(self) -> Upstream: ...
    def valid_id(self, entity: Entity, remote_id: str) -> bool: ...
    def not_found(self, entity: Entity, remote_id: str) -> NotFound: ...


class Reader:
    """A data source's reads of its API's answers (at most `max_pages` pages a list)."""

    def __init__(self, source: Source, max_pages: int) -> None:
        self.source = source
        self.max_pages = max_pages

    def parse(self, convert: Callable[[Any], R], raw: Any, response: httpx.Response) -> R:
        """`convert(raw)`, with a wrong-shaped payload turned into UpstreamBadResponse."""
        try:
            return convert(raw)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise self.source.upstream.bad_response(
                f"unexpected shape ({type(error).__name__}: {error})", response
            ) from None

    async def json(self, convert: Callable[[Any], R], method: str, path: str, **request: Any) -> R:
        """Send a read (`request`: `Upstream.request`'s arguments) and `convert` the JSON
        it answers."""
        upstream = self.source.upstream
        response = await upstream.request(method, path, **request)
        return self.parse(convert, upstream.json(response), response)

    async def one(
        self,
        entity: Entity,
        remote_id: str,
        path: str,
        convert: Callable[[Any], AnyRecord],
        **params: Any,
    ) -> AnyRecord:
        """GET one record at `path` and `convert` its JSON. An upstream 404 becomes NotFound
        for that id, as does an id that cannot exist (never sent)."""
        source = self.source
        if not source.valid_id(entity, remote_id):
            raise source.not_found(entity, remote_id)
        try:
            response = await source.upstream.request("GET", path, params=params or None)
        except UpstreamNotFound:
            raise source.not_found(entity, remote_id) from None
        return self.parse(convert, source.upstream.json(response), response)

    async def pages(
        self,
        fetch: Callable[[P | None], Awaitable[tuple[Sequence[R], P | None, httpx.Response]]],
        what: str,
    ) -> list[R]:
        """Every item of a list read page after page, the one loop every data source uses.

        `fetch(position)` (None: the start) answers a page's items, the position of the
        next page (None: the list ends) and its response. Bounded: more than
        `max_pages_per_read` pages, or a next position this read was already given (the
        upstream would loop forever), fail with UpstreamBadResponse.
        """
        upstream = self.source.upstream
        items: list[R] = []
        given: set[P] = set()
        position: P | None = None
        for _ in range(self.max_pages):
            batch, following, response = await fetch(position)
            items += batch
            if following is None:
                return items
            if following in given:
                raise upstream.bad_response(
                    f"it repeated a page position while listing {what} (it would loop forever)",
                    response,
                )
            given.add(following)
            position = following
        raise upstream.bad_response(
            f"the list of {what} is longer than {self.max_pages} pages "
            "(max_pages_per_read), more than the gateway reads whole",
            response,
        )
