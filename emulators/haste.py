"""Emulator of the hasteCRM REST API (v1), written from its contract.

`/v1/contacts`, `/v1/companies`, `/v1/deals`, `/v1/notes` in a
`{data, meta}` envelope. Lists page by opaque `cursor` + `limit` (1-100,
default 50); a cursor holds a position and a hash of the query (filters,
sort, fields) but not the limit, so it works with any limit and only with its
own query. `meta.cursor.previous` is the page `limit` records back (clamped
to the start), null on the first page.

Default order: `created_at` ascending, then `id`. `sort=-field` descends; the
`id` tie-breaker follows the first sort key's direction, so `-created_at` is
exactly the reverse of the default. Ids are prefixed and zero-padded
(`cont_000001`), so they also sort in creation order.

Also `POST /v1/contacts/search` (an `and`/`or` tree, bare or under `query`,
paged by a cursor in the body), `POST|PATCH|DELETE /v1/<resource>/bulk`
(operations, update by filter, delete by ids; at most 100), contact merge and
contact notes. Cursors never expire.

Webhooks (`/v1/webhooks`, contract section 9) are kept per workspace. Each write made
through the API sends its events (`<object>.created|updated|deleted`, `contact.merged`)
to the webhooks subscribed to them, only to loopback targets and only once the write has
been answered, signed `X-Haste-Signature: t=<unix>,v1=<hex HMAC>`, retried up to 3 times
with backoff and the same event `id`.

Auth: `Authorization: Bearer <token>` or `X-API-Key: <key>` (the bearer token
wins when both come). `DEMO_ACCESS_TOKEN` and `DEMO_API_KEY` see the seed
workspace, `TENANT2_ACCESS_TOKEN` another one. Limits per credential: 100 per
minute and 1,000 per hour, described by `X-RateLimit-*` on every answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from emulators.control import EmulatorOptions, emulator_state
from emulators.routing import assemble, json_object, pack, unpack
from emulators.seed import (
    SeedCompany,
    SeedContact,
    SeedDeal,
    SeedNote,
    SeedWorld,
)
from emulators.tenants import Tenants

DEMO_ACCESS_TOKEN = "haste-demo-token"
DEMO_API_KEY = "haste-demo-key"
TENANT2_ACCESS_TOKEN = "haste-tenant-2"
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
BULK_LIMIT = 100
# (requests, seconds): the burst window and the hourly one.
RATE_LIMITS = ((100, 60), (1000, 3600))

Row = dict[str, Any]
RESOURCES = ("contacts", "companies", "deals", "notes")
PREFIX = {
    "contacts": "cont",
    "companies": "comp",
    "deals": "deal",
    "notes": "note",
    "webhooks": "wh",
}
FILTERS = {
    "contacts": {
        "search",
        "status",
        "lifecycle",
        "tag",
        "owner",
        "company",
        "created_after",
        "created_before",
        "updated_after",
    },
    "companies": {"search", "industry", "domain", "tag", "created_after", "created_before"},
    "deals": {
        "search",
        "status",
        "stage",
        "pipeline",
        "company",
        "contact",
        "owner",
        "created_after",
        "created_before",
    },
    "notes": {"contact", "company", "deal"},
}
SORTS = {
    "contacts": {"created_at", "updated_at", "last_name", "score"},
    "companies": {"created_at", "updated_at", "name"},
    "deals": {"created_at", "updated_at", "value", "close_date"},
    "notes": {"created_at", "updated_at"},
}
CONTROL = {"cursor", "limit", "sort", "fields"}
OWNER = {"id": "usr_000001", "name": "Demo Owner"}
PIPELINE = {"id": "pipe_000001", "name": "Sales"}
STAGES = ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]
WRITABLE = {
    "contacts": {
        "email",
        "firstName",
        "lastName",
        "phone",
        "mobile",
        "title",
        "department",
        "companyId",
        "company",
        "address",
        "social",
        "tags",
        "customFields",
        "score",
        "status",
        "lifecycle",
        "ownerId",
    },
    "companies": {
        "name",
        "domain",
        "website",
        "logoUrl",
        "description",
        "industry",
        "size",
        "revenue",
        "foundedYear",
        "phone",
        "address",
        "social",
        "tags",
        "customFields",
    },
    "deals": {
        "title",
        "value",
        "currency",
        "probability",
        "status",
        "stageId",
        "pipelineId",
        "closeDate",
        "description",
        "wonReason",
        "lostReason",
        "companyId",
        "contactIds",
        "ownerId",
        "tags",
        "customFields",
    },
    "notes": {"content", "private", "contactId", "companyId", "dealId"},
}
ENUMS = {
    ("contacts", "status"): {"active", "inactive", "bounced"},
    ("contacts", "lifecycle"): {"lead", "opportunity", "customer"},
    ("deals", "status"): {"open", "won", "lost", "stalled"},
}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NOUNS = {"contacts": "contact", "companies": "company", "deals": "deal", "notes": "note"}
WEBHOOK_EVENTS = frozenset(
    {f"{noun}.{action}" for noun in NOUNS.values() for action in ("created", "updated", "deleted")}
    | {"contact.merged", "contact.lifecycle_changed", "contact.score_changed"}
)
# Events are POSTed to their webhooks when this is on, and only to loopback hosts.
DELIVER_WEBHOOKS = True
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Seconds before each retry of a delivery that got no 2xx (3 retries).
RETRY_DELAYS = (0.5, 1.0, 2.0)
# (url, secret, body) of the deliveries the current request's writes caused: sent once
# it is answered (None outside a request: sent at once).
_outbox: ContextVar[list[tuple[str, str, bytes]] | None] = ContextVar("outbox", default=None)


def _iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _now() -> str:
    return _iso(datetime.now(UTC))


def _meta(**extra: Any) -> Row:
    return {"requestId": f"req_{uuid.uuid4().hex[:12]}", "timestamp": _now(), **extra}


def _error(
    status: int, code: str, message: str, details: Any = None, **headers: str
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}, "meta": _meta()}
    return JSONResponse(body, status_code=status, headers=headers or None)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass
class Workspace:
    id: str = "ws_000001"
    tables: dict[str, dict[str, Row]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    webhooks: dict[str, Row] = field(default_factory=dict)

    def new_id(self, resource: str) -> str:
        self.counters[resource] = self.counters.get(resource, 0) + 1
        return f"{PREFIX[resource]}_{self.counters[resource]:06d}"

    def emit(self, event_type: str, resource: str, row_id: str, **extra: str) -> None:
        """Send one event to every webhook subscribed to it, once the request is answered."""
        targets = [
            hook
            for hook in self.webhooks.values()
            if event_type in hook["events"] and urlsplit(hook["url"]).hostname in LOOPBACK_HOSTS
        ]
        if not targets or not DELIVER_WEBHOOKS:
            return
        event = {
            "id": f"evt_{uuid.uuid4().hex}",
            "type": event_type,
            "createdAt": _now(),
            "workspaceId": self.id,
            "data": {"object": NOUNS[resource], "id": row_id, **extra},
        }
        body = json.dumps(event).encode()
        queued = _outbox.get()
        for hook in targets:
            if queued is None:
                _deliver([(hook["url"], hook["secret"], body)])
            else:
                queued.append((hook["url"], hook["secret"], body))


def _address(place: SeedCompany | SeedContact) -> Row:
    return {
        "street": place.street,
        "city": place.city,
        "state": place.region,
        "postalCode": place.postal_code,
        "country": place.country,
    }


def _seed_company(c: SeedCompany) -> Row:
    return {
        "name": c.name,
        "domain": c.domain,
        "website": f"https://{c.domain}",
        "logoUrl": None,
        "description": c.description,
        "industry": c.industry,
        "size": c.employee_count,
        "revenue": c.annual_revenue,
        "foundedYear": 1950 + c.index % 70,
        "phone": c.phone,
        "address": _address(c),
        "social": {"linkedin": None, "twitter": None, "facebook": None},
        "tags": list(c.tags),
        "customFields": {},
        "createdAt": _iso(c.created_at),
        "updatedAt": _iso(c.updated_at),
    }


def _seed_contact(p: SeedContact, company_id: str | None) -> Row:
    return {
        "email": p.email,
        "firstName": p.first_name,
        "lastName": p.last_name,
        "phone": p.phone,
        "mobile": None,
        "title": p.title,
        "department": None,
        "companyId": company_id,
        "address": _address(p),
        "social": {"linkedin": p.linkedin_url, "twitter": None},
        "tags": list(p.tags),
        "customFields": dict(p.custom_fields),
        "score": (p.index * 37) % 101,
        "status": ("active", "active", "inactive", "bounced")[p.index % 4],
        "lifecycle": ("lead", "opportunity", "customer")[p.index % 3],
        "ownerId": OWNER["id"],
        "lastActivity": None,
        "createdAt": _iso(p.created_at),
        "updatedAt": _iso(p.updated_at),
    }


def _seed_deal(d: SeedDeal, company_ids: list[str], contact_ids: list[str]) -> Row:
    stage = d.stage if d.stage in STAGES else STAGES[d.index % 4]
    return {
        "title": d.name,
        "value": d.amount,
        "currency": d.currency,
        "probability": round(d.probability * 100),
        "status": d.status,
        "stageId": f"stg_{STAGES.index(stage) + 1:06d}",
        "pipelineId": PIPELINE["id"],
        "closeDate": d.close_date.isoformat(),
        "description": None,
        "wonReason": None,
        "lostReason": None,
        "companyId": company_ids[d.company] if d.company is not None else None,
        "contactIds": [contact_ids[i] for i in d.contacts],
        "ownerId": OWNER["id"],
        "tags": [],
        "customFields": {},
        "createdAt": _iso(d.created_at),
        "updatedAt": _iso(d.updated_at),
        "closedAt": _iso(d.updated_at) if d.status in ("won", "lost") else None,
    }


def _seed_note(n: SeedNote, parent_id: str) -> Row:
    note: Row = {
        "content": n.body,
        "private": False,
        "contactId": None,
        "companyId": None,
        "dealId": None,
        "authorId": OWNER["id"],
        "createdAt": _iso(n.created_at),
        "updatedAt": _iso(n.created_at),
    }
    note[f"{n.target_kind}Id"] = parent_id
    return note


def _workspace(world: SeedWorld, workspace_id: str) -> Workspace:
    space = Workspace(id=workspace_id, tables={r: {} for r in RESOURCES})

    def add(resource: str, row: Row) -> str:
        row_id = space.new_id(resource)
        space.tables[resource][row_id] = {"id": row_id, **row}
        return row_id

    company_ids = [add("companies", _seed_company(c)) for c in world.companies]
    contact_ids = [
        add("contacts", _seed_contact(p, None if p.company is None else company_ids[p.company]))
        for p in world.contacts
    ]
    deal_ids = [add("deals", _seed_deal(d, company_ids, contact_ids)) for d in world.deals]
    parents = {"contact": contact_ids, "company": company_ids, "deal": deal_ids}
    for n in world.notes:
        add("notes", _seed_note(n, parents[n.target_kind][n.target]))
    return space


# --- shaping ---------------------------------------------------------------------------


def _shape(space: Workspace, resource: str, row: Row) -> Row:
    """A stored row as the API sends it: references expanded, write-only keys dropped."""
    companies, contacts = space.tables["companies"], space.tables["contacts"]
    out = dict(row)
    if resource == "contacts":
        company = companies.get(row["companyId"] or "")
        out["company"] = {"id": company["id"], "name": company["name"]} if company else None
        out["fullName"] = " ".join(p for p in (row["firstName"], row["lastName"]) if p) or None
        out["owner"] = OWNER
        for key in ("companyId", "ownerId"):
            out.pop(key)
    elif resource == "deals":
        company = companies.get(row["companyId"] or "")
        out["company"] = {"id": company["id"], "name": company["name"]} if company else None
        stage_index = int(row["stageId"].split("_")[1]) - 1
        out["stage"] = {"id": row["stageId"], "name": STAGES[stage_index % len(STAGES)]}
        out["pipeline"] = PIPELINE
        out["contacts"] = [
            {
                "id": cid,
                "fullName": " ".join(
                    p for p in (contacts[cid]["firstName"], contacts[cid]["lastName"]) if p
                ),
                "isPrimary": i == 0,
            }
            for i, cid in enumerate(row["contactIds"])
            if cid in contacts
        ]
        out["owner"] = OWNER
        for key in ("companyId", "contactIds", "ownerId", "stageId", "pipelineId"):
            out.pop(key)
    elif resource == "notes":
        out["author"] = OWNER
        out.pop("authorId")
    return out


def _sparse(row: Row, fields: list[str] | None) -> Row:
    if not fields:
        return row
    keep = {"id", *(_camel(f) for f in fields)}
    return {k: v for k, v in row.items() if k in keep}


# --- cursors ---------------------------------------------------------------------------


class BadRequest(Exception):
    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


def _query_hash(resource: str, params: list[tuple[str, str]]) -> str:
    relevant = sorted((k, v) for k, v in params if k not in ("cursor", "limit"))
    text = json.dumps([resource, relevant])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _encode(position: int, query: str) -> str:
    return pack({"p": position, "q": query})


def _decode(cursor: str, query: str) -> int:
    try:
        data = unpack(cursor)
        position = data["p"]
        owner = data["q"]
    except (ValueError, KeyError, TypeError):
        raise BadRequest("INVALID_CURSOR", "The cursor is malformed.") from None
    if not isinstance(position, int) or position < 0 or owner != query:
        raise BadRequest("INVALID_CURSOR", "The cursor does not belong to this query.")
    return position


# --- listing ---------------------------------------------------------------------------


def _moment(text: str, name: str) -> str:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            "VALIDATION_ERROR",
            f"{name} must be an ISO date or date-time.",
            {"fields": {name: ["invalid"]}},
        ) from None
    return _iso(value if value.tzinfo else value.replace(tzinfo=UTC))


def _matches(space: Workspace, resource: str, row: Row, name: str, values: list[str]) -> bool:
    value = values[-1]
    if name == "search":
        text = value.lower()
        fields = {
            "contacts": [row.get("firstName"), row.get("lastName"), row.get("email")],
            "companies": [row.get("name"), row.get("domain")],
            "deals": [row.get("title")],
        }[resource]
        if resource == "contacts":
            company = space.tables["companies"].get(row["companyId"] or "")
            fields.append(company["name"] if company else None)
        return any(text in str(f).lower() for f in fields if f)
    if name == "tag":
        return all(tag in row.get("tags", []) for tag in values)
    if name == "owner":
        return bool(row.get("ownerId") == value)
    if name in ("company", "contact", "deal"):
        if resource == "deals" and name == "contact":
            return value in row["contactIds"]
        return bool(row.get(f"{name}Id") == value)
    if name == "stage":
        return bool(
            row["stageId"] == value or STAGES[int(row["stageId"][4:]) - 1].lower() == value.lower()
        )
    if name == "pipeline":
        return bool(row["pipelineId"] == value)
    if name == "created_after":
        return bool(row["createdAt"] >= _moment(value, name))
    if name == "created_before":
        return bool(row["createdAt"] <= _moment(value, name))
    if name == "updated_after":
        return bool(row["updatedAt"] >= _moment(value, name))
    return bool(str(row.get(_camel(name))).lower() == value.lower())


def _sort_key(name: str) -> Callable[[Row], tuple[int, Any]]:
    key = {"value": "value"}.get(name, _camel(name))

    def get(row: Row) -> tuple[int, Any]:
        value = row.get(key)
        return (1, "") if value is None else (0, value)

    return get


def _ordered(resource: str, rows: list[Row], sort: str | None) -> list[Row]:
    keys = [s.strip() for s in (sort or "created_at").split(",") if s.strip()]
    parsed = []
    for key in keys:
        descending = key.startswith("-")
        name = key.lstrip("-")
        if name not in SORTS[resource] and name != "id":
            raise BadRequest(
                "VALIDATION_ERROR",
                f"Cannot sort {resource} by {name}.",
                {"fields": {"sort": [f"one of {', '.join(sorted(SORTS[resource]))}"]}},
            )
        parsed.append((name, descending))
    rows = sorted(rows, key=lambda r: r["id"], reverse=parsed[0][1])
    for name, descending in reversed(parsed):
        rows.sort(key=_sort_key(name), reverse=descending)
    return rows


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(
            "VALIDATION_ERROR",
            f"limit must be an integer from 1 to {MAX_LIMIT}.",
            {"fields": {"limit": [f"must be between 1 and {MAX_LIMIT}"]}},
        )
    return int(raw)


def _page(
    space: Workspace, resource: str, rows: list[Row], params: list[tuple[str, str]], query: str
) -> Row:
    single = dict(params)
    limit = _limit(single.get("limit"))
    start = _decode(single["cursor"], query) if "cursor" in single else 0
    chunk = rows[start : start + limit]
    end = start + len(chunk)
    following = _encode(end, query) if end < len(rows) else None
    previous = _encode(max(0, start - limit), query) if start > 0 else None
    fields = [f.strip() for f in single["fields"].split(",")] if single.get("fields") else None
    return {
        "data": [_sparse(_shape(space, resource, r), fields) for r in chunk],
        "meta": _meta(
            cursor={"next": following, "previous": previous, "hasMore": following is not None}
        ),
    }


def _filtered(space: Workspace, resource: str, params: list[tuple[str, str]]) -> list[Row]:
    """The rows matching the query's filters (every other name is refused)."""
    filters: dict[str, list[str]] = {}
    for name, value in params:
        if name in CONTROL:
            continue
        if name not in FILTERS[resource]:
            raise BadRequest(
                "VALIDATION_ERROR",
                f"Unknown filter {name!r} for {resource}.",
                {"fields": {name: [f"allowed: {', '.join(sorted(FILTERS[resource]))}"]}},
            )
        filters.setdefault(name, []).append(value)
    return [
        r
        for r in space.tables[resource].values()
        if all(_matches(space, resource, r, n, v) for n, v in filters.items())
    ]


def _list(space: Workspace, resource: str, params: list[tuple[str, str]]) -> Row:
    rows = _ordered(resource, _filtered(space, resource, params), dict(params).get("sort"))
    return _page(space, resource, rows, params, _query_hash(resource, params))


# --- search (POST /v1/contacts/search) -------------------------------------------------

OPERATORS = ("equals", "not_equals", "contains", "greater_than", "less_than")
SEARCH_KEYS = {"sort", "limit", "cursor"}
# Search fields that name a stored reference rather than a stored key.
SEARCH_ALIASES = {"company": "companyId", "owner": "ownerId"}


def _compare(operator: str, actual: Any, expected: Any) -> bool:
    if operator == "equals":
        return bool(actual == expected)
    if operator == "not_equals":
        return bool(actual != expected)
    if operator == "contains":
        if isinstance(actual, list):  # `tags contains vip` tests membership
            return expected in actual
        return actual is not None and str(expected).lower() in str(actual).lower()
    try:
        if operator == "greater_than":
            return actual is not None and bool(actual > expected)
        return actual is not None and bool(actual < expected)
    except TypeError:  # e.g. a number against a string: no match, not a crash
        return False


def _lookup(row: Row, path: str) -> Any:
    """`field` of a search leaf: snake or camel case, dotted into objects."""
    head, *rest = path.split(".")
    value: Any = row.get(SEARCH_ALIASES.get(head, _camel(head)))
    for part in rest:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _tree(node: Any) -> Callable[[Row], bool]:
    if not isinstance(node, dict):
        raise BadRequest("VALIDATION_ERROR", "A search node must be an object.")
    if "and" in node or "or" in node:
        kind = "and" if "and" in node else "or"
        parts = node[kind]
        if not isinstance(parts, list):
            raise BadRequest("VALIDATION_ERROR", f"`{kind}` takes a list.")
        tests = [_tree(p) for p in parts]
        if kind == "and":
            return lambda row: all(t(row) for t in tests)
        return lambda row: any(t(row) for t in tests)
    field_name, operator, value = node.get("field"), node.get("operator"), node.get("value")
    if not isinstance(field_name, str) or operator not in OPERATORS:
        raise BadRequest(
            "VALIDATION_ERROR",
            f"A search leaf needs `field` and `operator` ({', '.join(OPERATORS)}).",
        )
    return lambda row: _compare(operator, _lookup(row, field_name), value)


# --- writes ----------------------------------------------------------------------------


def _check(
    space: Workspace, resource: str, body: Row, *, creating: bool, current: Row | None
) -> Row:
    """The stored fields a write sets, or BadRequest with field details."""
    problems: dict[str, list[str]] = {}
    values = {k: v for k, v in body.items() if k in WRITABLE[resource]}
    if resource == "contacts" and "company" in values:
        # The seed's create example names the company; link to it, or create it.
        name = values.pop("company")
        if isinstance(name, str) and name:
            found = next(
                (
                    c
                    for c in space.tables["companies"].values()
                    if c["name"].lower() == name.lower()
                ),
                None,
            )
            if found is None:
                found = _create(space, "companies", {"name": name})
            values["companyId"] = found["id"]
    for (res, key), allowed in ENUMS.items():
        if res == resource and key in values and values[key] not in allowed:
            problems[key] = [f"must be one of {', '.join(sorted(allowed))}"]
    email = values.get("email")
    if email is not None and (not isinstance(email, str) or not EMAIL.match(email)):
        problems["email"] = ["must be a valid email address"]
    for key, table in (("companyId", "companies"), ("dealId", "deals"), ("contactId", "contacts")):
        if values.get(key) is not None and values[key] not in space.tables[table]:
            problems[key] = [f"no {table[:-1]} with id {values[key]!r}"]
    if resource == "deals":
        for cid in values.get("contactIds") or []:
            if cid not in space.tables["contacts"]:
                problems["contactIds"] = [f"no contact with id {cid!r}"]
        if "value" in values and values["value"] is not None:
            if isinstance(values["value"], bool) or not isinstance(values["value"], int | float):
                problems["value"] = ["must be a number"]
            else:
                values["value"] = round(float(values["value"]), 2)
        if "stageId" in values and not re.fullmatch(r"stg_\d{6}", str(values["stageId"])):
            problems["stageId"] = ["unknown stage"]
    if "customFields" in values and not isinstance(values["customFields"], dict):
        problems["customFields"] = ["must be an object"]
    if "tags" in values and not (
        isinstance(values["tags"], list) and all(isinstance(t, str) for t in values["tags"])
    ):
        problems["tags"] = ["must be a list of strings"]
    required = {"companies": ["name"], "deals": ["title"], "notes": ["content"]}.get(resource, [])
    merged = {**(current or {}), **values}
    for key in required:
        if creating and not merged.get(key):
            problems[key] = ["is required"]
    if resource == "notes":
        parents = [k for k in ("contactId", "companyId", "dealId") if merged.get(k)]
        if len(parents) != 1:
            problems["contactId"] = ["exactly one of contactId, companyId, dealId is required"]
    if problems:
        raise BadRequest("VALIDATION_ERROR", "Validation failed.", {"fields": problems})
    return values


def _conflict(space: Workspace, resource: str, values: Row, skip: str | None) -> None:
    key = {"contacts": "email", "companies": "domain"}.get(resource)
    if key is None or not values.get(key):
        return
    for row in space.tables[resource].values():
        if row["id"] != skip and str(row.get(key) or "").lower() == str(values[key]).lower():
            code = "DUPLICATE_EMAIL" if resource == "contacts" else "CONFLICT"
            raise Conflict(code, f"A {resource[:-1]} with this {key} already exists.")


class Conflict(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, None


class Missing(Exception):
    """An unknown id inside a bulk operation (a 404 elsewhere)."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = "RESOURCE_NOT_FOUND", message, details


# Rows are copied from these templates, so sharing the address template is safe.
BLANK_ADDRESS = {"street": None, "city": None, "state": None, "postalCode": None, "country": None}
BLANK: dict[str, Row] = {
    "contacts": {
        "email": None,
        "firstName": None,
        "lastName": None,
        "phone": None,
        "mobile": None,
        "title": None,
        "department": None,
        "companyId": None,
        "address": BLANK_ADDRESS,
        "social": {"linkedin": None, "twitter": None},
        "tags": [],
        "customFields": {},
        "score": 0,
        "status": "active",
        "lifecycle": "lead",
        "ownerId": OWNER["id"],
        "lastActivity": None,
    },
    "companies": {
        "name": None,
        "domain": None,
        "website": None,
        "logoUrl": None,
        "description": None,
        "industry": None,
        "size": None,
        "revenue": None,
        "foundedYear": None,
        "phone": None,
        "address": BLANK_ADDRESS,
        "social": {"linkedin": None, "twitter": None, "facebook": None},
        "tags": [],
        "customFields": {},
    },
    "deals": {
        "title": None,
        "value": None,
        "currency": "USD",
        "probability": 10,
        "status": "open",
        "stageId": "stg_000001",
        "pipelineId": PIPELINE["id"],
        "closeDate": None,
        "description": None,
        "wonReason": None,
        "lostReason": None,
        "companyId": None,
        "contactIds": [],
        "ownerId": OWNER["id"],
        "tags": [],
        "customFields": {},
        "closedAt": None,
    },
    "notes": {
        "content": None,
        "private": False,
        "contactId": None,
        "companyId": None,
        "dealId": None,
        "authorId": OWNER["id"],
    },
}


def _create(space: Workspace, resource: str, body: Row) -> Row:
    values = _check(space, resource, body, creating=True, current=None)
    _conflict(space, resource, values, None)
    stamp = _now()
    row = {"id": space.new_id(resource), **json.loads(json.dumps(BLANK[resource])), **values}
    row.update(createdAt=stamp, updatedAt=stamp)
    space.tables[resource][row["id"]] = row
    space.emit(f"{NOUNS[resource]}.created", resource, row["id"])
    return row


def _update(space: Workspace, resource: str, row: Row, body: Row) -> Row:
    values = _check(space, resource, body, creating=False, current=row)
    _conflict(space, resource, values, row["id"])
    if "customFields" in values and values["customFields"] is not None:
        values["customFields"] = {**row.get("customFields", {}), **values["customFields"]}
    row.update(values)
    row["updatedAt"] = _now()
    space.emit(f"{NOUNS[resource]}.updated", resource, row["id"])
    return row


def _delete(space: Workspace, resource: str, row_id: str) -> None:
    del space.tables[resource][row_id]
    space.emit(f"{NOUNS[resource]}.deleted", resource, row_id)
    notes = space.tables["notes"]
    key = {"contacts": "contactId", "companies": "companyId", "deals": "dealId"}.get(resource)
    if key:
        for nid in [n for n, note in notes.items() if note[key] == row_id]:
            del notes[nid]
            space.emit("note.deleted", "notes", nid)
    if resource == "companies":
        for table in ("contacts", "deals"):
            for other in space.tables[table].values():
                if other["companyId"] == row_id:
                    other["companyId"] = None
    if resource == "contacts":
        for deal in space.tables["deals"].values():
            deal["contactIds"] = [c for c in deal["contactIds"] if c != row_id]


# --- the app ---------------------------------------------------------------------------


class Haste(Tenants[Workspace]):
    def workspaces(self, demo: SeedWorld, other: SeedWorld) -> dict[str, Workspace]:
        space = _workspace(demo, "ws_000001")
        return {
            f"token:{DEMO_ACCESS_TOKEN}": space,
            f"key:{DEMO_API_KEY}": space,
            f"token:{TENANT2_ACCESS_TOKEN}": _workspace(other, "ws_000002"),
        }

    def credential(self, request: Request) -> tuple[str | None, JSONResponse | None]:
        header = request.headers.get("authorization")
        key = request.headers.get("x-api-key")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or f"token:{token.strip()}" not in self.spaces:
                return None, _error(401, "TOKEN_INVALID", "The access token is invalid.")
            return f"token:{token.strip()}", None
        if key:
            if f"key:{key.strip()}" not in self.spaces:
                return None, _error(401, "API_KEY_INVALID", "The API key is invalid.")
            return f"key:{key.strip()}", None
        return None, _error(401, "UNAUTHORIZED", "Authentication required.")

    def window(self, credential: str) -> tuple[int, int, int, int]:
        """(limit, remaining, reset unix seconds, window seconds) of the tighter window."""
        tightest = None
        for window in self.log.check(credential):
            remaining = window.remaining
            reset = int((window.hits[0] if window.hits else window.now) + window.seconds) + 1
            if tightest is None or remaining < tightest[1]:
                tightest = (window.limit, remaining, reset, int(window.seconds))
        assert tightest is not None
        return tightest

    def admit(self, credential: str) -> tuple[dict[str, str], JSONResponse | None]:
        limit, remaining, reset, seconds = self.window(credential)
        if self.options.rate_limits and remaining <= 0:
            wait = max(1, reset - int(self.log.clock()))
            headers = {
                "Retry-After": str(wait),
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
                "X-RateLimit-Window": str(seconds),
            }
            details = {"limit": limit, "window": seconds, "reset": reset, "retryAfter": wait}
            return headers, _error(429, "RATE_LIMITED", "Rate limit exceeded", details, **headers)
        if self.options.rate_limits:  # unenforced limits are not spent either
            self.log.spend(credential, self.log.clock())
            remaining -= 1
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Window": str(seconds),
        }
        return headers, None


# Error codes by status, for answers the control endpoints inject.
CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "RESOURCE_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    422: "UNPROCESSABLE_ENTITY",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}


def _status_error(status: int, message: str) -> JSONResponse:
    return _error(status, CODES.get(status, "INTERNAL_ERROR"), message)


def _throttled() -> JSONResponse:
    """An injected 429: as if the burst window were spent, free again in a second."""
    limit, seconds = RATE_LIMITS[0]
    reset = int(time.time()) + 1
    headers = {
        "Retry-After": "1",
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(reset),
        "X-RateLimit-Window": str(seconds),
    }
    details = {"limit": limit, "window": seconds, "reset": reset, "retryAfter": 1}
    return _error(429, "RATE_LIMITED", "Rate limit exceeded", details, **headers)


# --- requests --------------------------------------------------------------------------


async def _gate(request: Request, call_next: Callable[[Request], Any]) -> Response:
    """Credential to workspace, then its rate limits, described on every answer."""
    if not request.url.path.startswith("/v1/"):
        response: Response = await call_next(request)
        return response
    api: Haste = emulator_state(request)
    credential, failure = api.credential(request)
    if failure is not None or credential is None:
        return failure or _error(401, "UNAUTHORIZED", "Authentication required.")
    headers, refused = api.admit(credential)
    if refused is not None:
        return refused
    request.state.space = api.spaces[credential]
    queued: list[tuple[str, str, bytes]] = []
    token = _outbox.set(queued)  # the handler runs in a copy of this context: same list
    try:
        response = await call_next(request)
    finally:
        _outbox.reset(token)
    response.headers.update(headers)
    if queued:  # sent once the answer has gone out
        response.background = BackgroundTask(_deliver, queued)
    return response


async def _space(request: Request) -> Workspace:
    """The workspace of the caller's credential (set by the gate)."""
    space: Workspace = request.state.space
    return space


async def _resource(request: Request) -> str:
    """The resource a `/v1/<resource>/...` route serves, from its fixed path segment."""
    return str(request.scope["path"].split("/")[2])


Space = Annotated[Workspace, Depends(_space)]
Resource = Annotated[str, Depends(_resource)]


async def _row(space: Space, resource: Resource, row_id: str) -> Row:
    row = space.tables[resource].get(row_id)
    if row is None:
        noun = resource[:-1]
        raise Missing(f"{noun.title()} not found", {"resource": noun, "id": row_id})
    return row


Found = Annotated[Row, Depends(_row)]


def _invalid_input(message: str) -> BadRequest:
    return BadRequest("INVALID_INPUT", message)


async def body_of(request: Request) -> Row:
    return await json_object(request, _invalid_input)


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"data": data, "meta": _meta()}, status_code=status)


# --- one resource ----------------------------------------------------------------------


async def list_rows(request: Request, space: Space, resource: Resource) -> Response:
    return JSONResponse(_list(space, resource, list(request.query_params.multi_items())))


async def create_row(request: Request, space: Space, resource: Resource) -> Response:
    body = await body_of(request)
    return ok(_shape(space, resource, _create(space, resource, body)), 201)


async def get_row(space: Space, resource: Resource, row: Found) -> Response:
    return ok(_shape(space, resource, row))


async def patch_row(request: Request, space: Space, resource: Resource, row: Found) -> Response:
    body = await body_of(request)
    return ok(_shape(space, resource, _update(space, resource, row, body)))


async def delete_row(space: Space, resource: Resource, row: Found) -> Response:
    _delete(space, resource, row["id"])
    noun = resource[:-1].title()
    return ok({"message": f"{noun} deleted successfully"})


def operate(space: Workspace, resource: str, index: int, op: Any) -> Row:
    """One bulk operation's result; failures are reported, never raised."""
    try:
        if not isinstance(op, dict) or op.get("method") not in ("create", "update", "delete"):
            raise BadRequest("VALIDATION_ERROR", "method must be create, update or delete.")
        data = op.get("data")
        if op["method"] != "delete" and not isinstance(data, dict):
            raise BadRequest("VALIDATION_ERROR", "data is required.")
        if op["method"] == "create":
            row = _create(space, resource, data or {})
            return {"index": index, "status": "success", "data": _shape(space, resource, row)}
        target = space.tables[resource].get(str(op.get("id")))
        if target is None:
            raise Missing(f"{resource[:-1].title()} not found")
        if op["method"] == "update":
            row = _update(space, resource, target, data or {})
            return {"index": index, "status": "success", "data": _shape(space, resource, row)}
        _delete(space, resource, target["id"])
        return {"index": index, "status": "success", "data": {"id": target["id"]}}
    except (BadRequest, Conflict, Missing) as error:
        failure = {"code": error.code, "message": error.message, "details": error.details or {}}
        return {"index": index, "status": "error", "error": failure}


def summary(space: Workspace, resource: str, ops: list[Any]) -> Row:
    """Every operation run in turn, and how many succeeded."""
    results = [operate(space, resource, i, op) for i, op in enumerate(ops)]
    succeeded = sum(1 for r in results if r["status"] == "success")
    return {"results": results, "succeeded": succeeded, "failed": len(results) - succeeded}


def bounded(items: Any, name: str) -> list[Any]:
    if not isinstance(items, list):
        raise BadRequest("VALIDATION_ERROR", f"{name} must be a list.")
    if len(items) > BULK_LIMIT:
        raise BadRequest(
            "BULK_LIMIT_EXCEEDED",
            f"At most {BULK_LIMIT} operations per request.",
            {"limit": BULK_LIMIT},
        )
    return items


async def bulk(request: Request, space: Space, resource: Resource) -> Response:
    body = await body_of(request)
    if "operations" not in body and resource in body:
        # The contacts page's bulk create: `{contacts: [...]}` answered with
        # `{created, failed, contacts}` (plus the per-item results).
        items = bounded(body[resource], resource)
        results = summary(space, resource, [{"method": "create", "data": d} for d in items])
        made = [r["data"] for r in results["results"] if r["status"] == "success"]
        return ok({**results, "created": len(made), resource: made})
    ops = bounded(body.get("operations"), "operations")
    return ok(summary(space, resource, ops))


def _tag_change(row: Row, update: Row) -> Row:
    """`update` for one row; its `tags` may be `{add, remove}` instead of a new list."""
    change = dict(update)
    tags = update.get("tags")
    if isinstance(tags, dict):
        add, remove = tags.get("add") or [], tags.get("remove") or []
        kept = [t for t in row.get("tags", []) if t not in remove]
        change["tags"] = kept + [t for t in add if t not in kept]
    return change


async def bulk_update(request: Request, space: Space, resource: Resource) -> Response:
    """`PATCH /bulk {filter, update}`: the filter takes the list's query filters;
    `update.tags` may be `{add, remove}` instead of a replacement list."""
    body = await body_of(request)
    criteria, update = body.get("filter") or {}, body.get("update")
    if not isinstance(criteria, dict) or not isinstance(update, dict):
        raise BadRequest("VALIDATION_ERROR", "filter and update must be objects.")
    params = [
        (str(k), str(v))
        for k, vs in criteria.items()
        for v in (vs if isinstance(vs, list) else [vs])
    ]
    listed = _filtered(space, resource, params)
    bounded(listed, "matching records")
    ops = [{"method": "update", "id": r["id"], "data": _tag_change(r, update)} for r in listed]
    return ok(summary(space, resource, ops))


async def bulk_delete(request: Request, space: Space, resource: Resource) -> Response:
    body = await body_of(request)
    ids = bounded(body.get("ids"), "ids")
    return ok(summary(space, resource, [{"method": "delete", "id": i} for i in ids]))


async def notes_of(request: Request, space: Space, row: Found) -> Response:
    params = [*request.query_params.multi_items(), ("contact", row["id"])]
    return JSONResponse(_list(space, "notes", params))


async def add_note(request: Request, space: Space, row: Found) -> Response:
    body = await body_of(request)
    data = {
        "content": body.get("content"),
        "private": bool(body.get("private", False)),
        "contactId": row["id"],
    }
    return ok(_shape(space, "notes", _create(space, "notes", data)), 201)


def _resource_router(resource: str) -> APIRouter:
    """The routes of `/v1/<resource>`; bulk ones before `/{row_id}`, which would take them."""
    router = APIRouter(prefix=f"/v1/{resource}", include_in_schema=False)
    router.add_api_route("", list_rows, methods=["GET"])
    router.add_api_route("", create_row, methods=["POST"])
    if resource != "notes":
        router.add_api_route("/bulk", bulk, methods=["POST"])
        router.add_api_route("/bulk", bulk_update, methods=["PATCH"])
        router.add_api_route("/bulk", bulk_delete, methods=["DELETE"])
    if resource == "contacts":
        router.add_api_route("/{row_id}/notes", notes_of, methods=["GET"])
        router.add_api_route("/{row_id}/notes", add_note, methods=["POST"])
    router.add_api_route("/{row_id}", get_row, methods=["GET"])
    router.add_api_route("/{row_id}", patch_row, methods=["PATCH"])
    router.add_api_route("/{row_id}", delete_row, methods=["DELETE"])
    return router


# --- contacts only ---------------------------------------------------------------------

contacts = APIRouter(prefix="/v1/contacts")


def _search_hash(body: Row) -> str:
    """A search cursor is bound to the tree and sort, not the limit."""
    shape = {k: v for k, v in body.items() if k not in ("cursor", "limit")}
    text = json.dumps(["search", shape], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _search_sort(sorts: Any) -> str | None:
    """`[{field, order}]` as a list's `sort` parameter."""
    if not isinstance(sorts, list) or not all(isinstance(x, dict) for x in sorts):
        raise BadRequest("VALIDATION_ERROR", "`sort` takes [{field, order}].")
    sort = ",".join(
        ("-" if str(x.get("order", "asc")).lower() == "desc" else "") + _snake(str(x.get("field")))
        for x in sorts
    )
    return sort or None


@contacts.post("/search")
async def search(request: Request, space: Space) -> Response:
    body = await body_of(request)
    unknown = set(body) - {"query", "and", "or", "field", "operator", "value"} - SEARCH_KEYS
    if unknown:
        raise BadRequest("VALIDATION_ERROR", f"Unknown search keys: {sorted(unknown)}.")
    # The contacts page nests the tree under `query`; a bare tree is accepted too.
    tree = body.get("query")
    if tree is None and any(k in body for k in ("and", "or", "field")):
        tree = {k: v for k, v in body.items() if k not in SEARCH_KEYS}
    test = _tree(tree) if tree is not None else (lambda row: True)
    sort = _search_sort(body.get("sort") or [])
    rows = _ordered("contacts", [r for r in space.tables["contacts"].values() if test(r)], sort)
    # The cursor may come in the body (as the client sends it) or the query string.
    params = [("limit", str(body.get("limit", DEFAULT_LIMIT)))]
    cursor = body.get("cursor") or request.query_params.get("cursor")
    if cursor:
        params.append(("cursor", str(cursor)))
    if "fields" in request.query_params:
        params.append(("fields", request.query_params["fields"]))
    return JSONResponse(_page(space, "contacts", rows, params, _search_hash(body)))


def _merge_into(space: Workspace, primary: str, duplicate: str) -> None:
    """Move the duplicate's notes and deals to the primary contact, then drop it."""
    for note in space.tables["notes"].values():
        if note["contactId"] == duplicate:
            note["contactId"] = primary
    for deal in space.tables["deals"].values():
        if duplicate in deal["contactIds"]:
            deal["contactIds"] = list(
                dict.fromkeys(primary if c == duplicate else c for c in deal["contactIds"])
            )
    del space.tables["contacts"][duplicate]


@contacts.post("/merge")
async def merge(request: Request, space: Space) -> Response:
    body = await body_of(request)
    found = space.tables["contacts"]
    primary, duplicates = body.get("primaryId"), body.get("duplicateIds")
    if not isinstance(primary, str) or not isinstance(duplicates, list) or not duplicates:
        return _error(400, "VALIDATION_ERROR", "primaryId and duplicateIds are required.")
    if primary in duplicates:
        return _error(400, "VALIDATION_ERROR", "A contact cannot be merged into itself.")
    for cid in [primary, *duplicates]:
        if cid not in found:
            return _error(
                404, "RESOURCE_NOT_FOUND", "Contact not found", {"resource": "contact", "id": cid}
            )
    for cid in duplicates:
        _merge_into(space, primary, cid)
        space.emit("contact.merged", "contacts", cid, mergedIntoId=primary)
    found[primary]["updatedAt"] = _now()
    space.emit("contact.updated", "contacts", primary)
    return ok({**_shape(space, "contacts", found[primary]), "mergedCount": len(duplicates)})


# --- webhooks --------------------------------------------------------------------------

webhooks = APIRouter(prefix="/v1/webhooks")


def _signed(secret: str, body: bytes) -> str:
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def _send(url: str, secret: str, body: bytes) -> bool:
    """POST one event, signed afresh each try, until a 2xx or the retries run out."""
    for delay in (0.0, *RETRY_DELAYS):
        time.sleep(delay)
        headers = {"Content-Type": "application/json", "X-Haste-Signature": _signed(secret, body)}
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                if 200 <= answer.status < 300:
                    return True
        except OSError:  # refused, timed out, or a status above 399
            pass
    return False


def _deliver(queued: list[tuple[str, str, bytes]]) -> None:
    """Send the events in order, in the background (a failed one is dropped at last)."""

    def run() -> None:
        for url, secret, body in queued:
            _send(url, secret, body)

    threading.Thread(target=run, daemon=True).start()


def _hook_body(body: Row) -> tuple[str, list[str], str | None]:
    problems: dict[str, list[str]] = {}
    url, events, description = body.get("url"), body.get("events"), body.get("description")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        problems["url"] = ["must be an http(s) URL"]
    if not isinstance(events, list) or not events:
        problems["events"] = ["must be a non-empty list"]
    elif unknown := [e for e in events if e not in WEBHOOK_EVENTS]:
        problems["events"] = [f"unknown event {e!r}" for e in unknown]
    if not (description is None or isinstance(description, str)):
        problems["description"] = ["must be a string"]
    if set(body) - {"url", "events", "description"}:
        problems["body"] = [f"unknown keys {sorted(set(body) - {'url', 'events', 'description'})}"]
    if problems:
        raise BadRequest("VALIDATION_ERROR", "Validation failed.", {"fields": problems})
    return str(url), [str(e) for e in dict.fromkeys(events or [])], description


def _public(hook: Row) -> Row:
    return {k: v for k, v in hook.items() if k != "secret"}  # the secret shows once


def _hook(space: Workspace, hook_id: str) -> Row:
    hook = space.webhooks.get(hook_id)
    if hook is None:
        raise Missing("Webhook not found", {"resource": "webhook", "id": hook_id})
    return hook


@webhooks.post("")
async def create_webhook(request: Request, space: Space) -> Response:
    url, events, description = _hook_body(await body_of(request))
    hook_id = space.new_id("webhooks")
    space.webhooks[hook_id] = {
        "id": hook_id,
        "url": url,
        "events": events,
        "description": description,
        "secret": f"whsec_{secrets.token_hex(24)}",
        "active": True,
        "createdAt": _now(),
    }
    return ok(space.webhooks[hook_id], 201)


@webhooks.get("")
async def list_webhooks(space: Space) -> Response:
    return ok([_public(h) for h in space.webhooks.values()])


@webhooks.get("/{hook_id}")
async def get_webhook(hook_id: str, space: Space) -> Response:
    return ok(_public(_hook(space, hook_id)))


@webhooks.delete("/{hook_id}")
async def delete_webhook(hook_id: str, space: Space) -> Response:
    del space.webhooks[_hook(space, hook_id)["id"]]
    return Response(status_code=204)


# --- the app ---------------------------------------------------------------------------


async def _bad_request(_: Request, error: Exception) -> Response:
    assert isinstance(error, BadRequest)
    return _error(400, error.code, error.message, error.details)


async def _conflict_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, Conflict)
    return _error(409, error.code, error.message)


async def _missing(_: Request, error: Exception) -> Response:
    assert isinstance(error, Missing)
    return _error(404, error.code, error.message, error.details)


async def _invalid(_: Request, error: Exception) -> Response:
    return _error(400, "VALIDATION_ERROR", "Invalid request.", {"errors": str(error)})


async def _http_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    return _status_error(error.status_code, str(error.detail))


def create_app(options: EmulatorOptions) -> FastAPI:
    return assemble(
        FastAPI(title="hasteCRM API emulator", docs_url=None, redoc_url=None),
        Haste(options, RATE_LIMITS),
        options,
        handlers={
            BadRequest: _bad_request,
            Conflict: _conflict_error,
            Missing: _missing,
        },
        http_error=_http_error,
        validation_error=_invalid,
        gate=_gate,
        hooks=(_status_error, _throttled),
        routers=[*(_resource_router(r) for r in RESOURCES), contacts, webhooks],
    )
