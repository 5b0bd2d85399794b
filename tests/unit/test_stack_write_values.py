"""Write values at the edge of what providers carry, through the whole stack in process: the
largest amounts the check lets through arrive intact, and a bulk write refuses only the item
whose value cannot be sent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from gateway.datasources import source_class
from gateway.operations import Op
from gateway.providers import KINDS
from gateway.records import Entity
from tests.support.stack import Stack, running_stack

DEALS = [k for k in KINDS if (Entity.DEAL, Op.CREATE) in source_class(k).describe().writes]
CREATE = """mutation($input: CreateDealInput!) {
  createDeal(input: $input) { deal { id amount { amount } } userErrors { field message } }
}"""


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with running_stack(DEALS) as running:
        yield running


async def requests(stack: Stack, kind: str) -> int:
    count: int = (await stack.direct[kind].get("/_emulator/stats")).json()["requests"]
    return count


async def required(stack: Stack, kind: str) -> dict[str, Any]:
    """What a new deal needs besides its name and amount."""
    if kind != "basicsos":
        return {}
    found = await stack.data(
        '{ companies(provider: "basicsos", first: 1) { edges { node { id } } } }'
    )
    return {"companyId": found["companies"]["edges"][0]["node"]["id"], "stage": "lead"}


@pytest.mark.parametrize("kind", DEALS)
@pytest.mark.parametrize("amount", ["999999999999999", "-1234567890123.45", "0.5", "1E+3"])
async def test_amounts_of_fifteen_digits_arrive_intact(
    stack: Stack, kind: str, amount: str
) -> None:
    values = {"provider": kind, "name": "Edge", "amount": amount} | await required(stack, kind)
    made = (await stack.data(CREATE, {"input": values}))["createDeal"]
    assert made["userErrors"] == []
    assert Decimal(made["deal"]["amount"]["amount"]) == Decimal(amount)


@pytest.mark.parametrize("kind", DEALS)
async def test_one_digit_more_is_refused_before_sending(stack: Stack, kind: str) -> None:
    before = await requests(stack, kind)
    values = {"provider": kind, "name": "Edge", "amount": "9999999999999999"}
    made = (await stack.data(CREATE, {"input": values}))["createDeal"]
    assert made == {
        "deal": None,
        "userErrors": [
            {
                "field": ["input", "amount"],
                "message": "must have at most 15 digits in all (what every provider carries).",
            }
        ],
    }
    assert await requests(stack, kind) == before


@pytest.mark.parametrize("kind", [k for k in DEALS if Entity.CONTACT in source_class(k).can_bulk])
async def test_a_bulk_write_refuses_only_the_item_it_cannot_send(stack: Stack, kind: str) -> None:
    query = (
        "mutation($input: BulkCreateContactsInput!) { bulkCreateContacts(input: $input) "
        "{ succeeded failed results { index contact { lastName } userErrors { field message } } } }"
    )
    # JSON encoders refuse to write an infinity; Python's parser reads one all the same.
    contacts = '[{"lastName": "Inf", "customFields": {"x": 1e999}}, {"lastName": "Fine"}]'
    text = (
        f'{{"query": {json.dumps(query)}, '
        f'"variables": {{"input": {{"provider": "{kind}", "contacts": {contacts}}}}}}}'
    )
    response = await stack.http.post(
        "/graphql", content=text, headers={"content-type": "application/json"}
    )
    made = response.json()["data"]["bulkCreateContacts"]
    assert (made["succeeded"], made["failed"]) == (1, 1)
    assert made["results"] == [
        {
            "index": 0,
            "contact": None,
            "userErrors": [
                {"field": ["input", "customFields"], "message": "must hold finite numbers only."}
            ],
        },
        {"index": 1, "contact": {"lastName": "Fine"}, "userErrors": []},
    ]
