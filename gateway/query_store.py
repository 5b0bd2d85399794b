"""The automatic persisted queries' store: query texts by their SHA-256, bounded.

A text is stored only under its own SHA-256, which the gateway computes (`persisted`
checks the client's hash against it before anything is stored), and checked again when it
is read back from Redis: whoever writes to the store, a hash can only ever give the text
that hashes to it, so no client can make another's hash run a document of its choosing.
A query text is public (every client of an app ships it), so one store serves all clients.

In each process: the most recently used texts, at most `max_entries` of them and
`max_bytes` together; a text longer than `max_document` bytes is never stored. With Redis
(`redis_url`), the replicas share the texts too, each kept a day after it was last
registered; while Redis is away each process keeps its own.
"""

from __future__ import annotations

import contextlib
from typing import Any

from cachetools import LRUCache

from gateway.manifest import sha256_hex
from gateway.shared import NAMESPACE, RedisDown, RedisState

REDIS_TTL = 24 * 3600  # seconds a registration is kept in Redis


class QueryStore:
    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int,
        max_document: int,
        redis: RedisState | None = None,
    ) -> None:
        self.max_entries = max_entries
        self.max_document = max_document
        self.redis = redis
        self._local: LRUCache[str, bytes] = LRUCache(maxsize=max_bytes, getsizeof=len)

    def __len__(self) -> int:
        return len(self._local)

    @property
    def size(self) -> int:
        """The bytes held in this process."""
        return int(self._local.currsize)

    async def get(self, digest: str) -> str | None:
        """The text whose SHA-256 is `digest` (lower-case hex), if it was registered."""
        held = self._local.get(digest)
        if held is not None:
            return held.decode()
        if self.redis is None:
            return None
        try:
            blob: Any = await self.redis.run(lambda redis: redis.get(_key(digest)))
        except RedisDown:
            return None
        if not isinstance(blob, bytes):
            return None
        try:
            text = blob.decode()
        except UnicodeDecodeError:
            return None
        if sha256_hex(text) != digest:
            return None  # not written by a replica: never run it
        self._keep(digest, blob)
        return text

    async def put(self, digest: str, text: str) -> None:
        """Register `text` under `digest`, its SHA-256 (the caller has checked it)."""
        blob = text.encode()
        if len(blob) > self.max_document or not self._keep(digest, blob):
            return
        if self.redis is not None:
            # Redis away: kept here; the other replicas ask for the text once more.
            with contextlib.suppress(RedisDown):
                await self.redis.run(lambda redis: redis.set(_key(digest), blob, ex=REDIS_TTL))

    def _keep(self, digest: str, blob: bytes) -> bool:
        if len(blob) > self._local.maxsize:
            return False
        self._local[digest] = blob
        while len(self._local) > self.max_entries:
            self._local.popitem()
        return True


def _key(digest: str) -> str:
    return f"{NAMESPACE}:apq:{digest}"
