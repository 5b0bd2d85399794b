"""RevyOps and BasicsOS emulators: ids are ASCII integers; anything else is refused as the
real APIs refuse it (404 / 400), never a 500 (`"²".isdigit()` is True in Python)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from emulators import EmulatorOptions
from gateway.demo import DEMO_CREDENTIALS
from gateway.providers import create_emulator
from gateway.servers import ServerThread

pytestmark = pytest.mark.integration

ODD_IDS = ["²", "\u0661", "1²", "+1", " 1", "1.0"]


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    options = EmulatorOptions(rate_limits=False)
    with (
        ServerThread(create_emulator("revyops", options)) as revyops,
        ServerThread(create_emulator("basicsos", options)) as basicsos,
    ):
        yield {"revyops": revyops.url, "basicsos": basicsos.url}


@pytest.mark.parametrize("odd", ODD_IDS)
def test_revyops_answers_404_for_a_non_integer_id(urls: dict[str, str], odd: str) -> None:
    params = {"client_id": DEMO_CREDENTIALS["revyops"]["client_id"]}
    for method in ("GET", "PATCH", "DELETE"):
        response = httpx.request(
            method,
            f"{urls['revyops']}/public/v2/contacts/{odd}",
            params=params,
            json={} if method == "PATCH" else None,
        )
        assert response.status_code == 404, (method, response.text)


@pytest.mark.parametrize("odd", ODD_IDS)
def test_basicsos_answers_400_for_a_non_integer_id(urls: dict[str, str], odd: str) -> None:
    headers = {"Authorization": f"Bearer {DEMO_CREDENTIALS['basicsos']['token']}"}
    for method in ("GET", "PUT", "DELETE"):
        response = httpx.request(
            method,
            f"{urls['basicsos']}/api/contacts/{odd}",
            headers=headers,
            json={} if method == "PUT" else None,
        )
        assert response.status_code == 400, (method, response.text)
        assert response.json() == {"error": "Invalid request"}
