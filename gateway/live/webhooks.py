"""Webhook intake: `POST /webhooks/{provider}` turns each signed delivery into changes.

A delivery carries no client credentials: its signature, with the secret of the webhook
the gateway registered (`hook_secrets`), is its authentication, so the GraphQL clients'
auth does not apply here. The checks, in order:

- a provider not configured, or without `webhooks = true`: 404;
- a body above `max_request_size`, counted as it streams in: 413;
- the webhook's secret not known yet (registration still running or failing): 503 with
  `Retry-After`, so the provider retries instead of counting a refusal;
- a bad or missing signature, or (hasteCRM) a timestamp too far from the clock: 401;
- a body, correctly signed, that is not the provider's JSON: 400;
- a delivery already acted on: 200, and nothing more is done.

Each event of a delivery becomes one `RecordChange` (source WEBHOOK) published on the
gateway's hub, which forgets the provider's cached reads on every replica.

A replay is acted on once. hasteCRM repeats its delivery `id` on retries: an id is acted
on once in `DELIVERY_IDS_KEPT` (far longer than the 300 s a signature's `t` is good for).
Attio sends neither id nor time, so a replay is byte for byte a genuine second change of
the same attribute of the same record by the same actor. The body's digest is claimed
for `REPEAT_WINDOW` seconds: the first delivery acts at once; the same body again within
the window does not, but arms one action at the window's end, whatever number of repeats
came. A genuine second change is thus never lost (at most one window late), and a flood
of replays costs at most one action per window.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from gateway.datasources.webhooks import Delivery, Event, WebhookApi
from gateway.errors import UpstreamError
from gateway.live.changes import ChangeSource, RecordChange
from gateway.live.hook_secrets import HookSecrets, Known
from gateway.live.registration import Registration, webhook_url
from gateway.live.replays import Replays
from gateway.live.signatures import BadSignature
from gateway.settings import Settings
from gateway.shared import RedisState

if TYPE_CHECKING:
    from resolvers.context import Gateway

log = logging.getLogger("gateway.live")

DELIVERY_IDS_KEPT = 3600.0
REPEAT_WINDOW = 10.0
# Seconds a provider is asked to wait while the webhook's secret is not known yet.
RETRY_AFTER = 5


class TooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, or TooLarge as soon as it passes `limit` bytes (never read whole first)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge
    return bytes(body)


async def _cancel(tasks: Iterable[asyncio.Task[Any]]) -> None:
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def refusal(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))


class Webhooks:
    """The app's webhook intake, and the registration its lifespan runs (`running`).

    `ready` opens the provider clients where no lifespan did; `clock` (Unix seconds) checks
    signature times; `window` and `sleep` are Attio's repeat window, for tests.
    """

    def __init__(
        self,
        settings: Settings,
        gateway: Gateway,
        redis: RedisState | None = None,
        *,
        ready: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
        window: float = REPEAT_WINDOW,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        public = settings.public_url or ""
        self.urls = {p.name: webhook_url(public, p.name) for p in settings.providers if p.webhooks}
        self.gateway = gateway
        self.redis = redis
        self.max_bytes = settings.max_request_size
        cursor = settings.cursor_secret
        self.secrets = HookSecrets(
            redis, None if redis is None or cursor is None else cursor.get_secret_value().encode()
        )
        self.replays = Replays(redis)
        self.ready = ready
        self.clock = clock
        self.window = window
        self._sleep = sleep
        self._apis: dict[str, WebhookApi] = {}
        self._later: set[asyncio.Task[None]] = set()

    def api(self, name: str) -> WebhookApi:
        """The webhook API of provider `name`, over its current upstream."""
        source = self.gateway.sources[name]
        api = self._apis.get(name)
        if api is None or api.upstream is not source.upstream:
            kind = source.webhooks
            if kind is None:  # the settings refuse `webhooks = true` for such a kind
                raise LookupError(f"provider {name!r} has no webhooks")
            api = self._apis[name] = kind(source.upstream)
        return api

    def registration(self, name: str) -> Registration:
        return Registration(name, self.api(name), self.urls[name], self.secrets, self.redis)

    def route(self, router: APIRouter) -> None:
        @router.post("/webhooks/{provider}", include_in_schema=False)
        async def webhook(provider: str, request: Request) -> Response:
            return await self.receive(provider, request)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Keep every webhook registered (in the background: the gateway serves meanwhile)
        while the block runs; then stop, and `close`."""
        tasks: list[asyncio.Task[Any]] = [
            asyncio.create_task(self.registration(name).kept()) for name in self.urls
        ]
        try:
            yield
        finally:
            await _cancel(tasks)
            await self.close()

    async def close(self) -> None:
        """Drop the repeat actions not yet due (see `act`)."""
        await _cancel(self._later)

    async def receive(self, name: str, request: Request) -> Response:
        url = self.urls.get(name)
        if url is None:
            return refusal(404, f"No provider {name!r} takes webhooks here.")
        try:
            body = await read_body(request, self.max_bytes)
        except TooLarge:
            return refusal(413, f"The delivery is larger than {self.max_bytes} bytes.")
        if self.ready is not None:
            await self.ready()
        if name not in self.gateway.sources:  # the clients are closing: shutting down
            return refusal(503, "The gateway is shutting down.", {"Retry-After": str(RETRY_AFTER)})
        api = self.api(name)
        known = await self.secrets.get(name, url)
        if known is None:
            log.warning("webhook delivery for provider %r before its webhook is registered", name)
            message = f"The webhook of provider {name!r} is not registered yet; retry later."
            return refusal(503, message, {"Retry-After": str(RETRY_AFTER)})
        problem = await self._verify(name, url, api, request, body, known)
        if problem is not None:
            log.info("webhook delivery for provider %r refused: %s", name, problem)
            return refusal(401, f"The delivery is not signed by provider {name!r}: {problem}.")
        try:
            delivery = await api.delivery(json.loads(body))
        except ValueError as error:  # not JSON, or not the provider's shape
            log.info("webhook delivery for provider %r is malformed: %s", name, error)
            return refusal(400, f"The delivery is not a webhook of provider {name!r}: {error}.")
        except UpstreamError as error:  # reading what it needs to understand it failed
            log.warning("webhook delivery for provider %r not read: %s", name, error)
            return refusal(503, str(error), {"Retry-After": str(RETRY_AFTER)})
        acted = await self.act(name, delivery, body)
        return JSONResponse({"changes": len(delivery.events), "duplicate": not acted})

    async def _verify(
        self, name: str, url: str, api: WebhookApi, request: Request, body: bytes, known: Known
    ) -> str | None:
        """None when the delivery is signed with the webhook's secret (read from Redis again
        once if not: another replica may have replaced the webhook), else what is wrong."""
        try:
            api.signature.verify(request.headers, body, known.secret, self.clock())
            return None
        except BadSignature as error:
            problem = str(error)
        newer = await self.secrets.get(name, url, fresh=True)
        if newer is None or newer == known:
            return problem
        try:
            api.signature.verify(request.headers, body, newer.secret, self.clock())
            return None
        except BadSignature as error:
            return str(error)

    async def act(self, name: str, delivery: Delivery, body: bytes) -> bool:
        """Publish the delivery's changes unless it was acted on (see the module's
        docstring); whether it was acted on now."""
        if delivery.id is not None:
            if not await self.replays.claim(f"{name}:id:{delivery.id}", DELIVERY_IDS_KEPT):
                return False
            await self.publish(name, delivery.events)
            return True
        key = f"{name}:body:{hashlib.sha256(body).hexdigest()}"
        if await self.replays.claim(key, self.window):
            await self.publish(name, delivery.events)
            return True
        if await self.replays.claim(f"{key}:again", self.window):
            self._after(self.window, lambda: self._again(name, key, delivery.events))
        return False

    async def _again(self, name: str, key: str, events: Iterable[Event]) -> None:
        # The repeat's action opens a window of its own, so repeats keep to one per window.
        await self.replays.hold(key, self.window)
        await self.replays.free(f"{key}:again")
        await self.publish(name, events)

    def _after(self, delay: float, action: Callable[[], Awaitable[None]]) -> None:
        async def later() -> None:
            await self._sleep(delay)
            try:
                await action()
            except Exception:
                log.exception("a repeated webhook delivery could not be acted on")

        task = asyncio.create_task(later())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def publish(self, name: str, events: Iterable[Event]) -> None:
        now = datetime.now(UTC)
        for event in events:
            change = RecordChange(
                name, event.entity, event.id, event.kind, ChangeSource.WEBHOOK, event.at or now
            )
            await self.gateway.changes.publish(change)
