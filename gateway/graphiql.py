"""GraphiQL served from the package: the page and its JavaScript and CSS, no CDN.

The files under static/vendor/graphiql/ (third-party code, kept apart from ours) come
from the npm registry through scripts/fetch_graphiql.py (pinned versions, integrity
checked) and are committed, so the IDE works offline and on intranets. Their names carry
their versions, so browsers may cache them for good.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from functools import cache
from pathlib import Path
from urllib.parse import quote

STATIC = Path(__file__).parent / "static"
ASSETS = STATIC / "vendor" / "graphiql"
IMMUTABLE = "public, max-age=31536000, immutable"
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@cache
def manifest() -> dict[str, dict[str, str]]:
    """Asset key (e.g. `graphiql.js`) → its file name and integrity."""
    entries: dict[str, dict[str, str]] = json.loads((ASSETS / "manifest.json").read_text())
    return entries


@cache
def asset_files() -> frozenset[str]:
    """The only names the static route serves: nothing else of the folder, no paths."""
    return frozenset(entry["file"] for entry in manifest().values())


def default_query(provider: str | None) -> str:
    """What the editor opens with: the providers, and a first page of one provider's contacts."""
    if provider is None:
        return "# No provider is configured yet.\n{\n  providers {\n    name\n    kind\n  }\n}\n"
    name = json.dumps(provider)
    return f"""# The configured providers, then a first page of {name}'s contacts.
# Run it with Ctrl-Enter or the ▶ button; Ctrl-Space completes a field, and the
# Docs panel (book icon, top left) documents every type. Page on by passing
# pageInfo.endCursor as `after`.
query FirstPage {{
  providers {{
    name
    kind
    paginationStyle
  }}
  contacts(provider: {name}, first: 10) {{
    totalCount
    edges {{
      node {{
        id
        name
        emails {{
          address
        }}
      }}
    }}
    pageInfo {{
      hasNextPage
      endCursor
    }}
  }}
}}
"""


def default_headers(*, api_keys: bool, jwt: bool) -> str:
    """What the headers editor opens with: where the credential goes when the gateway asks for
    one, so a first query does not just fail UNAUTHENTICATED; nothing when it is open."""
    if api_keys:
        return '{\n  "X-API-Key": "<your API key>"\n}\n'
    if jwt:
        return '{\n  "Authorization": "Bearer <your token>"\n}\n'
    return ""


def static_base(page_path: str) -> str:
    """The assets' URL relative to the page, so it holds under any mount prefix or proxy."""
    if page_path.endswith("/"):
        return "static/"
    return quote(page_path.rpartition("/")[2]) + "/static/"


@cache
def _template() -> str:
    return (STATIC / "graphiql.html").read_text(encoding="utf-8")


def render(page_path: str, query: str, headers: str = "", *, subscriptions: bool = False) -> str:
    """The GraphiQL page, its assets served next to `page_path`; `headers` fills the headers
    editor until the user's own are stored. With `subscriptions` it subscribes over a
    WebSocket to the page's own URL, sending the headers editor's as `connection_init`."""
    page = _template()
    page = page.replace("{{subscriptions}}", json.dumps(subscriptions))
    base = static_base(page_path)
    for key, entry in manifest().items():
        page = page.replace(f"{{{{{key}}}}}", html.escape(base + entry["file"]))
        page = page.replace(f"{{{{{key}:integrity}}}}", entry["integrity"])
    # Inside <script>, `</` could end the element early; JSON with it escaped cannot.
    for slot, text in (("headers", headers), ("query", query)):
        page = page.replace(f"{{{{{slot}}}}}", json.dumps(text).replace("</", "<\\/"))
    return page


def content_security_policy(page: str) -> str:
    """The page's CSP: its own assets and its inline script (by hash) only, queries to its
    own origin, never framed. Styles may be inline: GraphiQL and CodeMirror set them."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(page)
    )
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' {hashes}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
