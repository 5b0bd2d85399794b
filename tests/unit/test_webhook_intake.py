"""Webhook intake over ASGI, on mock providers: what each delivery is answered, and what it
publishes on the hub (and so evicts) or not. Clocks and Attio's repeat window injected."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from gateway.datasources import DataSource, source_class
from gateway.live.changes import ChangeKind, ChangeSource, RecordChange
from gateway.live.hook_secrets import Known
from gateway.live.hub import ChangeHub
from gateway.live.webhooks import Webhooks
from gateway.pagination.connection import PageLimits
from gateway.pagination.cursors import CursorCodec
from gateway.records import Entity
from gateway.settings import ProviderSettings, Settings
from gateway.upstream import open_client
from resolvers.context import Gateway
from tests.unit.fake_time import FakeTime
from tests.unit.mock_provider import CREDENTIALS, Provider, ok

NOW = 1_800_000_000.0
SECRETS = {"haste": "whsec_haste-secret-0123", "attio": "attio-secret-4567"}
PUBLIC = "https://gw.test"
WORKSPACE = "11111111-1111-1111-1111-111111111111"
PEOPLE = "22222222-2222-2222-2222-222222222222"
RECORD = "33333333-3333-3333-3333-333333333333"


def provider(kind: str, **update: Any) -> ProviderSettings:
    return ProviderSettings(
        name=kind,
        kind=kind,
        base_url="http://crm.test/base",
        credentials=CREDENTIALS[kind],
        max_retries=0,
        rate_limit=False,
        webhooks=kind != "revyops",
        **update,
    )


SETTINGS = Settings(
    providers=[provider("haste"), provider("attio"), provider("revyops")],
    public_url=PUBLIC,
    max_request_size=4096,
)


def mock_source(settings: ProviderSettings, api: Provider) -> DataSource:
    cls = source_class(settings.kind)
    client = open_client(settings, cls.client_auth(settings), transport=httpx.MockTransport(api))
    return cls(settings, client, cache=False, blocks=False)


def haste_event(event_id: str = "evt_1", kind: str = "contact.updated", **data: Any) -> bytes:
    body = {
        "id": event_id,
        "type": kind,
        "createdAt": "2026-12-08T10:00:00.000Z",
        "workspaceId": "ws_1",
        "data": {"object": kind.split(".")[0], "id": "cont_000001", **data},
    }
    return json.dumps(body).encode()


def haste_headers(
    body: bytes, stamp: float = NOW, secret: str = SECRETS["haste"]
) -> dict[str, str]:
    signed = f"{int(stamp)}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return {"X-Haste-Signature": f"t={int(stamp)},v1={digest}", "Content-Type": "application/json"}


def attio_event(event_type: str = "record.updated", object_id: str = PEOPLE) -> bytes:
    ids: dict[str, str] = {"workspace_id": WORKSPACE}
    if event_type.startswith("note."):
        ids["note_id"] = RECORD
    else:
        ids |= {"object_id": object_id, "record_id": RECORD}
    event = {"event_type": event_type, "id": ids, "actor": {"type": "api-token", "id": "x"}}
    return json.dumps({"webhook_id": "wh", "events": [event]}).encode()


def attio_headers(body: bytes, secret: str = SECRETS["attio"]) -> dict[str, str]:
    return {"Attio-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


OBJECTS = ok(
    {
        "data": [
            {"id": {"workspace_id": WORKSPACE, "object_id": PEOPLE}, "api_slug": "people"},
            {"id": {"workspace_id": WORKSPACE, "object_id": "c" * 36}, "api_slug": "companies"},
        ]
    }
)


@dataclass
class Intake:
    webhooks: Webhooks
    http: httpx.AsyncClient
    queue: asyncio.Queue[RecordChange]
    forgotten: list[str]
    attio: Provider
    due: asyncio.Event = field(default_factory=asyncio.Event)
    slept: list[float] = field(default_factory=list)

    def published(self) -> list[RecordChange]:
        return [self.queue.get_nowait() for _ in range(self.queue.qsize())]

    async def post(self, provider: str, body: Any, headers: dict[str, str]) -> httpx.Response:
        return await self.http.post(f"/webhooks/{provider}", content=body, headers=headers)


@pytest.fixture
async def intake() -> AsyncIterator[Intake]:
    attio = Provider().queue(OBJECTS)
    sources = {
        p.name: mock_source(p, attio if p.kind == "attio" else Provider())
        for p in SETTINGS.providers
    }
    gateway = Gateway(sources=sources, codec=CursorCodec(b"k" * 32), limits=PageLimits())
    forgotten: list[str] = []

    async def forget(name: str) -> None:
        forgotten.append(name)

    gateway.changes = ChangeHub(forget)
    due = asyncio.Event()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # Attio's repeat window ends when the test says
        slept.append(seconds)
        await due.wait()

    webhooks = Webhooks(SETTINGS, gateway, clock=FakeTime(NOW), window=10.0, sleep=sleep)
    for name, secret in SECRETS.items():
        await webhooks.secrets.put(name, f"{PUBLIC}/webhooks/{name}", Known("wh_1", secret))
    app, router = FastAPI(), APIRouter()
    webhooks.route(router)
    app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://gw") as http,
        gateway.changes.listen() as queue,
    ):
        yield Intake(webhooks, http, queue, forgotten, attio, due, slept)
    await webhooks.close()
    for source in sources.values():
        await source.upstream.client.aclose()


async def test_a_signed_haste_delivery_is_one_change(intake: Intake) -> None:
    body = haste_event()
    answer = await intake.post("haste", body, haste_headers(body))
    assert (answer.status_code, answer.json()) == (200, {"changes": 1, "duplicate": False})
    at = datetime(2026, 12, 8, 10, tzinfo=UTC)
    change = RecordChange(
        "haste", Entity.CONTACT, "cont_000001", ChangeKind.UPDATED, ChangeSource.WEBHOOK, at
    )
    assert intake.published() == [change]
    assert intake.forgotten == ["haste"]


@pytest.mark.parametrize(
    ("kind", "entity", "change"),
    [
        ("company.created", Entity.COMPANY, ChangeKind.CREATED),
        ("deal.deleted", Entity.DEAL, ChangeKind.DELETED),
        ("note.updated", Entity.NOTE, ChangeKind.UPDATED),
        ("contact.merged", Entity.CONTACT, ChangeKind.MERGED),
    ],
)
async def test_each_haste_event_type_is_its_kind_of_change(
    intake: Intake, kind: str, entity: Entity, change: ChangeKind
) -> None:
    body = haste_event(kind=kind, mergedIntoId="cont_000002")
    assert (await intake.post("haste", body, haste_headers(body))).status_code == 200
    [published] = intake.published()
    assert (published.entity, published.kind, published.id) == (entity, change, "cont_000001")


def forged(body: bytes) -> dict[str, str]:
    return haste_headers(body, secret="whsec_guessed")


def stale(body: bytes) -> dict[str, str]:
    return haste_headers(body, stamp=NOW - 301)


REFUSALS = [
    ("haste", haste_event(), forged, 401, "does not match the body"),
    ("haste", haste_event(), lambda body: {}, 401, "header is missing"),
    ("haste", haste_event(), stale, 401, "more than 300 s from the gateway's clock"),
    ("haste", b"{not json", haste_headers, 400, "not a webhook of provider 'haste'"),
    ("haste", b'{"id": "evt_1"}', haste_headers, 400, "not a hasteCRM delivery"),
    ("attio", attio_event(), lambda body: attio_headers(body, "x"), 401, "does not match"),
    ("attio", b'{"events": 3}', attio_headers, 400, "not an Attio delivery"),
    ("attio", b"[]", attio_headers, 400, "not an Attio delivery"),
    ("nowhere", haste_event(), haste_headers, 404, "No provider 'nowhere' takes webhooks"),
    ("revyops", haste_event(), haste_headers, 404, "No provider 'revyops' takes webhooks"),
    ("haste", b"x" * 4097, haste_headers, 413, "larger than 4096 bytes"),
]


@pytest.mark.parametrize(("name", "body", "sign", "status", "message"), REFUSALS)
async def test_a_refused_delivery_changes_nothing(
    intake: Intake,
    name: str,
    body: bytes,
    sign: Callable[[bytes], dict[str, str]],
    status: int,
    message: str,
) -> None:
    answer = await intake.post(name, body, sign(body))
    assert answer.status_code == status
    assert message in answer.json()["error"]
    assert not any(secret in answer.text for secret in SECRETS.values())
    assert intake.published() == []
    assert intake.forgotten == []


async def test_a_streamed_body_is_refused_once_past_the_limit(intake: Intake) -> None:
    pulled = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(100):
            pulled += 1
            yield b" " * 1024

    answer = await intake.post("haste", chunks(), {"X-Haste-Signature": "t=1,v1=00"})
    assert answer.status_code == 413
    assert pulled <= 6  # not read whole first
    assert intake.published() == []


async def test_a_replayed_delivery_id_is_acknowledged_and_acted_on_once(intake: Intake) -> None:
    body = haste_event("evt_replayed")
    first = await intake.post("haste", body, haste_headers(body))
    # Signed again later (as a retry or a replay within the window would be).
    again = await intake.post("haste", body, haste_headers(body, stamp=NOW + 200))
    assert first.json() == {"changes": 1, "duplicate": False}
    assert (again.status_code, again.json()) == (200, {"changes": 1, "duplicate": True})
    assert len(intake.published()) == 1
    other = haste_event("evt_other")
    assert (await intake.post("haste", other, haste_headers(other))).json()["duplicate"] is False


async def test_events_the_gateway_does_not_use_change_nothing(intake: Intake) -> None:
    body = haste_event(kind="contact.score_changed")
    answer = await intake.post("haste", body, haste_headers(body))
    assert answer.json() == {"changes": 0, "duplicate": False}
    assert intake.forgotten == []


async def test_before_its_secret_is_known_a_delivery_is_asked_to_retry(intake: Intake) -> None:
    intake.webhooks.secrets = type(intake.webhooks.secrets)()  # nothing registered yet
    body = haste_event()
    answer = await intake.post("haste", body, haste_headers(body))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert "not registered yet" in answer.json()["error"]
    assert intake.published() == []


async def test_attio_events_name_their_object_by_id(intake: Intake) -> None:
    for event_type, entity in (("record.created", Entity.CONTACT), ("note.deleted", Entity.NOTE)):
        body = attio_event(event_type)
        assert (await intake.post("attio", body, attio_headers(body))).status_code == 200
        [change] = intake.published()
        assert (change.provider, change.entity, change.id) == ("attio", entity, RECORD)
        assert change.source is ChangeSource.WEBHOOK
    # A custom object the gateway does not serve: acknowledged, passed over.
    body = attio_event("record.updated", object_id="f" * 36)
    assert (await intake.post("attio", body, attio_headers(body))).json()["changes"] == 0
    paths = [r.url.path for r in intake.attio.requests]
    assert paths == ["/base/v2/objects"]  # read once; again for an unknown id at most a minute


async def test_attio_objects_unreadable_asks_for_a_retry(intake: Intake) -> None:
    intake.attio.queue(httpx.Response(500, json={"error": {"message": "down"}}))
    body = attio_event()
    answer = await intake.post("attio", body, attio_headers(body))
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "5")
    assert intake.published() == []


async def test_attio_repeats_within_the_window_share_one_later_action(intake: Intake) -> None:
    body = attio_event()
    first = await intake.post("attio", body, attio_headers(body))
    assert first.json() == {"changes": 1, "duplicate": False}
    for _ in range(3):  # replayed, or the same attribute changed again: identical bytes
        again = await intake.post("attio", body, attio_headers(body))
        assert again.json() == {"changes": 1, "duplicate": True}
    assert len(intake.published()) == 1
    await asyncio.sleep(0)
    assert intake.slept == [10.0]  # one action armed, at the window's end
    intake.due.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(intake.published()) == 1  # the second change is not lost
    assert intake.forgotten == ["attio", "attio"]
