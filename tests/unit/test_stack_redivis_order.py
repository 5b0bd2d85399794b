"""Redivis lists sorted upstream, on the in-process stack, with the nulls and ties the seed
data lacks: walks both ways and windows cut from any cursor equal the list in its total
order (the key, nulls the largest, then the id), alone and merged with hasteCRM, in blocks
of 100 (one read runs from the values into the nulls) and of 7 (reads start in either
segment), or without blocks (reads back reopen the list after a record's key and id), each
window estimated at no less than it sends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulators.redivis import DEMO_TOKEN
from gateway.demo import demo_provider
from gateway.pagination import ConnectionArgs
from gateway.settings import ProviderSettings
from tests.support.relay_spec import expected
from tests.support.stack import Stack, emulator_url, running_stack

SMALL = ProviderSettings.model_validate(
    {**demo_provider("redivis", emulator_url("redivis")).model_dump(), "name": "small"}
    | {"block_size": 7, "rate_limit": False}
)
ORDERS = [(f, d) for f in ("CREATED_AT", "UPDATED_AT") for d in ("ASC", "DESC")]
PAGE = """
query($one: String, $many: [String!], $first: Int, $after: String, $last: Int,
      $before: String, $order: [ContactOrder!]) {
  list: contacts(provider: $one, providers: $many, first: $first, after: $after,
                 last: $last, before: $before, orderBy: $order) {
    edges { cursor node { provider remoteId createdAt updatedAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
Key = tuple[str, str]


class World:
    """A stack on its own event loop whose Redivis contacts have null and equal times."""

    def __init__(self, blocks: bool) -> None:
        self.loop = asyncio.new_event_loop()
        self.context = running_stack(["redivis", "haste"], extra=[SMALL], blocks=blocks)
        self.stack: Stack = self.loop.run_until_complete(self.context.__aenter__())
        rows = self.stack.emulators["redivis"].state.emulator.datasets[DEMO_TOKEN].tables
        contacts = rows["contacts"]
        for i, row in enumerate(contacts):
            # Creation times in threes, some null; update times in twos, every fourth null.
            row["created_at"] = None if i % 7 == 3 else contacts[i - i % 3]["created_at"]
            row["updated_at"] = None if i % 4 == 1 else contacts[i - i % 2]["updated_at"]
        self.nodes: dict[str, list[dict[str, Any]]] = {}

    def run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    def page(self, variables: dict[str, Any]) -> dict[str, Any]:
        body = self.run(self.stack.post(PAGE, variables))
        assert "errors" not in body, body["errors"]
        cost = body["extensions"]["cost"]
        assert cost["estimated"] >= cost["actual"], (variables, cost)
        page: dict[str, Any] = body["data"]["list"]
        return page

    def walk(
        self, variables: dict[str, Any], size: int, forward: bool
    ) -> tuple[list[Key], list[str]]:
        """A list's every record, page by page one way, and their cursors."""
        keys: list[Key] = []
        cursors: list[str] = []
        cursor = None
        while True:
            span = {"first": size, "after": cursor} if forward else {"last": size, "before": cursor}
            page = self.page({**variables, **span})
            got = [cursor for cursor, _ in edges(page)]
            keys, cursors = (
                (keys + [k for _, k in edges(page)], cursors + got)
                if forward
                else ([k for _, k in edges(page)] + keys, got + cursors)
            )
            info = page["pageInfo"]
            if not (info["hasNextPage"] if forward else info["hasPreviousPage"]):
                return keys, cursors
            cursor = info["endCursor"] if forward else info["startCursor"]

    def own(self, kind: str) -> list[dict[str, Any]]:
        """A provider's contacts in its own order (by id), read unordered."""
        if kind not in self.nodes:
            nodes: list[dict[str, Any]] = []
            cursor = None
            while True:
                page = self.page({"one": kind, "first": 100, "after": cursor})
                nodes += [e["node"] for e in page["edges"]]
                if not page["pageInfo"]["hasNextPage"]:
                    break
                cursor = page["pageInfo"]["endCursor"]
            self.nodes[kind] = nodes
        return self.nodes[kind]

    def close(self) -> None:
        self.run(self.context.__aexit__(None, None, None))
        self.loop.close()


@pytest.fixture(scope="module")
def worlds() -> Iterator[dict[bool, World]]:
    """A world with blocks and one without, made when first asked for."""
    made: dict[bool, World] = {}
    yield made
    for world in made.values():
        world.close()


def world_of(worlds: dict[bool, World], blocks: bool) -> World:
    if blocks not in worlds:
        worlds[blocks] = World(blocks)
    return worlds[blocks]


def edges(page: dict[str, Any]) -> list[tuple[str, Key]]:
    return [(e["cursor"], (e["node"]["provider"], e["node"]["remoteId"])) for e in page["edges"]]


def oracle(world: World, kinds: list[str], field: str, direction: str) -> list[Key]:
    """The providers' contacts by the key (nulls the largest), then the provider's position,
    then its own order: Redivis's is by id (its own list in id order, sorted stably)."""
    name = "createdAt" if field == "CREATED_AT" else "updatedAt"

    def moment(node: dict[str, Any]) -> tuple[bool, datetime | None]:
        if node[name] is None:
            return True, None
        value = datetime.fromisoformat(node[name])
        return False, value if value.tzinfo else value.replace(tzinfo=UTC)

    rows = [node for kind in kinds for node in world.own(kind)]
    rows.sort(key=moment, reverse=direction == "DESC")  # stable, `reverse` too
    return [(node["provider"], node["remoteId"]) for node in rows]


def test_the_data_has_nulls_and_ties(worlds: dict[bool, World]) -> None:
    nodes = world_of(worlds, True).own("redivis")
    for name in ("createdAt", "updatedAt"):
        values = [n[name] for n in nodes]
        assert None in values
        assert len({v for v in values if v is not None}) < len([v for v in values if v])


@pytest.mark.parametrize(("field", "direction"), ORDERS)
@pytest.mark.parametrize(
    ("blocks", "kinds"),
    # Without blocks, a window reaching back past its cursor's page reopens the list the
    # other way after that record's (key, id): the keyset read in reverse.
    [(True, ["redivis"]), (True, ["small"]), (True, ["haste", "small"]), (False, ["redivis"])],
    ids=["blocks", "small-blocks", "merged", "exact"],
)
def test_walks_both_ways_hold_the_total_order(
    worlds: dict[bool, World], blocks: bool, kinds: list[str], field: str, direction: str
) -> None:
    world = world_of(worlds, blocks)
    order = [{"field": field, "direction": direction}]
    every = oracle(world, kinds, field, direction)
    variables: dict[str, Any] = {"order": order}
    variables.update({"one": kinds[0]} if len(kinds) == 1 else {"many": kinds})
    forward, cursors = world.walk(variables, 11, forward=True)
    assert forward == every
    backward, back = world.walk(variables, 9, forward=False)
    assert backward == every
    # Back from a cursor the walk forward gave, forward from one the walk back gave: each
    # reads its list the other way from the cursor's record.
    for i in range(0, len(every), 13):
        page = world.page({**variables, "last": 12, "before": cursors[i]})
        assert [k for _, k in edges(page)] == every[max(0, i - 12) : i]
        page = world.page({**variables, "first": 12, "after": back[i]})
        assert [k for _, k in edges(page)] == every[i + 1 : i + 13]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_windows_from_any_cursor_are_the_slices(
    worlds: dict[bool, World], data: st.DataObject
) -> None:
    world = world_of(worlds, data.draw(st.booleans(), label="blocks"))
    field, direction = data.draw(st.sampled_from(ORDERS))
    kind = data.draw(st.sampled_from(["redivis", "small"]))
    order = [{"field": field, "direction": direction}]
    every = oracle(world, [kind], field, direction)
    index = {key: i for i, key in enumerate(every)}
    at: dict[str, int] = {}
    for _ in range(4):
        cursors = sorted(at)
        first = data.draw(st.none() | st.integers(0, 30))
        last = data.draw(st.integers(0, 30)) if first is None else None
        after = data.draw(st.none() | st.sampled_from(cursors)) if cursors else None
        # Not the wrong way round: the sequential engine cannot tell crossed cursors.
        later = [c for c in cursors if after is None or at[c] > at[after]]
        before = data.draw(st.none() | st.sampled_from(later)) if later else None
        args = ConnectionArgs(first=first, after=after, last=last, before=before)
        window = {"first": first, "last": last, "after": after, "before": before}
        page = world.page({"one": kind, "order": order, **window})
        indices, has_previous, has_next = expected(
            len(every), args, at.get(after or ""), at.get(before or "")
        )
        got = [index[key] for _, key in edges(page)]
        assert got == indices
        assert page["pageInfo"]["hasPreviousPage"] == has_previous
        assert page["pageInfo"]["hasNextPage"] == has_next
        at.update({cursor: i for (cursor, _), i in zip(edges(page), got, strict=True)})
