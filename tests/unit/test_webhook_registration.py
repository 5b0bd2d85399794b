"""Registering the gateway's webhooks: reuse, replace, never pile up, retry with backoff;
the providers' webhook APIs as they speak on the wire; and the settings that need them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.datasources.attio_webhooks import AttioWebhooks
from gateway.datasources.haste_webhooks import HasteWebhooks
from gateway.datasources.webhooks import Delivery, Registered, WebhookApi
from gateway.errors import UpstreamUnavailable
from gateway.live.changes import ChangeKind
from gateway.live.hook_secrets import HookSecrets, Known
from gateway.live.registration import Outcome, Registration
from gateway.live.signatures import BodyHmac
from gateway.settings import ConfigError, load_settings
from tests.unit.fake_time import FakeTime
from tests.unit.mock_provider import ok, sent_json, source

URL = "https://gw.test/webhooks/crm"


class FakeApi(WebhookApi):
    """A provider's webhooks in memory; `failures` calls fail before the next succeeds."""

    path = "/hooks"
    events = {"thing.created": ChangeKind.CREATED, "thing.deleted": ChangeKind.DELETED}
    signature = BodyHmac("x-sig")

    def __init__(self) -> None:
        self.hooks: dict[str, Registered] = {}
        self.failures = 0
        self.made = 0

    def add(self, url: str, *, active: bool = True, events: frozenset[str] | None = None) -> str:
        self.made += 1
        hook_id = f"wh_{self.made}"
        hook_events = frozenset(self.events) if events is None else events
        self.hooks[hook_id] = Registered(hook_id, url, hook_events, active)
        return hook_id

    async def registered(self) -> list[Registered]:
        if self.failures:
            self.failures -= 1
            raise UpstreamUnavailable("the provider is down", provider="crm")
        return list(self.hooks.values())

    async def register(self, url: str) -> Registered:
        hook_id = self.add(url)
        return Registered(hook_id, url, frozenset(self.events), True, f"secret-{hook_id}")

    async def unregister(self, hook_id: str) -> None:
        del self.hooks[hook_id]

    def body(self, url: str) -> Any:
        raise NotImplementedError

    def parse(self, raw: Any) -> Registered:
        raise NotImplementedError

    async def delivery(self, body: Any) -> Delivery:
        raise NotImplementedError


def at_url(api: FakeApi) -> list[str]:
    return [hook.id for hook in api.hooks.values() if hook.url == URL]


async def test_a_second_registration_reuses_the_webhook() -> None:
    api, store = FakeApi(), HookSecrets()
    other = api.add("https://someone-else.test/in")
    first = await Registration("crm", api, URL, store).ensure()
    assert (first.action, first.removed) == ("created", ())
    assert await store.get("crm", URL) == Known(first.hook_id, f"secret-{first.hook_id}")
    kept: list[Known] = []
    put = store.put

    async def keep(provider: str, url: str, known: Known) -> None:
        kept.append(known)
        await put(provider, url, known)

    store.put = keep  # type: ignore[method-assign]
    second = await Registration("crm", api, URL, store).ensure()
    assert (second.action, second.hook_id) == ("reused", first.hook_id)
    # Kept again, so a Redis that was away when it was registered learns it too.
    assert kept == [Known(first.hook_id, f"secret-{first.hook_id}")]
    assert at_url(api) == [first.hook_id]
    assert other in api.hooks  # another URL's webhook is none of the gateway's business


async def test_a_webhook_whose_secret_is_unknown_is_replaced() -> None:
    api = FakeApi()
    old = (await Registration("crm", api, URL, HookSecrets()).ensure()).hook_id
    restarted = HookSecrets()  # a restart without Redis: the secret is gone
    outcome = await Registration("crm", api, URL, restarted).ensure()
    assert (outcome.action, outcome.removed) == ("replaced", (old,))
    assert at_url(api) == [outcome.hook_id]
    assert (await restarted.get("crm", URL)) == Known(outcome.hook_id, f"secret-{outcome.hook_id}")
    assert outcome.describe() == "replaced webhook wh_2; deleted wh_1"


@pytest.mark.parametrize(
    "stale", [{"active": False}, {"events": frozenset({"thing.created"})}], ids=["off", "few"]
)
async def test_an_inactive_or_narrower_webhook_is_replaced(stale: dict[str, Any]) -> None:
    api, store = FakeApi(), HookSecrets()
    old = api.add(URL, **stale)
    await store.put("crm", URL, Known(old, "known"))
    outcome = await Registration("crm", api, URL, store).ensure()
    assert (outcome.action, outcome.removed) == ("replaced", (old,))


async def test_webhooks_piled_up_at_the_url_are_cleared() -> None:
    api, store = FakeApi(), HookSecrets()
    piled = [api.add(URL) for _ in range(3)]
    await store.put("crm", URL, Known(piled[1], "known"))
    outcome = await Registration("crm", api, URL, store).ensure()
    assert (outcome.action, outcome.hook_id) == ("reused", piled[1])
    assert sorted(outcome.removed) == [piled[0], piled[2]]
    assert at_url(api) == [piled[1]]
    assert await Registration("crm", api, URL, store).once() == Outcome("crm", "reused", piled[1])


async def test_a_failed_registration_is_retried_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, store, time = FakeApi(), HookSecrets(), FakeTime()
    api.failures = 3
    caplog.set_level(logging.INFO, logger="gateway.live")
    outcome = await Registration("crm", api, URL, store).kept(sleep=time.sleep)
    assert time.slept == [1.0, 2.0, 4.0]
    assert outcome.action == "created"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert "the provider is down" in warnings[0]
    assert "retrying in 1 s" in warnings[0]
    assert not any("secret-" in r.getMessage() for r in caplog.records)


# --- the providers' webhook APIs on the wire -------------------------------------------


async def test_attio_registers_every_record_and_note_event_and_pages_its_list() -> None:
    crm, provider = source("attio")
    api = AttioWebhooks(crm.upstream)

    def hook(n: int, url: str = URL) -> dict[str, Any]:
        subscriptions = [{"event_type": e, "filter": None} for e in api.events]
        return {
            "id": {"workspace_id": "w", "webhook_id": f"h{n}"},
            "target_url": url,
            "subscriptions": subscriptions,
            "status": "active",
        }

    provider.queue(ok({"data": [hook(n) for n in range(100)]}), ok({"data": [hook(100)]}))
    listed = await api.registered()
    assert len(listed) == 101
    assert [r.url.params["page"] for r in provider.requests] == ["1", "2"]
    provider.queue(ok({"data": {**hook(7), "secret": "s3cret"}}))
    made = await api.register(URL)
    assert (made.id, made.secret, made.events) == ("h7", "s3cret", frozenset(api.events))
    assert "s3cret" not in repr(made)
    sent = sent_json(provider.last)["data"]
    assert sent["target_url"] == URL
    assert {s["event_type"] for s in sent["subscriptions"]} == set(api.events)
    provider.queue(httpx.Response(404, json={"error": {"message": "gone"}}))
    await api.unregister("h7")  # already gone: no error
    assert (provider.last.method, provider.last.url.path) == ("DELETE", "/base/v2/webhooks/h7")


async def test_haste_registers_its_events_and_reads_its_answers() -> None:
    crm, provider = source("haste")
    api = HasteWebhooks(crm.upstream)
    raw = {"id": "wh_1", "url": URL, "events": list(api.events), "active": True}
    provider.queue(ok({"data": {**raw, "secret": "whsec_x"}}, status=201))
    made = await api.register(URL)
    assert (made.id, made.secret, made.active) == ("wh_1", "whsec_x", True)
    assert sent_json(provider.last) == {
        "url": URL,
        "events": list(api.events),
        "description": "crm-gateway",
    }
    assert "contact.merged" in api.events
    provider.queue(ok({"data": [raw]}))
    assert [h.id for h in await api.registered()] == ["wh_1"]
    provider.queue(ok({"data": [{"url": URL}]}))  # no id: not a webhook list
    with pytest.raises(Exception, match="unexpected webhook answer"):
        await api.registered()
    provider.queue(httpx.Response(204))
    await api.unregister("wh_1")


# --- settings ---------------------------------------------------------------------------


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_webhooks_on_a_kind_without_them_names_the_provider_and_key(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        'public_url = "https://gw.test"\n[[providers]]\nname = "crm"\nkind = "revyops"\n'
        'base_url = "http://x"\nwebhooks = true\n',
    )
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    assert f"{path}:6: providers[0].webhooks: provider 'crm': kind 'revyops' has no webhooks" in (
        str(refused.value)
    )


def test_webhooks_without_public_url_names_the_provider_and_key(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        '[[providers]]\nname = "crm"\nkind = "haste"\nbase_url = "http://x"\nwebhooks = true\n',
    )
    with pytest.raises(ConfigError, match=r"providers.crm.webhooks = true needs .*public_url"):
        load_settings(path)
    with_url = path.read_text().replace(
        "[[providers]]", 'public_url = "https://gw.test"\n[[providers]]'
    )
    path.write_text(with_url)
    assert load_settings(path).providers[0].webhooks is True
    assert load_settings(path).public_url == "https://gw.test"
