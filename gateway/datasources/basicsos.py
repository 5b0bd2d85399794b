"""BasicsOS: generic `/api/:resource`, inclusive `range=[start,end]`, total in `Content-Range`.

Rows come back camelCase. Notes live in three tables (`contact_notes`,
`company_notes`, `deal_notes`); the unified note list is their concatenation
in that order, and a note's remote id names its table (`deal_notes/7`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import httpx

from gateway import records as rec
from gateway.datasources.base import (
    INTEGER_ID,
    Children,
    OffsetSource,
    PaginationStyle,
    ProviderOptions,
    Stamps,
    TokenCredentials,
    person,
    segment,
)
from gateway.datasources.base import (
    optional_text as _text,
)
from gateway.errors import GatewayError, InvalidInput, Unsupported, UpstreamNotFound
from gateway.listquery import AnyOf, ListQuery, QuerySupport, conditions
from gateway.operations import Op
from gateway.pagination import OffsetPage
from gateway.records import PARENT_ENTITY, AnyRecord, Entity, Link
from gateway.resilience import Window
from gateway.upstream import ClientAuth, Upstream

RESOURCES = {Entity.CONTACT: "contacts", Entity.COMPANY: "companies", Entity.DEAL: "deals"}
NOTE_TABLES = {
    "contact_notes": Entity.CONTACT,
    "company_notes": Entity.COMPANY,
    "deal_notes": Entity.DEAL,
}
NOTE_PARENT_KEYS = {
    "contact_notes": "contactId",
    "company_notes": "companyId",
    "deal_notes": "dealId",
}
# Child lists and the column naming their parent; Deal.contacts is not exposed by the API.
CHILDREN = {
    Link.COMPANY_CONTACTS: ("contacts", "company_id"),
    Link.COMPANY_DEALS: ("deals", "company_id"),
    Link.CONTACT_NOTES: ("contact_notes", "contact_id"),
    Link.COMPANY_NOTES: ("company_notes", "company_id"),
    Link.DEAL_NOTES: ("deal_notes", "deal_id"),
}
BATCH_ROWS = 1000
# Rows have integer ids; a note's remote id is its table and row id (`deal_notes/7`).
ID_FORMATS = {
    **dict.fromkeys(RESOURCES, INTEGER_ID),
    Entity.NOTE: re.compile(r"(?:contact_notes|company_notes|deal_notes)/[1-9][0-9]{0,17}"),
}
INVALID_FIELD = re.compile(r"^Invalid (\w+)")
UNIFIED_FIELDS = {
    "firstName": "firstName",
    "companyId": "companyId",
    "contactId": "targetId",
    "dealId": "targetId",
    "status": "stage",
    "category": "industry",
    "text": "body",
    "customFields": "customFields",
}
CONTENT_RANGE = re.compile(r"^\s*\S+\s+(?:\d+-\d+|\*)/(\d+)\s*$")
# BasicsOS deal `status` is a free-text pipeline stage; these words settle the outcome.
WON_STAGES = {"won", "closed won", "closed-won"}
LOST_STAGES = {"lost", "closed lost", "closed-lost"}


# Unified field -> API column, per entity; notes share theirs across the three tables.
COLUMNS: dict[Entity, dict[str, str]] = {
    Entity.CONTACT: {
        "first_name": "first_name",
        "last_name": "last_name",
        "email": "email",
        "company_id": "company_id",
        "created_at": "created_at",
    },
    Entity.COMPANY: {
        "name": "name",
        "domain": "domain",
        "industry": "category",
        "description": "description",
        "created_at": "created_at",
    },
    Entity.DEAL: {
        "name": "name",
        "stage": "status",
        "amount": "amount",
        "company_id": "company_id",
        "created_at": "created_at",
    },
    Entity.NOTE: {"title": "title", "body": "text", "created_at": "date"},
}
# Columns it sorts by beyond those it filters on: deals carry `updatedAt`.
SORT_COLUMNS = {entity: dict(columns) for entity, columns in COLUMNS.items()}
SORT_COLUMNS[Entity.DEAL]["updated_at"] = "updated_at"
OPS = {
    "eq": "eq",
    "neq": "neq",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
    "contains": "contains",
    "startsWith": "starts_with",
}
ALL_OPS = frozenset({*OPS, "in", "isNull"})
TEXT_OPS = frozenset(
    {"eq", "neq", "in", "contains", "startsWith", "isNull", "gt", "gte", "lt", "lte"}
)
ORDER_OPS = frozenset({"eq", "neq", "in", "gt", "gte", "lt", "lte", "isNull"})


def _support(entity: Entity) -> QuerySupport:
    ops = {
        field: (ORDER_OPS if field in ("amount", "company_id", "created_at") else TEXT_OPS)
        for field in COLUMNS[entity]
    }
    # Notes are three tables read one after the other: no order can span them.
    sortable = frozenset() if entity is Entity.NOTE else frozenset(SORT_COLUMNS[entity])
    # Nulls sort last whichever the direction.
    return QuerySupport(ops, sortable=sortable, can_or=True, sort_nulls="last")


def _value(value: Any) -> str:
    """The API compares strings it types by column; send every value as text."""
    if isinstance(value, datetime):
        return (
            value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{value.microsecond // 1000:03d}Z"
        )
    return str(value)


def _translate(entity: Entity, query: ListQuery) -> tuple[dict[str, Any], dict[str, str]]:
    """`filter` (lists: any of), `filters` (a logicalOp chain) and `sorts` for a query."""
    columns = COLUMNS[entity]
    where: dict[str, Any] = {}
    chain: list[dict[str, str]] = []
    expr = query.filter  # simplified, and flat: `check` refused any nesting
    either = isinstance(expr, AnyOf)
    for cond in conditions(expr):
        column = columns[cond.field]
        joiner = "or" if either else "and"
        if cond.op == "in":
            values = [_value(v) for v in cond.value]
            if either:  # inside an or-chain: one `eq` link per value
                chain += [
                    {"field": column, "op": "eq", "value": v, "logicalOp": "or"} for v in values
                ]
            else:
                where[column] = [_int_id(v) for v in values]
            continue
        if cond.op == "isNull":
            op, value = ("is_empty" if cond.value else "is_not_empty"), ""
        else:
            op, value = OPS[cond.op], _value(cond.value)
        chain.append({"field": column, "op": op, "value": value, "logicalOp": joiner})
    params: dict[str, str] = {}
    if chain:
        params["filters"] = json.dumps(chain, separators=(",", ":"))
    if query.order:
        sorts = [
            {"field": SORT_COLUMNS[entity][s.field], "order": "DESC" if s.descending else "ASC"}
            for s in query.order
        ]
        params["sorts"] = json.dumps(sorts, separators=(",", ":"))
    return where, params


def _int_id(value: Any) -> Any:
    """Ids go out as integers, as the API wants; anything else it will refuse itself."""
    return int(value) if INTEGER_ID.fullmatch(str(value)) else value


def _camel(column: str) -> str:
    head, *rest = column.split("_")
    return head + "".join(part.title() for part in rest)


def _deal_status(stage: str | None) -> rec.DealStatus | None:
    if stage is None:
        return None
    lowered = stage.strip().lower()
    if lowered in WON_STAGES:
        return rec.DealStatus.WON
    if lowered in LOST_STAGES:
        return rec.DealStatus.LOST
    return rec.DealStatus.OPEN


# Deals alone carry an update time; a note, only its `date`.
STAMPS = Stamps("createdAt")
DEAL_STAMPS = Stamps("createdAt", "updatedAt")
NOTE_STAMPS = Stamps("date")


def _contact(provider: str, raw: dict[str, Any]) -> rec.ContactRecord:
    return rec.ContactRecord(
        **STAMPS.origin(provider, raw),
        **person(raw.get("firstName"), raw.get("lastName"), raw.get("email")),
        company_id=_text(raw.get("companyId")),
        custom_fields=dict(raw.get("customFields") or {}),
    )


def _company(provider: str, raw: dict[str, Any]) -> rec.CompanyRecord:
    return rec.CompanyRecord(
        **STAMPS.origin(provider, raw),
        name=_text(raw.get("name")),
        domain=_text(raw.get("domain")),
        industry=_text(raw.get("category")),
        description=_text(raw.get("description")),
        custom_fields=dict(raw.get("customFields") or {}),
    )


def _deal(provider: str, raw: dict[str, Any]) -> rec.DealRecord:
    amount = raw.get("amount")
    return rec.DealRecord(
        **DEAL_STAMPS.origin(provider, raw),
        name=_text(raw.get("name")),
        # BasicsOS stores no currency for a deal.
        amount=rec.Money(str(Decimal(str(amount)))) if amount is not None else None,
        stage=_text(raw.get("status")),
        status=_deal_status(_text(raw.get("status"))),
        company_id=_text(raw.get("companyId")),
        custom_fields=dict(raw.get("customFields") or {}),
    )


def _note(provider: str, table: str, raw: dict[str, Any]) -> rec.NoteRecord:
    return rec.NoteRecord(
        **NOTE_STAMPS.origin(provider, raw, remote_id=f"{table}/{raw['id']}"),
        title=_text(raw.get("title")),
        body=_text(raw.get("text")),
        target_entity=NOTE_TABLES[table],
        target_id=_text(raw.get(NOTE_PARENT_KEYS[table])),
    )


class BasicsOSOptions(ProviderOptions):
    # Whose token it is: a member's DELETE archives a deal, an admin's deletes it for good.
    token_role: Literal["admin", "member"] = "admin"


class BasicsOS(OffsetSource):
    kind = "basicsos"
    display_name = "BasicsOS"
    style = PaginationStyle.INDEX_RANGE
    credentials_model = TokenCredentials
    options_model = BasicsOSOptions
    default_request_size = 100
    rate_limits = (Window(180, 60.0),)
    id_formats = ID_FORMATS
    writes = frozenset((e, op) for e in Entity for op in Op)
    query_support = {entity: _support(entity) for entity in Entity}
    # Contacts and deals filter by `company_id` with ranges; `children` serves any number
    # of companies in one request, so blocks are read for a company asked alone.
    paged_links = {Link.COMPANY_CONTACTS: "company_id", Link.COMPANY_DEALS: "company_id"}
    batched_links = frozenset(paged_links)
    can_merge_contacts = True
    can_restore_deals = True
    write_fields = {
        Entity.CONTACT: frozenset(
            {"first_name", "last_name", "email", "company_id", "custom_fields"}
        ),
        Entity.COMPANY: frozenset({"name", "domain", "industry", "description", "custom_fields"}),
        Entity.DEAL: frozenset({"name", "stage", "amount", "company_id", "custom_fields"}),
        Entity.NOTE: frozenset({"title", "body", "target"}),
    }
    links = frozenset(
        {
            Link.CONTACT_COMPANY,
            Link.DEAL_COMPANY,
            Link.NOTE_TARGET,
            *CHILDREN,
        }
    )

    @classmethod
    def auth(cls, credentials: Mapping[str, str]) -> ClientAuth:
        return ClientAuth(headers={"Authorization": f"Bearer {credentials['token']}"})

    @staticmethod
    def error_message(body: Any) -> str | None:
        if isinstance(body, dict) and "error" in body:
            return str(body["error"])
        return None

    def _record(self, resource: str, raw: Any) -> AnyRecord:
        if resource in NOTE_TABLES:
            return _note(self.name, resource, raw)
        if resource == "contacts":
            return _contact(self.name, raw)
        if resource == "companies":
            return _company(self.name, raw)
        return _deal(self.name, raw)

    async def get(self, entity: Entity, remote_id: str) -> AnyRecord:
        self.require(entity)
        resource, row_id = self._locate(entity, remote_id)
        path = f"/api/{resource}/{segment(row_id)}"
        return await self.get_one(entity, remote_id, path, lambda r: self._record(resource, r))

    async def _range(
        self,
        resource: str,
        start: int,
        end: int,
        where: dict[str, Any] | None = None,
        extra: dict[str, str] | None = None,
    ) -> tuple[list[AnyRecord], int, httpx.Response]:
        """Rows [start, end] (inclusive, as the API counts), the total, and the response."""
        params = {"range": json.dumps([start, end]), **(extra or {})}
        if where:
            params["filter"] = json.dumps(where, separators=(",", ":"))
        response = await self.upstream.request("GET", f"/api/{resource}", params=params)
        body = self.upstream.json(response)
        match = CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None:
            raise self.upstream.bad_response("no usable Content-Range header", response)

        def convert(rows: Any) -> list[AnyRecord]:
            if not isinstance(rows, list):
                raise TypeError("the body is not a JSON array")
            return [self._record(resource, raw) for raw in rows]

        return self.parse(convert, body, response), int(match.group(1)), response

    async def fetch_offset(
        self, entity: Entity, offset: int, size: int, query: ListQuery
    ) -> OffsetPage[AnyRecord]:
        where, params = _translate(entity, query)
        if entity is not Entity.NOTE:
            items, total, _ = await self._range(
                RESOURCES[entity], offset, offset + size - 1, where, params
            )
            return OffsetPage(offset, items, total)
        return await self._notes(offset, size, where, params)

    async def _notes(
        self, offset: int, size: int, where: dict[str, Any], params: dict[str, str]
    ) -> OffsetPage[AnyRecord]:
        # The three tables' totals (cached: every window asks the same, even inside a block
        # read), then the part of the window each table holds, at once.
        tables = list(NOTE_TABLES)

        async def counted(table: str) -> int:
            with Upstream.uncached(False):
                return (await self._range(table, 0, 0, where, params))[1]

        totals = list(await asyncio.gather(*(counted(t) for t in tables)))
        reads, base = [], 0
        for table, total in zip(tables, totals, strict=True):
            lo, hi = max(offset - base, 0), min(offset + size - base, total)
            if lo < hi:
                reads.append(self._range(table, lo, hi - 1, where, params))
            base += total
        items = [row for rows, _, _ in await asyncio.gather(*reads) for row in rows]
        return OffsetPage(offset, items, sum(totals))

    # --- batches ---------------------------------------------------------------------------

    async def _matching(self, resource: str, column: str, values: list[str]) -> list[AnyRecord]:
        """Every row whose `column` is one of `values`, in id order.

        The `filter` object takes a list as "any of": one request per batch
        (100 ids fit in a URL), more only past `BATCH_ROWS` matching rows.
        """
        where = {column: sorted({int(v) for v in values if INTEGER_ID.fullmatch(v)})}
        if not where[column]:
            return []

        async def page(start: int | None) -> tuple[list[AnyRecord], int | None, httpx.Response]:
            start = start or 0
            rows, total, response = await self._range(
                resource, start, start + BATCH_ROWS - 1, where
            )
            following = start + BATCH_ROWS
            return rows, following if following < total else None, response

        return await self.read_pages(page, f"{resource} by {column}")

    async def get_many(self, entity: Entity, ids: list[str]) -> list[AnyRecord | Exception]:
        self.require(entity)
        by_table: dict[str, list[str]] = {}
        for remote_id in ids:
            if self.valid_id(entity, remote_id):
                table, row_id = self._locate(entity, remote_id)
                by_table.setdefault(table, []).append(row_id)
        found = await asyncio.gather(*(self._matching(t, "id", r) for t, r in by_table.items()))
        records = {r.remote_id: r for rows in found for r in rows}
        return [records.get(i) or self.not_found(entity, i) for i in ids]

    async def children(self, link: Link, parent_ids: list[str]) -> list[Children]:
        self.require_link(link)
        resource, column = CHILDREN[link]
        entity = PARENT_ENTITY[link]
        valid = [p for p in parent_ids if self.valid_id(entity, p)]
        rows = await self._matching(resource, column, valid)
        groups: dict[str, list[AnyRecord]] = {p: [] for p in valid}
        for row in rows:
            parent = str(row.remote_data.get(_camel(column)))
            if parent in groups:
                groups[parent].append(row)
        return [groups[p] if p in groups else self.not_found(entity, p) for p in parent_ids]

    def estimate_page(self, entity: Entity, filtered: bool) -> int:
        # Notes span three tables: their totals, then up to one range of each.
        return 2 * len(NOTE_TABLES) if entity is Entity.NOTE else 1

    def estimate_lookup(self, entity: Entity, n: int) -> int:
        if n <= 0:
            return 0
        return min(len(NOTE_TABLES), n) if entity is Entity.NOTE else 1

    def estimate_children(self, link: Link, n: int) -> int:
        return 1 + n * self.ASSUMED_CHILDREN // BATCH_ROWS if link in self.links else 0

    # --- writes (PUT is a partial update; custom_fields replaces the whole object) ----------

    def _body(self, entity: Entity, values: dict[str, Any]) -> dict[str, Any]:
        names = {
            "first_name": "first_name",
            "last_name": "last_name",
            "email": "email",
            "company_id": "company_id",
            "custom_fields": "custom_fields",
            "name": "name",
            "domain": "domain",
            "industry": "category",
            "description": "description",
            "stage": "status",
            "title": "title",
            "body": "text",
        }
        body = {names[k]: v for k, v in values.items() if k in names}
        if body.get("company_id") is not None:
            body["company_id"] = _int_id(body["company_id"])
        if "amount" in values:
            body["amount"] = None if values["amount"] is None else float(values["amount"])
        return body

    def field_errors(self, body: Any) -> list[tuple[list[str], str]]:
        message = self.error_message(body) or "the provider refused the input"
        match = INVALID_FIELD.match(message)
        if match is None:
            return [([], message)]
        field = UNIFIED_FIELDS.get(match.group(1), match.group(1))
        return [([field], message)]

    def _note_target(self, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        entity, parent = values["target"]
        table = {
            Entity.CONTACT: "contact_notes",
            Entity.COMPANY: "company_notes",
            Entity.DEAL: "deal_notes",
        }[entity]
        column = {
            "contact_notes": "contact_id",
            "company_notes": "company_id",
            "deal_notes": "deal_id",
        }[table]
        return table, {column: _int_id(parent)}

    async def create(self, entity: Entity, values: dict[str, Any]) -> AnyRecord:
        body = self._body(entity, values)
        resource = RESOURCES.get(entity, "")
        if entity is Entity.NOTE:
            if values.get("target") is None:
                raise InvalidInput([(["targetId"], "a note needs the record it is about")])
            resource, parent = self._note_target(values)
            body |= parent
        response = await self.write(entity, "POST", f"/api/{resource}", json_body=body)
        raw = self.upstream.json(response)
        return self.parse(lambda r: self._record(resource, r), raw, response)

    def _locate(self, entity: Entity, remote_id: str) -> tuple[str, str]:
        resource, _, row_id = (
            remote_id.partition("/")
            if entity is Entity.NOTE
            else (RESOURCES[entity], "", remote_id)
        )
        if not self.valid_id(entity, remote_id):
            raise self.not_found(entity, remote_id)
        return resource, row_id

    async def update(self, entity: Entity, remote_id: str, values: dict[str, Any]) -> AnyRecord:
        self.require_id(entity, remote_id)
        resource, row_id = self._locate(entity, remote_id)
        body = self._body(entity, values)
        if entity is Entity.NOTE and values.get("target") is not None:
            raise InvalidInput([(["targetId"], "BasicsOS cannot move a note to another record")])
        response = await self.write(
            entity, "PUT", f"/api/{resource}/{segment(row_id)}", remote_id=remote_id, json_body=body
        )
        raw = self.upstream.json(response)
        return self.parse(lambda r: self._record(resource, r), raw, response)

    async def delete(self, entity: Entity, remote_id: str) -> None:
        self.require_id(entity, remote_id)
        resource, row_id = self._locate(entity, remote_id)
        path = f"/api/{resource}/{segment(row_id)}"
        await self.write(entity, "DELETE", path, remote_id=remote_id)

    async def merge_contacts(self, winner_id: str, loser_ids: list[str]) -> AnyRecord:
        self.require_id(Entity.CONTACT, winner_id, "winnerId")
        for loser in loser_ids:
            self.require_id(Entity.CONTACT, loser, "loserIds")
        # One loser per call: a failure part-way leaves the earlier merges done, and says so.
        for done, loser in enumerate(loser_ids):
            try:
                await self.write(
                    Entity.CONTACT,
                    "POST",
                    "/api/merge_contacts",
                    json_body={"loserId": int(loser), "winnerId": int(winner_id)},
                )
            except UpstreamNotFound:
                raise self.not_found(Entity.CONTACT, loser) from None
            except GatewayError as error:
                if done:
                    error.add(mergedBeforeFailure=loser_ids[:done])
                raise
        return await self.get(Entity.CONTACT, winner_id)

    async def restore_deal(self, remote_id: str) -> AnyRecord:
        self.require_id(Entity.DEAL, remote_id)
        response = await self.write(
            Entity.DEAL, "POST", f"/api/deals/{segment(remote_id)}/restore", remote_id=remote_id
        )
        raw = self.upstream.json(response)
        return self.parse(lambda r: self._record("deals", r), raw, response)

    @classmethod
    def archives_deals(cls, options: ProviderOptions) -> bool:
        # DELETE archives a deal only for a member's token; an admin's deletes it for good.
        return isinstance(options, BasicsOSOptions) and options.token_role == "member"

    async def archive_deal(self, remote_id: str) -> AnyRecord:
        if not self.can_archive_deals:
            raise Unsupported(
                f"BasicsOS (provider {self.name!r}) archives deals only with a member's "
                "token, and this provider is configured with an admin's, for which the API "
                "deletes deals for good; configure a member token with "
                'options.token_role = "member".',
                provider=self.name,
            )
        self.require_id(Entity.DEAL, remote_id)
        response = await self.write(
            Entity.DEAL, "DELETE", f"/api/deals/{segment(remote_id)}", remote_id=remote_id
        )
        raw = self.upstream.json(response)

        def convert(body: Any) -> AnyRecord:
            if not body.get("archived"):
                raise ValueError("the deal was deleted, not archived")
            return self._record("deals", body["record"])

        return self.parse(convert, raw, response)
