"""Attio (v2): attribute-value records in a `{data, meta}` envelope, `page` + `pageSize` <= 100.

Every attribute is a list of value objects (`values.name[0].full_name`); this
file flattens them to the unified fields. What has no unified field goes to
`customFields` as plain values; the whole record stays in `remoteData`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import httpx

from gateway import records as rec
from gateway.datasources.base import (
    Children,
    OffsetSource,
    PaginationStyle,
    ProviderCredentials,
    Stamps,
    segment,
)
from gateway.errors import InvalidInput
from gateway.listquery import All, AnyOf, Cond, Expr, ListQuery, QuerySupport
from gateway.operations import Op
from gateway.pagination import OffsetPage
from gateway.records import AnyRecord, Entity, Link
from gateway.resilience import Window
from gateway.upstream import ClientAuth

OBJECTS = {Entity.CONTACT: "people", Entity.COMPANY: "companies", Entity.DEAL: "deals"}
PARENT_ENTITIES = {"people": Entity.CONTACT, "companies": Entity.COMPANY, "deals": Entity.DEAL}
# Attributes each object's unified fields are made from; the rest become custom fields.
MAPPED = {
    "people": {
        "name",
        "email_addresses",
        "phone_numbers",
        "job_title",
        "company",
        "primary_location",
        "associated_deals",
    },
    "companies": {
        "name",
        "domains",
        "description",
        "categories",
        "primary_location",
        "team",
        "associated_deals",
    },
    "deals": {"name", "stage", "value", "associated_people", "associated_company"},
}
# Record and note ids are UUIDs, in the lowercase the API sends.
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
WON, LOST = ("won",), ("lost",)
# The real notes endpoint caps pages at 50 (other lists at 100).
NOTES_PAGE = 50
# Unified field -> (attribute slug, sub-field) in Attio filters and sorts.
FILTER_ATTRIBUTES: dict[Entity, dict[str, tuple[str, str | None]]] = {
    Entity.CONTACT: {
        "first_name": ("name", "first_name"),
        "last_name": ("name", "last_name"),
        "email": ("email_addresses", "email_address"),
        "title": ("job_title", None),
        "company_id": ("company", None),
        "created_at": ("created_at", None),
    },
    Entity.COMPANY: {
        "name": ("name", None),
        "domain": ("domains", "domain"),
        "industry": ("categories", None),
        "description": ("description", None),
        "created_at": ("created_at", None),
    },
    Entity.DEAL: {
        "name": ("name", None),
        "stage": ("stage", None),
        "amount": ("value", None),
        "company_id": ("associated_company", None),
        "created_at": ("created_at", None),
    },
}
REFERENCES = {"company_id": "companies"}
REFERENCE_OPS = frozenset({"eq", "neq", "in", "isNull"})
ATTIO_OPS = {
    "eq": "$eq",
    "in": "$in",
    "contains": "$contains",
    "startsWith": "$starts_with",
    "gt": "$gt",
    "gte": "$gte",
    "lt": "$lt",
    "lte": "$lte",
}


def _attio_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    return value


def _attio_filter(entity: Entity, expr: Expr) -> dict[str, Any]:
    if isinstance(expr, All | AnyOf):
        key = "$and" if isinstance(expr, All) else "$or"
        return {key: [_attio_filter(entity, p) for p in expr.parts]}
    slug, sub = FILTER_ATTRIBUTES[entity][expr.field]
    if expr.field in REFERENCES and expr.op in ("eq", "in"):
        targets = expr.value if expr.op == "in" else [expr.value]
        matches = [
            {slug: {"target_object": REFERENCES[expr.field], "target_record_id": t}}
            for t in targets
        ]
        return matches[0] if len(matches) == 1 else {"$or": matches}
    value: Any = expr.value
    if expr.field == "amount":
        value = [float(v) for v in value] if isinstance(value, list) else float(value)
    elif isinstance(value, list):
        value = [_attio_value(v) for v in value]
    else:
        value = _attio_value(value)
    if expr.op == "isNull":
        condition: dict[str, Any] = {"$not_empty": not value}
    elif expr.op == "neq":
        return {"$not": _attio_filter(entity, Cond(expr.field, "eq", expr.value))}
    else:
        condition = {ATTIO_OPS[expr.op]: value}
    if sub is not None and expr.op != "isNull":
        condition = {sub: condition}
    return {slug: condition}


def _attio_query(entity: Entity, query: ListQuery) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if query.filter is not None:
        body["filter"] = _attio_filter(entity, query.filter)
    if query.order:
        sorts = []
        for sort in query.order:
            slug, sub = FILTER_ATTRIBUTES[entity][sort.field]
            item = {"attribute": slug, "direction": "desc" if sort.descending else "asc"}
            if sub is not None:
                item["field"] = sub
            sorts.append(item)
        body["sorts"] = sorts
    return body


def _attio_support(entity: Entity) -> QuerySupport:
    every = frozenset({*ATTIO_OPS, "neq", "isNull"})
    fields = FILTER_ATTRIBUTES[entity]
    return QuerySupport(
        dict.fromkeys(fields, every),
        sortable=frozenset(fields),
        can_or=True,
        can_nest=True,
        sort_casefold=True,  # text sorts ignore case
    )


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    # Attio sends nanoseconds; Python keeps microseconds.
    text = str(value).replace("Z", "+00:00")
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c in "0123456789")
        zone = tail[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    return datetime.fromisoformat(text)


def _values(raw: dict[str, Any], slug: str) -> list[dict[str, Any]]:
    values = raw.get("values", {}).get(slug) or []
    return [v for v in values if isinstance(v, dict)]


def _first(raw: dict[str, Any], slug: str, key: str = "value") -> Any:
    values = _values(raw, slug)
    return values[0].get(key) if values else None


def _plain(value: dict[str, Any]) -> Any:
    """The useful part of one value object, for custom fields."""
    kind = value.get("attribute_type")
    if kind == "select":
        return (value.get("option") or {}).get("title")
    if kind == "status":
        return (value.get("status") or {}).get("title")
    if kind == "record-reference":
        return value.get("target_record_id")
    if kind == "actor-reference":
        return value.get("referenced_actor_id")
    if kind == "currency":
        return value.get("currency_value")
    if "value" in value:
        return value["value"]
    drop = {"active_from", "active_until", "created_by_actor", "attribute_type"}
    return {k: v for k, v in value.items() if k not in drop}


def _custom(raw: dict[str, Any], object_slug: str) -> dict[str, Any]:
    custom: dict[str, Any] = {}
    for slug, values in (raw.get("values") or {}).items():
        if slug in MAPPED[object_slug] or not values:
            continue
        plain = [_plain(v) for v in values if isinstance(v, dict)]
        custom[slug] = plain[0] if len(plain) == 1 else plain
    return custom


def _address(raw: dict[str, Any]) -> rec.Address | None:
    values = _values(raw, "primary_location")
    if not values:
        return None
    loc = values[0]
    street = ", ".join(str(loc[k]) for k in ("line_1", "line_2", "line_3", "line_4") if loc.get(k))
    return rec.Address(
        street=street or None,
        city=loc.get("locality"),
        region=loc.get("region"),
        postal_code=loc.get("postcode"),
        country=loc.get("country_code"),
    )


def _refs(raw: dict[str, Any], slug: str) -> list[str]:
    return [str(v["target_record_id"]) for v in _values(raw, slug) if v.get("target_record_id")]


STAMPS = Stamps("created_at", parse=_time)  # Attio sends no update time


def _contact(provider: str, raw: dict[str, Any]) -> rec.ContactRecord:
    name = _values(raw, "name")
    first = name[0].get("first_name") if name else None
    last = name[0].get("last_name") if name else None
    emails = [
        v.get("email_address") or v.get("original_email_address")
        for v in _values(raw, "email_addresses")
    ]
    phones = [
        v.get("phone_number") or v.get("original_phone_number")
        for v in _values(raw, "phone_numbers")
    ]
    companies = _refs(raw, "company")
    return rec.ContactRecord(
        **STAMPS.origin(provider, raw, remote_id=str(raw["id"]["record_id"])),
        first_name=first,
        last_name=last,
        name=(name[0].get("full_name") if name else None) or rec.full_name(first, last),
        title=_first(raw, "job_title"),
        emails=[rec.Email(e, is_primary=i == 0) for i, e in enumerate(emails) if e],
        phones=[rec.Phone(p, is_primary=i == 0) for i, p in enumerate(phones) if p],
        address=_address(raw),
        company_id=companies[0] if companies else None,
        custom_fields=_custom(raw, "people"),
        linked={Link.CONTACT_DEALS: _refs(raw, "associated_deals")},
    )


def _company(provider: str, raw: dict[str, Any]) -> rec.CompanyRecord:
    categories = [(v.get("option") or {}).get("title") for v in _values(raw, "categories")]
    return rec.CompanyRecord(
        **STAMPS.origin(provider, raw, remote_id=str(raw["id"]["record_id"])),
        name=_first(raw, "name"),
        domain=_first(raw, "domains", "domain"),
        industry=next((c for c in categories if c), None),
        description=_first(raw, "description"),
        address=_address(raw),
        custom_fields=_custom(raw, "companies"),
        linked={
            Link.COMPANY_CONTACTS: _refs(raw, "team"),
            Link.COMPANY_DEALS: _refs(raw, "associated_deals"),
        },
    )


def _deal_status(stage: str | None) -> rec.DealStatus | None:
    if stage is None:
        return None
    lowered = stage.lower()
    if lowered.startswith(WON):
        return rec.DealStatus.WON
    if lowered.startswith(LOST):
        return rec.DealStatus.LOST
    return rec.DealStatus.OPEN


def _deal(provider: str, raw: dict[str, Any]) -> rec.DealRecord:
    stage = (_first(raw, "stage", "status") or {}).get("title")
    value = _values(raw, "value")
    amount = None
    if value and value[0].get("currency_value") is not None:
        amount = rec.Money(
            str(Decimal(str(value[0]["currency_value"]))), value[0].get("currency_code")
        )
    companies = _refs(raw, "associated_company")
    return rec.DealRecord(
        **STAMPS.origin(provider, raw, remote_id=str(raw["id"]["record_id"])),
        name=_first(raw, "name"),
        amount=amount,
        stage=stage,
        status=_deal_status(stage),
        company_id=companies[0] if companies else None,
        contact_ids=_refs(raw, "associated_people"),
        linked={Link.DEAL_CONTACTS: _refs(raw, "associated_people")},
        custom_fields=_custom(raw, "deals"),
    )


def _note(provider: str, raw: dict[str, Any]) -> rec.NoteRecord:
    actor = raw.get("created_by_actor") or {}
    return rec.NoteRecord(
        **STAMPS.origin(provider, raw, remote_id=str(raw["id"]["note_id"])),
        title=raw.get("title") or None,
        body=raw.get("content_plaintext"),
        author=actor.get("id") or actor.get("type"),
        target_entity=PARENT_ENTITIES.get(raw.get("parent_object", "")),
        target_id=raw.get("parent_record_id"),
    )


class AttioCredentials(ProviderCredentials):
    api_key: str


class Attio(OffsetSource):
    kind = "attio"
    display_name = "Attio"
    style = PaginationStyle.PAGE_NUMBER
    credentials_model = AttioCredentials
    default_request_size = 100
    # The real notes API pages at most 50 (`limit`); the seed's lists 100.
    largest_pages = {Entity.NOTE: 50}
    rate_limits = (Window(100, 60.0), Window(1000, 3600.0))
    id_formats = dict.fromkeys(Entity, UUID)
    # Lists of related records come inline with each record; notes are fetched per parent.
    links = frozenset(Link)
    inline_links = frozenset(
        {Link.CONTACT_DEALS, Link.COMPANY_CONTACTS, Link.COMPANY_DEALS, Link.DEAL_CONTACTS}
    )
    # Notes list by parent only: no filters or orders there.
    query_support = {entity: _attio_support(entity) for entity in FILTER_ATTRIBUTES}
    # Notes are immutable in Attio: create and delete only.
    writes = frozenset(
        {(e, op) for e in (Entity.CONTACT, Entity.COMPANY, Entity.DEAL) for op in Op}
        | {(Entity.NOTE, Op.CREATE), (Entity.NOTE, Op.DELETE)}
    )
    write_fields = {
        Entity.CONTACT: frozenset(
            {"first_name", "last_name", "email", "phone", "title", "company_id"}
        ),
        Entity.COMPANY: frozenset({"name", "domain", "industry", "description"}),
        Entity.DEAL: frozenset({"name", "stage", "amount", "currency", "company_id"}),
        Entity.NOTE: frozenset({"title", "body", "target"}),
    }

    @classmethod
    def auth(cls, credentials: Mapping[str, str]) -> ClientAuth:
        return ClientAuth(headers={"Authorization": f"Bearer {credentials['api_key']}"})

    @staticmethod
    def error_message(body: Any) -> str | None:
        if not isinstance(body, dict):
            return None
        error = body.get("error")
        if isinstance(error, dict):  # the seed's shape
            return str(error.get("message") or error.get("type"))
        if "message" in body:  # the real API's flat shape
            return str(body["message"])
        return None

    def _record(self, entity: Entity, raw: Any) -> AnyRecord:
        if entity is Entity.CONTACT:
            return _contact(self.name, raw)
        if entity is Entity.COMPANY:
            return _company(self.name, raw)
        if entity is Entity.DEAL:
            return _deal(self.name, raw)
        return _note(self.name, raw)

    def _one(self, entity: Entity, body: Any) -> AnyRecord:
        """The record of an answer about one record (Attio's `data` envelope)."""
        return self._record(entity, body["data"])

    def _path(self, entity: Entity) -> str:
        return "/v2/notes" if entity is Entity.NOTE else f"/v2/objects/{OBJECTS[entity]}/records"

    async def get(self, entity: Entity, remote_id: str) -> AnyRecord:
        self.require(entity)
        path = f"{self._path(entity)}/{segment(remote_id)}"
        return await self.get_one(entity, remote_id, path, partial(self._one, entity))

    async def fetch_offset(
        self, entity: Entity, offset: int, size: int, query: ListQuery
    ) -> OffsetPage[AnyRecord]:
        page = {"page": offset // size + 1, "pageSize": size}
        if query.empty:
            response = await self.upstream.request("GET", self._path(entity), params=page)
        else:  # filters and sorts go through the records query endpoint
            body = {**_attio_query(entity, query), **page}
            response = await self.upstream.request(
                "POST", f"{self._path(entity)}/query", json_body=body, idempotent=True
            )
        body = self.upstream.json(response)

        def convert(b: Any) -> OffsetPage[AnyRecord]:
            items = [self._record(entity, raw) for raw in b["data"]]
            return OffsetPage(offset, items, int(b["meta"]["total"]))

        return self.parse(convert, body, response)

    # --- batches ---------------------------------------------------------------------------

    async def get_many(self, entity: Entity, ids: list[str]) -> list[AnyRecord | Exception]:
        if entity is Entity.NOTE:
            return await super().get_many(entity, ids)  # no note query: one by one
        self.require(entity)

        async def fetch(chunk: list[str]) -> list[AnyRecord]:
            response = await self.upstream.request(
                "POST",
                f"/v2/objects/{OBJECTS[entity]}/records/query",
                json_body={"filter": {"record_id": {"$in": chunk}}, "limit": len(chunk)},
                idempotent=True,
            )
            body = self.upstream.json(response)
            return self.parse(
                lambda b: [self._record(entity, raw) for raw in b["data"]], body, response
            )

        return await self.listed_by_id(entity, ids, 100, fetch)

    async def children(self, link: Link, parent_ids: list[str]) -> list[Children]:
        self.require_link(link)
        parent = {
            Link.CONTACT_NOTES: "people",
            Link.COMPANY_NOTES: "companies",
            Link.DEAL_NOTES: "deals",
        }.get(link)
        if parent is None:
            return await self.inline_children(link, parent_ids)  # the parents carry the ids

        async def notes_of(record_id: str) -> list[AnyRecord]:
            return await self._notes_of(parent, record_id)

        return await self.per_parent(link, parent_ids, notes_of)

    async def _notes_of(self, parent: str, record_id: str) -> list[AnyRecord]:
        async def page(number: int | None) -> tuple[list[AnyRecord], int | None, httpx.Response]:
            number = number or 1
            response = await self.upstream.request(
                "GET",
                "/v2/notes",
                params={
                    "parent_object": parent,
                    "parent_record_id": record_id,
                    "page": number,
                    "pageSize": NOTES_PAGE,
                },
            )
            body = self.upstream.json(response)
            batch: list[AnyRecord] = self.parse(
                lambda b: [_note(self.name, raw) for raw in b["data"]], body, response
            )
            return batch, None if len(batch) < NOTES_PAGE else number + 1, response

        return await self.read_pages(page, f"notes of {parent}")

    def estimate_lookup(self, entity: Entity, n: int) -> int:
        if entity is Entity.NOTE or n <= 0:
            return super().estimate_lookup(entity, n)
        return -(-n // 100)

    def estimate_children(self, link: Link, n: int) -> int:
        if link in (Link.CONTACT_NOTES, Link.COMPANY_NOTES, Link.DEAL_NOTES):
            return n  # a parent's notes: one page of NOTES_PAGE each
        return self.estimate_inline_children(link, n)

    def estimate_write(self, op: Op) -> int:
        # An update reads the record first (which attribute slugs it has).
        return 2 if op is Op.UPDATE else 1

    # --- writes (`data.values` by attribute slug; PUT overwrites multiselects) -------------

    async def _values(
        self, entity: Entity, remote_id: str | None, values: dict[str, Any]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "first_name" in values or "last_name" in values:
            first, last = values.get("first_name"), values.get("last_name")
            if remote_id is not None and ("first_name" not in values or "last_name" not in values):
                # The name is one attribute: keep the half the client did not send.
                current = await self.get(entity, remote_id)
                first = values.get("first_name", getattr(current, "first_name", None))
                last = values.get("last_name", getattr(current, "last_name", None))
            out["name"] = {
                "first_name": first or "",
                "last_name": last or "",
                "full_name": rec.full_name(first, last) or "",
            }
        simple = {
            Entity.CONTACT: {
                "email": "email_addresses",
                "phone": "phone_numbers",
                "title": "job_title",
            },
            Entity.COMPANY: {
                "name": "name",
                "domain": "domains",
                "industry": "categories",
                "description": "description",
            },
            Entity.DEAL: {"name": "name", "stage": "stage"},
        }[entity]
        for name, slug in simple.items():
            if name in values:
                value = values[name]
                multi = slug in ("email_addresses", "phone_numbers", "domains", "categories")
                out[slug] = ([] if value is None else [value]) if multi else value
        if "company_id" in values:
            slug = "company" if entity is Entity.CONTACT else "associated_company"
            company = values["company_id"]
            out[slug] = (
                None
                if company is None
                else {"target_object": "companies", "target_record_id": company}
            )
        if "amount" in values or "currency" in values:
            amount = values.get("amount")
            out["value"] = (
                None
                if amount is None
                else {
                    "currency_value": float(amount),
                    "currency_code": values.get("currency") or "USD",
                }
            )
        return out

    def field_errors(self, body: Any) -> list[tuple[list[str], str]]:
        message = self.error_message(body) or "the provider refused the input"
        for slug, field in (
            ("email_addresses", "email"),
            ("domains", "domain"),
            ("stage", "stage"),
            ("phone_numbers", "phone"),
            ("value", "amount"),
        ):
            if slug in message:
                return [([field], message)]
        return [([], message)]

    async def create(self, entity: Entity, values: dict[str, Any]) -> AnyRecord:
        if entity is Entity.NOTE:
            target, parent = values.get("target") or (None, None)
            if target is None:
                raise InvalidInput([(["targetId"], "a note needs the record it is about")])
            data = {
                "parent_object": OBJECTS[target],
                "parent_record_id": parent,
                "title": values.get("title") or "",
                "format": "plaintext",
                "content": values.get("body") or "",
            }
            response = await self.write(entity, "POST", "/v2/notes", json_body={"data": data})
        else:
            data = {"values": await self._values(entity, None, values)}
            response = await self.write(
                entity, "POST", self._path(entity), json_body={"data": data}
            )
        raw = self.upstream.json(response)
        return self.parse(partial(self._one, entity), raw, response)

    async def update(self, entity: Entity, remote_id: str, values: dict[str, Any]) -> AnyRecord:
        self.require_id(entity, remote_id)
        data = {"values": await self._values(entity, remote_id, values)}
        response = await self.write(
            entity,
            "PUT",
            f"{self._path(entity)}/{segment(remote_id)}",
            remote_id=remote_id,
            json_body={"data": data},
        )
        raw = self.upstream.json(response)
        return self.parse(partial(self._one, entity), raw, response)

    async def delete(self, entity: Entity, remote_id: str) -> None:
        path = f"{self._path(entity)}/{segment(remote_id)}"
        await self.write(entity, "DELETE", path, remote_id=remote_id)
