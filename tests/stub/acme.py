"""Acme: numbered pages of contacts and companies, read-only, a bearer token.

A stub provider: what the README's "Adding a provider" asks of a new data source, and no
more. It links no records to each other, reads nothing whole and declares no rate limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway import records as rec
from gateway.datasources.base import (
    INTEGER_ID,
    OffsetSource,
    PaginationStyle,
    Stamps,
    TokenCredentials,
    optional_text,
    person,
    segment,
)
from gateway.listquery import ListQuery, QuerySupport, conditions
from gateway.pagination.offset import OffsetPage
from gateway.records import AnyRecord, Entity
from gateway.upstream import ClientAuth

PATHS = {Entity.CONTACT: "/v1/contacts", Entity.COMPANY: "/v1/companies"}
STAMPS = Stamps("created_at", "updated_at")


def _record(provider: str, entity: Entity, raw: dict[str, Any]) -> AnyRecord:
    if entity is Entity.COMPANY:
        return rec.CompanyRecord(
            **STAMPS.origin(provider, raw),
            name=optional_text(raw.get("name")),
            domain=optional_text(raw.get("domain")),
        )
    return rec.ContactRecord(
        **STAMPS.origin(provider, raw),
        **person(raw.get("first_name"), raw.get("last_name"), raw.get("email")),
        status=optional_text(raw.get("status")),
        company_id=optional_text(raw.get("company_id")),
    )


class Acme(OffsetSource):
    kind = "acme"
    display_name = "Acme"
    style = PaginationStyle.PAGE_NUMBER
    entities = frozenset({Entity.CONTACT, Entity.COMPANY})
    credentials_model = TokenCredentials
    id_formats = dict.fromkeys(PATHS, INTEGER_ID)
    query_support = {Entity.CONTACT: QuerySupport({"last_name": frozenset({"eq"})})}

    @classmethod
    def auth(cls, credentials: Mapping[str, str]) -> ClientAuth:
        return ClientAuth(headers={"Authorization": f"Bearer {credentials['token']}"})

    @staticmethod
    def error_message(body: Any) -> str | None:
        return str(body["error"]) if isinstance(body, dict) and "error" in body else None

    async def get(self, entity: Entity, remote_id: str) -> AnyRecord:
        self.require(entity)

        def convert(raw: Any) -> AnyRecord:
            return _record(self.name, entity, raw)

        return await self.get_one(
            entity, remote_id, f"{PATHS[entity]}/{segment(remote_id)}", convert
        )

    async def fetch_offset(
        self, entity: Entity, offset: int, size: int, query: ListQuery
    ) -> OffsetPage[AnyRecord]:
        filters = {c.field: str(c.value) for c in conditions(query.filter)}
        params = {"page": offset // size + 1, "per_page": size, **filters}
        response = await self.upstream.request("GET", PATHS[entity], params=params)

        def convert(body: Any) -> OffsetPage[AnyRecord]:
            items = [_record(self.name, entity, raw) for raw in body["items"]]
            return OffsetPage(offset, items, int(body["total"]))

        return self.parse(convert, self.upstream.json(response), response)
