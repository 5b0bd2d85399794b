"""The checks behind webhook intake, with injected clocks: the providers' signature schemes,
the memory of deliveries acted on, and the sealing of webhook secrets kept in Redis."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from gateway.live.hook_secrets import HookSecrets, Known
from gateway.live.replays import Replays
from gateway.live.signatures import BadSignature, BodyHmac, TimestampedHmac
from gateway.shared import RedisState
from tests.unit.fake_time import FakeTime

SECRET = "whsec_0123456789abcdef"
BODY = b'{"id":"evt_1","type":"contact.updated"}'
NOW = 1_800_000_000.0


def hexmac(message: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def haste_header(stamp: int | str, body: bytes = BODY, secret: str = SECRET) -> str:
    return f"t={stamp},v1={hexmac(f'{stamp}.'.encode() + body, secret)}"


ATTIO = BodyHmac("attio-signature")
HASTE = TimestampedHmac("x-haste-signature", tolerance=300.0)


def test_attio_signs_the_raw_body() -> None:
    ATTIO.verify({"attio-signature": hexmac(BODY)}, BODY, SECRET, NOW)
    ATTIO.verify({"attio-signature": hexmac(BODY).upper()}, BODY, SECRET, NOW)
    for headers, body, problem in (
        ({}, BODY, "the attio-signature header is missing"),
        ({"attio-signature": ""}, BODY, "missing"),
        ({"attio-signature": hexmac(BODY)}, BODY + b" ", "does not match the body"),
        ({"attio-signature": hexmac(BODY, "other")}, BODY, "does not match the body"),
    ):
        with pytest.raises(BadSignature, match=problem) as refused:
            ATTIO.verify(headers, body, SECRET, NOW)
        assert SECRET not in str(refused.value)
        assert hexmac(body) not in str(refused.value)


def test_haste_signs_its_timestamp_and_the_body() -> None:
    stamp = int(NOW)
    HASTE.verify({"x-haste-signature": haste_header(stamp)}, BODY, SECRET, NOW)
    # Another v1 beside the right one (a secret being rolled) is fine; spaces too.
    rolled = f"t={stamp}, v1={'0' * 64}, v1={hexmac(f'{stamp}.'.encode() + BODY)}"
    HASTE.verify({"x-haste-signature": rolled}, BODY, SECRET, NOW)
    # The signature covers `t`: moving it breaks the signature, not only the window.
    moved = haste_header(stamp).replace(f"t={stamp}", f"t={stamp + 1}")
    for value, problem in (
        (moved, "does not match"),
        (haste_header(stamp, secret="whsec_other"), "does not match"),
        (haste_header(stamp, body=b"{}"), "does not match"),
        (f"v1={hexmac(BODY)}", "not t=<unix seconds>,v1=<hex>"),
        (f"t={stamp}", "not t="),
        (f"t=soon,v1={hexmac(BODY)}", "not t="),
        (f"t={'9' * 5000},v1=00", "not t="),  # no huge number is ever parsed
    ):
        with pytest.raises(BadSignature, match=problem):
            HASTE.verify({"x-haste-signature": value}, BODY, SECRET, NOW)


@pytest.mark.parametrize("offset", [-300, 300, -301, 301, -86_400])
def test_a_haste_timestamp_more_than_300_s_off_is_refused(offset: int) -> None:
    stamp = int(NOW) + offset
    headers = {"x-haste-signature": haste_header(stamp)}
    if abs(offset) <= 300:
        HASTE.verify(headers, BODY, SECRET, NOW)
        return
    with pytest.raises(BadSignature, match="more than 300 s from the gateway's clock"):
        HASTE.verify(headers, BODY, SECRET, NOW)


async def test_a_key_is_claimed_once_until_it_expires() -> None:
    clock = FakeTime()
    replays = Replays(clock=clock)
    assert await replays.claim("haste:id:evt_1", 60)
    assert not await replays.claim("haste:id:evt_1", 60)
    assert await replays.claim("haste:id:evt_2", 60)
    clock.advance(59)
    assert not await replays.claim("haste:id:evt_1", 60)
    clock.advance(1)
    assert await replays.claim("haste:id:evt_1", 60)
    await replays.hold("haste:id:evt_1", 500)  # taken again, for longer
    clock.advance(400)
    assert not await replays.claim("haste:id:evt_1", 60)
    await replays.free("haste:id:evt_1")
    assert await replays.claim("haste:id:evt_1", 60)


async def test_the_local_memory_is_bounded_oldest_first() -> None:
    replays = Replays(size=3, clock=FakeTime())
    for n in range(4):
        assert await replays.claim(f"k{n}", 3600)
    assert await replays.claim("k0", 3600)  # forgotten to make room: claimable again
    assert not await replays.claim("k3", 3600)


async def test_with_redis_away_the_memory_is_local() -> None:
    down = RedisState("redis://127.0.0.1:1/0", b"s" * 32, timeout=0.2)
    replays = Replays(down)
    try:
        assert await replays.claim("attio:body:x", 10)
        assert not await replays.claim("attio:body:x", 10)
    finally:
        await down.close()


async def test_secrets_are_kept_in_memory_without_redis() -> None:
    store = HookSecrets()
    assert await store.get("haste", "https://gw/webhooks/haste") is None
    await store.put("haste", "https://gw/webhooks/haste", Known("wh_1", SECRET))
    assert await store.get("haste", "https://gw/webhooks/haste") == Known("wh_1", SECRET)
    assert await store.get("haste", "https://other/webhooks/haste") is None
    assert SECRET not in repr(Known("wh_1", SECRET))


def test_a_secret_kept_in_redis_is_sealed_for_its_key_and_cursor_secret() -> None:
    redis = RedisState("redis://127.0.0.1:1/0", b"c" * 32)
    store = HookSecrets(redis, b"cursor-secret-of-the-replicas")
    key = store._key("haste", "https://gw/webhooks/haste")
    sealed = store._seal(key, Known("wh_1", SECRET))
    assert SECRET.encode() not in sealed
    assert store._open(key, sealed) == Known("wh_1", SECRET)
    assert store._seal(key, Known("wh_1", SECRET)) != sealed  # a fresh nonce each time
    # Another replica set's secret, another key, or a byte changed: nothing comes out.
    assert HookSecrets(redis, b"another-cursor-secret")._open(key, sealed) is None
    assert store._open(store._key("attio", "https://gw/webhooks/haste"), sealed) is None
    assert store._open(key, sealed[:-1] + bytes([sealed[-1] ^ 1])) is None
    assert store._open(key, b"short") is None
    with pytest.raises(ValueError, match="cursor secret"):
        HookSecrets(redis)
