"""hasteCRM's webhooks (v1): `/v1/webhooks`, one event per delivery with its own `id`,
signed `X-Haste-Signature: t=<unix>,v1=<hex>` (contract §9)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.datasources.webhooks import Delivery, Event, Malformed, Registered, WebhookApi
from gateway.live.changes import ChangeKind
from gateway.live.signatures import TimestampedHmac
from gateway.records import Entity

OBJECTS = {
    "contact": Entity.CONTACT,
    "company": Entity.COMPANY,
    "deal": Entity.DEAL,
    "note": Entity.NOTE,
}
KINDS = {
    "created": ChangeKind.CREATED,
    "updated": ChangeKind.UPDATED,
    "deleted": ChangeKind.DELETED,
}


def _time(value: Any) -> datetime | None:
    """The event's time, in UTC (None if it has none the gateway can read)."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class HasteWebhooks(WebhookApi):
    path = "/v1/webhooks"
    # `contact.merged` names the contact merged away (`data.id`) and the one kept
    # (`data.mergedIntoId`), which also comes as `contact.updated`.
    events = {
        **{f"{name}.{action}": kind for name in OBJECTS for action, kind in KINDS.items()},
        "contact.merged": ChangeKind.MERGED,
    }
    signature = TimestampedHmac("x-haste-signature", tolerance=300.0)

    def body(self, url: str) -> Any:
        return {"url": url, "events": list(self.events), "description": "crm-gateway"}

    def parse(self, raw: Any) -> Registered:
        return Registered(
            id=str(raw["id"]),
            url=str(raw["url"]),
            events=frozenset(str(name) for name in raw["events"]),
            active=bool(raw.get("active", True)),
            secret=raw.get("secret"),
        )

    async def delivery(self, body: Any) -> Delivery:
        # `{"id": "evt_…", "type": "contact.updated", "createdAt", "workspaceId",
        #   "data": {"object": "contact", "id": "…"}}`
        try:
            delivery_id, kind = str(body["id"]), self.events.get(str(body["type"]))
            data = body["data"]
            entity, record_id = OBJECTS.get(str(data["object"])), str(data["id"])
        except (KeyError, TypeError) as error:
            raise Malformed(f"not a hasteCRM delivery ({type(error).__name__})") from None
        if kind is None or entity is None:  # an event the gateway does not subscribe to
            return Delivery((), delivery_id)
        event = Event(entity, record_id, kind, _time(body.get("createdAt")))
        return Delivery((event,), delivery_id)
