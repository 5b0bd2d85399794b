"""Every code block of the README that is meant to run, runs.

Fenced blocks tagged `graphql` are sent to a gateway over the demo emulators and must
answer without errors; `sh` blocks (curl) run against it; `toml` blocks must load as
settings; `python` blocks run as written in a folder holding a `gateway.toml`, and the
`app` they build must serve GraphQL. Untagged blocks and indented ones are illustrations.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.demo import DEMO_CREDENTIALS, demo_kinds
from gateway.servers import ServerThread, emulator_servers
from gateway.settings import load_settings
from tests.support.servers import gateway_on

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
BLOCKS = [(m.group(1), m.group(2)) for m in FENCE.finditer((ROOT / "README.md").read_text())]
RUN = ("graphql", "sh", "toml", "python")


def blocks(language: str) -> list[Any]:
    found = [
        pytest.param(text, id=f"{language}-{n}")
        for n, text in enumerate(t for lang, t in BLOCKS if lang == language)
    ]
    assert found, f"no {language} block in the README"
    return found


def test_every_fenced_block_has_a_known_role() -> None:
    assert {lang for lang, _ in BLOCKS} <= set(RUN), "tag a new block, or leave it untagged"


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[str, dict[str, str]]]:
    """A gateway over emulators of its own: the README's mutation changes their data."""
    with ExitStack() as stack:
        urls = emulator_servers(stack, demo_kinds())
        server = gateway_on(urls, cursor_secret="readme-cursor-secret-Hs2mQ9cL")
        yield stack.enter_context(server).url, urls


@pytest.mark.parametrize("query", blocks("graphql"))
def test_graphql_blocks_answer_without_errors(demo: tuple[str, dict[str, str]], query: str) -> None:
    body = httpx.post(f"{demo[0]}/graphql", json={"query": query}, timeout=30).json()
    assert "errors" not in body, body["errors"]
    assert body["data"]


@pytest.mark.parametrize("script", blocks("sh"))
def test_sh_blocks_run(demo: tuple[str, dict[str, str]], script: str) -> None:
    assert shutil.which("curl"), "curl is needed to run the README's curl examples"
    assert script.startswith("curl ")
    command = script.replace("http://127.0.0.1:8000", demo[0])
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    body = httpx.Response(200, content=result.stdout).json()
    assert "errors" not in body, body
    assert body["data"]


@pytest.mark.parametrize("text", blocks("toml"))
def test_toml_blocks_load(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The README leaves secrets to the environment, as a deployment does.
    monkeypatch.setenv("CRM_GATEWAY_CURSOR_SECRET", secrets.token_urlsafe(32))
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    load_settings(path)


@pytest.mark.parametrize("code", blocks("python"))
def test_python_blocks_build_a_working_app(
    demo: tuple[str, dict[str, str]], tmp_path: Path, code: str
) -> None:
    url = demo[1]["basicsos"]
    token = DEMO_CREDENTIALS["basicsos"]["token"]
    (tmp_path / "gateway.toml").write_text(
        'cursor_secret = "readme-cursor-secret-Hs2mQ9cL"\ncors_origins = ["http://localhost:*"]\n'
        f'[[providers]]\nname = "crm"\nkind = "basicsos"\nbase_url = "{url}"\n'
        f'credentials = {{ token = "{token}" }}\n'
    )
    namespace: dict[str, Any] = {"__name__": "readme"}
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    query = '{ contacts(provider: "crm", first: 2) { edges { node { id } } } }'
    with ServerThread(namespace["app"]) as server:
        body = httpx.post(f"{server.url}/crm/graphql", json={"query": query}, timeout=30).json()
    assert "errors" not in body, body
    assert len(body["data"]["contacts"]["edges"]) == 2
