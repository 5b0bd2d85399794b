"""The secret of each provider's webhook, which its deliveries are verified with.

A provider shows a webhook's secret once, in the answer that registers it. With Redis
(`redis_url`) the gateway keeps it there, sealed with AES-GCM under a key derived from
`cursor_secret` (which `redis_url` requires and every replica shares): every replica
verifies deliveries with it, and a reader of Redis learns nothing to sign with. Without
Redis, or while it is away, each process knows only what it registered or last read.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.shared import NAMESPACE, RedisDown, RedisState, key_digest

# Seconds a secret read from Redis is used before it is read again (another replica may
# have replaced the webhook), and the least between two reads a failed check asks for.
REFRESH = 30.0
RETRY = 1.0
_NONCE = 12


@dataclass(frozen=True)
class Known:
    """The webhook the gateway registered at one URL, and its secret."""

    hook_id: str
    secret: str = field(repr=False)


class HookSecrets:
    """Known webhooks by (provider instance, URL). `clock` (monotonic seconds) is for tests."""

    def __init__(
        self,
        redis: RedisState | None = None,
        cursor_secret: bytes | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if redis is not None and cursor_secret is None:
            raise ValueError("secrets kept in Redis are sealed with the cursor secret")
        self.redis = redis
        self.clock = clock
        material = b"crm-gateway webhook secrets\0" + (cursor_secret or b"")
        self._cipher = AESGCM(hashlib.sha256(material).digest())
        self._local: dict[tuple[str, str], tuple[Known | None, float]] = {}

    async def get(self, provider: str, url: str, *, fresh: bool = False) -> Known | None:
        """The webhook known at `url`. Redis is read again after REFRESH seconds; after RETRY
        with `fresh` (a failed signature check may mean a newer secret there) or while none
        is known (another replica may be registering it)."""
        local, read_at = self._local.get((provider, url), (None, float("-inf")))
        age = self.clock() - read_at
        if self.redis is None or age < (RETRY if fresh or local is None else REFRESH):
            return local
        key = self._key(provider, url)
        try:
            blob = await self.redis.run(lambda r: r.get(key))
        except RedisDown:
            return local
        # Nothing (or nothing readable) in Redis: keep what this process registered.
        known = self._open(key, blob) if isinstance(blob, bytes) else None
        known = known or local
        self._local[(provider, url)] = (known, self.clock())
        return known

    async def put(self, provider: str, url: str, known: Known) -> None:
        """Keep `known`; RedisDown if Redis did not take it (the other replicas do not
        know it yet)."""
        self._local[(provider, url)] = (known, self.clock())
        if self.redis is not None:
            key = self._key(provider, url)
            blob = self._seal(key, known)
            await self.redis.run(lambda r: r.set(key, blob))

    def _key(self, provider: str, url: str) -> str:
        return f"{NAMESPACE}:webhook-secret:{provider}:{key_digest(url)}"

    def _seal(self, key: str, known: Known) -> bytes:
        nonce = os.urandom(_NONCE)
        plain = json.dumps({"id": known.hook_id, "secret": known.secret}).encode()
        return nonce + self._cipher.encrypt(nonce, plain, key.encode())

    def _open(self, key: str, blob: bytes) -> Known | None:
        """The sealed value, or None when it was not sealed for `key` with this key."""
        try:
            plain = self._cipher.decrypt(blob[:_NONCE], blob[_NONCE:], key.encode())
            value = json.loads(plain)
            return Known(str(value["id"]), str(value["secret"]))
        except (InvalidTag, ValueError, KeyError, TypeError):
            return None
