"""/demo: the contacts of every provider in one list, newest first, live (what
`crm-gateway serve --demo` adds to the gateway). The page and its script and style ship in
the package (static/demo/) and are served from here: no build step, no CDN. Its
Content-Security-Policy allows its own files and connections to the gateway only."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from gateway.endpoint import error_response
from gateway.headers import SecureRoute

FILES = Path(__file__).parent / "static" / "demo"
ASSETS = {"demo.js": "text/javascript; charset=utf-8", "demo.css": "text/css; charset=utf-8"}
# 'self' covers the WebSocket to the page's own host too (CSP Level 3).
POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)


def demo_router() -> APIRouter:
    """The page at /demo, its files under /demo/static/."""
    router = APIRouter(route_class=SecureRoute)

    @router.get("/demo", include_in_schema=False)
    async def page() -> Response:
        return FileResponse(
            FILES / "index.html",
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": POLICY},
        )

    @router.get("/demo/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        media = ASSETS.get(name)
        if media is None:
            return error_response(404, "No such demo file.")
        return FileResponse(FILES / name, media_type=media)

    return router
