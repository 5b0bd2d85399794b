"""Batched requests: a JSON array of operations in one POST (GraphQL over HTTP's request
batching appendix; Apollo Client's BatchHttpLink sends them).

The array must hold 1 to `max_batch` JSON objects, else the whole request is refused (400);
`max_batch = 0` refuses every array. Each item is then an operation of its own: checked as
a lone request would be, its persisted document resolved, estimated and refused on its own,
run with a context of its own (its own loaders: a query after a mutation reads what the
mutation wrote) under the request's client and deadline, and answered in its place in the
array, whatever happened to the others (the array is 200).

Queries run side by side; a mutation runs alone in its place, after every item before it
and before any after it, so a batch's writes happen in the order sent.

Strawberry's own batching runs every item at once with one shared context, so writes would
race and a query after a write could read the loaders' copy from before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult, SubscriptionExecutionResult

from gateway.errors import GatewayError

# Past this many tokens an item is not read for its operation type (execution refuses it).
MAX_TOKENS = 5000

# An item's document, filled in; and the hash to register its text under once it ran.
Resolve = Callable[[GraphQLRequestData], Awaitable[str | None]]
# An item run with a context and that hash.
Execute = Callable[
    [GraphQLRequestData, Any, str | None],
    Awaitable[ExecutionResult | SubscriptionExecutionResult],
]


def check_batch(items: list[Any], max_batch: int) -> None:
    """Refuse (400) an array body that is not a batch this gateway takes."""
    if max_batch == 0:
        raise HTTPException(
            400, "Batched requests are off (max_batch = 0): send one JSON object per request."
        )
    if not 1 <= len(items) <= max_batch:
        raise HTTPException(
            400,
            f"A batch is an array of 1 to {max_batch} JSON objects; this one has {len(items)}.",
        )
    if not all(isinstance(item, dict) for item in items):
        raise HTTPException(400, "Every item of a batch must be a JSON object.")


def failed(message: str, extensions: dict[str, Any]) -> ExecutionResult:
    """An item's answer when it never ran: its error alone."""
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions=extensions)])


def check_item(item: GraphQLRequestData) -> None:
    """The checks a lone request gets while it is parsed, which Strawberry skips for items."""
    expected = (
        ("query", item.query, str, "a string"),
        ("variables", item.variables, dict, "an object"),
        ("operationName", item.operation_name, str, "a string"),
        ("extensions", item.extensions, dict, "an object"),
    )
    for name, value, kind, said in expected:
        if value is not None and not isinstance(value, kind):
            raise HTTPException(400, f"The GraphQL operation's `{name}` must be {said} or null.")
    item.operation_name = item.operation_name or None  # empty is none, as for a lone request


def is_mutation(item: GraphQLRequestData) -> bool:
    """Whether the item's operation is a mutation (False when its document does not parse
    or names no such operation: it fails on its own)."""
    if item.query is None:
        return False
    try:
        document = parse(item.query, no_location=True, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return False
    operation = get_operation_ast(document, item.operation_name)
    return operation is not None and operation.operation == OperationType.MUTATION


async def run_batch(
    items: Sequence[GraphQLRequestData], context: Any, resolve: Resolve, execute: Execute
) -> list[ExecutionResult]:
    """Each item's result, in order: items resolved one after the other (documents looked
    up), then run, queries side by side and each mutation alone in its place, each with a
    context of its own made from the request's (`for_operation`)."""
    results: dict[int, ExecutionResult] = {}
    waiting: list[tuple[int, GraphQLRequestData, str | None]] = []
    fork = getattr(context, "for_operation", None)

    async def run(index: int, item: GraphQLRequestData, register: str | None) -> None:
        try:
            result = await execute(item, fork() if fork else context, register)
        except HTTPException as error:  # e.g. Strawberry's MissingQueryError
            result = failed(error.reason, {"code": "BAD_REQUEST"})
        assert isinstance(result, ExecutionResult)  # an item is never streamed
        results[index] = result

    async def run_waiting() -> None:
        await asyncio.gather(*(run(*step) for step in waiting))
        waiting.clear()

    for index, item in enumerate(items):
        try:
            check_item(item)
            register = await resolve(item)
        except HTTPException as error:
            results[index] = failed(error.reason, {"code": "BAD_REQUEST"})
            continue
        except GatewayError as error:
            results[index] = failed(error.message, error.extensions)
            continue
        if is_mutation(item):
            await run_waiting()
            await run(index, item, register)
        else:
            waiting.append((index, item, register))
    await run_waiting()
    return [results[index] for index in range(len(items))]
