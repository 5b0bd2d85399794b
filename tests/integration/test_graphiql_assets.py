"""GraphiQL's page and assets over HTTP: served from the package, only when it is on."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from graphql import parse, validate

from gateway import demopage, graphiql
from gateway.app import create_app, create_router
from gateway.demo import demo_provider
from gateway.servers import ServerThread
from gateway.settings import AuthSettings, ClientSettings, JwtSettings, Settings
from schema import build_schema

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HTML = {"Accept": "text/html"}


def settings(emulators: dict[str, str], **extra: object) -> Settings:
    providers = [demo_provider(kind, url) for kind, url in emulators.items()]
    return Settings(providers=providers, **extra)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ide(emulators: dict[str, str]) -> Iterator[str]:
    with ServerThread(create_app(settings(emulators, graphiql=True))) as server:
        yield server.url


def test_the_page_loads_nothing_from_elsewhere(ide):
    page = httpx.get(f"{ide}/graphql", headers=HTML)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    sources = [s for s in re.findall(r'(?:src|href)="([^"]+)"', page.text) if "data:" not in s]
    assert len(sources) == 6
    assert all(source.startswith("graphql/static/") for source in sources), sources
    assert "unpkg" not in page.text
    assert "{{" not in page.text  # every slot filled
    assert "query FirstPage" in page.text


def test_every_asset_is_served_with_its_integrity_and_cached_for_good(ide):
    page = httpx.get(f"{ide}/graphql", headers=HTML).text
    tags = re.findall(r'(?:src|href)="graphql/([^"]+)"\s+integrity="([^"]+)"', page)
    assert len(tags) == 6
    for path, integrity in tags:
        response = httpx.get(f"{ide}/graphql/{path}")
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        kind = "text/javascript" if path.endswith(".js") else "text/css"
        assert response.headers["content-type"].startswith(kind)
        digest = base64.b64encode(hashlib.sha384(response.content).digest()).decode()
        assert integrity == f"sha384-{digest}"


@pytest.mark.parametrize("name", ["manifest.json", "react.js", "graphiql.html", "%2E%2E"])
def test_only_the_assets_are_served(ide, name):
    response = httpx.get(f"{ide}/graphql/static/{name}")
    assert response.status_code == 404
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("path", ["..%2Fgraphiql.html", "..%2F..%2Fapp.py", "../graphiql.html"])
def test_no_path_leaves_the_assets(ide, path):
    response = httpx.get(f"{ide}/graphql/static/{path}")
    assert response.status_code == 404
    assert "<html" not in response.text
    assert "import" not in response.text


def test_no_page_and_no_assets_when_graphiql_is_off(gateway):
    # The shared gateway runs with the production default, graphiql = false.
    assert gateway.http.get("/graphql", headers=HTML).status_code == 404
    asset = next(iter(graphiql.asset_files()))
    assert gateway.http.get(f"/graphql/static/{asset}").status_code == 404


def test_the_page_and_assets_follow_a_mount_prefix(emulators):
    host = FastAPI()
    host.include_router(create_router(settings(emulators, graphiql=True)), prefix="/crm")
    with ServerThread(host) as server:
        page = httpx.get(f"{server.url}/crm/graphql", headers=HTML).text
        [react] = re.findall(r'src="(graphql/static/react-\d[^"]+)"', page)
        assert httpx.get(f"{server.url}/crm/{react}").status_code == 200


@pytest.mark.parametrize(
    ("path", "base"),
    [("/graphql", "graphql/static/"), ("/crm/graphql/", "static/"), ("/a b", "a%20b/static/")],
)
def test_static_base_is_relative_to_the_page(path, base):
    assert graphiql.static_base(path) == base


@pytest.mark.parametrize("provider", ["revyops", 'odd"name</script>', None])
def test_the_default_query_is_valid_and_safely_embedded(provider):
    query = graphiql.default_query(provider)
    assert validate(build_schema()._schema, parse(query)) == []
    page = graphiql.render("/graphql", query)
    assert "</script>" not in page.split("const DEFAULT_QUERY = ")[1].split(";\n")[0]


def _headers_editor(page: str) -> str:
    text: str = json.loads(page.split("const DEFAULT_HEADERS = ")[1].split(";\n")[0])
    return text


def _jwt(tmp_path: Path) -> AuthSettings:
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    return AuthSettings(
        jwt=JwtSettings(issuer="https://id.example", audience="crm", jwks_file=jwks)
    )


@pytest.mark.parametrize(
    ("auth", "placeholder"),
    [
        ("none", None),
        ("api_key", {"X-API-Key": "<your API key>"}),
        ("jwt", {"Authorization": "Bearer <your token>"}),
    ],
)
def test_the_headers_editor_shows_where_the_credential_goes(
    emulators: dict[str, str], tmp_path: Path, auth: str, placeholder: object
) -> None:
    extra: dict[str, object] = {"graphiql": True}
    if auth == "api_key":
        extra["clients"] = [ClientSettings(name="app", api_key_sha256="ab" * 32)]
    if auth == "jwt":
        extra["auth"] = _jwt(tmp_path)
    with ServerThread(create_app(settings(emulators, **extra))) as server:
        page = httpx.get(f"{server.url}/graphql", headers=HTML)
    text = _headers_editor(page.text)
    assert (json.loads(text) if text else None) == placeholder
    # The page's inline script changed with the placeholder; its CSP hash follows.
    (inline,) = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in page.headers["content-security-policy"]


def test_packaging_ships_every_static_file():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["gateway"]
    files = [p.relative_to(ROOT / "gateway").as_posix() for p in graphiql.STATIC.rglob("*")]
    files = [f for f in files if (ROOT / "gateway" / f).is_file()]
    # GraphiQL's page, manifest and assets; the demo's page and its files.
    assert len(files) == 2 + len(graphiql.asset_files()) + 1 + len(demopage.ASSETS)
    assert all(any(fnmatch(f, pattern) for pattern in package_data) for f in files)
    # What the manifest names is there, and nothing else is.
    assert {f.rpartition("/")[2] for f in files if "/graphiql/" in f} == {
        *graphiql.asset_files(),
        "manifest.json",
    }
