"""The one connection walker: every page of a Relay connection, forward or backward, each
page checked against the spec's page invariants on the way.

The caller says how to read a page: `fetch(paging)` gets the paging arguments of the next
page (`first`/`after` forward, `last`/`before` backward; without a size only the cursor)
and returns the connection as GraphQL answers it (`edges`, `pageInfo`, maybe
`totalCount`); `walk_field` builds that for the connection at a root field of a query.
An engine's own `Connection` goes through `relay_page` first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

Page = dict[str, Any]
Paging = dict[str, Any]


@dataclass
class Walk:
    """A walk under way: the paging of its next page, and every page read so far."""

    size: int | None = None
    forward: bool = True
    # More edges than this: the walk does not end.
    most: int = 100_000
    edges: list[dict[str, Any]] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)
    cursor: str | None = None

    def paging(self) -> Paging:
        key = "after" if self.forward else "before"
        if self.size is None:
            return {key: self.cursor}
        return {"first" if self.forward else "last": self.size, key: self.cursor}

    def take(self, page: Page) -> bool:
        """Adds `page`; whether another page follows it."""
        edges, info = page["edges"], page["pageInfo"]
        more: bool = info["hasNextPage"] if self.forward else info["hasPreviousPage"]
        # A page is full unless the list ends there, and its cursors are its edges' (where
        # the query asked for both).
        assert self.size is None or len(edges) == self.size or not more, (len(edges), info)
        if edges:
            for key, edge in (("startCursor", edges[0]), ("endCursor", edges[-1])):
                if key in info and "cursor" in edge:
                    assert info[key] == edge["cursor"], (key, info)
        self.edges = self.edges + edges if self.forward else edges + self.edges
        self.pages.append(page)
        assert len(self.edges) <= self.most, "the walk does not end"
        if more:
            self.cursor = info["endCursor"] if self.forward else info["startCursor"]
        return more

    @property
    def nodes(self) -> list[Any]:
        return [edge["node"] for edge in self.edges]

    @property
    def cursors(self) -> list[str]:
        return [edge["cursor"] for edge in self.edges]

    @property
    def last(self) -> Page:
        """The last page read (its `totalCount`)."""
        return self.pages[-1]

    def ids(self, key: str = "remoteId") -> list[str]:
        return [node[key] for node in self.nodes]


def walk(
    fetch: Callable[[Paging], Page],
    size: int | None = None,
    *,
    forward: bool = True,
    most: int = 100_000,
) -> Walk:
    """Every page of a connection, from one end to the other."""
    state = Walk(size, forward, most)
    while state.take(fetch(state.paging())):
        pass
    return state


async def walk_async(
    fetch: Callable[[Paging], Awaitable[Page]],
    size: int | None = None,
    *,
    forward: bool = True,
    most: int = 100_000,
) -> Walk:
    """`walk` for a client that awaits its pages."""
    state = Walk(size, forward, most)
    while state.take(await fetch(state.paging())):
        pass
    return state


class Client(Protocol):
    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]: ...


def walk_field(
    client: Client,
    query: str,
    root: str,
    variables: Mapping[str, Any],
    size: int | None = None,
    *,
    forward: bool = True,
) -> Walk:
    """`walk` of the connection at `root` of `query`: its paging joins `variables`."""

    def fetch(paging: Paging) -> Page:
        page: Page = client.data(query, {**variables, **paging})[root]
        return page

    return walk(fetch, size, forward=forward)


def relay_page(connection: Any) -> Page:
    """A pagination engine's `Connection` as GraphQL answers it."""
    info = connection.page_info
    return {
        "edges": [{"cursor": edge.cursor, "node": edge.node} for edge in connection.edges],
        "pageInfo": {
            "hasNextPage": info.has_next_page,
            "hasPreviousPage": info.has_previous_page,
            "startCursor": info.start_cursor,
            "endCursor": info.end_cursor,
        },
    }
