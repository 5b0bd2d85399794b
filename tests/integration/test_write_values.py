"""Write values a provider cannot carry, over HTTP: an amount that would overflow or lose
digits as the JSON number every provider stores, or a custom field holding an infinity, comes
back in `userErrors` naming the field, and nothing reaches the provider."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.datasources import source_class
from gateway.operations import Op
from gateway.providers import KINDS
from gateway.records import Entity
from tests.support.clients import GraphQLClient

pytestmark = pytest.mark.integration

DEALS = [k for k in KINDS if (Entity.DEAL, Op.CREATE) in source_class(k).describe().writes]
TOO_BIG = ["1e309", "-1e309", "1e400", "1E+16", "12345678901234567", "1234567890123.456"]
NOT_NUMBERS = ["NaN", "Infinity", "-inf", "12,50", "", "abc"]
CREATE = """mutation($input: CreateDealInput!) {
  createDeal(input: $input) { deal { id } userErrors { field message } }
}"""
UPDATE = """mutation($input: UpdateDealInput!) {
  updateDeal(input: $input) { deal { id } userErrors { field message } }
}"""


def refused(body: dict[str, Any], name: str) -> list[str]:
    """The messages of the userErrors at `input.<name>`; the write must have no error."""
    assert "errors" not in body, body["errors"]
    result = next(iter(body["data"].values()))
    assert result["deal"] is None
    messages = [e["message"] for e in result["userErrors"] if e["field"] == ["input", name]]
    assert messages, result
    return messages


def first_deal(client: GraphQLClient, provider: str) -> str:
    query = "query($p: String!) { deals(provider: $p, first: 1) { edges { node { id } } } }"
    deal: str = client.data(query, {"p": provider})["deals"]["edges"][0]["node"]["id"]
    return deal


@pytest.mark.parametrize("provider", DEALS)
@pytest.mark.parametrize("amount", TOO_BIG + NOT_NUMBERS)
def test_an_amount_no_provider_can_carry_is_a_user_error(gateway, emulator_stats, provider, amount):
    deal = first_deal(gateway, provider)
    before = emulator_stats(provider)
    create = {"provider": provider, "name": "Big", "amount": amount}
    for message in refused(gateway.post(CREATE, {"input": create}), "amount"):
        assert "digits" in message or "decimal number" in message
    refused(gateway.post(UPDATE, {"input": {"id": deal, "amount": amount}}), "amount")
    assert emulator_stats(provider) == before


def test_haste_takes_two_decimal_places(gateway, emulator_stats):
    deal = first_deal(gateway, "haste")
    before = emulator_stats("haste")
    body = gateway.post(UPDATE, {"input": {"id": deal, "amount": "10.125"}})
    assert refused(body, "amount") == [
        "hasteCRM (provider 'haste') takes at most 2 decimal places."
    ]
    assert emulator_stats("haste") == before


def raw_post(client: GraphQLClient, query: str, variables: str) -> dict[str, Any]:
    """A request whose variables JSON encoders refuse to write (an infinity, a NaN): Python
    and many other parsers read them all the same."""
    text = f'{{"query": {json.dumps(query)}, "variables": {variables}}}'
    response = client.http.post(
        "/graphql", content=text, headers={"content-type": "application/json"}
    )
    assert response.status_code < 500, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("provider", [k for k in DEALS if k != "attio"])  # no custom fields
@pytest.mark.parametrize("number", ["1e999", "-Infinity", "NaN"])
def test_a_custom_field_holding_an_infinity_is_a_user_error(
    gateway, emulator_stats, provider, number
):
    deal = first_deal(gateway, provider)
    before = emulator_stats(provider)
    fields = f'{{"score": {{"values": [1, {number}]}}}}'
    body = raw_post(gateway, UPDATE, f'{{"input": {{"id": "{deal}", "customFields": {fields}}}}}')
    assert refused(body, "customFields") == ["must hold finite numbers only."]
    assert emulator_stats(provider) == before
