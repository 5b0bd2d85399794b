"""The live pages in a real browser (Chromium, offline): /demo shows the contacts of every
provider and changes rows without a reload, for changes made in the CRM itself (through
the RevyOps emulator's own API, found by polling as in the demo) and for writes through
the gateway; GraphiQL subscribes over its WebSocket."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from playwright.sync_api import Page

from gateway.app import create_app
from gateway.demo import DEMO_POLL_INTERVALS
from gateway.demopage import demo_router
from gateway.providers import KINDS
from gateway.servers import ServerThread, emulator_servers
from gateway.settings import Settings
from tests.support.browser import offline_page
from tests.support.clients import GraphQLClient
from tests.support.direct import edit
from tests.support.servers import demo_providers
from tests.support.subscribing import wait_open

pytestmark = pytest.mark.integration

POLL = 1.0  # seconds: the demo polls every 5
RENAME = """mutation($id: ID!, $name: String!) {
  updateContact(input: {id: $id, lastName: $name}) { contact { name } } }"""


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[GraphQLClient, dict[str, str]]]:
    """The demo's gateway (subscriptions on, polling every second where the demo polls,
    /demo added) over fresh emulators, whose data the tests change: they and their URLs."""
    with ExitStack() as exits:
        urls = emulator_servers(exits, KINDS)
        providers = [
            p.model_copy(update={"poll_interval": POLL if p.kind in DEMO_POLL_INTERVALS else None})
            for p in demo_providers(urls)
        ]
        app = create_app(Settings(providers=providers, subscriptions=True, graphiql=True))
        app.include_router(demo_router())
        server = exits.enter_context(ServerThread(app))
        client = GraphQLClient(server.url)
        with client.http:
            yield client, urls


@pytest.fixture
def page() -> Iterator[tuple[Page, list[str]]]:
    with offline_page() as opened:
        yield opened


def rows(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(
        """[...document.querySelectorAll('#contacts tr')].map(row => ({
            id: row.dataset.id,
            provider: row.querySelector('.provider').textContent,
            name: row.querySelector('.name').textContent}))"""
    )
    return found


def remote_id(global_id: str) -> str:
    return base64.b64decode(global_id).decode().split(":", 2)[2]


def test_the_demo_page_lists_every_crm_and_changes_live(demo, page) -> None:
    (demo, urls), (page, requested) = demo, page
    page.goto(f"{demo.url}/demo", wait_until="load")
    page.wait_for_selector('#status[data-state="live"]', timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('#contacts tr').length >= 25")
    first = rows(page)
    page.evaluate("window.loadedOnce = true")
    wait_open(demo.url, 1)

    # In the CRM itself: the first row renamed, the second deleted (and one created).
    target, gone = first[0], first[1]
    assert target["provider"] == gone["provider"] == "revyops"
    updated, deleted = remote_id(target["id"]), remote_id(gone["id"])
    edit("revyops", urls["revyops"], updated=updated, renamed="Zelda", deleted=deleted)
    page.wait_for_function(
        '([id, name]) => document.querySelector(`tr[data-id="${id}"] .name`)'
        "?.textContent.includes(name)",
        arg=[target["id"], "Zelda"],
        timeout=15_000,
    )
    page.wait_for_function(
        'id => !document.querySelector(`tr[data-id="${id}"]`)', arg=gone["id"], timeout=15_000
    )

    # Through the gateway: a contact created, then deleted.

    created = demo.data(
        'mutation { createContact(input: {provider: "haste", firstName: "Brand", '
        'lastName: "New", email: "brand.new@example.com"}) { contact { id } } }'
    )["createContact"]["contact"]["id"]
    page.wait_for_function(
        "id => document.querySelector('#contacts tr')?.dataset.id === id", arg=created
    )
    assert rows(page)[0]["provider"] == "haste"
    demo.data(
        "mutation($id: ID!) { deleteContact(input: {id: $id}) { deletedId } }", {"id": created}
    )
    page.wait_for_function(
        'id => !document.querySelector(`tr[data-id="${id}"]`)', arg=created, timeout=15_000
    )
    assert page.evaluate("window.loadedOnce") is True  # no reload on the way

    # Infinite scroll: the end of the list reads the next page. (The first pages hold
    # RevyOps's contacts alone: it sets no creation time, and nulls sort first when
    # descending; the other providers' follow.)
    count = len(rows(page))
    page.locator("#more").scroll_into_view_if_needed()
    page.wait_for_function(
        "count => document.querySelectorAll('#contacts tr').length > count", arg=count
    )
    assert [m for m in requested if m.startswith("console:")] == []


def test_graphiql_subscribes_over_its_websocket(demo, page) -> None:
    (demo, _), (page, requested) = demo, page
    page.goto(f"{demo.url}/graphql", wait_until="load")
    editor = page.locator(".graphiql-query-editor .CodeMirror")
    editor.wait_for(timeout=30_000)
    subscription = 'subscription { recordChanged(providers: ["haste"]) { kind id } }'
    editor.evaluate("(element, text) => element.CodeMirror.setValue(text)", subscription)
    page.wait_for_function(
        "typed => new URLSearchParams(location.search).get('q') === typed", arg=subscription
    )
    page.locator(".graphiql-execute-button").click()
    wait_open(demo.url, 1)
    contact = demo.data('{ contacts(provider: "haste", first: 1) { edges { node { id } } } }')
    target = contact["contacts"]["edges"][0]["node"]["id"]
    demo.data(RENAME, {"id": target, "name": "Seen-In-GraphiQL"})
    page.wait_for_function(
        "id => (document.querySelector('.graphiql-response .CodeMirror')"
        "?.CodeMirror.getValue() ?? '').includes(id)",
        arg=target,
        timeout=15_000,
    )
    assert [m for m in requested if m.startswith("console:")] == []
