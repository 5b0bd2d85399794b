"""`crm-gateway check --config FILE`: the config is valid, every credential resolves, and
every provider answers one cheap authenticated request, before anything is served."""

from __future__ import annotations

from gateway.app import ProviderClients, check_credentials, gateway_state
from gateway.manifest import load_manifest
from gateway.probe import ProbeResult, probe_all
from gateway.settings import Settings, warn_inline_secrets
from schema import schema

COLUMNS = ("provider", "kind", "reachable", "credentials", "latency", "rate limit", "problem")


async def check(settings: Settings) -> list[ProbeResult]:
    """Each provider's probe, through the same clients, limits and shared budget `serve`
    would use."""
    warn_inline_secrets(settings)
    check_credentials(settings)
    if settings.persisted_documents is not None:  # a bad manifest stops `serve`: say it now
        load_manifest(settings.persisted_documents, schema._schema)
    gateway, redis = gateway_state(settings)
    clients = ProviderClients(settings, gateway, redis)
    await clients.open()
    try:
        return await probe_all(gateway.sources)
    finally:
        await clients.close()


def table(results: list[ProbeResult]) -> str:
    """The results as an aligned plain-text table, one provider a row."""
    rows = [COLUMNS] + [_row(result) for result in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _row(result: ProbeResult) -> tuple[str, ...]:
    accepted = {True: "accepted", False: "REFUSED", None: "unknown"}[result.accepted]
    return (
        result.provider,
        result.kind,
        "yes" if result.reachable else "NO",
        accepted,
        f"{result.latency_ms:.0f} ms",
        result.rate_limit,
        result.problem or "",
    )
