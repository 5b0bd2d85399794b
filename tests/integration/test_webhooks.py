"""Webhooks over real HTTP: the Attio and hasteCRM emulators deliver to two gateway replicas
on one real Redis, which registered one webhook each between them. A change made directly
through an emulator's API shows in the next query within 2 s with `cache_ttl = 300`, and
reaches a subscriber on the other replica within 2 s; a forged, stale, replayed, oversize
or misdirected delivery evicts nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.cli import main
from gateway.demo import DEMO_CREDENTIALS
from gateway.providers import create_emulator, emulator_options
from gateway.servers import RedisProcess, ServerThread, free_port
from gateway.settings import ClientSettings, Settings
from tests.support.clients import GraphQLClient, emulator_requests
from tests.support.ids import gid
from tests.support.servers import demo_providers
from tests.support.subscribing import socket, wait_open
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

KINDS = ("attio", "haste")
KEY = "webhook-test-client-key"
CURSOR_SECRET = "test-cursor-secret-hK7wQ2xZ"
AUTH = {
    "attio": {"Authorization": f"Bearer {DEMO_CREDENTIALS['attio']['api_key']}"},
    "haste": {"Authorization": f"Bearer {DEMO_CREDENTIALS['haste']['token']}"},
}
NODE = "query($id: ID!) { node(id: $id) { ... on Contact { lastName } } }"


def hooks(url: str, kind: str) -> list[dict[str, Any]]:
    path = "/v2/webhooks" if kind == "attio" else "/v1/webhooks"
    listed: list[dict[str, Any]] = httpx.get(url + path, headers=AUTH[kind]).json()["data"]
    return listed


@dataclass(frozen=True)
class Live:
    """The emulators (their apps hold the secrets they sign with) and the two replicas."""

    apps: dict[str, FastAPI]
    urls: dict[str, str]
    one: GraphQLClient  # public_url points at it: the emulators deliver here
    two: GraphQLClient
    settings: Settings
    redis_url: str


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with ExitStack() as exits:
        redis = exits.enter_context(RedisProcess())
        apps = {k: create_emulator(k, emulator_options(rate_limits=False)) for k in KINDS}
        urls = {k: exits.enter_context(ServerThread(app)).url for k, app in apps.items()}
        port = free_port()
        settings = Settings(
            providers=demo_providers(urls, webhooks=True, cache_ttl=300),
            public_url=f"http://127.0.0.1:{port}",
            cursor_secret=CURSOR_SECRET,
            redis_url=redis.url,
            redis_timeout=5.0,
            subscriptions=True,
            # Deliveries carry no client credentials: their signature lets them in.
            clients=[
                ClientSettings(name="app", api_key_sha256=hashlib.sha256(KEY.encode()).hexdigest())
            ],
        )
        one = exits.enter_context(ServerThread(create_app(settings), port))
        two = exits.enter_context(ServerThread(create_app(settings)))
        clients = []
        for server in (one, two):
            client = GraphQLClient(server.url)
            client.http.headers["X-API-Key"] = KEY
            exits.callback(client.http.close)
            clients.append(client)
        for kind in KINDS:
            wait_until(partial(hooks, urls[kind], kind), what=f"{kind}'s webhook", timeout=30)
        yield Live(apps, urls, clients[0], clients[1], settings, redis.url)


def secret(app: FastAPI, kind: str) -> str:
    """The secret the emulator signs with (the gateway got it once, at registration)."""
    spaces = app.state.emulator.spaces
    space = spaces["attio-demo-key"] if kind == "attio" else spaces["token:haste-demo-token"]
    [hook] = space.webhooks.values()
    value: str = hook["secret"]
    return value


def haste_delivery(
    key: str, contact: str, *, event_id: str | None = None, stamp: float | None = None
) -> tuple[bytes, dict[str, str]]:
    event = {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "type": "contact.updated",
        "createdAt": "2026-12-08T10:00:00.000Z",
        "workspaceId": "ws_000001",
        "data": {"object": "contact", "id": contact},
    }
    body = json.dumps(event).encode()
    t = str(int(stamp if stamp is not None else time.time()))
    digest = hmac.new(key.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"X-Haste-Signature": f"t={t},v1={digest}", "Content-Type": "application/json"}


def first_contact(url: str, kind: str) -> str:
    if kind == "attio":
        path, params = "/v2/objects/people/records", {"pageSize": 1}
        return str(
            httpx.get(url + path, params=params, headers=AUTH[kind]).json()["data"][0]["id"][
                "record_id"
            ]
        )
    return str(
        httpx.get(url + "/v1/contacts", params={"limit": 1}, headers=AUTH[kind]).json()["data"][0][
            "id"
        ]
    )


def rename(url: str, kind: str, contact: str, last: str) -> None:
    if kind == "attio":
        name = {"first_name": "Web", "last_name": last, "full_name": f"Web {last}"}
        body = {"data": {"values": {"name": name}}}
        answer = httpx.patch(
            f"{url}/v2/objects/people/records/{contact}", json=body, headers=AUTH[kind]
        )
    else:
        answer = httpx.patch(
            f"{url}/v1/contacts/{contact}", json={"lastName": last}, headers=AUTH[kind]
        )
    assert answer.status_code == 200, answer.text


def record_requests(url: str) -> Counter[str]:
    """The emulator's answers by endpoint, but for its webhook API: the second replica's
    registration (after the first's, behind the Redis lock) may still be reading it."""
    stats = httpx.get(f"{url}/_emulator/stats").json()["by_endpoint"]
    return Counter({k: v for k, v in stats.items() if "/webhooks" not in k})


def last_name(client: GraphQLClient, kind: str, contact: str) -> str | None:
    node = client.data(NODE, {"id": gid("Contact", kind, contact)})["node"]
    return None if node is None else str(node["lastName"])


def test_the_replicas_registered_one_webhook_each_and_both_verify(live: Live) -> None:
    for kind in KINDS:
        [hook] = hooks(live.urls[kind], kind)
        target = hook.get("target_url") or hook.get("url")
        assert target == f"{live.settings.public_url}/webhooks/{kind}"
    # Replica two never registered: it verifies with the secret replica one kept in Redis.
    contact = first_contact(live.urls["haste"], "haste")

    def accepted() -> bool:
        body, headers = haste_delivery(secret(live.apps["haste"], "haste"), contact)
        answer = live.two.http.post("/webhooks/haste", content=body, headers=headers)
        return answer.status_code == 200

    wait_until(accepted, what="replica two to verify a delivery", timeout=10)


@pytest.mark.parametrize("kind", KINDS)
def test_a_direct_change_is_in_the_next_query_within_2_s(live: Live, kind: str) -> None:
    url, one, two = live.urls[kind], live.one, live.two
    contact = first_contact(url, kind)
    before = last_name(two, kind, contact)
    requests = record_requests(url)
    assert last_name(two, kind, contact) == before
    assert record_requests(url) == requests  # cached, for 300 s
    changed = f"Changed{uuid.uuid4().hex[:6]}"
    rename(url, kind, contact, changed)  # delivered to replica one, evicted on both
    wait_until(lambda: last_name(two, kind, contact) == changed, what="the change", timeout=2)
    assert last_name(one, kind, contact) == changed


def create(url: str, kind: str, last: str) -> tuple[str, str]:
    """A contact made directly through the emulator's API: its id, and its collection's path."""
    if kind == "attio":
        values = {"name": {"first_name": "Gone", "last_name": last, "full_name": f"Gone {last}"}}
        made = httpx.post(
            f"{url}/v2/objects/people/records",
            json={"data": {"values": values}},
            headers=AUTH[kind],
        )
        return made.json()["data"]["id"]["record_id"], "/v2/objects/people/records"
    made = httpx.post(f"{url}/v1/contacts", json={"lastName": last}, headers=AUTH[kind])
    return made.json()["data"]["id"], "/v1/contacts"


def remove(url: str, kind: str, path: str, contact: str) -> None:
    assert httpx.delete(f"{url}{path}/{contact}", headers=AUTH[kind]).status_code == 200


CHANGED = """subscription($providers: [String!]) {
  recordChanged(providers: $providers, types: [CONTACT]) {
    kind id source record { ... on Contact { lastName } } } }"""


@pytest.mark.parametrize("kind", KINDS)
async def test_direct_changes_reach_a_subscriber_on_the_other_replica_within_2_s(
    live: Live, kind: str
) -> None:
    url = live.urls[kind]
    async with socket(live.two.url, headers={"X-API-Key": KEY}) as ws:
        operation = await ws.subscribe(CHANGED, {"providers": [kind]})
        wait_open(live.two.url, 1)
        contact, path = create(url, kind, "Made")
        made = await ws.event(operation)
        assert (made["kind"], made["source"], made["record"]) == (
            "CREATED",
            "WEBHOOK",
            {"lastName": "Made"},
        )
        for change, expected in (("rename", "UPDATED"), ("delete", "DELETED")):
            start = time.monotonic()
            if change == "rename":
                rename(url, kind, contact, "Renamed")
            else:
                remove(url, kind, path, contact)
            event = await ws.event(operation)
            assert time.monotonic() - start < 2, change  # delivered to replica one
            assert (event["kind"], event["id"], event["source"]) == (
                expected,
                gid("Contact", kind, contact),
                "WEBHOOK",
            )
            record = None if expected == "DELETED" else {"lastName": "Renamed"}
            assert event["record"] == record
            assert last_name(live.two, kind, contact) == (record and record["lastName"])


@pytest.mark.parametrize("kind", KINDS)
def test_a_direct_delete_is_in_the_next_query_within_2_s(live: Live, kind: str) -> None:
    url, one = live.urls[kind], live.one
    contact, path = create(url, kind, "Soon")
    wait_until(lambda: last_name(one, kind, contact) == "Soon", what="the new contact", timeout=2)
    remove(url, kind, path, contact)
    wait_until(lambda: last_name(one, kind, contact) is None, what="the delete", timeout=2)


def test_refused_and_replayed_deliveries_evict_nothing(live: Live) -> None:
    url, one = live.urls["haste"], live.one
    contact = first_contact(url, "haste")
    key = secret(live.apps["haste"], "haste")
    good, signed = haste_delivery(key, contact, event_id=f"evt_{uuid.uuid4().hex}")
    assert (
        one.http.post("/webhooks/haste", content=good, headers=signed).json()["duplicate"] is False
    )

    def post(path: str, body: bytes, headers: dict[str, str]) -> int:
        last_name(one, "haste", contact)  # cached now
        status: int = one.http.post(path, content=body, headers=headers).status_code
        before = emulator_requests(url)
        last_name(one, "haste", contact)
        assert emulator_requests(url) == before, f"{path} {status} evicted the cache"
        return status

    forged = haste_delivery("whsec_guessed", contact)
    stale = haste_delivery(key, contact, stamp=time.time() - 400)
    huge = (b" " * (live.settings.max_request_size + 1), signed)
    assert post("/webhooks/haste", good, signed) == 200  # the replay: acknowledged, not acted on
    assert post("/webhooks/haste", *forged) == 401
    assert post("/webhooks/haste", *stale) == 401
    assert post("/webhooks/haste", *huge) == 413
    assert post("/webhooks/nowhere", good, signed) == 404
    assert post("/webhooks/haste", good, {}) == 401


def write_config(tmp_path: Path, live: Live) -> Path:
    settings = live.settings
    lines = [
        f'public_url = "{settings.public_url}"',
        f'redis_url = "{live.redis_url}"',
        f'cursor_secret = "{CURSOR_SECRET}"',
    ]
    for provider in settings.providers:
        credentials = ", ".join(f'{k} = "{v}"' for k, v in DEMO_CREDENTIALS[provider.kind].items())
        lines += [
            "[[providers]]",
            f'name = "{provider.name}"',
            f'kind = "{provider.kind}"',
            f'base_url = "{provider.base_url}"',
            "webhooks = true",
            f"credentials = {{ {credentials} }}",
        ]
    path = tmp_path / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_cli_lists_and_syncs_the_webhooks(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path, live))
    ids = {kind: (hooks(live.urls[kind], kind)[0]["id"]) for kind in KINDS}
    assert main(["webhooks", "list", "--config", config]) == 0
    listed = capsys.readouterr().out
    for kind in KINDS:
        assert secret(live.apps[kind], kind) not in listed
    assert "wh_000001  active" in listed
    assert "(this gateway's)" in listed
    assert main(["webhooks", "sync", "--config", config]) == 0  # a restart: nothing piles up
    synced = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in synced] == list(KINDS)
    assert all(": reused webhook " in line for line in synced), synced
    assert {kind: hooks(live.urls[kind], kind)[0]["id"] for kind in KINDS} == ids
    assert all(len(hooks(live.urls[kind], kind)) == 1 for kind in KINDS)
