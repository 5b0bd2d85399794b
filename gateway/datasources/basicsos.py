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
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, Literal

import httpx

from gateway import records as rec
from gateway.datasources.convert import INTEGER_ID, Stamps, integer_id, person, segment, utc_text
from gateway.datasources.convert import optional_text as _text
from gateway.datasources.estimates import ASSUMED_CHILDREN
from gateway.datasources.hooks import PaginationStyle, ProviderOptions, TokenCredentials
from gateway.datasources.lookups import Children
from gateway.datasources.offset import OffsetSource
from gateway.datasources.writes import note_target
from gateway.errors import GatewayError, InvalidInput, Unsupported, UpstreamNotFound
from gateway.listquery import AnyOf, ListQuery, QuerySupport, camel, conditions, snake
from gateway.operations import Op
from gateway.pagination import OffsetPage
from gateway.records import AnyRecord, Entity, Link
from gateway.resilience import Window
from gateway.upstream import ClientAuth, Upstream

RESOURCES = {Entity.CONTACT: "contacts", Entity.COMPANY: "companies", Entity.DEAL: "deals"}
NOTE_TABLES = {
    "contact_notes": Entity.CONTACT,
    "company_notes": Entity.COMPANY,
    "deal_notes": Entity.DEAL,
}
# The column of each note table naming the record a note is about.
NOTE_PARENTS = {
    "contact_notes": "contact_id",
    "company_notes": "company_id",
    "deal_notes": "deal_id",
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
CONTENT_RANGE = re.compile(r"^\s*\S+\s+(?:\d+-\d+|\*)/(\d+)\s*$")
# BasicsOS deal `status` is a free-text pipeline stage; these words settle the outcome,
# any other stage leaves the deal open.
SETTLED_STAGES = dict.fromkeys(("won", "closed won", "closed-won"), rec.DealStatus.WON) | (
    dict.fromkeys(("lost", "closed lost", "closed-lost"), rec.DealStatus.LOST)
)


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
# What writes set: each unified field's column (amounts are numbers), and custom fields.
WRITE_COLUMNS = {
    field: column
    for columns in COLUMNS.values()
    for field, column in columns.items()
    if field not in ("created_at", "amount")
} | {"custom_fields": "custom_fields"}
# A refusal names a field by its camelCase column (`Invalid firstName`); the client, by its
# unified field, and a note's record as `targetId`.
REFUSED_FIELDS = {camel(c): camel(f) for f, c in WRITE_COLUMNS.items()} | {
    "contactId": "targetId",
    "dealId": "targetId",
}
# Columns it sorts by beyond those it filters on: deals carry `updatedAt`.
SORT_COLUMNS = COLUMNS | {Entity.DEAL: COLUMNS[Entity.DEAL] | {"updated_at": "updated_at"}}


def _value(value: Any) -> str:
    """The API compares strings it types by column; send every value as text."""
    return utc_text(value, 3) if isinstance(value, datetime) else str(value)


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
                where[column] = [integer_id(v) for v in values]
            continue
        if cond.op == "isNull":
            op, value = ("is_empty" if cond.value else "is_not_empty"), ""
        else:
            op, value = snake(cond.op), _value(cond.value)  # the API's own names
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
    amount, stage = raw.get("amount"), _text(raw.get("status"))
    return rec.DealRecord(
        **DEAL_STAMPS.origin(provider, raw),
        name=_text(raw.get("name")),
        # BasicsOS stores no currency for a deal.
        amount=rec.Money(str(Decimal(str(amount)))) if amount is not None else None,
        stage=stage,
        status=SETTLED_STAGES.get(stage.strip().lower(), rec.DealStatus.OPEN) if stage else None,
        company_id=_text(raw.get("companyId")),
        custom_fields=dict(raw.get("customFields") or {}),
    )


def _note(provider: str, table: str, raw: dict[str, Any]) -> rec.NoteRecord:
    return rec.NoteRecord(
        **NOTE_STAMPS.origin(provider, raw, remote_id=f"{table}/{raw['id']}"),
        title=_text(raw.get("title")),
        body=_text(raw.get("text")),
        target_entity=NOTE_TABLES[table],
        target_id=_text(raw.get(camel(NOTE_PARENTS[table]))),
    )


class BasicsOSOptions(ProviderOptions):
    # Whose token it is: a member's DELETE archives a deal, an admin's deletes it for good.
    token_role: Literal["admin", "member"] = "admin"


class BasicsOS(OffsetSource):
    kind = "basicsos"
    display_name = "BasicsOS"
    # Self-hosted: each organisation serves its own.
    api_url = "https://crm.example.com"
    style = PaginationStyle.INDEX_RANGE
    credentials_model = TokenCredentials
    options_model = BasicsOSOptions
    default_request_size = 100
    rate_limits = (Window(180, 60.0),)
    whole_page_size = 1000  # the API has no largest range: the poller's whole reads
    id_formats = ID_FORMATS
    writes = frozenset((e, op) for e in Entity for op in Op)
    unset_fields = dict.fromkeys(Entity, STAMPS.unset) | {
        Entity.DEAL: DEAL_STAMPS.unset,
        Entity.NOTE: NOTE_STAMPS.unset,
    }
    # Notes are three tables read one after the other: no order can span them. Nulls sort
    # last whichever the direction.
    query_support = {
        entity: QuerySupport.every_operator(
            columns,
            sortable=frozenset(() if entity is Entity.NOTE else SORT_COLUMNS[entity]),
            can_or=True,
            sort_nulls="last",
        )
        for entity, columns in COLUMNS.items()
    }
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
        return await self.reader.one(entity, remote_id, path, lambda r: self._record(resource, r))

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

        return self.reader.parse(convert, body, response), int(match.group(1)), response

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

        return await self.reader.pages(page, f"{resource} by {column}")

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

    async def read_children(self, link: Link, parent_ids: list[str]) -> list[Children]:
        resource, column = CHILDREN[link]

        async def rows(parents: list[str]) -> list[AnyRecord]:
            return await self._matching(resource, column, parents)

        def parent(row: AnyRecord) -> str:
            return str(row.remote_data.get(camel(column)))

        return await self.lookups.grouped(link, parent_ids, rows, parent)

    def estimate_page(self, entity: Entity, filtered: bool) -> int:
        # Notes span three tables: their totals, then up to one range of each.
        return 2 * len(NOTE_TABLES) if entity is Entity.NOTE else 1

    def estimate_lookup(self, entity: Entity, n: int) -> int:
        if n <= 0:
            return 0
        return min(len(NOTE_TABLES), n) if entity is Entity.NOTE else 1

    def estimate_children(self, link: Link, n: int) -> int:
        return 1 + n * ASSUMED_CHILDREN // BATCH_ROWS if link in self.links else 0

    # --- writes (PUT is a partial update; custom_fields replaces the whole object) ----------

    def _body(self, values: dict[str, Any]) -> dict[str, Any]:
        body = {WRITE_COLUMNS[k]: v for k, v in values.items() if k in WRITE_COLUMNS}
        if body.get("company_id") is not None:
            body["company_id"] = integer_id(body["company_id"])
        if "amount" in values:
            body["amount"] = None if values["amount"] is None else float(values["amount"])
        return body

    def field_errors(self, body: Any) -> list[tuple[list[str], str]]:
        message = self.error_message(body) or "the provider refused the input"
        match = INVALID_FIELD.match(message)
        if match is None:
            return [([], message)]
        field = REFUSED_FIELDS.get(match.group(1), match.group(1))
        return [([field], message)]

    async def create(self, entity: Entity, values: dict[str, Any]) -> AnyRecord:
        body = self._body(values)
        resource = RESOURCES.get(entity, "")
        if entity is Entity.NOTE:
            target, parent = note_target(values)
            resource = next(table for table, e in NOTE_TABLES.items() if e is target)
            body[NOTE_PARENTS[resource]] = integer_id(parent)
        return await self.writer.answer(
            entity, "POST", f"/api/{resource}", partial(self._record, resource), json_body=body
        )

    def _locate(self, entity: Entity, remote_id: str) -> tuple[str, str]:
        resource, _, row_id = (
            remote_id.partition("/")
            if entity is Entity.NOTE
            else (RESOURCES[entity], "", remote_id)
        )
        return resource, row_id

    async def update(self, entity: Entity, remote_id: str, values: dict[str, Any]) -> AnyRecord:
        self.require_id(entity, remote_id)
        resource, row_id = self._locate(entity, remote_id)
        body = self._body(values)
        if entity is Entity.NOTE and values.get("target") is not None:
            raise InvalidInput([(["targetId"], "BasicsOS cannot move a note to another record")])
        path = f"/api/{resource}/{segment(row_id)}"
        convert = partial(self._record, resource)
        return await self.writer.answer(
            entity, "PUT", path, convert, remote_id=remote_id, json_body=body
        )

    async def delete(self, entity: Entity, remote_id: str) -> None:
        self.require_id(entity, remote_id)
        resource, row_id = self._locate(entity, remote_id)
        path = f"/api/{resource}/{segment(row_id)}"
        await self.writer.send(entity, "DELETE", path, remote_id=remote_id)

    async def merge(self, winner_id: str, loser_ids: list[str]) -> AnyRecord:
        # One loser per call: a failure part-way leaves the earlier merges done, and says so.
        for done, loser in enumerate(loser_ids):
            try:
                await self.writer.send(
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
        path = f"/api/deals/{segment(remote_id)}/restore"
        convert = partial(self._record, "deals")
        return await self.writer.answer(Entity.DEAL, "POST", path, convert, remote_id=remote_id)

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

        def convert(body: Any) -> AnyRecord:
            if not body.get("archived"):
                raise ValueError("the deal was deleted, not archived")
            return self._record("deals", body["record"])

        path = f"/api/deals/{segment(remote_id)}"
        return await self.writer.answer(Entity.DEAL, "DELETE", path, convert, remote_id=remote_id)
