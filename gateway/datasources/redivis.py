"""Redivis (API v1): CRM tables of one dataset, rows paged by page tokens, read-only.

A table's rows come in `id` order from `GET /tables/:ref/rows`, paged with the
`pageToken` / `X-Redivis-Next-Page-Token` extension of the contract. Other
orders go through the Query API: a query (`ORDER BY id DESC`, or a keyset
`WHERE id < 'k'`) runs once, and its rows page the same way; the query id is
the list's handle, so cursors keep reading the same result. `totalCount` is
the table's `numRows`, fetched only when asked.

Tables and columns follow the contract's CRM mapping (contacts, companies,
deals, notes in dataset `options.dataset`, default `acme.crm`).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import Field

from gateway import records as rec
from gateway.datasources import redivis_sql as sql
from gateway.datasources.convert import Stamps, deal_status, iso_date, money, person, segment
from gateway.datasources.convert import optional_text as _text
from gateway.datasources.estimates import ASSUMED_CHILDREN
from gateway.datasources.hooks import PaginationStyle, ProviderOptions, StampRead, TokenCredentials
from gateway.datasources.lookups import Children
from gateway.datasources.sequential import SequentialSource
from gateway.errors import UpstreamTimeout
from gateway.listquery import All, ListQuery, QuerySupport
from gateway.pagination import ConnectionArgs, SeqPage
from gateway.pagination.keyset import Keyset, Segment
from gateway.records import AnyRecord, Entity, Link
from gateway.resilience import Window
from gateway.upstream import ClientAuth

DEFAULT_DATASET = "acme.crm"
TABLES = {entity: entity.plural for entity in Entity}
COLUMNS = {
    Entity.CONTACT: (
        "id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "job_title",
        "company_id",
        "created_at",
        "updated_at",
    ),
    Entity.COMPANY: (
        "id",
        "name",
        "domain",
        "industry",
        "employee_count",
        "created_at",
        "updated_at",
    ),
    Entity.DEAL: (
        "id",
        "name",
        "stage",
        "status",
        "currency",
        "amount",
        "close_date",
        "company_id",
        "contact_id",
        "created_at",
        "updated_at",
    ),
    Entity.NOTE: ("id", "target_type", "target_id", "title", "body", "author", "created_at"),
}
NEXT_TOKEN = "X-Redivis-Next-Page-Token"
TABLE_HANDLE = "rows"  # the table's own listing; other handles are query ids
TARGETS = {"contact": Entity.CONTACT, "company": Entity.COMPANY, "deal": Entity.DEAL}
# Child lists as a query: (child entity, extra condition, parent column).
CHILDREN = {
    Link.COMPANY_CONTACTS: (Entity.CONTACT, "", "company_id"),
    Link.COMPANY_DEALS: (Entity.DEAL, "", "company_id"),
    Link.CONTACT_DEALS: (Entity.DEAL, "", "contact_id"),
    Link.CONTACT_NOTES: (Entity.NOTE, "target_type = 'contact' AND ", "target_id"),
    Link.COMPANY_NOTES: (Entity.NOTE, "target_type = 'company' AND ", "target_id"),
    Link.DEAL_NOTES: (Entity.NOTE, "target_type = 'deal' AND ", "target_id"),
}
BATCH = 500  # ids per IN (...) list
# Row ids are whatever the dataset holds (`person_000001` in the demo); the gateway takes
# plain identifier characters only, so no quote, backslash or space reaches a SQL literal.
ROW_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")
# How long `POST /queries` may hold the answer for the result: well under the read timeout,
# so a slow query answers `running` (then polled) instead of timing out and being re-sent.
QUERY_WAIT_MS = 5000
POLL_SECONDS = 0.2  # first pause between polls of a running query; doubles up to the next
POLL_MAX_SECONDS = 2.0
# A running query is polled at most this long and this often; then the read fails.
QUERY_DEADLINE_SECONDS = 120.0
MAX_POLLS = 100
# Unified field -> column, per entity: what lists filter on.
FILTER_COLUMNS = {
    Entity.CONTACT: ("first_name", "last_name", "email", "company_id", "created_at"),
    Entity.COMPANY: ("name", "domain", "industry", "created_at"),
    Entity.DEAL: ("name", "stage", "amount", "company_id", "created_at"),
    Entity.NOTE: ("title", "body", "created_at"),
}
# What lists sort by upstream, one field at a time, read by keyset on (field, id) in segments
# that keep nulls apart (gateway.pagination.keyset): the times. A text key could outgrow
# the position a cursor holds, and BigQuery compares text by its bytes.
SORT_COLUMNS = {**dict.fromkeys(Entity, ("created_at", "updated_at")), Entity.NOTE: ("created_at",)}
# A list's handle: a query id as Redivis hands them out (the emulator: `q_00000001`), one
# plain path segment; an ordered list's, those of its segments that hold rows, joined by
# `.`, and a position in it is the segment's index, `~` and its own token (none: its start).
HANDLE = re.compile(r"[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64})?")
SEGMENTS = 2  # of an ordered list: its key set, its key null (gateway.pagination.keyset)


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace(" ", "T").replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # Redivis times are UTC


def _int(value: Any) -> int | None:
    # Older jsonl sends every number as a string.
    return None if value in (None, "") else int(value)


STAMPS = Stamps("created_at", "updated_at", parse=_time)
NOTE_STAMPS = Stamps("created_at", parse=_time)


def _contact(provider: str, row: dict[str, Any]) -> rec.ContactRecord:
    return rec.ContactRecord(
        **STAMPS.origin(provider, row),
        **person(row.get("first_name"), row.get("last_name"), row.get("email")),
        title=_text(row.get("job_title")),
        phones=[rec.Phone(row["phone"], is_primary=True)] if row.get("phone") else [],
        company_id=_text(row.get("company_id")),
    )


def _company(provider: str, row: dict[str, Any]) -> rec.CompanyRecord:
    return rec.CompanyRecord(
        **STAMPS.origin(provider, row),
        name=_text(row.get("name")),
        domain=_text(row.get("domain")),
        industry=_text(row.get("industry")),
        employee_count=_int(row.get("employee_count")),
    )


def _deal(provider: str, row: dict[str, Any]) -> rec.DealRecord:
    return rec.DealRecord(
        **STAMPS.origin(provider, row),
        name=_text(row.get("name")),
        amount=money(_text(row.get("amount")), row.get("currency")),
        status=deal_status(row.get("status")),
        stage=_text(row.get("stage")),
        close_date=iso_date(row.get("close_date")),
        company_id=_text(row.get("company_id")),
        contact_ids=[str(row["contact_id"])] if row.get("contact_id") else [],
        linked={Link.DEAL_CONTACTS: [str(row["contact_id"])] if row.get("contact_id") else []},
    )


def _note(provider: str, row: dict[str, Any]) -> rec.NoteRecord:
    return rec.NoteRecord(
        **NOTE_STAMPS.origin(provider, row),
        title=_text(row.get("title")),
        body=_text(row.get("body")),
        author=_text(row.get("author")),
        target_entity=TARGETS.get(str(row.get("target_type"))),
        target_id=_text(row.get("target_id")),
    )


CONVERTERS: dict[Entity, Callable[[str, dict[str, Any]], AnyRecord]] = {
    Entity.CONTACT: _contact,
    Entity.COMPANY: _company,
    Entity.DEAL: _deal,
    Entity.NOTE: _note,
}


class RedivisOptions(ProviderOptions):
    # `owner.dataset`: it names tables in SQL, so no quotes, spaces or backticks.
    dataset: str = Field(DEFAULT_DATASET, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")


class Redivis(SequentialSource):
    kind = "redivis"
    display_name = "Redivis"
    api_url = "https://redivis.com"
    style = PaginationStyle.PAGE_TOKEN
    credentials_model = TokenCredentials
    options_model = RedivisOptions
    options: RedivisOptions
    can_count = True  # a table's numRows
    default_request_size = 100
    rate_limits = (Window(1000, 60.0),)
    id_formats = dict.fromkeys(Entity, ROW_ID)
    # Every link is a query: ids and parents batch into `IN (...)` lists.
    links = frozenset(Link)
    inline_links = frozenset({Link.DEAL_CONTACTS})  # a deal's contact is a column of the deal
    query_support = {
        entity: QuerySupport.every_operator(
            fields, frozenset(SORT_COLUMNS[entity]), can_or=True, can_nest=True, max_sorts=1
        )
        for entity, fields in FILTER_COLUMNS.items()
    }
    keyset_orders = True
    unset_fields = {**dict.fromkeys(Entity, STAMPS.unset), Entity.NOTE: NOTE_STAMPS.unset}
    stamped = frozenset(Entity) - {Entity.NOTE}  # notes have no `updated_at`
    whole_page_size = 1000  # rows a page with `pageToken`

    def configure(self) -> None:
        self.dataset = self.options.dataset
        # Injectable, so tests of query polling need no wall-clock time.
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    @classmethod
    def auth(cls, credentials: Mapping[str, str]) -> ClientAuth:
        return ClientAuth(headers={"Authorization": f"Bearer {credentials['token']}"})

    @staticmethod
    def error_message(body: Any) -> str | None:
        if isinstance(body, dict) and body.get("error"):
            text = f"{body['error']}: {body.get('error_description', '')}".rstrip(": ")
            if body.get("scope"):
                text += f" (needs scope {body['scope']})"
            return text
        return None

    # --- tables and queries ------------------------------------------------------------

    def _table(self, entity: Entity) -> str:
        return f"{self.dataset}.{TABLES[entity]}"

    def _table_path(self, entity: Entity) -> str:
        return f"/api/v1/tables/{quote(self._table(entity), safe='')}"

    async def _query(self, entity: Entity, where: str, order: str = "id ASC") -> str:
        """Run a query over the entity's table; its id."""
        return (await self._run(entity, where, order))[0]

    async def _run(
        self, entity: Entity, where: str, order: str = "id ASC"
    ) -> tuple[str, int | None]:
        """Run a query over the entity's table; its id and how many rows it has."""
        columns = ", ".join(COLUMNS[entity])
        text = f"SELECT {columns} FROM `{self._table(entity)}`{where} ORDER BY {order}"
        body = {"query": text, "timeoutMs": QUERY_WAIT_MS}
        response = await self.upstream.request(
            "POST", "/api/v1/queries", json_body=body, idempotent=True
        )
        query = self.upstream.json(response)
        started, pause = self.clock(), POLL_SECONDS
        for polls in range(MAX_POLLS + 1):

            def state(q: Any) -> tuple[str, str, str | None, int | None]:
                rows = q.get("outputNumRows")
                return str(q["id"]), str(q["status"]), q.get("errorMessage"), _int(rows)

            query_id, status, error, rows = self.reader.parse(state, query, response)
            if status == "completed":
                return query_id, rows
            if status == "failed":
                raise self.upstream.bad_response(f"query failed: {error}", response)
            if status not in ("queued", "running"):
                raise self.upstream.bad_response(f"unknown query status {status!r}", response)
            waited = self.clock() - started
            if polls == MAX_POLLS or waited + pause > QUERY_DEADLINE_SECONDS:
                break
            await self.sleep(pause)  # still running: ask again, less often as time goes by
            pause = min(pause * 2, POLL_MAX_SECONDS)
            # Never from the read cache: a cached `running` would be polled unchanged.
            path = f"/api/v1/queries/{segment(query_id)}"
            response = await self.upstream.request("GET", path, cached=False)
            query = self.upstream.json(response)
        raise UpstreamTimeout(
            f"{self.name}'s query was still {status} after {polls} polls "
            f"({self.clock() - started:.0f} s).",
            provider=self.name,
        )

    async def _rows(
        self, entity: Entity, path: str, limit: int, token: str | None
    ) -> tuple[list[AnyRecord], str | None, httpx.Response]:
        params: dict[str, Any] = {
            "format": "jsonl",
            "maxResults": limit,
            "selectedVariables": ",".join(COLUMNS[entity]),
        }
        if token is not None:
            params["pageToken"] = token
        response = await self.upstream.request("GET", path, params=params)
        columns = COLUMNS[entity]

        def convert(text: str) -> list[AnyRecord]:
            rows = []
            for line in text.splitlines():
                if not line.strip():
                    continue
                value = json.loads(line)
                # Older servers send each row as an array in `selectedVariables` order.
                row = dict(zip(columns, value, strict=True)) if isinstance(value, list) else value
                rows.append(CONVERTERS[entity](self.name, row))
            return rows

        records = self.reader.parse(convert, response.text, response)
        return records, response.headers.get(NEXT_TOKEN) or None, response

    # --- what the engine and the resolvers call -----------------------------------------

    async def get(self, entity: Entity, remote_id: str) -> AnyRecord:
        self.require(entity)
        if not self.valid_id(entity, remote_id):
            raise self.not_found(entity, remote_id)
        query_id = await self._query(entity, f" WHERE id = {sql.literal(remote_id)}")
        path = f"/api/v1/queries/{segment(query_id)}/rows"
        records, _, _ = await self._rows(entity, path, 1, None)
        if not records:
            raise self.not_found(entity, remote_id)
        return records[0]

    async def open_list(
        self, entity: Entity, reverse: bool, after_key: str | None, query: ListQuery
    ) -> str:
        self.require(entity)
        if query.order:
            return await self._open_segments(entity, reverse, after_key, query)
        condition = None if query.filter is None else sql.condition(query.filter)
        if not reverse and after_key is None and condition is None:
            return TABLE_HANDLE
        parts = [f"({condition})"] if condition else []
        if after_key is not None:
            parts.append(f"id {'<' if reverse else '>'} {sql.literal(after_key)}")
        where = f" WHERE {' AND '.join(parts)}" if parts else ""
        return await self._query(entity, where, "id DESC" if reverse else "id ASC")

    async def _open_segments(
        self, entity: Entity, reverse: bool, after_key: str | None, query: ListQuery
    ) -> str:
        """An ordered list: a query per segment (its key set, or null), those with rows."""

        def run(part: Segment) -> Awaitable[tuple[str, int | None]]:
            where = part.where if query.filter is None else All((query.filter, part.where))
            return self._run(entity, f" WHERE {sql.condition(where)}", sql.order_by(part.order))

        parts = Keyset(query.order[0]).segments(reverse, after_key)
        runs = await asyncio.gather(*(run(part) for part in parts))
        kept = [query_id for query_id, rows in runs if rows != 0]
        return ".".join(kept or [runs[0][0]])

    def valid_handle(self, handle: str) -> bool:
        return handle == TABLE_HANDLE or HANDLE.fullmatch(handle) is not None

    async def fetch_page(
        self, entity: Entity, handle: str, position: str | None, limit: int, query: ListQuery
    ) -> SeqPage[AnyRecord]:
        self.require(entity)
        if not self.valid_handle(handle):  # the engine checks cursors; this is the last wall
            raise ValueError(f"not a Redivis list handle: {handle!r}")
        paths = (
            [f"{self._table_path(entity)}/rows"]
            if handle == TABLE_HANDLE
            else [f"/api/v1/queries/{segment(part)}/rows" for part in handle.split(".")]
        )
        if len(paths) == 1:
            records, token, _ = await self._rows(entity, paths[0], limit, position)
            return SeqPage(records, token)
        return await self._across(entity, paths, position, limit)

    async def _across(
        self, entity: Entity, paths: list[str], position: str | None, limit: int
    ) -> SeqPage[AnyRecord]:
        """A page of an ordered list's segments (none empty) from `position`, running into
        the next segment where one ends before the page is full: a short page ends the list."""
        index, token = 0, None
        if position is not None:
            head, _, rest = position.partition("~")
            if not head.isdigit() or int(head) >= len(paths):
                raise ValueError(f"not a position of a Redivis ordered list: {position!r}")
            index, token = int(head), rest or None
        records: list[AnyRecord] = []
        while True:
            page, following, _ = await self._rows(entity, paths[index], limit - len(records), token)
            records += page
            if following is not None:
                return SeqPage(records, f"{index}~{following}")
            index, token = index + 1, None
            if index == len(paths):
                return SeqPage(records, None)
            if len(records) >= limit:
                return SeqPage(records, f"{index}~")

    async def count(self, entity: Entity, query: ListQuery) -> int | None:
        condition = None if query.filter is None else sql.condition(query.filter)
        if condition is not None:  # a filtered list: the query's row count
            return (await self._run(entity, f" WHERE {condition}"))[1]
        path = self._table_path(entity)
        return await self.reader.json(lambda b: _int(b["numRows"]), "GET", path)

    # --- batches ---------------------------------------------------------------------------

    async def _select(self, entity: Entity, where: str) -> list[AnyRecord]:
        """Every row of a query (query once, then its rows page by page)."""
        return await self._query_rows(entity, await self._query(entity, f" WHERE {where}"))

    async def _query_rows(self, entity: Entity, query_id: str) -> list[AnyRecord]:
        path = f"/api/v1/queries/{segment(query_id)}/rows"

        async def page(token: str | None) -> tuple[list[AnyRecord], str | None, httpx.Response]:
            return await self._rows(entity, path, 1000, token)

        return await self.reader.pages(page, f"{entity.value} rows of a query")

    async def get_many(self, entity: Entity, ids: list[str]) -> list[AnyRecord | Exception]:
        self.require(entity)

        async def fetch(chunk: list[str]) -> list[AnyRecord]:
            return await self._select(entity, f"id IN ({', '.join(sql.literal(i) for i in chunk)})")

        return await self.lookups.listed_by_id(entity, ids, BATCH, fetch)

    async def read_children(self, link: Link, parent_ids: list[str]) -> list[Children]:
        entity, condition, column = CHILDREN[link]

        async def read(parents: list[str]) -> list[AnyRecord]:
            unique = list(dict.fromkeys(parents))
            rows: list[AnyRecord] = []
            for start in range(0, len(unique), BATCH):
                listed = ", ".join(sql.literal(p) for p in unique[start : start + BATCH])
                rows += await self._select(entity, f"{condition}{column} IN ({listed})")
            return rows

        def parent_of(record: AnyRecord) -> str:
            return str(record.remote_data.get(column))

        return await self.lookups.grouped(link, parent_ids, read, parent_of)

    async def stamps_since(self, entity: Entity, since: datetime | None) -> StampRead:
        # Every row: the table's own, 1,000 a request; else a query and the table's numRows.
        if since is None:
            rows = (await self.whole_list(entity, sys.maxsize, self.whole_page_size)).records
            total: int | None = len(rows)
        else:
            stamp = since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            query_id, found = await self._run(entity, f" WHERE updated_at > {sql.literal(stamp)}")
            rows = await self._query_rows(entity, query_id) if found != 0 else []
            total = await self.count(entity, ListQuery())
        return StampRead({r.remote_id: r.updated_at for r in rows}, total)

    def head_handle(self, entity: Entity) -> str | None:
        return TABLE_HANDLE

    def estimate_open(
        self, entity: Entity, reverse: bool, keyset: bool, filtered: bool, ordered: bool
    ) -> int:
        if ordered:
            return SEGMENTS  # a query per segment
        return 1 if reverse or keyset or filtered else 0  # a query (POST), polls excluded

    def estimate_list(
        self,
        entity: Entity,
        args: ConnectionArgs,
        filtered: bool,
        count: bool,
        ordered: bool = False,
    ) -> int:
        window = super().estimate_list(entity, args, filtered, count, ordered)
        if not ordered or entity not in self.entities:
            return window
        # A page may run from one segment into the next, a rows request more: once per list
        # a window reads (its cursor's, and backward perhaps one opened the other way).
        cursors = args.after is not None or args.before is not None or args.last is not None
        return window + (2 if cursors else 1) * (SEGMENTS - 1)

    def estimate_count(self, entity: Entity, filtered: bool) -> int:
        return 1  # the table's numRows, or the filtered query's row count

    def estimate_lookup(self, entity: Entity, n: int) -> int:
        return 0 if n <= 0 else 2 * -(-n // BATCH)  # a query, then its rows

    def estimate_children(self, link: Link, n: int) -> int:
        return 2 + n * ASSUMED_CHILDREN // 1000  # a query, then its rows by 1000
