"""A subscription's stream of changes, without a transport: its token's expiry, its slot,
and the pieces of the Redis fan-out and the WebSocket transport that need no server."""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.clients import Client
from gateway.live.changes import ChangeKind, ChangeSource, RecordChange
from gateway.live.fanout import RedisFanout
from gateway.pagination.connection import PageLimits
from gateway.pagination.cursors import CursorCodec
from gateway.records import Entity
from gateway.shared import RedisState
from gateway.websocket import credentials
from resolvers.context import Context, Gateway
from resolvers.subscriptions import ChangeStream, Wanted
from schema import schema

NOW = 1_000_000.0
QUERY = "subscription { recordChanged { id kind } }"


def gateway() -> Gateway:
    made = Gateway(sources={}, codec=CursorCodec(b"k" * 32), limits=PageLimits())
    made.wall_clock = lambda: NOW
    return made


def change(record_id: str = "1") -> RecordChange:
    at = datetime(2026, 12, 8, tzinfo=UTC)
    return RecordChange(
        "attio", Entity.CONTACT, record_id, ChangeKind.UPDATED, ChangeSource.WEBHOOK, at
    )


async def test_a_subscription_ends_when_its_token_expires() -> None:
    gate = gateway()
    client = Client("svc", expires_at=NOW + 0.2)
    results = await schema.subscribe(QUERY, context_value=Context(gate, client))
    async with asyncio.timeout(10):
        ended = await anext(results)
    assert ended.errors is not None
    assert ended.errors[0].extensions == {"code": "UNAUTHENTICATED"}
    assert "expired" in ended.errors[0].message
    assert gate.subscriptions.total == 0
    assert gate.changes.listeners == 0


async def test_an_expired_token_opens_nothing() -> None:
    gate = gateway()
    results = await schema.subscribe(
        QUERY, context_value=Context(gate, Client("svc", expires_at=NOW))
    )
    first = await anext(results)
    assert first.errors is not None
    assert first.errors[0].extensions == {"code": "UNAUTHENTICATED"}
    assert gate.subscriptions.total == 0


async def test_a_stream_dropped_unstarted_gives_its_slot_back() -> None:
    gate = gateway()
    stream = ChangeStream(Context(gate), Wanted(frozenset({"attio"}), None), lambda c: c)
    assert (gate.subscriptions.total, gate.changes.listeners) == (1, 1)
    del stream
    gc.collect()
    assert (gate.subscriptions.total, gate.changes.listeners) == (0, 0)


async def test_a_stream_hears_what_it_wants_with_a_fresh_deadline_each() -> None:
    gate = gateway()
    context = Context(gate)
    stream = ChangeStream(context, Wanted(frozenset({"attio"}), frozenset({Entity.CONTACT})), str)
    loaders = context.loaders
    gate.changes.deliver(replace(change(), provider="haste"))  # not wanted
    gate.changes.deliver(replace(change(), entity=Entity.DEAL))  # not wanted
    gate.changes.deliver(change("2"))
    assert "id='2'" in await anext(stream)
    assert context.loaders is not loaders
    await stream.aclose()
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    assert gate.subscriptions.total == 0


def test_credentials_come_from_the_payload_else_the_headers() -> None:
    headers = {"x-api-key": "from-header", "host": "gateway"}
    assert credentials({"X-API-Key": "from-payload"}, headers) == {"x-api-key": "from-payload"}
    assert credentials({"Authorization": "Bearer t", "other": "x"}, headers) == {
        "authorization": "Bearer t"
    }
    assert credentials({"X-API-Key": 5}, headers) == {"x-api-key": "from-header"}


async def test_the_fanout_hears_only_other_replicas_signed_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[RecordChange] = []
    state = RedisState("redis://127.0.0.1:1/0", b"secret")
    fanout = RedisFanout(state, heard.append)
    fanout._heard(state.codec.encode(("another", change("theirs"))))
    fanout._heard(state.codec.encode((fanout.origin, change("mine"))))
    fanout._heard(state.codec.encode(("another", "not a change")))
    with caplog.at_level(logging.WARNING, "gateway.live"):
        fanout._heard(b"forged")
    assert [c.id for c in heard] == ["theirs"]
    assert "not signed by a replica" in caplog.text


async def test_a_full_outbox_drops_its_oldest(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("gateway.live.fanout.OUTBOX_SIZE", 2)
    state = RedisState("redis://127.0.0.1:1/0", b"secret")
    fanout = RedisFanout(state, lambda _: None)
    with caplog.at_level(logging.WARNING, "gateway.live"):
        for n in range(3):
            fanout.send(change(str(n)))
    queued: list[Any] = [state.codec.decode(fanout._outbox.get_nowait()) for _ in range(2)]
    assert [c.id for _, c in queued] == ["1", "2"]
    assert "oldest unsent one was dropped" in caplog.text
