"""`crm-gateway check` and the start-up probe: a wrong token or a host that is down is
found before the first user query, by the command and by `/readyz`."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.cli import main
from gateway.demo import DEMO_CREDENTIALS
from gateway.servers import ServerThread
from gateway.settings import ProviderSettings, Settings
from tests.support.servers import demo_providers
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def config(
    path: Path, urls: Mapping[str, str], wrong: Mapping[str, Mapping[str, str]] | None = None
) -> Path:
    """A config of every emulator at `urls`; `wrong` replaces some credentials."""
    text = ""
    for kind, url in urls.items():
        credentials = {**DEMO_CREDENTIALS[kind], **(wrong or {}).get(kind, {})}
        inline = ", ".join(f'{k} = "{v}"' for k, v in credentials.items())
        text += (
            f'[[providers]]\nname = "{kind}"\nkind = "{kind}"\nbase_url = "{url}"\n'
            f"credentials = {{ {inline} }}\nrate_limit = false\nmax_retries = 0\n"
        )
    path.write_text(text)
    return path


def test_check_passes_on_the_demo_stack(
    emulators: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--config", str(config(tmp_path / "gw.toml", emulators))]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["provider", "kind", "reachable"]
    rows = {line.split()[0]: line for line in out[1:]}
    assert sorted(rows) == sorted(emulators)
    assert all(" accepted " in row for row in rows.values()), rows


def test_check_names_a_wrong_token_and_a_host_that_is_down(
    emulators: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = {**emulators, "redivis": f"http://127.0.0.1:{free_port()}"}
    path = config(tmp_path / "gw.toml", urls, wrong={"haste": {"token": "not-the-token"}})
    assert main(["check", "--config", str(path)]) == 1
    captured = capsys.readouterr()
    rows = {line.split()[0]: line for line in captured.out.splitlines()[1:]}
    assert "REFUSED" in rows["haste"]
    assert "not-the-token" not in captured.out + captured.err
    assert rows["redivis"].split()[2] == "NO"
    assert " accepted " in rows["attio"]
    assert captured.err.splitlines()[-1] == "crm-gateway: not usable: haste, redivis"


def with_credentials(provider: ProviderSettings, credentials: dict[str, str]) -> ProviderSettings:
    return ProviderSettings.model_validate({**provider.model_dump(), "credentials": credentials})


def test_readyz_says_which_providers_are_not_usable(emulators: dict[str, str]) -> None:
    providers = demo_providers(emulators, max_retries=0)
    wrong = {"basicsos": {"token": "bos_wrong_token"}, "attio": {"api_key": "wrong-key"}}
    for index, provider in enumerate(providers):
        if provider.kind in wrong:
            providers[index] = with_credentials(provider, wrong[provider.kind])
    with ServerThread(create_app(Settings(providers=providers), probe=True)) as server:

        def unusable() -> dict[str, str]:
            body = httpx.get(f"{server.url}/readyz").json()
            return dict(body.get("unusable", {}))

        wait_until(lambda: len(unusable()) == 2, what="two providers found unusable")
        answer = httpx.get(f"{server.url}/readyz")
        assert answer.status_code == 200  # three providers are still worth serving
        assert sorted(answer.json()["unusable"]) == ["attio", "basicsos"]
        assert "credentials refused" in answer.json()["unusable"]["attio"]


def test_readyz_is_503_when_no_provider_is_usable(emulators: dict[str, str]) -> None:
    providers = demo_providers({"haste": emulators["haste"]}, max_retries=0)
    providers = [with_credentials(p, {"token": "wrong"}) for p in providers]
    with ServerThread(create_app(Settings(providers=providers), probe=True)) as server:
        wait_until(
            lambda: httpx.get(f"{server.url}/readyz").status_code == 503, what="/readyz to say 503"
        )
        assert httpx.get(f"{server.url}/readyz").json()["status"] == "unavailable"
