"""hasteCRM (REST v1): opaque `cursor` + `limit` <= 100, `{data, meta}` envelope, no counts.

Lists come in `created_at` order; `sort=-created_at` reads them backward, and
each page's `meta.cursor.previous` steps back `limit` records, so the
engine can page both ways. A cursor is bound to its query's sort, so a list's
handle is its direction, `forward` or `reverse`, and each page's parameters
are built again from the validated query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import httpx

from gateway import records as rec
from gateway.datasources.convert import Stamps, deal_status, iso_date, money
from gateway.datasources.convert import optional_text as _text
from gateway.datasources.estimates import ASSUMED_CHILDREN
from gateway.datasources.haste_webhooks import HasteWebhooks
from gateway.datasources.hooks import PaginationStyle, ProviderCredentials
from gateway.datasources.lookups import Children
from gateway.datasources.sequential import SequentialSource
from gateway.datasources.writes import Operation, Outcome
from gateway.errors import InvalidInput, NotFound, UpstreamNotFound
from gateway.listquery import ListQuery, QuerySupport, parameters
from gateway.operations import Op
from gateway.pagination import SeqPage
from gateway.records import AnyRecord, Entity, Link
from gateway.resilience import Window
from gateway.upstream import ClientAuth

PATHS = {entity: f"/v1/{entity.plural}" for entity in Entity}
# Ids are prefixed per resource (`cont_000001`); the contract fixes only the prefix.
ID_FORMATS = {
    entity: re.compile(prefix + r"_[A-Za-z0-9_-]{1,64}")
    for entity, prefix in (
        (Entity.CONTACT, "cont"),
        (Entity.COMPANY, "comp"),
        (Entity.DEAL, "deal"),
        (Entity.NOTE, "note"),
    )
}
FORWARD, BACKWARD = "created_at", "-created_at"
HANDLES = {"forward": False, "reverse": True}  # a list's handle: its direction
BULK_LIMIT = 100
# Unified filters hasteCRM has a query parameter for: (field, operator) -> parameter.
FILTER_PARAMS = {
    Entity.CONTACT: {("status", "eq"): "status", ("company_id", "eq"): "company"},
    Entity.COMPANY: {("industry", "eq"): "industry", ("domain", "eq"): "domain"},
    Entity.DEAL: {("company_id", "eq"): "company"},
    Entity.NOTE: {},
}
DATE_PARAMS = {("created_at", "gte"): "created_after", ("created_at", "lte"): "created_before"}
# Every list but notes also filters by creation time.
PARAMS = {e: {**FILTER_PARAMS[e], **(DATE_PARAMS if e is not Entity.NOTE else {})} for e in Entity}
SORT_NAMES = {
    "created_at": "created_at",
    "updated_at": "updated_at",
    "last_name": "last_name",
    "name": "name",
    "amount": "value",
}
SORTABLE = {
    Entity.CONTACT: frozenset({"created_at", "updated_at", "last_name"}),
    Entity.COMPANY: frozenset({"created_at", "updated_at", "name"}),
    Entity.DEAL: frozenset({"created_at", "updated_at", "amount"}),
    Entity.NOTE: frozenset({"created_at"}),
}


# Unified field -> hasteCRM's camelCase key on writes, and back for userErrors paths.
WRITE_NAMES = {
    Entity.CONTACT: {
        "first_name": "firstName",
        "last_name": "lastName",
        "company_id": "companyId",
        "custom_fields": "customFields",
    },
    Entity.COMPANY: {"custom_fields": "customFields"},
    Entity.DEAL: {"name": "title", "company_id": "companyId", "custom_fields": "customFields"},
    Entity.NOTE: {"body": "content"},
}
UNIFIED_NAMES = {
    "title": "name",
    "value": "amount",
    "content": "body",
    "contactId": "targetId",
    "dealId": "targetId",
}
# Child lists hasteCRM filters by one parent at a time: (child entity, filter name).
CHILD_FILTERS = {
    Link.CONTACT_DEALS: (Entity.DEAL, "contact"),
    Link.COMPANY_DEALS: (Entity.DEAL, "company"),
    Link.CONTACT_NOTES: (Entity.NOTE, "contact"),
    Link.COMPANY_NOTES: (Entity.NOTE, "company"),
    Link.DEAL_NOTES: (Entity.NOTE, "deal"),
}


def _ref(value: Any) -> str | None:
    """The id of a nested `{id, name}` reference."""
    return _text(value.get("id")) if isinstance(value, dict) else None


def _inline(link: Link, value: Any) -> dict[Link, dict[str, Any]]:
    """The unified fields a nested `{id, name}` reference sends of the record it names."""
    if _ref(value) is None:
        return {}
    return {link: {"name": _text(value.get("name"))}}


def _address(raw: Any) -> rec.Address | None:
    if not isinstance(raw, dict) or not any(raw.values()):
        return None
    return rec.Address(
        street=_text(raw.get("street")),
        city=_text(raw.get("city")),
        region=_text(raw.get("state")),
        postal_code=_text(raw.get("postalCode")),
        country=_text(raw.get("country")),
    )


STAMPS = Stamps("createdAt", "updatedAt")


def _contact(provider: str, raw: dict[str, Any]) -> rec.ContactRecord:
    phones = [rec.Phone(raw["phone"], "work", is_primary=True)] if raw.get("phone") else []
    if raw.get("mobile"):
        phones.append(rec.Phone(raw["mobile"], "mobile"))
    return rec.ContactRecord(
        **STAMPS.origin(provider, raw),
        first_name=_text(raw.get("firstName")),
        last_name=_text(raw.get("lastName")),
        name=_text(raw.get("fullName")) or rec.full_name(raw.get("firstName"), raw.get("lastName")),
        title=_text(raw.get("title")),
        emails=[rec.Email(raw["email"], is_primary=True)] if raw.get("email") else [],
        phones=phones,
        address=_address(raw.get("address")),
        tags=[str(t) for t in raw.get("tags") or []],
        status=_text(raw.get("status")),
        company_id=_ref(raw.get("company")),
        inline=_inline(Link.CONTACT_COMPANY, raw.get("company")),
        custom_fields=dict(raw.get("customFields") or {}),
    )


def _company(provider: str, raw: dict[str, Any]) -> rec.CompanyRecord:
    size = raw.get("size")
    return rec.CompanyRecord(
        **STAMPS.origin(provider, raw),
        name=_text(raw.get("name")),
        domain=_text(raw.get("domain")),
        industry=_text(raw.get("industry")),
        description=_text(raw.get("description")),
        employee_count=size if isinstance(size, int) and not isinstance(size, bool) else None,
        annual_revenue=money(raw.get("revenue")),
        address=_address(raw.get("address")),
        tags=[str(t) for t in raw.get("tags") or []],
        custom_fields=dict(raw.get("customFields") or {}),
    )


def _deal(provider: str, raw: dict[str, Any]) -> rec.DealRecord:
    probability = raw.get("probability")
    return rec.DealRecord(
        **STAMPS.origin(provider, raw),
        name=_text(raw.get("title")),
        amount=money(raw.get("value"), raw.get("currency")),
        status=deal_status(raw.get("status")),
        stage=_text((raw.get("stage") or {}).get("name")),
        # hasteCRM counts probability in percent; the unified field is a 0..1 share.
        probability=None if probability is None else float(probability) / 100,
        close_date=iso_date(raw.get("closeDate")),
        company_id=_ref(raw.get("company")),
        inline=_inline(Link.DEAL_COMPANY, raw.get("company")),
        contact_ids=[str(c["id"]) for c in raw.get("contacts") or [] if isinstance(c, dict)],
        linked={
            Link.DEAL_CONTACTS: [
                str(c["id"]) for c in raw.get("contacts") or [] if isinstance(c, dict)
            ]
        },
        custom_fields=dict(raw.get("customFields") or {}),
    )


def _note(provider: str, raw: dict[str, Any]) -> rec.NoteRecord:
    target: tuple[Entity | None, str | None] = (None, None)
    for key, entity in (
        ("contactId", Entity.CONTACT),
        ("companyId", Entity.COMPANY),
        ("dealId", Entity.DEAL),
    ):
        if raw.get(key):
            target = (entity, str(raw[key]))
            break
    author = raw.get("author")
    return rec.NoteRecord(
        **STAMPS.origin(provider, raw),
        body=_text(raw.get("content")),
        author=_text(author.get("name")) if isinstance(author, dict) else None,
        target_entity=target[0],
        target_id=target[1],
    )


CONVERTERS: dict[Entity, Callable[[str, dict[str, Any]], AnyRecord]] = {
    Entity.CONTACT: _contact,
    Entity.COMPANY: _company,
    Entity.DEAL: _deal,
    Entity.NOTE: _note,
}


class HasteCredentials(ProviderCredentials):
    # Either works; the bearer token wins when both come.
    token: str | None = None
    api_key: str | None = None
    one_of = ("token", "api_key")


class Haste(SequentialSource):
    kind = "haste"
    display_name = "hasteCRM"
    api_url = "https://api.haste.nyc"
    style = PaginationStyle.CURSOR
    credentials_model = HasteCredentials
    has_previous = True
    can_count = False  # cursor pages carry no total
    default_request_size = 100
    rate_limits = (Window(100, 60.0), Window(1000, 3600.0))
    # Only contacts have an id-list filter (search): companies and deals, when a batch
    # wants more of them than pages of 100 hold, are read whole.
    whole_reads = {Entity.COMPANY: 500, Entity.DEAL: 500}
    id_formats = ID_FORMATS
    links = frozenset(Link)
    converters = CONVERTERS
    rest_paths = PATHS
    envelope = "data"
    webhooks = HasteWebhooks  # its webhooks' contract: haste_webhooks
    inline_links = frozenset({Link.DEAL_CONTACTS})  # deals list their contacts
    query_support = {e: QuerySupport.by_parameters(PARAMS[e], SORTABLE[e]) for e in Entity}
    unset_fields = dict.fromkeys(Entity, STAMPS.unset)
    writes = frozenset((e, op) for e in Entity for op in Op)
    write_fields = {
        Entity.CONTACT: frozenset(
            {
                "first_name",
                "last_name",
                "email",
                "phone",
                "title",
                "status",
                "company_id",
                "custom_fields",
            }
        ),
        Entity.COMPANY: frozenset({"name", "domain", "industry", "description", "custom_fields"}),
        Entity.DEAL: frozenset(
            {"name", "amount", "currency", "close_date", "company_id", "custom_fields"}
        ),
        Entity.NOTE: frozenset({"body", "target"}),
    }
    amount_places = 2  # a deal's `value` is a number with 2 decimals
    can_merge_contacts = True
    can_bulk = frozenset({Entity.CONTACT})

    @classmethod
    def auth(cls, credentials: Mapping[str, str]) -> ClientAuth:
        # Either works; the bearer token wins when both come, so send only one.
        if credentials.get("token"):
            return ClientAuth(headers={"Authorization": f"Bearer {credentials['token']}"})
        return ClientAuth(headers={"X-API-Key": credentials["api_key"]})

    @staticmethod
    def error_message(body: Any) -> str | None:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            code = error.get("code")
            return f"{code}: {error['message']}" if code else str(error["message"])
        return None

    async def open_list(
        self, entity: Entity, reverse: bool, after_key: str | None, query: ListQuery
    ) -> str:
        if after_key is not None:
            raise NotImplementedError("hasteCRM pages back with `previous`, not keysets")
        return "reverse" if reverse else "forward"

    def valid_handle(self, handle: str) -> bool:
        return handle in HANDLES

    async def fetch_page(
        self, entity: Entity, handle: str, position: str | None, limit: int, query: ListQuery
    ) -> SeqPage[AnyRecord]:
        self.require(entity)
        reverse = HANDLES[handle]  # checked with the cursor that carried it
        keys = [
            ("-" if sort.descending != reverse else "") + SORT_NAMES[sort.field]
            for sort in query.order
        ] or [BACKWARD if reverse else FORWARD]
        params = {"sort": ",".join(keys), **parameters(query, PARAMS[entity])}
        return (await self._page(entity, params, position, limit))[0]

    async def _page(
        self, entity: Entity, params: dict[str, str], position: str | None, limit: int
    ) -> tuple[SeqPage[AnyRecord], httpx.Response]:
        """One page of a list, `params` built by the gateway; `position` only as `cursor`."""
        sent: dict[str, Any] = {**params, "limit": limit}
        if position is not None:
            sent["cursor"] = position
        response = await self.upstream.request("GET", PATHS[entity], params=sent)
        body = self.upstream.json(response)

        def convert(b: Any) -> SeqPage[AnyRecord]:
            cursor = b["meta"]["cursor"]
            items = [self.record(entity, raw) for raw in b["data"]]
            return SeqPage(items, _text(cursor.get("next")), _text(cursor.get("previous")))

        return self.reader.parse(convert, body, response), response

    # --- batches ---------------------------------------------------------------------------

    async def _search(self, tree: dict[str, Any]) -> list[AnyRecord]:
        """Every contact matching an advanced-search tree (one request per 100)."""

        async def page(
            cursor: str | None,
        ) -> tuple[list[AnyRecord], str | None, httpx.Response]:
            body = {**tree, "limit": 100, **({"cursor": cursor} if cursor is not None else {})}
            response = await self.upstream.request(
                "POST", "/v1/contacts/search", json_body=body, idempotent=True
            )
            raw = self.upstream.json(response)

            def convert(b: Any) -> tuple[list[AnyRecord], str | None]:
                items: list[AnyRecord] = [_contact(self.name, r) for r in b["data"]]
                return items, _text(b["meta"]["cursor"].get("next"))

            return (*self.reader.parse(convert, raw, response), response)

        return await self.reader.pages(page, "contacts matching a search")

    async def _listing(self, entity: Entity, filters: dict[str, str]) -> list[AnyRecord]:
        """Every record of a filtered list, page after page."""

        async def page(cursor: str | None) -> tuple[list[AnyRecord], str | None, httpx.Response]:
            read, response = await self._page(entity, {"sort": FORWARD, **filters}, cursor, 100)
            return list(read.items), read.next, response

        return await self.reader.pages(page, f"{entity.plural} by {', '.join(filters)}")

    async def get_many(self, entity: Entity, ids: list[str]) -> list[AnyRecord | Exception]:
        if entity is not Entity.CONTACT or len(ids) < 2:
            return await super().get_many(entity, ids)  # one by one, bounded

        async def fetch(chunk: list[str]) -> list[AnyRecord]:
            leaves = [{"field": "id", "operator": "equals", "value": i} for i in chunk]
            return await self._search({"or": leaves})

        return await self.lookups.listed_by_id(entity, ids, 100, fetch)

    async def read_children(self, link: Link, parent_ids: list[str]) -> list[Children]:
        if link is Link.COMPANY_CONTACTS:
            # One search for every parent: `companyId` equals any of them.
            async def search(parents: list[str]) -> list[AnyRecord]:
                leaves = [{"field": "companyId", "operator": "equals", "value": p} for p in parents]
                return await self._search({"or": leaves})

            def company(contact: AnyRecord) -> str | None:
                return contact.company_id if isinstance(contact, rec.ContactRecord) else None

            return await self.lookups.grouped(link, parent_ids, search, company)
        entity, name = CHILD_FILTERS[link]

        async def read(parent: str) -> list[AnyRecord]:
            return await self._listing(entity, {name: parent})

        return await self.lookups.per_parent(link, parent_ids, read)

    inline_fields = {
        Link.CONTACT_COMPANY: frozenset({"name"}),
        Link.DEAL_COMPANY: frozenset({"name"}),
    }

    def head_handle(self, entity: Entity) -> str | None:
        return "forward"

    def estimate_lookup(self, entity: Entity, n: int) -> int:
        if entity is not Entity.CONTACT or n < 2:
            return super().estimate_lookup(entity, n)
        # A search per 100 ids; a full page may be followed by an empty one.
        return sum(2 if n - start >= 100 else 1 for start in range(0, n, 100))

    def estimate_children(self, link: Link, n: int) -> int:
        if link is Link.COMPANY_CONTACTS:
            return n * ASSUMED_CHILDREN // 100 + 1  # one search for every parent
        return n

    # --- writes (PATCH is partial; custom fields merge key by key) -------------------------

    def write_body(self, entity: Entity, values: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name, value in values.items():
            if name == "target":
                target, parent = value
                body[
                    {Entity.CONTACT: "contactId", Entity.COMPANY: "companyId"}.get(target, "dealId")
                ] = parent
            elif name == "amount":
                body["value"] = None if value is None else float(value)
            elif name == "close_date":
                body["closeDate"] = None if value is None else value.isoformat()
            else:
                body[WRITE_NAMES[entity].get(name, name)] = value
        return body

    def field_errors(self, body: Any) -> list[tuple[list[str], str]]:
        error = body.get("error") if isinstance(body, dict) else None
        fields = (
            ((error or {}).get("details") or {}).get("fields") if isinstance(error, dict) else None
        )
        if isinstance(fields, dict) and fields:
            return [
                (
                    [UNIFIED_NAMES.get(str(k), str(k))],
                    f"{k} {' '.join(map(str, v)) if isinstance(v, list) else v}",
                )
                for k, v in fields.items()
            ]
        if isinstance(error, dict) and error.get("code") in ("DUPLICATE_EMAIL", "CONFLICT"):
            field = "email" if error["code"] == "DUPLICATE_EMAIL" else "domain"
            return [([field], str(error.get("message")))]
        return super().field_errors(body)

    async def merge(self, winner_id: str, loser_ids: list[str]) -> AnyRecord:
        try:
            return await self.writer.answer(
                Entity.CONTACT,
                "POST",
                "/v1/contacts/merge",
                partial(self.answered, Entity.CONTACT),
                json_body={"primaryId": winner_id, "duplicateIds": loser_ids},
            )
        except UpstreamNotFound as error:
            raise NotFound(
                f"a contact to merge does not exist in provider {self.name!r}: {error.message}"
            ) from None

    async def bulk(self, entity: Entity, operations: list[Operation]) -> list[Outcome]:
        send = partial(self._bulk, entity)
        return await self.writer.bulk(entity, operations, send, BULK_LIMIT)

    async def _bulk(self, entity: Entity, chunk: list[Operation]) -> list[Outcome]:
        """One bulk call: each operation's outcome, in order."""
        body = {
            "operations": [
                {
                    "method": op.value,
                    **({"id": remote_id} if remote_id is not None else {}),
                    **({"data": self.write_body(entity, values)} if values is not None else {}),
                }
                for op, remote_id, values in chunk
            ]
        }

        def convert(b: Any) -> list[Outcome]:
            results = sorted(b["data"]["results"], key=lambda r: r["index"])
            return [
                self._outcome(entity, op, str(remote_id), result)
                for (op, remote_id, _), result in zip(chunk, results, strict=True)
            ]

        return await self.writer.answer(
            entity, "POST", f"{PATHS[entity]}/bulk", convert, json_body=body
        )

    def _outcome(self, entity: Entity, op: Op, remote_id: str, result: Any) -> Outcome:
        if result["status"] == "success":
            return remote_id if op is Op.DELETE else self.record(entity, result["data"])
        if result["error"].get("code") == "RESOURCE_NOT_FOUND":
            return self.not_found(entity, remote_id)
        return InvalidInput(self.field_errors({"error": result["error"]}), provider=self.name)
