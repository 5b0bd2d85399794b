"""Keeping each provider's webhook registered at `<public_url>/webhooks/<name>`.

`Registration.ensure` lists the provider's webhooks and keeps the one at the gateway's URL whose
secret it knows (and that is active, for every event the gateway uses); any other at that
URL is deleted, so restarts never pile webhooks up. With none to keep it registers a new
one first, keeps its secret, then deletes the old ones (no change falls between them).

With Redis only one replica registers at a time (a lock with an expiry, in case it
dies); the others wait for the secret to appear there. At start-up this runs in the
background (`Registration.kept`): a failure is logged and tried again with backoff while
the gateway serves, and deliveries meanwhile get 503. `crm-gateway webhooks sync` runs it
once (`Registration.once`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.datasources.webhooks import Registered, WebhookApi
from gateway.errors import GatewayError
from gateway.live.hook_secrets import HookSecrets, Known
from gateway.shared import NAMESPACE, RedisDown, RedisState, key_digest

log = logging.getLogger("gateway.live")

# Seconds the registration lock outlives a replica that died holding it; how often the
# others look for the secret; the first and the longest wait before trying again.
LOCK_TTL = 60.0
LOCK_POLL = 0.5
FIRST_RETRY = 1.0
MAX_RETRY = 300.0
# Deletes the lock only if it is still the one this replica took.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"

Sleep = Callable[[float], Awaitable[None]]


def webhook_url(public_url: str, provider: str) -> str:
    return f"{public_url.rstrip('/')}/webhooks/{provider}"


@dataclass(frozen=True)
class Outcome:
    """What registering did: `action` is reused, created, replaced or shared (registered
    by another replica); `removed` the webhooks deleted at the gateway's URL."""

    provider: str
    action: str
    hook_id: str
    removed: tuple[str, ...] = ()

    def describe(self) -> str:
        text = f"{self.action} webhook {self.hook_id}"
        if self.action == "shared":
            text = f"webhook {self.hook_id} registered by another replica"
        if self.removed:
            text += f"; deleted {', '.join(self.removed)}"
        return text


def _keeps(hook: Registered, known: Known | None, api: WebhookApi) -> bool:
    return (
        known is not None
        and hook.id == known.hook_id
        and hook.active
        and hook.events >= frozenset(api.events)
    )


class RegistrationLock:
    """One replica at a time registers the webhook at a URL (Redis SET NX, expiring)."""

    def __init__(self, redis: RedisState, provider: str, url: str) -> None:
        self.redis = redis
        self.key = f"{NAMESPACE}:webhook-lock:{provider}:{key_digest(url)}"
        self.token = secrets.token_hex(16)

    async def acquire(self) -> bool:
        ms = int(LOCK_TTL * 1000)
        return bool(await self.redis.run(lambda r: r.set(self.key, self.token, nx=True, px=ms)))

    async def release(self) -> None:
        with contextlib.suppress(RedisDown):  # else it expires
            await self.redis.run(lambda r: r.eval(_RELEASE, 1, self.key, self.token))


@dataclass(frozen=True)
class Registration:
    """The gateway's webhook with one provider instance: its URL, the provider's webhook
    API, where its secret is kept, and the Redis its replicas share (None: alone)."""

    provider: str
    api: WebhookApi
    url: str
    store: HookSecrets
    redis: RedisState | None = None

    async def ensure(self) -> Outcome:
        """Reuse, or register, the webhook at `url` (see the module's docstring)."""
        api, url = self.api, self.url
        mine = [hook for hook in await api.registered() if hook.url == url]
        known = await self.store.get(self.provider, url, fresh=True)
        kept = next((hook for hook in mine if _keeps(hook, known, api)), None)
        if kept is not None and known is not None:
            # Kept again: had Redis been away when it was registered, it learns it now.
            await self.store.put(self.provider, url, known)
            action = "reused"
        else:
            kept = await api.register(url)
            if not kept.secret:
                raise api.upstream.bad_response("a new webhook without its secret")
            await self.store.put(self.provider, url, Known(kept.id, kept.secret))
            action = "replaced" if mine else "created"
        removed = tuple(hook.id for hook in mine if hook.id != kept.id)
        for hook_id in removed:
            await api.unregister(hook_id)
        return Outcome(self.provider, action, kept.id, removed)

    async def once(self, *, sleep: Sleep = asyncio.sleep) -> Outcome:
        """`ensure`, by one replica at a time; a replica that finds the lock taken waits
        for the secret to appear (RedisDown while Redis is away: the replicas could not
        share it)."""
        if self.redis is None:
            return await self.ensure()
        lock = RegistrationLock(self.redis, self.provider, self.url)
        while True:
            if await lock.acquire():
                try:
                    return await self.ensure()
                finally:
                    await lock.release()
            known = await self.store.get(self.provider, self.url, fresh=True)
            if known is not None:
                return Outcome(self.provider, "shared", known.hook_id)
            await sleep(LOCK_POLL)

    async def kept(self, *, sleep: Sleep = asyncio.sleep) -> Outcome:
        """`once` until it succeeds, waiting longer after each failure."""
        delay = FIRST_RETRY
        while True:
            try:
                outcome = await self.once(sleep=sleep)
            except Exception as error:  # whatever failed, the gateway serves on and tries again
                expected = isinstance(error, GatewayError | RedisDown)  # else: a traceback too
                log.warning(
                    "registering the webhook of provider %r at %s failed (%s); retrying in %.0f s",
                    self.provider,
                    self.url,
                    str(error) or type(error).__name__,
                    delay,
                    exc_info=not expected,
                )
                await sleep(delay)
                delay = min(delay * 2, MAX_RETRY)
                continue
            log.info("provider %r: %s at %s", self.provider, outcome.describe(), self.url)
            return outcome
