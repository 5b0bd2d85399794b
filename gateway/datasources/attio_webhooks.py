"""Attio's webhooks (v2): `/v2/webhooks`, events of records and notes, `Attio-Signature`.

A record event names its object by id only (`object_id`, a UUID of the workspace), so the
object ids of the standard objects are read once from `GET /v2/objects` and kept; an
object the gateway does not serve (a custom one) is passed over.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.datasources.webhooks import Delivery, Event, Malformed, Registered, WebhookApi
from gateway.live.changes import ChangeKind
from gateway.live.signatures import BodyHmac
from gateway.records import Entity

# The standard objects the gateway serves, by their slug.
OBJECTS = {"people": Entity.CONTACT, "companies": Entity.COMPANY, "deals": Entity.DEAL}
LIST_PAGE = 100
# An unknown object id reads the objects again at most this often (seconds).
OBJECTS_REFRESH = 60.0


class AttioWebhooks(WebhookApi):
    path = "/v2/webhooks"
    events = {
        "record.created": ChangeKind.CREATED,
        "record.updated": ChangeKind.UPDATED,
        "record.deleted": ChangeKind.DELETED,
        "record.merged": ChangeKind.MERGED,
        "note.created": ChangeKind.CREATED,
        "note.updated": ChangeKind.UPDATED,
        "note.deleted": ChangeKind.DELETED,
    }
    signature = BodyHmac("attio-signature")

    _objects: dict[str, Entity] | None = None
    _objects_read = float("-inf")

    async def registered(self) -> list[Registered]:
        # Paged like Attio's other lists; a short page is the last.
        found: list[Registered] = []
        page = 1
        while True:
            response = await self.upstream.request(
                "GET", self.path, params={"page": page, "pageSize": LIST_PAGE}, cached=False
            )
            batch = self._parsed(lambda body: [self.parse(raw) for raw in body["data"]], response)
            found += batch
            if len(batch) < LIST_PAGE:
                return found
            page += 1

    def body(self, url: str) -> Any:
        subscriptions = [{"event_type": name, "filter": None} for name in self.events]
        return {"data": {"target_url": url, "subscriptions": subscriptions}}

    def parse(self, raw: Any) -> Registered:
        return Registered(
            id=str(raw["id"]["webhook_id"]),
            url=str(raw["target_url"]),
            events=frozenset(str(s["event_type"]) for s in raw["subscriptions"]),
            active=raw.get("status") == "active",
            secret=raw.get("secret"),
        )

    async def delivery(self, body: Any) -> Delivery:
        # `{"webhook_id", "events": [{"event_type", "id": {..., "record_id" | "note_id"}}]}`:
        # no delivery id, no time.
        try:
            raw_events = list(body["events"])
            events = [await self._event(raw) for raw in raw_events]
        except (KeyError, TypeError, AttributeError) as error:
            raise Malformed(f"not an Attio delivery ({type(error).__name__})") from None
        return Delivery(tuple(e for e in events if e is not None))

    async def _event(self, raw: dict[str, Any]) -> Event | None:
        kind = self.events.get(str(raw["event_type"]))
        ids = raw["id"]
        if kind is None:
            return None
        if str(raw["event_type"]).startswith("note."):
            return Event(Entity.NOTE, str(ids["note_id"]), kind)
        entity = await self._entity(str(ids["object_id"]))
        return None if entity is None else Event(entity, str(ids["record_id"]), kind)

    async def _entity(self, object_id: str) -> Entity | None:
        """The entity of an object id: read from `GET /v2/objects` once, and again (at most
        every OBJECTS_REFRESH seconds) for an id not seen there."""
        known = self._objects or {}
        if object_id not in known and time.monotonic() - self._objects_read > OBJECTS_REFRESH:
            self._objects_read = time.monotonic()
            response = await self.upstream.request("GET", "/v2/objects", cached=False)
            self._objects = known = self._parsed(_object_ids, response)
        return known.get(object_id)


def _object_ids(body: Any) -> dict[str, Entity]:
    return {
        str(raw["id"]["object_id"]): OBJECTS[raw["api_slug"]]
        for raw in body["data"]
        if raw.get("api_slug") in OBJECTS
    }
