"""`metrics_token`: /metrics and the provider list of /readyz only for its bearer, /healthz and
the readiness status open to orchestrators; without it, all stay open."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway.app import create_app
from gateway.demo import demo_provider
from gateway.servers import ServerThread
from gateway.settings import ConfigError, Settings, load_settings
from tests.support.clients import GraphQLClient

pytestmark = pytest.mark.integration

TOKEN = "scrape-token-Mf4kP7wQ2zXc"
REFUSED = {
    "errors": [
        {"message": "invalid or missing credentials", "extensions": {"code": "UNAUTHENTICATED"}}
    ]
}


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture(scope="module")
def guarded(emulators: dict[str, str]) -> Iterator[str]:
    settings = Settings(
        providers=[demo_provider("basicsos", emulators["basicsos"])], metrics_token=TOKEN
    )
    with ServerThread(create_app(settings)) as server:
        yield server.url


def test_metrics_need_the_token(guarded: str) -> None:
    missing = httpx.get(f"{guarded}/metrics")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="crm-gateway"'
    assert missing.json() == REFUSED
    wrong = httpx.get(f"{guarded}/metrics", headers=bearer(TOKEN + "x"))
    assert wrong.status_code == 401
    assert "crm_gateway" not in wrong.text
    assert wrong.headers["www-authenticate"].endswith('error="invalid_token"')
    served = httpx.get(f"{guarded}/metrics", headers=bearer(TOKEN))
    assert served.status_code == 200
    assert 'provider="basicsos"' in served.text


def test_readyz_names_providers_only_to_the_token(guarded: str) -> None:
    for headers in ({}, bearer("not-the-token-at-all"), {"X-API-Key": TOKEN}):
        anonymous = httpx.get(f"{guarded}/readyz", headers=headers)
        assert anonymous.status_code == 200
        assert anonymous.json() == {"status": "ready"}
    full = httpx.get(f"{guarded}/readyz", headers=bearer(TOKEN))
    assert full.json() == {"status": "ready", "providers": {"basicsos": "CLOSED"}}
    assert httpx.get(f"{guarded}/healthz").status_code == 200


def test_without_a_token_both_stay_open(gateway: GraphQLClient) -> None:
    assert httpx.get(f"{gateway.url}/metrics").status_code == 200
    assert "providers" in httpx.get(f"{gateway.url}/readyz").json()


def test_a_weak_token_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    for weak in ("short", "change-me-in-production"):
        monkeypatch.setenv("CRM_GATEWAY_METRICS_TOKEN", weak)
        with pytest.raises(ConfigError, match="metrics_token"):
            load_settings()
    monkeypatch.setenv("CRM_GATEWAY_METRICS_TOKEN", TOKEN)
    token = load_settings().metrics_token
    assert token is not None
    assert token.get_secret_value() == TOKEN
