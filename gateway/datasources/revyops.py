"""RevyOps (v2 API): page number + page size, `client_id` query parameter, DRF-style errors.

RevyOps has contacts and companies only. It has no creation time and no sort
parameter; custom fields come FLAT (`{name: value}`), values strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from gateway import records as rec
from gateway.datasources.convert import INTEGER_ID, Stamps, person
from gateway.datasources.convert import optional_text as _text
from gateway.datasources.hooks import PaginationStyle, ProviderCredentials
from gateway.datasources.lookups import Children
from gateway.datasources.offset import OffsetSource
from gateway.errors import NotFound, UpstreamNotFound
from gateway.listquery import ListQuery, QuerySupport, parameters
from gateway.operations import Op
from gateway.pagination import OffsetPage
from gateway.records import AnyRecord, Entity, Link
from gateway.resilience import Window
from gateway.upstream import ClientAuth

PATHS = {Entity.CONTACT: "/public/v2/contacts", Entity.COMPANY: "/public/v2/companies"}
# Unified field -> the v2 filter parameter (`eq` only, case-insensitive, AND-ed).
FILTERS = {
    Entity.CONTACT: {"email": "email", "first_name": "firstname", "last_name": "lastname"},
    Entity.COMPANY: {"name": "name", "domain": "domain", "industry": "industry"},
}
PARAMS = {e: {(field, "eq"): name for field, name in names.items()} for e, names in FILTERS.items()}


STAMPS = Stamps(None, "updated_time")  # RevyOps has no creation time


def _contact(provider: str, raw: dict[str, Any]) -> rec.ContactRecord:
    custom = dict(raw.get("contact_custom_fields") or {})
    return rec.ContactRecord(
        **STAMPS.origin(provider, raw),
        **person(raw.get("first_name"), raw.get("last_name"), raw.get("email")),
        status=_text(raw.get("contact_status")),
        company_id=_text(raw.get("company_id")),
        custom_fields=custom,
    )


def _company(provider: str, raw: dict[str, Any]) -> rec.CompanyRecord:
    custom = dict(raw.get("company_custom_fields") or {})
    return rec.CompanyRecord(
        **STAMPS.origin(provider, raw),
        name=_text(raw.get("name")),
        domain=_text(raw.get("domain")),
        # RevyOps' own `industry` filter matches this custom field.
        industry=_text(custom.get("industry")),
        custom_fields=custom,
    )


class RevyOpsCredentials(ProviderCredentials):
    client_id: str
    # Optional: sent as `x-api-key` where the deployment asks for one.
    api_key: str | None = None


class RevyOps(OffsetSource):
    kind = "revyops"
    display_name = "RevyOps"
    api_url = "https://api.revyops.com"
    style = PaginationStyle.PAGE_NUMBER
    entities = frozenset({Entity.CONTACT, Entity.COMPANY})
    credentials_model = RevyOpsCredentials
    # The seed allows 1000 per page, the reference pages 100: ask for 100 to work with both.
    default_request_size = 100
    rate_limits = (Window(10, 1.0),)
    # No id-list filter, but pages of up to 1,000: its companies (a few hundred) come in
    # one request where a batch would GET each of them.
    whole_reads = {Entity.COMPANY: 1000}
    whole_page_size = 1000
    id_formats = {Entity.CONTACT: INTEGER_ID, Entity.COMPANY: INTEGER_ID}
    # Company.contacts goes through the contacts' `domain` filter: one request per company.
    links = frozenset({Link.CONTACT_COMPANY, Link.COMPANY_CONTACTS})
    query_support = {entity: QuerySupport.by_parameters(names) for entity, names in PARAMS.items()}
    unset_fields = {Entity.CONTACT: STAMPS.unset, Entity.COMPANY: STAMPS.unset}
    writes = frozenset((e, op) for e in (Entity.CONTACT, Entity.COMPANY) for op in Op)
    write_fields = {
        Entity.CONTACT: frozenset(
            {"first_name", "last_name", "email", "status", "company_id", "custom_fields"}
        ),
        Entity.COMPANY: frozenset({"name", "domain", "industry", "custom_fields"}),
    }
    rest_paths = PATHS
    rest_params = {"structure": "FLAT"}

    @classmethod
    def auth(cls, credentials: Mapping[str, str]) -> ClientAuth:
        headers = {"x-api-key": credentials["api_key"]} if credentials.get("api_key") else {}
        return ClientAuth(headers=headers, params={"client_id": credentials["client_id"]})

    @staticmethod
    def error_message(body: Any) -> str | None:
        if isinstance(body, dict) and "detail" in body:
            return str(body["detail"])
        if isinstance(body, dict):  # DRF validation: {"field": ["message", ...]}
            return "; ".join(
                f"{field}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
                for field, msgs in body.items()
            )
        return None

    def record(self, entity: Entity, raw: Any) -> AnyRecord:
        return _contact(self.name, raw) if entity is Entity.CONTACT else _company(self.name, raw)

    async def _page(
        self, entity: Entity, page: int, size: int, query: ListQuery
    ) -> tuple[Any, httpx.Response]:
        # Filters are AND-ed query parameters matching case-insensitively and exactly.
        filters = parameters(query, PARAMS[entity])
        response = await self.upstream.request(
            "GET",
            PATHS[entity],
            params={"page": page, "page_size": size, **filters, **self.rest_params},
        )
        return self.upstream.json(response), response

    async def fetch_offset(
        self, entity: Entity, offset: int, size: int, query: ListQuery
    ) -> OffsetPage[AnyRecord]:
        try:
            body, response = await self._page(entity, offset // size + 1, size, query)
        except UpstreamNotFound:
            # DRF answers 404 "Invalid page." past the last page; page 1 always exists.
            body, response = await self._page(entity, 1, 1, query)
            return OffsetPage(
                offset, [], self.reader.parse(lambda b: int(b["count"]), body, response)
            )

        def convert(b: Any) -> OffsetPage[AnyRecord]:
            items = [self.record(entity, raw) for raw in b["results"]]
            return OffsetPage(offset, items, int(b["count"]))

        return self.reader.parse(convert, body, response)

    async def read_children(self, link: Link, parent_ids: list[str]) -> list[Children]:
        companies = dict(
            zip(parent_ids, await self.get_many(Entity.COMPANY, parent_ids), strict=True)
        )

        async def contacts_of(parent: str) -> list[AnyRecord]:
            company = companies[parent]
            if isinstance(company, NotFound):
                return []  # gone since it was listed
            if isinstance(company, Exception):
                raise company
            domain = getattr(company, "domain", None)
            if not domain:
                return []  # RevyOps links contacts to companies only through the domain
            return await self._all(Entity.CONTACT, {"domain": domain})

        return await self.lookups.per_parent(link, parent_ids, contacts_of)

    async def _all(self, entity: Entity, filters: dict[str, str]) -> list[AnyRecord]:
        async def page(number: int | None) -> tuple[list[AnyRecord], int | None, httpx.Response]:
            number = number or 1
            response = await self.upstream.request(
                "GET",
                PATHS[entity],
                params={"page": number, "page_size": 1000, **filters, **self.rest_params},
            )
            body = self.upstream.json(response)
            records = self.reader.parse(
                lambda b: [self.record(entity, raw) for raw in b["results"]], body, response
            )
            return records, number + 1 if body.get("next") else None, response

        return await self.reader.pages(page, f"{entity.plural} by {', '.join(filters)}")

    def estimate_children(self, link: Link, n: int) -> int:
        # The companies by id for their domains, then each one's contacts (pages of 1000).
        return self.estimate_lookup(Entity.COMPANY, n) + n if link in self.links else 0

    # --- writes (PATCH only; custom fields upsert by name) -------------------------------

    def write_body(self, entity: Entity, values: dict[str, Any]) -> dict[str, Any]:
        custom = dict(values.get("custom_fields") or {})
        if entity is Entity.CONTACT:
            names = {"first_name": "first_name", "last_name": "last_name", "email": "email"}
            names |= {"status": "contact_status", "company_id": "company_id"}
            key = "contact_custom_fields"
        else:
            names = {"name": "name", "domain": "domain"}
            key = "company_custom_fields"
            if "industry" in values:
                custom["industry"] = values["industry"]  # RevyOps keeps industry as a custom field
        body: dict[str, Any] = {names[k]: v for k, v in values.items() if k in names}
        if body.get("company_id") is not None and INTEGER_ID.fullmatch(str(body["company_id"])):
            body["company_id"] = int(body["company_id"])
        if custom:
            body[key] = [
                {"field_name": k, "field_value": "" if v is None else str(v)}
                for k, v in custom.items()
            ]
        return body

    def field_errors(self, body: Any) -> list[tuple[list[str], str]]:
        unified = {
            "contact_status": "status",
            "contact_custom_fields": "customFields",
            "company_custom_fields": "customFields",
            "first_name": "firstName",
            "last_name": "lastName",
            "company_id": "companyId",
        }
        if isinstance(body, dict) and "detail" not in body and body:
            return [
                (
                    [unified.get(str(field), str(field))],
                    " ".join(map(str, msgs)) if isinstance(msgs, list) else str(msgs),
                )
                for field, msgs in body.items()
            ]
        return super().field_errors(body)
