"""The live work that runs beside the server for its lifespan: registering webhooks with
the providers, polling the providers that have none, and sharing changes with the other
replicas through Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from gateway.live.poller import polling
from gateway.live.webhooks import Webhooks
from gateway.settings import Settings
from gateway.shared import RedisState

if TYPE_CHECKING:
    from resolvers.context import Gateway


@asynccontextmanager
async def running(
    settings: Settings, gateway: Gateway, redis: RedisState | None, webhooks: Webhooks | None = None
) -> AsyncIterator[None]:
    """Start the live work once the provider clients are open; stop it when the block ends.
    `webhooks`: the app's intake, whose webhooks are registered (in the background) here."""
    async with AsyncExitStack() as stack:
        if redis is not None:  # first: what the others publish at start crosses already
            await stack.enter_async_context(gateway.changes.fanned_out(redis))
        if webhooks is not None:
            await stack.enter_async_context(webhooks.running())
        await stack.enter_async_context(polling(settings, gateway, redis))
        yield
