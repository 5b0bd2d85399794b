"""Emulator of the Acme API: contacts and companies, read-only, numbered pages.

`GET /v1/{contacts,companies}?page=&per_page=` answers `{"items", "page", "per_page",
"total"}` in ascending `id` order (pages from 1, at most 100 rows; past the end, no
items); `GET /v1/{resource}/{id}` one row. Contacts filter by exact `last_name`. A bearer
token authenticates; errors are `{"error": message}`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from emulators.control import EmulatorOptions, Refused
from emulators.routing import serve
from emulators.seed import SeedWorld, build_world

DEMO_TOKEN = "acme-demo-token"
MAX_PER_PAGE = 100
Row = dict[str, Any]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _tables(world: SeedWorld) -> dict[str, dict[int, Row]]:
    companies = {
        c.index + 1: {
            "id": c.index + 1,
            "name": c.name,
            "domain": c.domain,
            "created_at": _time(c.created_at),
            "updated_at": _time(c.updated_at),
        }
        for c in world.companies
    }
    contacts = {
        c.index + 1: {
            "id": c.index + 1,
            "first_name": c.first_name,
            "last_name": c.last_name,
            "email": c.email,
            "status": c.status,
            "company_id": None if c.company is None else c.company + 1,
            "created_at": _time(c.created_at),
            "updated_at": _time(c.updated_at),
        }
        for c in world.contacts
    }
    return {"contacts": contacts, "companies": companies}


class Acme:
    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.reset()

    def reset(self) -> None:
        self.tables = _tables(
            build_world(
                self.options.seed,
                companies=self.options.companies,
                contacts=self.options.contacts,
                deals=0,
                notes=0,
            )
        )

    def table(self, resource: str, request: Request) -> dict[int, Row]:
        """The resource's rows, once the caller is authenticated."""
        if request.headers.get("authorization") != f"Bearer {DEMO_TOKEN}":
            raise Refused(_error(401, "A valid bearer token is required."))
        if resource not in self.tables:
            raise Refused(_error(404, "No such resource."))
        return self.tables[resource]

    def page(self, resource: str, request: Request) -> Response:
        table = self.table(resource, request)
        try:
            page = int(request.query_params.get("page", "1"))
            per_page = int(request.query_params.get("per_page", "20"))
        except ValueError:
            return _error(400, "page and per_page are numbers.")
        if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
            return _error(400, f"page from 1, per_page from 1 to {MAX_PER_PAGE}.")
        rows = list(table.values())
        if resource == "contacts" and "last_name" in request.query_params:
            rows = [r for r in rows if r["last_name"] == request.query_params["last_name"]]
        start = (page - 1) * per_page
        items = rows[start : start + per_page]
        body = {"items": items, "page": page, "per_page": per_page, "total": len(rows)}
        return JSONResponse(body)

    def one(self, resource: str, row_id: str, request: Request) -> Response:
        table = self.table(resource, request)
        row = table.get(int(row_id)) if row_id.isascii() and row_id.isdigit() else None
        return _error(404, "No such row.") if row is None else JSONResponse(row)


def create_app(options: EmulatorOptions) -> FastAPI:
    api = Acme(options)
    router = APIRouter(prefix="/v1")

    @router.get("/{resource}")
    async def listed(resource: str, request: Request) -> Response:
        return api.page(resource, request)

    @router.get("/{resource}/{row_id}")
    async def one(resource: str, row_id: str, request: Request) -> Response:
        return api.one(resource, row_id, request)

    return serve(
        FastAPI(title="Acme API emulator", docs_url=None, redoc_url=None),
        api,
        options,
        hooks=(_error, lambda: _error(429, "Too many requests.")),
        routers=[router],
    )
