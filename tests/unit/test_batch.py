"""Batches: what an array body may hold, each item answered in its place, queries side by
side and mutations in the order sent."""

from __future__ import annotations

import asyncio
from hashlib import sha256

import pytest
from cross_web import HTTPException
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from gateway.batch import check_batch, is_mutation, run_batch
from gateway.demo import demo_provider
from gateway.limiter import RateLimiter, Share, current_share
from gateway.persisted import bad_request
from tests.support.stack import emulator_url, running_stack

QUERY = "query Q { __typename }"
MUTATION = 'mutation M { deleteContact(input: {id: "x"}) { deletedId } }'


def item(query: object = QUERY, operation_name: str | None = None) -> GraphQLRequestData:
    return GraphQLRequestData(query, None, operation_name, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("items", "limit", "says"),
    [
        ([{}], 0, "max_batch = 0"),
        ([], 10, "1 to 10 JSON objects; this one has 0"),
        ([{}] * 11, 10, "1 to 10 JSON objects; this one has 11"),
        ([{}, 5], 10, "Every item of a batch must be a JSON object"),
    ],
)
def test_arrays_the_gateway_does_not_take_are_bad_requests(
    items: list[object], limit: int, says: str
) -> None:
    with pytest.raises(HTTPException) as raised:
        check_batch(items, limit)
    assert raised.value.status_code == 400
    assert says in raised.value.reason


def test_mutations_are_told_from_queries_by_the_operation_run() -> None:
    assert is_mutation(item(MUTATION))
    assert not is_mutation(item(QUERY))
    assert is_mutation(item(f"{QUERY} {MUTATION}", operation_name="M"))
    assert not is_mutation(item(f"{QUERY} {MUTATION}", operation_name="Q"))
    assert not is_mutation(item("mutation {"))  # fails on its own when it runs
    assert not is_mutation(item(None))


async def test_each_item_is_answered_in_its_place_whatever_the_others_do() -> None:
    async def resolve(data: GraphQLRequestData) -> str | None:
        if data.query == "refused":
            raise bad_request("refused by its persisted document")
        return None

    async def execute(
        data: GraphQLRequestData, context: object, register: str | None
    ) -> ExecutionResult:
        if data.query == "missing":
            raise HTTPException(400, "No GraphQL query found in the request")
        return ExecutionResult(data={"query": data.query}, errors=None)

    items = [item("a"), item(5), item("refused"), item("missing"), item("b")]
    results = await run_batch(items, None, resolve, execute)
    assert [r.data for r in results] == [{"query": "a"}, None, None, None, {"query": "b"}]
    messages = [[e.message for e in r.errors or ()] for r in results]
    assert messages[1] == ["The GraphQL operation's `query` must be a string or null."]
    assert messages[2] == ["refused by its persisted document"]
    assert messages[3] == ["No GraphQL query found in the request"]
    codes = [(r.errors[0].extensions or {})["code"] for r in results if r.errors]
    assert codes == ["BAD_REQUEST"] * 3


async def test_queries_run_side_by_side_and_each_mutation_alone_in_its_place() -> None:
    log: list[str] = []

    async def resolve(data: GraphQLRequestData) -> str | None:
        return None

    async def execute(
        data: GraphQLRequestData, context: object, register: str | None
    ) -> ExecutionResult:
        name = data.operation_name or "?"
        log.append(f"start {name}")
        await asyncio.sleep(0.01 if name.startswith("q") else 0)
        log.append(f"end {name}")
        return ExecutionResult(data={"name": name}, errors=None)

    names = ["q1", "q2", "m1", "m2", "q3", "q4"]
    kinds = {"q": "query", "m": "mutation"}
    items = [item(f"{kinds[n[0]]} {n} {{ __typename }}", n) for n in names]
    results = await run_batch(items, None, resolve, execute)
    assert [r.data for r in results] == [{"name": n} for n in names]
    assert log == [
        "start q1",
        "start q2",
        "end q1",
        "end q2",
        "start m1",
        "end m1",
        "start m2",
        "end m2",
        "start q3",
        "start q4",
        "end q3",
        "end q4",
    ]


async def test_every_item_is_sent_for_the_requests_client(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Share | None] = []
    take = RateLimiter.take

    async def spy(self: RateLimiter, deadline: float) -> object:
        seen.append(current_share.get())
        return await take(self, deadline)

    monkeypatch.setattr(RateLimiter, "take", spy)
    limited = demo_provider("haste", emulator_url("haste"))
    limited = limited.model_copy(update={"name": "limited", "rate_limit": True})
    key = "web-key-0123456789abcdef"
    clients = [{"name": "web", "api_key_sha256": sha256(key.encode()).hexdigest(), "weight": 3}]
    read = """query($since: DateTime) {
      contacts(provider: "limited", first: 1, filter: {createdAt: {gte: $since}}) { totalCount }
    }"""
    batch = [{"query": read, "variables": {"since": f"2990-01-0{n}T00:00:00Z"}} for n in (1, 2, 3)]
    async with running_stack(["haste"], extra=[limited], clients=clients) as stack:
        response = await stack.http.post("/graphql", json=batch, headers={"X-API-Key": key})
    assert [item.get("errors") for item in response.json()] == [None] * 3
    assert len(seen) == 3
    assert set(seen) == {Share("web", 3.0)}
