"""The demo: every built-in emulator on loopback, each configured as a provider."""

from __future__ import annotations

from gateway.providers import KINDS, PROVIDERS
from gateway.settings import ProviderSettings, Settings

DEMO_GATEWAY_PORT = 8000

# The emulators' own demo credentials (not secrets: they exist only on loopback).
DEMO_CREDENTIALS: dict[str, dict[str, str]] = {
    kind: dict(entry.demo_credentials) for kind, entry in PROVIDERS.items()
}
DEMO_PORTS: dict[str, int] = {kind: entry.demo_port for kind, entry in PROVIDERS.items()}
# Seconds between polls of the kinds without webhooks, so the demo is live out of the box.
DEMO_POLL_INTERVALS: dict[str, float] = {"revyops": 5.0, "redivis": 5.0, "basicsos": 5.0}


def demo_kinds() -> list[str]:
    """Every kind: the registry gives each one a data source and an emulator."""
    return list(KINDS)


def demo_provider(kind: str, base_url: str, *, rate_limit: bool = True) -> ProviderSettings:
    return ProviderSettings.model_validate(
        {
            "name": kind,
            "kind": kind,
            "base_url": base_url,
            "credentials": DEMO_CREDENTIALS[kind],
            "remote_data": True,
            "rate_limit": rate_limit,
        }
    )


def demo_settings(
    host: str = "127.0.0.1", *, rate_limits: bool = False, port: int = DEMO_GATEWAY_PORT
) -> Settings:
    """Settings pointing one provider of each kind, named after it, at its emulator.

    Everything a deployment hides is on: the demo is for exploring. The gateway keeps the
    providers' rate limits exactly when the emulators enforce them (`rate_limits`): its own
    limiter must not throttle a demo whose emulators do not. The cursor secret is random
    per process whatever the environment says. The kinds with webhooks register the
    gateway's (on `port`) with their emulators, which deliver to loopback; the others are
    polled (`DEMO_POLL_INTERVALS`).
    """
    providers = [
        demo_provider(k, f"http://{host}:{DEMO_PORTS[k]}", rate_limit=rate_limits).model_copy(
            update={
                "webhooks": PROVIDERS[k].source_class().webhooks is not None,
                "poll_interval": DEMO_POLL_INTERVALS.get(k),
            }
        )
        for k in demo_kinds()
    ]
    return Settings(
        providers=providers,
        public_url=f"http://127.0.0.1:{port}",
        cursor_secret=None,
        graphiql=True,
        introspection=True,
        field_suggestions=True,
        openapi=True,
        cors_origins=["http://localhost:*", "http://127.0.0.1:*"],
        subscriptions=True,
    )


def emulator_lines(host: str = "127.0.0.1") -> list[str]:
    """One line per emulator of the demo: where it listens and the credentials it takes."""
    width = max(map(len, demo_kinds())) + 1
    return [
        f"Emulator {kind + ':':<{width}} http://{host}:{DEMO_PORTS[kind]}  "
        + " ".join(f"{key}={value}" for key, value in DEMO_CREDENTIALS[kind].items())
        for kind in demo_kinds()
    ]
