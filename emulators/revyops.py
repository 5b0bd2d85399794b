"""Emulator of the RevyOps public API (v1 and v2), written from its contract.

Contacts and companies only (RevyOps has no deals or notes, so those paths
answer 404 like any unknown URL). Auth is the `client_id` query parameter,
and with `require_api_key` also the workspace's `x-api-key` header (`API_KEYS`);
lists page by `page` (1-based) and `page_size` (default 100, maximum 1000) in
a Django REST Framework envelope; every list is in ascending `id` order, and
ids are the seed index + 1. Errors are `{"detail": ...}` or DRF field maps.

Two workspaces: `DEMO_CLIENT_ID` holds the seed world, `TENANT2_CLIENT_ID` a
different one, so tests can tell tenants apart.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
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
from emulators.tenants import SlidingLog, tenant_worlds

DEMO_CLIENT_ID = "revyops-demo-client"
TENANT2_CLIENT_ID = "revyops-tenant-2"
# Each workspace's API key, asked for (`x-api-key`) only with `require_api_key`.
API_KEYS = {DEMO_CLIENT_ID: "revyops-demo-key", TENANT2_CLIENT_ID: "revyops-tenant-2-key"}
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
V1_LIMIT = 100
# "Stay under 10 requests/second per client": enforced only when rate limits are on.
RATE_LIMIT = 10
RATE_WINDOW_SECONDS = 1.0

Row = dict[str, Any]
CONTACT_WRITABLE = (
    "email",
    "linkedin_url",
    "first_name",
    "last_name",
    "company_id",
    "origin",
    "contact_status",
)
COMPANY_WRITABLE = ("domain", "name", "company_status")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return _stamp(datetime.now(UTC))


def _detail(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def _invalid(errors: dict[str, list[str]]) -> JSONResponse:
    return JSONResponse(errors, status_code=400)


@dataclass
class Workspace:
    """One client's data: rows keyed by id, custom fields kept NESTED internally."""

    contacts: dict[int, Row] = field(default_factory=dict)
    companies: dict[int, Row] = field(default_factory=dict)
    next_id: dict[str, int] = field(default_factory=dict)
    next_field_id: int = 1

    def table(self, resource: str) -> dict[int, Row]:
        return self.contacts if resource == "contacts" else self.companies

    def custom(self, pairs: Iterable[tuple[str, str]], stamp: str) -> list[Row]:
        fields = []
        for name, value in pairs:
            fields.append(
                {
                    "id": self.next_field_id,
                    "updated_time": stamp,
                    "field_name": name,
                    "field_value": value,
                }
            )
            self.next_field_id += 1
        return fields


def _workspace(world: SeedWorld) -> Workspace:
    space = Workspace()
    for company in world.companies:
        stamp = _stamp(company.updated_at)
        space.companies[company.index + 1] = {
            "id": company.index + 1,
            "updated_time": stamp,
            "domain": company.domain,
            "name": company.name,
            "company_status": "Customer" if company.index % 3 == 0 else "Prospect",
            "previous_status": None,
            "status_changed_at": None,
            "company_custom_fields": space.custom(
                [
                    ("industry", company.industry),
                    ("city", company.city),
                    ("country", company.country),
                ],
                stamp,
            ),
        }
    for contact in world.contacts:
        stamp = _stamp(contact.updated_at)
        space.contacts[contact.index + 1] = {
            "id": contact.index + 1,
            "updated_time": stamp,
            "email": contact.email,
            "linkedin_url": contact.linkedin_url,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "company_id": None if contact.company is None else contact.company + 1,
            "origin": contact.custom_fields.get("source", "import"),
            "contact_status": contact.status,
            "previous_status": None,
            "status_changed_at": None,
            "first_campaign_email_sent": None,
            "last_campaign_email_sent": None,
            "last_reply_received": None,
            "contact_custom_fields": space.custom(
                [("title", contact.title), ("city", contact.city), *contact.custom_fields.items()],
                stamp,
            ),
        }
    space.next_id = {"contacts": len(world.contacts) + 1, "companies": len(world.companies) + 1}
    return space


def _custom_key(resource: str) -> str:
    return "contact_custom_fields" if resource == "contacts" else "company_custom_fields"


def _shape(resource: str, row: Row, structure: str) -> Row:
    """A row as the API sends it: custom fields NESTED (a list) or FLAT (an object)."""
    key = _custom_key(resource)
    out = dict(row)
    if structure == "FLAT":
        out[key] = {f["field_name"]: f["field_value"] for f in row[key]}
    else:
        out[key] = [dict(f) for f in row[key]]
    return out


def _replace_page(request: Request, page: int | None) -> str:
    """The request's own absolute URL with only `page` replaced (DRF's next/previous)."""
    url = request.url.remove_query_params("page")
    return str(url if page is None else url.include_query_params(page=page))


class RevyOps:
    """The emulated API's state and rules, independent of FastAPI routing."""

    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.rate_limits = options.rate_limits
        self.spaces: dict[str, Workspace] = {}
        self.log = SlidingLog(((RATE_LIMIT, RATE_WINDOW_SECONDS),), clock=time.monotonic)
        self.reset()

    def reset(self) -> None:
        demo, other = tenant_worlds(self.options)
        self.spaces = {DEMO_CLIENT_ID: _workspace(demo), TENANT2_CLIENT_ID: _workspace(other)}
        self.log.clear()

    # --- rules shared by every endpoint ---------------------------------------------------

    def authenticate(self, request: Request) -> Workspace:
        """The caller's workspace, once its `client_id` is known and not throttled."""
        client_id = request.query_params.get("client_id")
        if not client_id:
            raise Refused(_detail(403, "Authentication credentials were not provided."))
        space = self.spaces.get(client_id)
        if space is None:
            raise Refused(_detail(403, "Invalid client_id."))
        if self.options.require_api_key:
            self.check_key(request.headers.get("x-api-key"), client_id)
        throttled = self.throttle(client_id)
        if throttled is not None:
            raise Refused(throttled)
        return space

    def check_key(self, key: str | None, client_id: str) -> None:
        """403 without a key or with one of no workspace; 401 with another workspace's."""
        if not key:
            raise Refused(_detail(403, "Authentication credentials were not provided."))
        if key not in API_KEYS.values():
            raise Refused(_detail(403, "Invalid API key."))
        if API_KEYS[client_id] != key:
            raise Refused(_detail(401, "API KEY not authorized to access this client_id."))

    def throttle(self, client_id: str) -> JSONResponse | None:
        if not self.rate_limits:
            return None
        full = self.log.admit(client_id)
        if full is None:
            return None
        oldest = full.hits[-full.limit]
        return throttled_response(max(1, round(full.seconds - (full.now - oldest) + 0.5)))

    def resolve_company(self, space: Workspace, value: Any) -> int | JSONResponse | None:
        """`company_id` may be an id or a domain the server resolves."""
        if value is None:
            return None
        if isinstance(value, int) or (
            isinstance(value, str) and value.isascii() and value.isdigit()
        ):
            if int(value) in space.companies:
                return int(value)
            if any(int(value) in s.companies for s in self.spaces.values() if s is not space):
                return _detail(401, "API KEY not authorized to access this company.")
            return _detail(404, "Not found.")
        if isinstance(value, str):
            for company in space.companies.values():
                if _same(company["domain"], value):
                    return int(company["id"])
            return _detail(404, "Not found.")
        return _invalid({"company_id": ["Expected an id or a domain."]})

    def apply(
        self, space: Workspace, resource: str, row: Row, body: Row, *, creating: bool
    ) -> JSONResponse | None:
        """Validate `body` and write it into `row`; the error answer if it is refused."""
        writable = CONTACT_WRITABLE if resource == "contacts" else COMPANY_WRITABLE
        errors = _validate_fields(body, writable)
        if errors:
            return _invalid(errors)
        custom = _custom_input(body, resource)
        if isinstance(custom, JSONResponse):
            return custom
        changes = {k: body[k] for k in writable if k in body}
        if "company_id" in changes:
            company = self.resolve_company(space, changes["company_id"])
            if isinstance(company, JSONResponse):
                return company
            changes["company_id"] = company
        candidate = {**row, **changes}
        if creating:
            if resource == "contacts" and not (
                candidate.get("email") or candidate.get("linkedin_url")
            ):
                return _invalid({"email": ["This field is required (or linkedin_url)."]})
            if resource == "companies" and not candidate.get("domain"):
                return _invalid({"domain": ["This field is required."]})
        clash = _conflict(space, resource, candidate, None if creating else row.get("id"))
        if clash is not None:
            return clash
        _write(space, resource, row, candidate, custom or [], status_changed=not creating)
        return None


def throttled_response(wait_seconds: int = 1) -> JSONResponse:
    return _detail(
        429,
        f"Request was throttled. Expected available in {wait_seconds} seconds.",
        headers={"Retry-After": str(wait_seconds)},
    )


def _error_response(status: int, message: str) -> Response:
    return _detail(status, message)


def _structure(request: Request) -> str | JSONResponse:
    structure = request.query_params.get("structure", "NESTED").upper()
    if structure not in ("NESTED", "FLAT"):
        return _invalid({"structure": [f'"{structure}" is not a valid choice.']})
    return structure


def _page_size(request: Request) -> int | JSONResponse:
    raw = request.query_params.get("page_size")
    try:
        size = int(raw) if raw is not None else DEFAULT_PAGE_SIZE
    except ValueError:
        return DEFAULT_PAGE_SIZE  # DRF falls back to the default for junk
    if size <= 0:
        return DEFAULT_PAGE_SIZE
    if size > MAX_PAGE_SIZE:
        # Strict where DRF would clamp: a client asking for more has misread the API.
        return _invalid(
            {"page_size": [f"Ensure this value is less than or equal to {MAX_PAGE_SIZE}."]}
        )
    return size


def _paginate(request: Request, rows: list[Row], resource: str) -> Response:
    size = _page_size(request)
    if isinstance(size, JSONResponse):
        return size
    structure = _structure(request)
    if isinstance(structure, JSONResponse):
        return structure
    raw_page = request.query_params.get("page", "1")
    pages = max(1, -(-len(rows) // size))
    if raw_page == "last":
        page = pages
    elif not (raw_page.isascii() and raw_page.isdigit()) or not 1 <= int(raw_page) <= pages:
        return _detail(404, "Invalid page.")
    else:
        page = int(raw_page)
    chunk = rows[(page - 1) * size : page * size]
    return JSONResponse(
        {
            "count": len(rows),
            "next": _replace_page(request, page + 1) if page < pages else None,
            "previous": (
                None if page == 1 else _replace_page(request, page - 1 if page > 2 else None)
            ),
            "total_pages": pages,
            "current_page": page,
            "page_size": size,
            "results": [_shape(resource, row, structure) for row in chunk],
        }
    )


def _same(a: Any, b: str) -> bool:
    return a is not None and str(a).lower() == b.lower()


def _filtered(space: Workspace, resource: str, params: dict[str, str]) -> list[Row]:
    rows = [space.table(resource)[k] for k in sorted(space.table(resource))]
    if resource == "contacts":
        tests: dict[str, Callable[[Row, str], bool]] = {
            "email": lambda r, v: _same(r["email"], v),
            "firstname": lambda r, v: _same(r["first_name"], v),
            "lastname": lambda r, v: _same(r["last_name"], v),
            "linkedin_url": lambda r, v: _same(r["linkedin_url"], v),
            "domain": lambda r, v: (
                r["company_id"] in space.companies
                and _same(space.companies[r["company_id"]]["domain"], v)
            ),
        }
    else:
        tests = {
            "domain": lambda r, v: _same(r["domain"], v),
            "name": lambda r, v: _same(r["name"], v),
            "industry": lambda r, v: any(
                f["field_name"] == "industry" and _same(f["field_value"], v)
                for f in r["company_custom_fields"]
            ),
        }
    for name, value in params.items():
        test = tests.get(name)
        if test is not None:  # DRF ignores unknown parameters
            rows = [r for r in rows if test(r, value)]
    return rows


def _custom_input(body: Row, resource: str) -> list[tuple[str, str]] | JSONResponse | None:
    singular = "contact" if resource == "contacts" else "company"
    for key in (f"{singular}_custom_fields", f"{singular}_custom_fields_input"):
        if key in body:
            value = body[key]
            if isinstance(value, dict):
                return [(str(k), str(v)) for k, v in value.items()]
            if isinstance(value, list) and all(
                isinstance(f, dict) and "field_name" in f for f in value
            ):
                return [(str(f["field_name"]), str(f.get("field_value", ""))) for f in value]
            return _invalid({key: ["Expected a list of {field_name, field_value} objects."]})
    return None


def _validate_fields(body: Row, writable: tuple[str, ...]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name in writable:
        if name in body and body[name] is not None and not isinstance(body[name], (str, int)):
            errors[name] = ["Not a valid string."]
    for name in ("email",):
        value = body.get(name)
        if (
            isinstance(value, str)
            and value
            and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value)
        ):
            errors[name] = ["Enter a valid email address."]
    return errors


def _conflict(space: Workspace, resource: str, row: Row, skip: int | None) -> JSONResponse | None:
    keys = ("email", "linkedin_url") if resource == "contacts" else ("domain",)
    for other in space.table(resource).values():
        if other["id"] == skip:
            continue
        for key in keys:
            if row.get(key) and _same(other.get(key), str(row[key])):
                what = "Contact" if resource == "contacts" else "Company"
                return _detail(409, f"{what} with this {key} already exists for this client.")
    return None


def _write(
    space: Workspace,
    resource: str,
    row: Row,
    candidate: Row,
    custom: list[tuple[str, str]],
    *,
    status_changed: bool,
) -> None:
    """Store a validated `candidate` in `row`, stamped, its custom fields merged."""
    stamp = _now()
    if (
        resource == "contacts"
        and "contact_status" in candidate
        and candidate["contact_status"] != row.get("contact_status")
        and status_changed
    ):
        candidate["previous_status"] = row.get("contact_status")
        candidate["status_changed_at"] = stamp
    key = _custom_key(resource)
    fields = list(candidate.get(key) or [])
    for name, value in custom:
        existing = next((f for f in fields if f["field_name"] == name), None)
        if existing is not None:
            existing.update(field_value=value, updated_time=stamp)
        else:
            fields += space.custom([(name, value)], stamp)
    candidate[key] = fields
    candidate["updated_time"] = stamp
    row.clear()
    row.update(candidate)


def _blank(resource: str, new_id: int) -> Row:
    if resource == "contacts":
        row: Row = dict.fromkeys(CONTACT_WRITABLE)
        row.update(
            previous_status=None,
            status_changed_at=None,
            first_campaign_email_sent=None,
            last_campaign_email_sent=None,
            last_reply_received=None,
        )
    else:
        row = dict.fromkeys(COMPANY_WRITABLE)
        row.update(previous_status=None, status_changed_at=None)
    row.update(id=new_id, updated_time=_now())
    row[_custom_key(resource)] = []
    return row


# --- routing: the state behind dependencies, routes per resource --------------------------


Api = Annotated[RevyOps, Depends(emulator_state)]


def workspace(request: Request, api: Api) -> Workspace:
    return api.authenticate(request)


Space = Annotated[Workspace, Depends(workspace)]


async def body_of(request: Request) -> Row:
    try:
        body = await request.json()
    except ValueError:
        raise Refused(_detail(400, "JSON parse error.")) from None
    if not isinstance(body, dict):
        raise Refused(_invalid({"non_field_errors": ["Invalid data. Expected a dictionary."]}))
    return body


Body = Annotated[Row, Depends(body_of)]


def _row(space: Workspace, resource: str, row_id: str) -> Row:
    row = (
        space.table(resource).get(int(row_id)) if (row_id.isascii() and row_id.isdigit()) else None
    )
    if row is None:
        raise Refused(_detail(404, "Not found."))
    return row


def _answer_structure(request: Request) -> str:
    """Writes answer in the asked structure, NESTED when it is not a valid one."""
    structure = _structure(request)
    return structure if isinstance(structure, str) else "NESTED"


class ResourceRoutes:
    """The routes of `contacts` or `companies`, in API v2 and v1."""

    def __init__(self, resource: str) -> None:
        self.resource = resource

    async def list_v2(self, request: Request, space: Space) -> Response:
        return _paginate(
            request, _filtered(space, self.resource, dict(request.query_params)), self.resource
        )

    async def list_v1(self, request: Request, space: Space) -> Response:
        rows = _filtered(space, self.resource, dict(request.query_params))
        structure = _structure(request)
        if isinstance(structure, JSONResponse):
            return structure
        return JSONResponse([_shape(self.resource, r, structure) for r in rows[:V1_LIMIT]])

    async def lookup(self, request: Request, space: Space) -> Response:
        name = request.query_params.get("field_name")
        value = request.query_params.get("field_value")
        missing = {
            k: ["This field is required."]
            for k, v in (("field_name", name), ("field_value", value))
            if not v
        }
        if missing:
            return _invalid(missing)
        key = _custom_key(self.resource)
        table = space.table(self.resource)
        rows = [
            table[k]
            for k in sorted(table)
            if any(f["field_name"] == name and f["field_value"] == value for f in table[k][key])
        ]
        return _paginate(request, rows, self.resource)

    async def get_row(self, request: Request, row_id: str, space: Space) -> Response:
        structure = _structure(request)
        if isinstance(structure, JSONResponse):
            return structure
        return JSONResponse(_shape(self.resource, _row(space, self.resource, row_id), structure))

    async def create_row(self, request: Request, api: Api, space: Space, body: Body) -> Response:
        new_id = space.next_id[self.resource]
        row = _blank(self.resource, new_id)
        failure = api.apply(space, self.resource, row, body, creating=True)
        if failure is not None:
            return failure
        space.table(self.resource)[new_id] = row
        space.next_id[self.resource] = new_id + 1
        return JSONResponse(_shape(self.resource, row, _answer_structure(request)), status_code=201)

    async def update_row(self, request: Request, row_id: str, api: Api, space: Space) -> Response:
        row = _row(space, self.resource, row_id)
        body = await body_of(request)  # only once the row is known: a 404 comes first
        failure = api.apply(space, self.resource, row, body, creating=False)
        if failure is not None:
            return failure
        return JSONResponse(_shape(self.resource, row, _answer_structure(request)))

    async def delete_row(self, row_id: str, space: Space) -> Response:
        table = space.table(self.resource)
        if not (row_id.isascii() and row_id.isdigit()) or int(row_id) not in table:
            return _detail(404, "Not found.")
        del table[int(row_id)]
        if self.resource == "companies":
            for contact in space.contacts.values():
                if contact["company_id"] == int(row_id):
                    contact["company_id"] = None
        return Response(status_code=204)

    def router(self, prefix: str, *, v2: bool) -> APIRouter:
        router = APIRouter(prefix=f"{prefix}/{self.resource}", include_in_schema=False)
        router.add_api_route("", self.list_v2 if v2 else self.list_v1, methods=["GET"])
        router.add_api_route("", self.create_row, methods=["POST"])
        if v2:
            router.add_api_route("/lookup-by-custom-field", self.lookup, methods=["GET"])
        router.add_api_route("/{row_id}", self.get_row, methods=["GET"])
        router.add_api_route("/{row_id}", self.update_row, methods=["PATCH"])
        router.add_api_route("/{row_id}", self.delete_row, methods=["DELETE"])
        return router


def create_app(options: EmulatorOptions) -> FastAPI:
    return serve(
        FastAPI(title="RevyOps API emulator", docs_url=None, redoc_url=None),
        RevyOps(options),
        options,
        hooks=(_error_response, throttled_response),
        routers=[
            ResourceRoutes(resource).router(prefix, v2=v2)
            for prefix, v2 in (("/public/v2", True), ("/public", False))
            for resource in ("contacts", "companies")
        ],
    )
