"""What a newcomer trips on: unsupported nested fields, ids of unknown providers, cursors of
another gateway process."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from gateway.app import create_app
from gateway.demo import demo_provider
from gateway.servers import ServerThread
from gateway.settings import Settings
from tests.support.clients import GraphQLClient
from tests.support.ids import raw_id

pytestmark = pytest.mark.integration


def test_an_unsupported_nested_field_is_one_error_per_field_path(gateway: GraphQLClient) -> None:
    # RevyOps links contacts to companies only: no deals, no notes.
    body = gateway.post(
        """{
          contacts(provider: "revyops", first: 40) {
            edges { node { id deals(first: 2) { totalCount } notes { totalCount } company { id } } }
          }
          more: contacts(provider: "revyops", first: 7) { edges { node { deals { totalCount } } } }
        }"""
    )
    nodes = [edge["node"] for edge in body["data"]["contacts"]["edges"]]
    assert len(nodes) == 40
    assert all(node["deals"] is None and node["notes"] is None for node in nodes)
    errors = body["errors"]
    paths = Counter(tuple(key for key in error["path"] if isinstance(key, str)) for error in errors)
    assert paths == {
        ("contacts", "edges", "node", "deals"): 1,
        ("contacts", "edges", "node", "notes"): 1,
        ("more", "edges", "node", "deals"): 1,
    }
    parents = {(e["path"][-1], e["path"][0]): e["extensions"] for e in errors}
    assert parents[("deals", "contacts")]["parents"] == 40
    assert parents[("notes", "contacts")]["parents"] == 40
    assert parents[("deals", "more")]["parents"] == 7
    assert {e["extensions"]["code"] for e in errors} == {"UNSUPPORTED"}
    assert {e["extensions"]["provider"] for e in errors} == {"revyops"}


def test_a_node_id_of_an_unknown_provider_is_bad_user_input(gateway: GraphQLClient) -> None:
    body = gateway.post(
        "query($id: ID!) { node(id: $id) { id } }", {"id": raw_id("Contact:nope:1")}
    )
    assert body["data"] == {"node": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "nope" in error["message"]
    assert "basicsos" in error["message"]  # names the configured ones


def test_nodes_fail_only_the_item_of_an_unknown_provider(gateway: GraphQLClient) -> None:
    known = gateway.data('{ contacts(provider: "basicsos", first: 1) { edges { node { id } } } }')
    good = known["contacts"]["edges"][0]["node"]["id"]
    body = gateway.post(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        {"ids": [good, raw_id("Contact:nope:1")]},
    )
    assert body["data"]["nodes"] == [{"id": good}, None]
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]


def test_a_cursor_of_another_gateway_process_says_to_share_the_secret(
    gateway: GraphQLClient, emulators: dict[str, str]
) -> None:
    other = Settings(
        providers=[demo_provider("basicsos", emulators["basicsos"])],
        cursor_secret="another-process-secret-Wd5pJ8xN",
    )
    query = 'query($after: String) { contacts(provider: "basicsos", first: 2, after: $after) { pageInfo { endCursor } } }'
    with ServerThread(create_app(other)) as server:
        page = httpx.post(f"{server.url}/graphql", json={"query": query}).json()
    cursor = page["data"]["contacts"]["pageInfo"]["endCursor"]
    body = gateway.post(query, {"after": cursor})
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "after"}
    assert "CRM_GATEWAY_CURSOR_SECRET" in error["message"]
