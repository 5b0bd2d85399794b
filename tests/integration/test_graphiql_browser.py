"""GraphiQL in a real browser (the system's Chromium, driven by Playwright), offline.

Every request the page makes is recorded and anything not bound for loopback is refused,
so the page passes only if it needs nothing from the internet.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page

from gateway.app import create_app
from gateway.demo import demo_provider
from gateway.servers import ServerThread
from gateway.settings import ClientSettings, Settings
from tests.support.browser import LOOPBACK, offline_page
from tests.support.clients import GraphQLClient
from tests.support.servers import client_on

pytestmark = pytest.mark.integration

TYPED = '{ companies(provider: "basicsos", first: 2) { edges { node { name domain } } } }'


@pytest.fixture(scope="module")
def ide(emulators: dict[str, str]) -> Iterator[GraphQLClient]:
    # As in the demo: GraphiQL loads the schema.
    with client_on(emulators, graphiql=True, introspection=True) as client:
        yield client


@pytest.fixture
def page() -> Iterator[tuple[Page, list[str]]]:
    with offline_page() as opened:
        yield opened


def result(page: Page) -> Any:
    text = page.evaluate(
        "document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()"
    )
    return json.loads(text)


def ide_providers(ide: GraphQLClient) -> list[str]:
    return [p["name"] for p in ide.data("{ providers { name } }")["providers"]]


def editor_text(page: Page) -> str:
    text: str = page.evaluate(
        "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue()"
    )
    return text


def wait_for_result(page: Page, needle: str) -> Any:
    page.wait_for_function(
        "needle => (document.querySelector('.graphiql-response .CodeMirror')"
        "?.CodeMirror.getValue() ?? '').includes(needle)",
        arg=needle,
        timeout=30_000,
    )
    return result(page)


def test_graphiql_runs_queries_offline(ide, page):
    page, requested = page
    page.goto(f"{ide.url}/graphql", wait_until="load")
    editor = page.locator(".graphiql-query-editor .CodeMirror")
    editor.wait_for(timeout=30_000)
    query = editor_text(page)
    assert "query FirstPage" in query
    assert 'contacts(provider: "revyops", first: 10)' in query

    # The default query, run with the toolbar's button.
    page.locator(".graphiql-execute-button").click()
    first = wait_for_result(page, '"endCursor"')
    assert [p["name"] for p in first["data"]["providers"]] == ide_providers(ide)
    assert len(first["data"]["contacts"]["edges"]) == 10

    # A query entered into the editor (as a paste: typing char by char races the
    # editor's bracket closing and completion list), run with Ctrl-Enter.
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(TYPED)
    assert editor_text(page) == TYPED
    # GraphiQL hands edits on after a debounce; the page's URL shows when it has.
    page.wait_for_function(
        "typed => new URLSearchParams(location.search).get('q') === typed", arg=TYPED
    )
    page.keyboard.press("Control+Enter")
    typed = wait_for_result(page, '"companies"')
    assert typed["data"] == ide.data(TYPED)
    assert len(typed["data"]["companies"]["edges"]) == 2

    assert requested
    assert [m for m in requested if m.startswith("console:")] == []
    assert any("/graphql/static/graphiql-" in url for url in requested)
    outside = [url for url in requested if urlsplit(url).hostname not in LOOPBACK]
    assert outside == []


def test_graphiql_shows_where_the_api_key_goes(emulators: dict[str, str], page):
    page, requested = page
    key = "graphiql-browser-test-key"
    settings = Settings(
        providers=[demo_provider("basicsos", emulators["basicsos"])],
        clients=[
            ClientSettings(name="app", api_key_sha256=hashlib.sha256(key.encode()).hexdigest())
        ],
        graphiql=True,
        introspection=True,
    )
    with ServerThread(create_app(settings)) as server:
        page.goto(f"{server.url}/graphql", wait_until="load")
        page.locator(".graphiql-query-editor .CodeMirror").wait_for(timeout=30_000)
        page.locator('.graphiql-editor-tools button[data-name="headers"]').click()
        headers = page.locator(".graphiql-editor-tool .CodeMirror").nth(1)
        headers.wait_for(state="visible", timeout=30_000)
        text = headers.evaluate("element => element.CodeMirror.getValue()")
        assert json.loads(text) == {"X-API-Key": "<your API key>"}

        # The placeholder replaced by the client's key, the first query runs.
        headers.evaluate(
            "(element, key) => element.CodeMirror.setValue(JSON.stringify({'X-API-Key': key}))",
            key,
        )
        page.locator(".graphiql-execute-button").click()
        first = wait_for_result(page, '"endCursor"')
        assert len(first["data"]["contacts"]["edges"]) == 10
    assert [m for m in requested if m.startswith("console:")] == []
