"""Attio (v2): attribute-value records in a `{data, meta}` envelope, `page` + `pageSize` <= 100.

Every attribute is a list of value objects (`values.name[0].full_name`), flattened here to
the unified fields; the others go to `customFields` as plain values, the whole record to
`remoteData`. Its webhooks are declared in `attio_webhooks`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

import httpx

from gateway import records as rec
from gateway.datasources.attio_webhooks import AttioWebhooks
from gateway.datasources.convert import Stamps, utc_text
from gateway.datasources.hooks import KeyCredentials, PaginationStyle
from gateway.datasources.lookups import Children
from gateway.datasources.offset import OffsetSource
from gateway.datasources.writes import note_target
from gateway.listquery import OPERATORS, All, AnyOf, Cond, Expr, ListQuery, QuerySupport, snake
from gateway.operations import Op
from gateway.pagination import OffsetPage
from gateway.records import PARENT_ENTITY, AnyRecord, Entity, Link
from gateway.resilience import Window
from gateway.upstream import ClientAuth

OBJECTS = {Entity.CONTACT: "people", Entity.COMPANY: "companies", Entity.DEAL: "deals"}
PARENT_ENTITIES = {slug: entity for entity, slug in OBJECTS.items()}
PATHS = {
    **{entity: f"/v2/objects/{slug}/records" for entity, slug in OBJECTS.items()},
    Entity.NOTE: "/v2/notes",
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


def _attio_value(value: Any) -> Any:
    return utc_text(value, 9) if isinstance(value, datetime) else value


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
    convert = float if expr.field == "amount" else _attio_value
    value = (
        [convert(v) for v in expr.value] if isinstance(expr.value, list) else convert(expr.value)
    )
    if expr.op == "isNull":
        condition: dict[str, Any] = {"$not_empty": not value}
    elif expr.op == "neq":
        return {"$not": _attio_filter(entity, Cond(expr.field, "eq", expr.value))}
    else:
        condition = {f"${snake(expr.op)}": value}  # `$` and the operator in snake_case
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


class _Attributes:
    """A record's attributes (`values.<slug>`, each a list of value objects), minding which
    the unified fields are read from: the others are its custom fields."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.read: set[str] = set()

    def all(self, slug: str) -> list[dict[str, Any]]:
        self.read.add(slug)
        values = self.raw.get("values", {}).get(slug) or []
        return [v for v in values if isinstance(v, dict)]

    def first(self, slug: str, key: str = "value") -> Any:
        values = self.all(slug)
        return values[0].get(key) if values else None

    def refs(self, slug: str) -> list[str]:
        return [str(v["target_record_id"]) for v in self.all(slug) if v.get("target_record_id")]

    def typed(self, slug: str, key: str) -> list[Any]:
        """Each value's `key` as typed, else as first written (`original_<key>`)."""
        return [v.get(key) or v.get(f"original_{key}") for v in self.all(slug)]

    def custom(self) -> dict[str, Any]:
        """The attributes not read, as plain values: ask last."""
        custom: dict[str, Any] = {}
        for slug, values in (self.raw.get("values") or {}).items():
            if slug in self.read or not values:
                continue
            plain = [_plain(v) for v in values if isinstance(v, dict)]
            custom[slug] = plain[0] if len(plain) == 1 else plain
        return custom


def _address(attributes: _Attributes) -> rec.Address | None:
    values = attributes.all("primary_location")
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


STAMPS = Stamps("created_at", parse=_time)  # Attio sends no update time


def _contact(provider: str, raw: dict[str, Any]) -> rec.ContactRecord:
    attributes = _Attributes(raw)
    name = attributes.all("name")
    first = name[0].get("first_name") if name else None
    last = name[0].get("last_name") if name else None
    emails = attributes.typed("email_addresses", "email_address")
    phones = attributes.typed("phone_numbers", "phone_number")
    companies = attributes.refs("company")
    return rec.ContactRecord(
        **STAMPS.origin(provider, raw, remote_id=str(raw["id"]["record_id"])),
        first_name=first,
        last_name=last,
        name=(name[0].get("full_name") if name else None) or rec.full_name(first, last),
        title=attributes.first("job_title"),
        emails=[rec.Email(e, is_primary=i == 0) for i, e in enumerate(emails) if e],
        phones=[rec.Phone(p, is_primary=i == 0) for i, p in enumerate(phones) if p],
        address=_address(attributes),
        company_id=companies[0] if companies else None,
        linked={Link.CONTACT_DEALS: attributes.refs("associated_deals")},
        custom_fields=attributes.custom(),
    )


def _company(provider: str, raw: dict[str, Any]) -> rec.CompanyRecord:
    attributes = _Attributes(raw)
    categories = [(v.get("option") or {}).get("title") for v in attributes.all("categories")]
    return rec.CompanyRecord(
        **STAMPS.origin(provider, raw, remote_id=str(raw["id"]["record_id"])),
        name=attributes.first("name"),
        domain=attributes.first("domains", "domain"),
        industry=next((c for c in categories if c), None),
        description=attributes.first("description"),
        address=_address(attributes),
        linked={
            Link.COMPANY_CONTACTS: attributes.refs("team"),
            Link.COMPANY_DEALS: attributes.refs("associated_deals"),
        },
        custom_fields=attributes.custom(),
    )


def _deal_status(stage: str | None) -> rec.DealStatus | None:
    if stage is None:
        return None
    if stage.lower().startswith(WON):
        return rec.DealStatus.WON
    return rec.DealStatus.LOST if stage.lower().startswith(LOST) else rec.DealStatus.OPEN


def _deal(provider: str, raw: dict[str, Any]) -> rec.DealRecord:
    attributes = _Attributes(raw)
    stage = (attributes.first("stage", "status") or {}).get("title")
    value = attributes.all("value")
    amount = None
    if value and value[0].get("currency_value") is not None:
        amount = rec.Money(
            str(Decimal(str(value[0]["currency_value"]))), value[0].get("currency_code")
        )
    companies = attributes.refs("associated_company")
    people = attributes.refs("associated_people")
    return rec.DealRecord(
        **STAMPS.origin(provider, raw, remote_id=str(raw["id"]["record_id"])),
        name=attributes.first("name"),
        amount=amount,
        stage=stage,
        status=_deal_status(stage),
        company_id=companies[0] if companies else None,
        contact_ids=people,
        linked={Link.DEAL_CONTACTS: list(people)},
        custom_fields=attributes.custom(),
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


# Unified field -> the attribute a write sets it by (first and last name: `name`, a company
# link and an amount: their own value objects); the multiselects take a list.
WRITE_SLUGS = {
    Entity.CONTACT: {"email": "email_addresses", "phone": "phone_numbers", "title": "job_title"},
    Entity.COMPANY: {
        "name": "name",
        "domain": "domains",
        "industry": "categories",
        "description": "description",
    },
    Entity.DEAL: {"name": "name", "stage": "stage"},
}
MULTISELECTS = frozenset({"email_addresses", "phone_numbers", "domains", "categories"})


def _attributes(entity: Entity, values: dict[str, Any]) -> dict[str, Any]:
    """A record's `values` by attribute slug, for a write."""
    out: dict[str, Any] = {}
    if "first_name" in values or "last_name" in values:
        first, last = values.get("first_name"), values.get("last_name")
        out["name"] = {
            "first_name": first or "",
            "last_name": last or "",
            "full_name": rec.full_name(first, last) or "",
        }
    for name, slug in WRITE_SLUGS[entity].items():
        if name in values:
            value = values[name]
            out[slug] = ([] if value is None else [value]) if slug in MULTISELECTS else value
    if "company_id" in values:
        slug = "company" if entity is Entity.CONTACT else "associated_company"
        company = values["company_id"]
        out[slug] = (
            None if company is None else {"target_object": "companies", "target_record_id": company}
        )
    if "amount" in values or "currency" in values:
        amount = values.get("amount")
        out["value"] = (
            None
            if amount is None
            else {"currency_value": float(amount), "currency_code": values.get("currency") or "USD"}
        )
    return out


class Attio(OffsetSource):
    kind = "attio"
    display_name = "Attio"
    api_url = "https://api.attio.com"
    style = PaginationStyle.PAGE_NUMBER
    credentials_model = KeyCredentials
    largest_pages = {Entity.NOTE: NOTES_PAGE}
    rate_limits = (Window(100, 60.0), Window(1000, 3600.0))
    id_formats = dict.fromkeys(Entity, UUID)
    # Lists of related records come inline with each record; notes are fetched per parent.
    links = frozenset(Link)
    inline_links = frozenset(
        {Link.CONTACT_DEALS, Link.COMPANY_CONTACTS, Link.COMPANY_DEALS, Link.DEAL_CONTACTS}
    )
    unset_fields = dict.fromkeys(Entity, STAMPS.unset)
    # Every operator on every attribute; notes list by parent only: no filters or orders there.
    query_support = {
        entity: QuerySupport(
            dict.fromkeys(fields, frozenset(OPERATORS)),
            sortable=frozenset(fields),
            can_or=True,
            can_nest=True,
            sort_casefold=True,  # text sorts ignore case
        )
        for entity, fields in FILTER_ATTRIBUTES.items()
    }
    # Notes are immutable in Attio: create and delete only.
    writes = frozenset(
        (e, op) for e in Entity for op in Op if e is not Entity.NOTE or op in (Op.CREATE, Op.DELETE)
    )
    write_fields = {
        Entity.CONTACT: frozenset(
            {"first_name", "last_name", "email", "phone", "title", "company_id"}
        ),
        Entity.COMPANY: frozenset({"name", "domain", "industry", "description"}),
        Entity.DEAL: frozenset({"name", "stage", "amount", "currency", "company_id"}),
        Entity.NOTE: frozenset({"title", "body", "target"}),
    }
    converters = {
        Entity.CONTACT: _contact,
        Entity.COMPANY: _company,
        Entity.DEAL: _deal,
        Entity.NOTE: _note,
    }
    rest_paths = PATHS
    envelope = "data"
    update_method = "PUT"  # PUT overwrites multiselects
    webhooks = AttioWebhooks

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

    async def fetch_offset(
        self, entity: Entity, offset: int, size: int, query: ListQuery
    ) -> OffsetPage[AnyRecord]:
        page = {"page": offset // size + 1, "pageSize": size}

        def convert(b: Any) -> OffsetPage[AnyRecord]:
            items = [self.record(entity, raw) for raw in b["data"]]
            return OffsetPage(offset, items, int(b["meta"]["total"]))

        if query.empty:
            return await self.reader.json(convert, "GET", PATHS[entity], params=page)
        # Filters and sorts go through the records query endpoint.
        body = {**_attio_query(entity, query), **page}
        path = f"{PATHS[entity]}/query"
        return await self.reader.json(convert, "POST", path, json_body=body, idempotent=True)

    async def get_many(self, entity: Entity, ids: list[str]) -> list[AnyRecord | Exception]:
        if entity is Entity.NOTE:
            return await super().get_many(entity, ids)  # no note query: one by one
        self.require(entity)

        def convert(body: Any) -> list[AnyRecord]:
            return [self.record(entity, raw) for raw in body["data"]]

        async def fetch(chunk: list[str]) -> list[AnyRecord]:
            body = {"filter": {"record_id": {"$in": chunk}}, "limit": len(chunk)}
            path = f"{PATHS[entity]}/query"
            return await self.reader.json(convert, "POST", path, json_body=body, idempotent=True)

        return await self.lookups.listed_by_id(entity, ids, 100, fetch)

    async def read_children(self, link: Link, parent_ids: list[str]) -> list[Children]:
        parent = OBJECTS[PARENT_ENTITY[link]]  # notes: the other lists come inline
        return await self.lookups.per_parent(link, parent_ids, partial(self._notes_of, parent))

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
            batch: list[AnyRecord] = self.reader.parse(
                lambda b: [_note(self.name, raw) for raw in b["data"]], body, response
            )
            return batch, None if len(batch) < NOTES_PAGE else number + 1, response

        return await self.reader.pages(page, f"notes of {parent}")

    def estimate_lookup(self, entity: Entity, n: int) -> int:
        if entity is Entity.NOTE or n <= 0:
            return super().estimate_lookup(entity, n)
        return -(-n // 100)

    def estimate_write(self, op: Op) -> int:
        # An update reads the record first (which attribute slugs it has).
        return 2 if op is Op.UPDATE else 1

    # --- writes (plain REST: `data.values` by attribute slug) -----------------------------

    def write_body(self, entity: Entity, values: dict[str, Any]) -> dict[str, Any]:
        if entity is not Entity.NOTE:
            return {"data": {"values": _attributes(entity, values)}}
        target, parent = note_target(values)
        note = {
            "parent_object": OBJECTS[target],
            "parent_record_id": parent,
            "title": values.get("title") or "",
            "format": "plaintext",
            "content": values.get("body") or "",
        }
        return {"data": note}

    async def update(self, entity: Entity, remote_id: str, values: dict[str, Any]) -> AnyRecord:
        self.require_id(entity, remote_id)
        if ("first_name" in values) != ("last_name" in values):
            # The name is one attribute: keep the half the client did not send.
            current = await self.get(entity, remote_id)
            halves = {k: getattr(current, k, None) for k in ("first_name", "last_name")}
            values = {**halves, **values}
        return await self.writer.update(entity, remote_id, values)

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
