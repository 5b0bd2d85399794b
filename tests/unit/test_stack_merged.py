"""Lists across providers on the in-process stack, against an oracle.

The oracle is each provider's own list, read through the single-provider connection
(itself checked against the emulators' data in test_stack_reads): one after another in
the order the request names them, or merged by the order's key, then the provider's
position, then its own order. Random provider subsets, page sizes, directions and
windows cut from earlier cursors must give exactly the oracle's Relay slices.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.pagination import ConnectionArgs
from gateway.providers import KINDS
from tests.support.relay_spec import expected
from tests.support.stack import Stack, running_stack

LISTS = {"contacts": "ContactOrder", "deals": "DealOrder"}
HAS = {"contacts": KINDS, "deals": tuple(k for k in KINDS if k != "revyops")}
# Providers that sort upstream in the merged order, per list, key and direction; the
# others are read whole and sorted by the gateway.
SORTING = {
    ("contacts", "CREATED_AT", False): ("attio", "haste", "redivis", "basicsos"),
    ("contacts", "CREATED_AT", True): ("attio", "haste", "redivis"),
    ("contacts", "UPDATED_AT", False): ("haste", "redivis"),
    ("contacts", "UPDATED_AT", True): ("haste", "redivis"),
    ("deals", "UPDATED_AT", False): ("haste", "redivis", "basicsos"),
    ("deals", "UPDATED_AT", True): ("haste", "redivis"),
}

PAGE = """
query($one: String, $many: [String!], $first: Int, $after: String, $last: Int,
      $before: String, $order: [%s!]) {
  list: %s(provider: $one, providers: $many, first: $first, after: $after, last: $last,
           before: $before, orderBy: $order) {
    totalCount
    edges { cursor node { provider remoteId createdAt updatedAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

Key = tuple[str, str]


class World:
    """A stack on its own event loop, and each provider's own lists (the oracle's input)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        # Whole reads are costed at `merge_whole_max` records: more than the default allows.
        self.context = running_stack(max_operation_cost=500)
        self.stack: Stack = self.loop.run_until_complete(self.context.__aenter__())
        self.own: dict[tuple[str, str, Any], list[dict[str, Any]]] = {}

    def run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    async def page(self, field: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = await self.stack.post(PAGE % (LISTS[field], field), variables)
        assert "errors" not in body, body["errors"]
        cost = body["extensions"]["cost"]
        assert cost["estimated"] >= cost["actual"], (variables, cost)
        page: dict[str, Any] = body["data"]["list"]
        return page

    def lists(self, field: str, kind: str, order: Any = None) -> list[dict[str, Any]]:
        """One provider's own list, walked through the single-provider connection."""
        key = (field, kind, repr(order))
        if key not in self.own:
            nodes: list[dict[str, Any]] = []
            cursor = None
            while True:
                variables = {"one": kind, "first": 100, "after": cursor, "order": order}
                page = self.run(self.page(field, variables))
                nodes += [e["node"] for e in page["edges"]]
                if not page["pageInfo"]["hasNextPage"]:
                    break
                cursor = page["pageInfo"]["endCursor"]
            self.own[key] = nodes
        return self.own[key]

    def close(self) -> None:
        self.run(self.context.__aexit__(None, None, None))
        self.loop.close()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    made = World()
    yield made
    made.close()


def moment(node: dict[str, Any], name: str) -> tuple[bool, datetime | None]:
    """A date as the merged order compares it: nulls after every date (before, descending)."""
    if node[name] is None:
        return True, None
    value = datetime.fromisoformat(node[name])
    return False, value if value.tzinfo else value.replace(tzinfo=UTC)


def oracle(
    world: World, field: str, kinds: list[str], order: Any, sorting: tuple[str, ...] = ()
) -> list[Key]:
    """The merged list: a provider's own list in the order asked where it sorts upstream,
    else in its default order (what the gateway sorts, stably)."""
    rows = []
    for position, kind in enumerate(kinds):
        own_order = order if kind in sorting else None
        for own, node in enumerate(world.lists(field, kind, own_order)):
            rows.append((position, own, node))
    if order:
        descending = order[0]["direction"] == "DESC"
        name = "createdAt" if order[0]["field"] == "CREATED_AT" else "updatedAt"
        # Stable by the key alone (`reverse` too): ties keep (provider position, own order).
        rows.sort(key=lambda row: moment(row[2], name), reverse=descending)
    return [(node["provider"], node["remoteId"]) for _, _, node in rows]


def check_windows(
    world: World, field: str, variables: dict[str, Any], every: list[Key], draw: Any
) -> None:
    index = {key: i for i, key in enumerate(every)}
    at: dict[str, int] = {}
    for _ in range(4):
        cursors = sorted(at)
        size = st.integers(0, 40)
        first = draw(st.none() | size)
        last = draw(size) if first is None else None
        after = draw(st.none() | st.sampled_from(cursors)) if cursors else None
        # Cursors the wrong way round are left out: hasteCRM's and Redivis's own windows
        # (the sequential engine) cannot tell they crossed, merged or not.
        later = [c for c in cursors if after is None or at[c] > at[after]]
        before = draw(st.none() | st.sampled_from(later)) if later else None
        args = ConnectionArgs(first=first, after=after, last=last, before=before)
        window = {"first": first, "last": last, "after": after, "before": before}
        page = world.run(world.page(field, {**variables, **window}))
        edges, has_previous, has_next = expected(
            len(every), args, at.get(after or ""), at.get(before or "")
        )
        got = [index[(e["node"]["provider"], e["node"]["remoteId"])] for e in page["edges"]]
        assert got == edges
        assert page["pageInfo"]["hasPreviousPage"] == has_previous
        assert page["pageInfo"]["hasNextPage"] == has_next
        at.update({e["cursor"]: i for e, i in zip(page["edges"], got, strict=True)})


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_lists_one_after_another_in_the_order_named(world: World, data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(sorted(LISTS)))
    named = data.draw(st.none() | st.permutations(HAS[field]).flatmap(_prefixes))
    kinds = list(HAS[field]) if named is None else named
    every = oracle(world, field, kinds, None)
    check_windows(world, field, {"many": named}, every, data.draw)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_lists_merged_by_a_date_both_ways(world: World, data: st.DataObject) -> None:
    field, key, descending = data.draw(st.sampled_from(sorted(SORTING)))
    kinds = data.draw(st.permutations(HAS[field]).flatmap(_prefixes))
    order = [{"field": key, "direction": "DESC" if descending else "ASC"}]
    every = oracle(world, field, kinds, order, SORTING[field, key, descending])
    assert len(set(every)) == len(every)
    check_windows(world, field, {"many": kinds, "order": order}, every, data.draw)


def _prefixes(kinds: list[str]) -> st.SearchStrategy[list[str]]:
    return st.integers(1, len(kinds)).map(lambda n: list(kinds[:n]))


def test_walks_equal_the_lists_named_both_ways(world: World) -> None:
    for field, kinds in (("contacts", ["haste", "attio"]), ("deals", None)):
        every = oracle(world, field, kinds or list(HAS[field]), None)
        for forward, size in ((True, 37), (False, 23)):
            seen: list[Key] = []
            cursor = None
            while True:
                window: dict[str, Any] = (
                    {"first": size, "after": cursor}
                    if forward
                    else {"last": size, "before": cursor}
                )
                page = world.run(world.page(field, {"many": kinds, **window}))
                keys = [(e["node"]["provider"], e["node"]["remoteId"]) for e in page["edges"]]
                seen = seen + keys if forward else keys + seen
                info = page["pageInfo"]
                if not (info["hasNextPage"] if forward else info["hasPreviousPage"]):
                    break
                cursor = info["endCursor"] if forward else info["startCursor"]
            assert seen == every


@pytest.mark.parametrize(
    ("arguments", "argument"),
    [
        ('provider: "attio", providers: ["haste"]', "providers"),
        ("providers: []", "providers"),
        ('providers: ["attio", "attio"]', "providers"),
        ('providers: ["nowhere"]', "providers"),
    ],
)
def test_bad_provider_lists_are_refused(world: World, arguments: str, argument: str) -> None:
    body = world.run(world.stack.post(f"{{ contacts({arguments}) {{ totalCount }} }}"))
    assert body["data"] == {"contacts": None}
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["argument"] == argument


def test_a_merged_cursor_is_bound_to_its_providers_and_order(world: World) -> None:
    page = world.run(world.page("contacts", {"many": ["attio", "haste"], "first": 2}))
    cursor = page["pageInfo"]["endCursor"]
    for variables in (
        {"many": ["haste", "attio"]},
        {"many": ["attio", "haste"], "order": [{"field": "CREATED_AT"}]},
        {"one": "attio"},
    ):
        body = world.run(
            world.stack.post(
                PAGE % ("ContactOrder", "contacts"), {**variables, "first": 2, "after": cursor}
            )
        )
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_list_too_long_to_sort_whole_is_refused_naming_the_provider() -> None:
    async def check() -> None:
        async with running_stack(merge_whole_max=50, max_operation_cost=500) as stack:
            # RevyOps sorts by nothing; Attio sends no update time, so its own order serves.
            order = [{"field": "UPDATED_AT"}]
            variables = {"many": ["attio", "revyops"], "order": order}
            body = await stack.post(PAGE % ("ContactOrder", "contacts"), variables)
            assert body["data"] == {"list": None}
            error = body["errors"][0]
            assert error["extensions"] == {"code": "UNSUPPORTED", "provider": "revyops"}
            assert "merge_whole_max" in error["message"]
            variables["many"] = ["attio", "haste"]
            assert "errors" not in await stack.post(PAGE % ("ContactOrder", "contacts"), variables)

    asyncio.run(check())


def test_an_order_a_filter_cannot_keep_is_refused_naming_the_provider(world: World) -> None:
    # RevyOps sends no creation time (its own order serves), but must still filter upstream.
    body = world.run(
        world.stack.post(
            '{ contacts(providers: ["attio", "revyops"], orderBy: [{field: CREATED_AT}], '
            'filter: {firstName: {startsWith: "A"}}) { totalCount } }'
        )
    )
    assert body["data"] == {"contacts": None}
    assert body["errors"][0]["extensions"] == {"code": "UNSUPPORTED", "provider": "revyops"}


def test_total_count_is_the_sum_or_null(world: World) -> None:
    both = world.run(world.page("contacts", {"many": ["attio", "basicsos"], "first": 0}))
    alone = [world.run(world.page("contacts", {"one": k, "first": 0})) for k in ("attio",)]
    other = world.run(world.page("contacts", {"one": "basicsos", "first": 0}))
    assert both["totalCount"] == alone[0]["totalCount"] + other["totalCount"]
    haste = world.run(world.page("contacts", {"many": ["attio", "haste"], "first": 0}))
    assert haste["totalCount"] is None


def test_a_failing_provider_fails_the_field_naming_it() -> None:
    async def check() -> None:
        async with running_stack(["attio", "haste"]) as stack:
            faults = {"garbage_rate": 1.0}
            assert (await stack.direct["haste"].post("/_emulator/faults", json=faults)).is_success
            # Attio's 90 contacts do not fill the window: hasteCRM is read, and fails.
            variables = {"many": ["attio", "haste"], "first": 100}
            body = await stack.post(PAGE % ("ContactOrder", "contacts"), variables)
            assert body["data"] == {"list": None}
            assert body["errors"][0]["extensions"]["provider"] == "haste"

    asyncio.run(check())


@pytest.mark.parametrize("field", ["CREATED_AT", "UPDATED_AT"])
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_contacts_by_a_date_fit_the_default_budget(field: str, direction: str) -> None:
    # The issue's own queries, with the default `max_operation_cost` and `merge_whole_max`.
    # RevyOps by update time and BasicsOS descending are still read whole: once their own
    # lists have been read, the cached blocks tell their size and the estimate uses it.
    async def check() -> None:
        async with running_stack() as stack:
            for kind in ("revyops", "basicsos"):
                assert "errors" not in await stack.post(
                    PAGE % ("ContactOrder", "contacts"), {"one": kind, "first": 100}
                )
            body = await stack.post(
                f"{{ contacts(first: 10, orderBy: [{{field: {field}, direction: {direction}}}])"
                " { totalCount edges { node { provider createdAt updatedAt } } } }"
            )
            assert "errors" not in body, body["errors"]
            name = "createdAt" if field == "CREATED_AT" else "updatedAt"
            moments = [moment(e["node"], name) for e in body["data"]["contacts"]["edges"]]
            assert len(moments) == 10
            assert moments == sorted(moments, reverse=direction == "DESC")
            assert body["data"]["contacts"]["totalCount"] is None  # hasteCRM cannot count

    asyncio.run(check())


@pytest.mark.parametrize("field", ["CREATED_AT", "UPDATED_AT"])
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_contacts_by_a_date_fit_the_default_budget_on_cold_caches(
    field: str, direction: str
) -> None:
    # Redivis sorts upstream: at most one provider (RevyOps by update time, BasicsOS
    # descending) is read whole, costed at `merge_whole_max` records.
    async def check() -> None:
        async with running_stack() as stack:
            body = await stack.post(
                f"{{ contacts(first: 10, orderBy: [{{field: {field}, direction: {direction}}}])"
                " { totalCount edges { node { provider } } } }"
            )
            assert "errors" not in body, body["errors"]
            cost = body["extensions"]["cost"]
            assert cost["actual"] <= cost["estimated"] <= 50
            assert len(body["data"]["contacts"]["edges"]) == 10

    asyncio.run(check())


def test_a_whole_read_is_costed_by_the_size_the_caches_know() -> None:
    async def check() -> None:
        async with running_stack(max_operation_cost=500) as stack:
            # RevyOps sorts by nothing, and Attio ignores case where BasicsOS does not: both
            # are read whole (BasicsOS a window at a time).
            order = [{"field": "LAST_NAME"}]
            variables = {"many": ["revyops", "attio", "basicsos"], "order": order, "first": 5}
            costs = []
            for _ in range(2):
                body = await stack.post(PAGE % ("ContactOrder", "contacts"), variables)
                assert "errors" not in body, body["errors"]
                costs.append(body["extensions"]["cost"])
            cold, warm = costs
            # Cold: each list taken to hold `merge_whole_max` records; warm: their blocks.
            assert cold["estimated"] >= 2 * 2000 // 100
            assert cold["actual"] > 0
            assert warm["estimated"] < cold["estimated"] // 4

    asyncio.run(check())
