"""Emulator of the BasicsOS self-hosted CRM REST API (seed 004), written from its contract.

Generic `/api/:resource` routes over contacts, companies, deals and the three
note tables, bearer tokens, camelCase rows. Lists take an inclusive
zero-based `range=[start,end]` and answer a bare JSON array with
`Content-Range: <resource> <start>-<end>/<total>`; default order is `id`
ascending (ids are the seed index + 1), `id` always breaking ties. Archived
deals are hidden from lists unless asked for.

Three tokens: `DEMO_ADMIN_TOKEN` (org_admin) and `DEMO_MEMBER_TOKEN` (member)
share the seed organisation; `TENANT2_TOKEN` is an admin of a second one.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from emulators.control import (
    EmulatorOptions,
    Refused,
    emulator_state,
)
from emulators.routing import serve
from emulators.seed import SeedWorld
from emulators.tenants import FixedWindow, tenant_worlds

DEMO_ADMIN_TOKEN = "bos_crm_demo_admin"
DEMO_MEMBER_TOKEN = "bos_crm_demo_member"
TENANT2_TOKEN = "bos_crm_tenant_2"
DEFAULT_RANGE = (0, 24)
# Fixed 60-second window per client IP and path.
RATE_LIMIT = 180
RATE_WINDOW_SECONDS = 60

Row = dict[str, Any]
TABLES = ("contacts", "companies", "deals", "contact_notes", "company_notes", "deal_notes")
SUMMARIES = ("contacts_summary", "companies_summary")
OTHER_RESOURCES = ("tasks", "tags", "configuration", "automation_rules", "crm_users")
NOTE_PARENT = {"contact_notes": "contactId", "company_notes": "companyId", "deal_notes": "dealId"}
WRITABLE: dict[str, tuple[str, ...]] = {
    "contacts": ("firstName", "lastName", "email", "companyId", "linkedinUrl", "customFields"),
    "companies": ("name", "domain", "description", "category", "customFields"),
    "deals": ("name", "companyId", "status", "amount", "customFields"),
    "contact_notes": ("contactId", "title", "text", "date", "status", "attachments"),
    "company_notes": ("companyId", "title", "text", "date", "status", "attachments"),
    "deal_notes": ("dealId", "title", "type", "text", "date", "attachments"),
}
REQUIRED_ON_CREATE: dict[str, tuple[str, ...]] = {
    "companies": ("name",),
    "deals": ("name", "companyId", "status"),
    "contact_notes": ("contactId",),
    "company_notes": ("companyId",),
    "deal_notes": ("dealId",),
}
ID_FIELDS = ("companyId", "contactId", "dealId")
TIME_FIELDS = ("date",)
PERMISSIONS = {
    "org_admin": {"read", "write", "archive", "restore", "delete.hard", "merge"},
    "member": {"read", "write", "archive"},
}


def _iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _now() -> str:
    return _iso(datetime.now(UTC))


def _error(status: int, message: str, code: str | None = None, **headers: str) -> JSONResponse:
    body: Row = {"error": message}
    if code:
        body["code"] = code
    return JSONResponse(body, status_code=status, headers=headers or None)


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass
class Organization:
    """One organisation's rows, per table, keyed by id."""

    id: str
    tables: dict[str, dict[int, Row]] = field(default_factory=dict)
    next_id: dict[str, int] = field(default_factory=dict)

    def insert(self, table: str, row: Row) -> Row:
        new_id = self.next_id.get(table, 1)
        self.next_id[table] = new_id + 1
        row = {"id": new_id, **row}
        self.tables[table][new_id] = row
        return row


def _organization(world: SeedWorld, org_id: str) -> Organization:
    org = Organization(id=org_id, tables={t: {} for t in TABLES})
    owner = {"crmUserId": 1, "organizationId": org_id}
    for c in world.companies:
        org.insert(
            "companies",
            {
                "name": c.name,
                "domain": c.domain,
                "description": c.description,
                "category": c.industry,
                "customFields": {"employees": c.employee_count, "city": c.city},
                **owner,
                "createdAt": _iso(c.created_at),
            },
        )
    for p in world.contacts:
        org.insert(
            "contacts",
            {
                "firstName": p.first_name,
                "lastName": p.last_name,
                "email": p.email,
                "companyId": None if p.company is None else p.company + 1,
                "linkedinUrl": p.linkedin_url,
                "customFields": dict(p.custom_fields),
                **owner,
                "createdAt": _iso(p.created_at),
            },
        )
    for d in world.deals:
        org.insert(
            "deals",
            {
                "name": d.name,
                "status": d.stage,
                "amount": d.amount,
                "companyId": None if d.company is None else d.company + 1,
                "customFields": {"currency": d.currency},
                "createdAt": _iso(d.created_at),
                "updatedAt": _iso(d.updated_at),
                "archivedAt": None,
                **owner,
            },
        )
    for n in world.notes:
        table = f"{n.target_kind}_notes"
        row: Row = {NOTE_PARENT[table]: n.target + 1, "title": n.title, "text": n.body}
        row["date"] = _iso(n.created_at)
        if table == "deal_notes":
            row["type"] = "note"
        else:
            row["status"] = None
        org.insert(table, {**row, "attachments": None, **owner})
    return org


# --- list parameters --------------------------------------------------------------------


class BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _json_param(request: Request, name: str) -> Any:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise BadRequest(f"Invalid {name}: not JSON") from None


def _range(request: Request) -> tuple[int, int]:
    if request.query_params.get("range") is None:
        return DEFAULT_RANGE
    # Strict where the server would fall back to [0, 24]: a malformed range is a client bug.
    value = _json_param(request, "range")
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or value[0] < 0
        or value[0] > value[1]
    ):
        raise BadRequest("Invalid range")
    return value[0], value[1]


def _typed(row: Row, name: str) -> Any:
    if name in row:
        return row[name]
    return (row.get("customFields") or {}).get(name)


def _compare(left: Any, right: str) -> tuple[Any, Any] | None:
    """Both sides typed by the column: numbers as numbers, the rest as text."""
    if left is None:
        return None
    if isinstance(left, (int, float)) and not isinstance(left, bool):
        try:
            return left, float(right)
        except ValueError:
            return None
    return str(left), right


OPS: dict[str, Callable[[Any, str], bool]] = {
    "eq": lambda v, x: (c := _compare(v, x)) is not None and c[0] == c[1],
    "neq": lambda v, x: (c := _compare(v, x)) is None or c[0] != c[1],
    "gt": lambda v, x: (c := _compare(v, x)) is not None and c[0] > c[1],
    "lt": lambda v, x: (c := _compare(v, x)) is not None and c[0] < c[1],
    "gte": lambda v, x: (c := _compare(v, x)) is not None and c[0] >= c[1],
    "lte": lambda v, x: (c := _compare(v, x)) is not None and c[0] <= c[1],
    "contains": lambda v, x: v is not None and x.lower() in str(v).lower(),
    "not_contains": lambda v, x: v is None or x.lower() not in str(v).lower(),
    "starts_with": lambda v, x: v is not None and str(v).lower().startswith(x.lower()),
    "is_empty": lambda v, x: v in (None, ""),
    "is_not_empty": lambda v, x: v not in (None, ""),
}
ALIASES = {
    "like": "contains",
    "nlike": "not_contains",
    "blank": "is_empty",
    "notblank": "is_not_empty",
}


def _filters(rows: list[Row], spec: Any) -> list[Row]:
    """`filters`: `logicalOp` of filter i joins it with filter i+1, left to right."""
    if spec is None:
        return rows
    if not isinstance(spec, list):
        raise BadRequest("Invalid filters: expected an array")
    usable = []
    for item in spec:
        if not isinstance(item, dict) or not isinstance(item.get("field"), str):
            continue
        op = ALIASES.get(str(item.get("op")), str(item.get("op")))
        value = item.get("value", "")
        if op not in OPS or not isinstance(value, str):
            continue  # dropped silently, as the server does
        usable.append((_camel(item["field"]), OPS[op], value, str(item.get("logicalOp", "and"))))
    if not usable:
        return rows

    def keep(row: Row) -> bool:
        result = usable[0][1](_typed(row, usable[0][0]), usable[0][2])
        for previous, current in itertools.pairwise(usable):
            outcome = current[1](_typed(row, current[0]), current[2])
            result = (result or outcome) if previous[3].lower() == "or" else (result and outcome)
        return result

    return [row for row in rows if keep(row)]


def _legacy_filter(resource: str, rows: list[Row], spec: Any) -> tuple[list[Row], bool]:
    """`filter`: known keys plus equality on any real column; arrays mean "any of"."""
    if spec is None:
        return rows, False
    if not isinstance(spec, dict):
        raise BadRequest("Invalid filter: expected an object")
    include_archived = bool(spec.get("include_archived"))
    for key, value in spec.items():
        if key == "include_archived":
            continue
        if key == "q":
            text = str(value).lower()
            fields = {"companies": ("name", "category"), "deals": ("name",)}.get(resource)
            if resource == "contacts_summary":
                fields = ("firstName", "lastName", "email", "companyName")
            if resource == "companies_summary":
                fields = ("name", "category")
            if fields:
                rows = [r for r in rows if any(text in str(r.get(f) or "").lower() for f in fields)]
            continue
        column = _camel(key)
        if rows and column not in rows[0]:
            continue
        wanted = value if isinstance(value, list) else [value]
        rows = [
            r for r in rows if r.get(column) in wanted or str(r.get(column)) in map(str, wanted)
        ]
    return rows, include_archived


def _sort_key(field_name: str) -> Callable[[Row], tuple[int, Any]]:
    def key(row: Row) -> tuple[int, Any]:
        value = _typed(row, field_name)
        if value is None:
            return (1, "")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (0, value)
        return (0, str(value))

    return key


def _sorted(request: Request, rows: list[Row]) -> list[Row]:
    sorts = _json_param(request, "sorts")
    if sorts is not None:
        if not isinstance(sorts, list) or not all(
            isinstance(s, dict) and isinstance(s.get("field"), str) for s in sorts
        ):
            raise BadRequest("Invalid sorts: expected [{field, order}]")
        order = [(_camel(s["field"]), str(s.get("order", "ASC")).upper() == "DESC") for s in sorts]
    elif request.query_params.get("sort"):
        order = [
            (_camel(request.query_params["sort"]), request.query_params.get("order") == "DESC")
        ]
    else:
        order = []
    rows = sorted(rows, key=lambda r: r["id"])
    # Stable sorts from the least significant key: `id` stays the last tie-breaker.
    for name, descending in reversed(order):
        rows.sort(key=_sort_key(name), reverse=descending)
        if descending:
            # Keep nulls last and ids ascending among equals despite reverse.
            rows.sort(key=lambda r: _typed(r, name) is None)
    return rows


# --- the API ------------------------------------------------------------------------------


class BasicsOS:
    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.orgs: dict[str, Organization] = {}
        self.tokens: dict[str, tuple[str, str]] = {}
        self.windows = FixedWindow(RATE_LIMIT, RATE_WINDOW_SECONDS, clock=time.monotonic)
        self.reset()

    def reset(self) -> None:
        seed = self.options.seed
        first = str(uuid.uuid5(uuid.NAMESPACE_URL, f"basicsos:{seed}"))
        second = str(uuid.uuid5(uuid.NAMESPACE_URL, f"basicsos:{seed + 1}"))
        demo, other = tenant_worlds(self.options)
        self.orgs = {first: _organization(demo, first), second: _organization(other, second)}
        self.tokens = {
            DEMO_ADMIN_TOKEN: (first, "org_admin"),
            DEMO_MEMBER_TOKEN: (first, "member"),
            TENANT2_TOKEN: (second, "org_admin"),
        }
        self.windows.clear()

    def throttle(self, request: Request) -> JSONResponse | None:
        if not self.options.rate_limits:
            return None
        client = request.client.host if request.client else "?"
        key = (client, request.url.path)
        span = self.windows.current(key)
        if span.remaining <= 0:
            wait = max(1, int(span.seconds - (span.now - span.start)) + 1)
            return _error(429, "Too many requests", **{"Retry-After": str(wait)})
        self.windows.spend(key)
        return None

    def session(self, request: Request) -> Session:
        """The caller's session, once not throttled and its bearer token known."""
        throttled = self.throttle(request)
        if throttled is not None:
            raise Refused(throttled)
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        found = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            raise Refused(_error(401, "Unauthorized"))
        org_id, role = found
        return Session(self.orgs[org_id], PERMISSIONS[role])


@dataclass(frozen=True)
class Session:
    """Who calls: their organisation and what their role may do."""

    org: Organization
    permissions: set[str]

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise Refused(_error(403, "Forbidden", "FORBIDDEN"))


def _with_company_name(org: Organization, resource: str, row: Row) -> Row:
    if resource != "deals":
        return dict(row)
    company = org.tables["companies"].get(row.get("companyId") or 0)
    return {**row, "companyName": company["name"] if company else None}


def _summary_rows(org: Organization, resource: str) -> list[Row]:
    if resource == "contacts_summary":
        companies = org.tables["companies"]
        return [
            {
                **c,
                "companyName": (companies.get(c["companyId"] or 0) or {}).get("name"),
                "nbTasks": 0,
            }
            for c in org.tables["contacts"].values()
        ]
    deals: dict[int, int] = {}
    contacts: dict[int, int] = {}
    for d in org.tables["deals"].values():
        if d["companyId"]:
            deals[d["companyId"]] = deals.get(d["companyId"], 0) + 1
    for c in org.tables["contacts"].values():
        if c["companyId"]:
            contacts[c["companyId"]] = contacts.get(c["companyId"], 0) + 1
    return [
        {**c, "nbDeals": deals.get(c["id"], 0), "nbContacts": contacts.get(c["id"], 0)}
        for c in org.tables["companies"].values()
    ]


def _coerce(resource: str, body: Row, *, creating: bool) -> Row | JSONResponse:
    """The writable fields of `body`, typed; unknown keys ignored as the seed says."""
    allowed = WRITABLE[resource]
    values: Row = {}
    for key, value in body.items():
        name = _camel(key)
        if name in allowed:
            values[name] = value
    if not values:
        return _error(400, f"No writable fields to {'create' if creating else 'update'}")
    invalid = _check_numbers(values) or _check_texts(values)
    if invalid is not None:
        return _error(400, invalid, "VALIDATION_FAILED")
    if creating:
        for name in REQUIRED_ON_CREATE.get(resource, ()):
            if values.get(name) in (None, ""):
                return _error(400, f"Invalid {name}: required", "VALIDATION_FAILED")
    return values


def _check_numbers(values: Row) -> str | None:
    """Ids, amount and the objects: the message of the first invalid one; typed in place."""
    for name in ID_FIELDS:
        if name in values and values[name] is not None:
            v = values[name]
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                return f"Invalid {name}: expected a positive integer"
    if "amount" in values and values["amount"] is not None:
        try:
            if isinstance(values["amount"], bool):
                raise ValueError
            values["amount"] = float(values["amount"])
        except (TypeError, ValueError):
            return "Invalid amount: expected a number"
    if "category" in values and isinstance(values["category"], list):
        values["category"] = ",".join(map(str, values["category"]))
    if "customFields" in values and not isinstance(values["customFields"], dict):
        return "Invalid customFields: expected an object"
    return None


TEXT_FIELDS = (
    "firstName",
    "lastName",
    "email",
    "linkedinUrl",
    "name",
    "domain",
    "description",
    "status",
    "title",
    "text",
    "type",
    "category",
)


def _check_texts(values: Row) -> str | None:
    """Strings, the date and attachments: the message of the first invalid one."""
    for name in TEXT_FIELDS:
        if name in values and values[name] is not None and not isinstance(values[name], str):
            return f"Invalid {name}: expected a string"
    if "date" in values and values["date"] is not None:
        try:
            moment = datetime.fromisoformat(str(values["date"]).replace("Z", "+00:00"))
        except ValueError:
            return "Invalid date: expected an ISO 8601 date"
        values["date"] = _iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    attachments = values.get("attachments")
    if attachments is not None and not (
        isinstance(attachments, list)
        and all(isinstance(a, dict) and isinstance(a.get("url"), str) for a in attachments)
    ):
        return "Invalid attachments: expected [{url, name?, type?}]"
    return None


def _missing_parent(org: Organization, values: Row) -> JSONResponse | None:
    for name, table in (("companyId", "companies"), ("contactId", "contacts"), ("dealId", "deals")):
        if values.get(name) is not None and values[name] not in org.tables[table]:
            return _error(400, f"Invalid {name}: no such record", "VALIDATION_FAILED")
    return None


def _cascade(org: Organization, resource: str, row_id: int) -> None:
    if resource == "companies":
        for cid in [k for k, c in org.tables["contacts"].items() if c["companyId"] == row_id]:
            _cascade(org, "contacts", cid)
            del org.tables["contacts"][cid]
        org.tables["company_notes"] = {
            k: n for k, n in org.tables["company_notes"].items() if n["companyId"] != row_id
        }
        for deal in org.tables["deals"].values():
            if deal["companyId"] == row_id:
                deal["companyId"] = None
    elif resource == "contacts":
        org.tables["contact_notes"] = {
            k: n for k, n in org.tables["contact_notes"].items() if n["contactId"] != row_id
        }
    elif resource == "deals":
        org.tables["deal_notes"] = {
            k: n for k, n in org.tables["deal_notes"].items() if n["dealId"] != row_id
        }


# --- routing: the state behind dependencies, routes per resource --------------------------

Api = Annotated[BasicsOS, Depends(emulator_state)]


def session(request: Request, api: Api) -> Session:
    return api.session(request)


Caller = Annotated[Session, Depends(session)]


def known(resource: str) -> None:
    if not (resource in TABLES or resource in SUMMARIES or resource in OTHER_RESOURCES):
        raise Refused(_error(404, "Unknown resource"))


def writable(resource: str) -> None:
    known(resource)
    if resource not in TABLES:
        raise Refused(_error(400, f"Cannot write to {resource}", "INVALID_RESOURCE"))


def numeric(row_id: str) -> int:
    if not (row_id.isascii() and row_id.isdigit()):
        raise Refused(_error(400, "Invalid request"))
    return int(row_id)


async def body_of(request: Request) -> Row:
    try:
        body = await request.json()
    except ValueError:
        raise Refused(_error(400, "Invalid JSON body", "INVALID_REQUEST")) from None
    if not isinstance(body, dict):
        raise Refused(_error(400, "Invalid JSON body: expected an object", "INVALID_REQUEST"))
    return body


def _values(org: Organization, resource: str, body: Row, *, creating: bool) -> Row:
    values = _coerce(resource, body, creating=creating)
    if isinstance(values, JSONResponse):
        raise Refused(values)
    if (bad := _missing_parent(org, values)) is not None:
        raise Refused(bad)
    return values


def _list(request: Request, org: Organization, resource: str) -> list[Row]:
    """The rows a list answers, filtered and sorted, before the range is cut."""
    try:
        if resource in SUMMARIES:
            rows = _summary_rows(org, resource)
        elif resource in TABLES:
            rows = [_with_company_name(org, resource, r) for r in org.tables[resource].values()]
        else:
            rows = []
        rows, include_archived = _legacy_filter(resource, rows, _json_param(request, "filter"))
        if resource == "deals" and not include_archived:
            rows = [r for r in rows if r["archivedAt"] is None]
        rows = _filters(rows, _json_param(request, "filters"))
        return _sorted(request, rows)
    except BadRequest as error:
        raise Refused(_error(400, error.message, "INVALID_REQUEST")) from None


# Route order is part of the API: a 405's Allow header names the first route whose path
# matches, so reads, merge, writes and restore are included in the seed API's order.
reads = APIRouter(prefix="/api/{resource}")


@reads.get("")
async def list_rows(resource: str, request: Request, caller: Caller) -> Response:
    known(resource)
    try:
        start, end = _range(request)
    except BadRequest as error:
        return _error(400, error.message, "INVALID_REQUEST")
    rows = _list(request, caller.org, resource)
    page = rows[start : end + 1]
    last = start + len(page) - 1 if page else start
    headers = {"Content-Range": f"{resource} {start}-{last}/{len(rows)}"}
    return JSONResponse(page, headers=headers)


@reads.get("/{row_id}")
async def get_row(resource: str, row_id: str, caller: Caller) -> Response:
    known(resource)
    org = caller.org
    if resource in SUMMARIES:
        row = next((r for r in _summary_rows(org, resource) if r["id"] == numeric(row_id)), None)
    else:
        row = org.tables.get(resource, {}).get(numeric(row_id))
    if row is None or (resource == "deals" and row["archivedAt"] is not None):
        return _error(404, "Not found")
    return JSONResponse(_with_company_name(org, resource, row))


contacts = APIRouter(prefix="/api/merge_contacts")


@contacts.post("")
async def merge_contacts(request: Request, caller: Caller) -> Response:
    caller.require("merge")
    body = await body_of(request)
    loser, winner = body.get("loserId"), body.get("winnerId")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (loser, winner)):
        return _error(400, "loserId and winnerId required")
    assert isinstance(loser, int)
    assert isinstance(winner, int)
    if loser == winner:
        return _error(400, "loserId and winnerId must differ")
    table = caller.org.tables["contacts"]
    if loser not in table or winner not in table:
        return _error(404, "Contact not found")
    for note in caller.org.tables["contact_notes"].values():
        if note["contactId"] == loser:
            note["contactId"] = winner
    del table[loser]
    return JSONResponse({"id": winner})


writes = APIRouter(prefix="/api/{resource}")


@writes.post("")
async def create_row(resource: str, request: Request, caller: Caller) -> Response:
    writable(resource)
    caller.require("write")
    org = caller.org
    values = _values(org, resource, await body_of(request), creating=True)
    row: Row = dict.fromkeys(WRITABLE[resource])
    row.update(values)
    if "customFields" in row and row["customFields"] is None:
        row["customFields"] = {}
    stamp = _now()
    if resource in NOTE_PARENT:
        row["date"] = row.get("date") or stamp
    else:
        row["createdAt"] = stamp
    if resource == "deals":
        row.update(updatedAt=stamp, archivedAt=None)
    row.update(crmUserId=1, organizationId=org.id)
    created = org.insert(resource, row)
    return JSONResponse(_with_company_name(org, resource, created), status_code=201)


@writes.put("/{row_id}")
async def update_row(resource: str, row_id: str, request: Request, caller: Caller) -> Response:
    writable(resource)
    row_number = numeric(row_id)
    caller.require("write")
    row = caller.org.tables[resource].get(row_number)
    if row is None:
        return _error(404, "Not found")
    values = _values(caller.org, resource, await body_of(request), creating=False)
    row.update(values)  # partial; customFields replaces the whole object
    return JSONResponse(_with_company_name(caller.org, resource, row))


@writes.delete("/{row_id}")
async def delete_row(resource: str, row_id: str, caller: Caller) -> Response:
    known(resource)
    if resource in SUMMARIES:
        return _error(400, f"Cannot delete from {resource}", "INVALID_RESOURCE")
    org, permissions = caller.org, caller.permissions
    table = org.tables.get(resource, {})
    row = table.get(numeric(row_id))
    if row is None:
        return _error(404, "Not found")
    if "delete.hard" in permissions:
        _cascade(org, resource, row["id"])
        del table[row["id"]]
        return JSONResponse(row)
    if resource == "deals" and "archive" in permissions:
        row["archivedAt"] = _now()
        return JSONResponse({"archived": True, "record": _with_company_name(org, resource, row)})
    return _error(403, "Forbidden", "FORBIDDEN")


deals = APIRouter(prefix="/api/{resource}")


@deals.post("/{row_id}/restore")
async def restore_row(resource: str, row_id: str, caller: Caller) -> Response:
    if resource != "deals":
        return _error(400, "Restore is only supported for deals")
    caller.require("restore")
    row = (
        caller.org.tables["deals"].get(int(row_id))
        if (row_id.isascii() and row_id.isdigit())
        else None
    )
    if row is None:
        return _error(404, "Not found")
    row["archivedAt"] = None
    return JSONResponse(row)


def create_app(options: EmulatorOptions) -> FastAPI:
    return serve(
        FastAPI(title="BasicsOS CRM API emulator", docs_url=None, redoc_url=None),
        BasicsOS(options),
        options,
        hooks=(
            lambda status, message: _error(status, message),
            lambda: _error(429, "Too many requests", **{"Retry-After": "60"}),
        ),
        routers=(reads, contacts, writes, deals),
    )
