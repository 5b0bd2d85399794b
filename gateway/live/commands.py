"""`crm-gateway webhooks list|sync`: the operators' view of the providers' webhooks.

Both open the clients of the providers with `webhooks = true`, as the gateway does, and
print one line per webhook, never a secret. `sync` registers, reuses or replaces each
webhook as the gateway's start-up does, under the same lock, and keeps the secret in
Redis, where the running replicas read it: without `redis_url` it is refused, since a
running gateway would never learn the secret of a webhook registered here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from gateway.app import ProviderClients, gateway_state
from gateway.datasources.webhooks import Registered
from gateway.errors import GatewayError
from gateway.live.webhooks import Webhooks
from gateway.settings import ConfigError, Settings
from gateway.shared import RedisDown

Print = Callable[[str], None]


@asynccontextmanager
async def _opened(settings: Settings) -> AsyncIterator[Webhooks]:
    hooked = [p for p in settings.providers if p.webhooks]
    if not hooked:
        raise ConfigError("no provider has `webhooks = true`")
    settings = settings.model_copy(update={"providers": hooked})
    gateway, redis = gateway_state(settings)
    clients = ProviderClients(settings, gateway, redis)
    await clients.open()
    try:
        yield Webhooks(settings, gateway, redis)
    finally:
        await clients.close()


def _line(hook: Registered, url: str) -> str:
    status = "active" if hook.active else "inactive"
    mine = "  (this gateway's)" if hook.url == url else ""
    return f"  {hook.id}  {status}  {hook.url}  {','.join(sorted(hook.events))}{mine}"


async def list_webhooks(settings: Settings, out: Print) -> bool:
    """Print every webhook of each webhooked provider; False if a provider failed."""
    ok = True
    async with _opened(settings) as webhooks:
        for name, url in webhooks.urls.items():
            try:
                hooks = await webhooks.api(name).registered()
            except GatewayError as error:
                out(f"{name}: cannot list its webhooks: {error}")
                ok = False
                continue
            out(f"{name}: {len(hooks)} webhook(s); this gateway's URL is {url}")
            for hook in hooks:
                out(_line(hook, url))
    return ok


async def sync_webhooks(settings: Settings, out: Print) -> bool:
    """Register, reuse or replace each provider's webhook; False if one failed."""
    if settings.redis_url is None:
        raise ConfigError(
            "webhooks sync needs `redis_url`: the running gateway verifies deliveries with the "
            "secret kept there (without Redis each gateway registers its webhook at start-up)"
        )
    ok = True
    async with _opened(settings) as webhooks:
        for name, url in webhooks.urls.items():
            try:
                outcome = await webhooks.registration(name).once()
            except (GatewayError, RedisDown) as error:
                out(f"{name}: failed: {str(error) or type(error).__name__}")
                ok = False
                continue
            out(f"{name}: {outcome.describe()} at {url}")
    return ok
