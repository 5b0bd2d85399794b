"""The Redis codec and keys: signed values only, keys the same text in every process."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.records import Entity
from gateway.responses import portable
from gateway.settings import Settings
from gateway.shared import Codec, RedisState, SharedCache, key_digest

ROOT = Path(__file__).resolve().parents[2]
plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(plain)
def test_a_value_comes_back_as_it_went(value: object) -> None:
    codec = Codec(b"a-secret-of-the-replicas")
    assert codec.decode(codec.encode(value)) == value


class Boom:
    """Unpickling it would run code: a forged value must never get that far."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("unpickled!",))


def test_values_not_signed_with_the_secret_are_never_unpickled(capsys) -> None:
    ours, theirs = Codec(b"a-secret-of-the-replicas"), Codec(b"another-secret-entirely")
    forged = pickle.dumps(Boom())
    assert ours.decode(b"\0" * 32 + forged) is None
    assert ours.decode(theirs.encode(Boom())) is None
    blob = bytearray(ours.encode([1, 2, 3]))
    blob[-2] ^= 1
    assert ours.decode(bytes(blob)) is None
    assert ours.decode(b"") is None
    assert "unpickled!" not in capsys.readouterr().out


def test_keys_are_namespaced_by_tenant_and_cache() -> None:
    shared = SharedCache(RedisState("redis://127.0.0.1:1/0", b"s" * 16), "0123abcd")
    key = shared.key("blocks", ("seq", "contact", "{}", "h", None, 50))
    prefix, tenant, name, digest = key.split(":")
    assert (prefix, tenant, name) == ("crm-gateway", "0123abcd", "blocks")
    assert len(digest) == 32
    assert shared.key("wholes", Entity.CONTACT) != shared.key("blocks", Entity.CONTACT)
    assert shared.generation_key == "crm-gateway:0123abcd:generation"


KEYS = [
    ("offset", "contact", '{"f":null,"o":[]}', 0, 50),
    ("seq", "deal", "{}", "handle", None, 100),
    ("GET", "/v1/contacts/7", "null", "null"),
]


def test_key_digests_are_the_same_in_every_process() -> None:
    """Replicas must name an entry alike: no salted `hash()` may enter a digest."""
    script = (
        "from gateway.shared import key_digest; from gateway.records import Entity; "
        f"print([key_digest(k) for k in {KEYS!r}], key_digest(Entity.COMPANY))"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(run.stdout)
    assert outputs == {f"{[key_digest(k) for k in KEYS]} {key_digest(Entity.COMPANY)}\n"}
    assert len({key_digest(k) for k in KEYS}) == len(KEYS)


def test_a_response_kept_in_redis_carries_no_credential() -> None:
    request = httpx.Request(
        "GET",
        "https://crm.example/v1/contacts?client_id=secret-id&page=2",
        headers={"Authorization": "Bearer secret-token"},
    )
    response = httpx.Response(
        200, headers={"X-RateLimit-Remaining": "9"}, content=b'{"ok": true}', request=request
    )
    kept = pickle.loads(pickle.dumps(portable(response)))
    assert kept.json() == {"ok": True}
    assert kept.headers["X-RateLimit-Remaining"] == "9"
    assert kept.status_code == 200
    assert b"secret" not in pickle.dumps(portable(response))


def test_redis_url_requires_a_cursor_secret() -> None:
    with pytest.raises(ValueError, match="redis_url needs cursor_secret"):
        Settings(redis_url="redis://redis:6379/0")
    with pytest.raises(ValueError, match="redis_url must start with"):
        Settings(redis_url="http://redis:6379", cursor_secret="a-long-enough-secret-Zr6gT1fK")
    settings = Settings(
        redis_url="redis://redis:6379/0", cursor_secret="a-long-enough-secret-Zr6gT1fK"
    )
    assert settings.redis_url is not None
    assert "6379" not in repr(settings)  # it may hold a password
