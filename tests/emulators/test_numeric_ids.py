"""RevyOps and BasicsOS emulators: ids are ASCII integers; anything else is refused as the
real APIs refuse it (404 / 400), never a 500 (`"²".isdigit()` is True in Python)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from emulators import EmulatorOptions
from gateway.demo import DEMO_CREDENTIALS
from gateway.providers import create_emulator
from tests.support.stack import emulator_client

ODD_IDS = ["²", "\u0661", "1²", "+1", " 1", "1.0"]
OPTIONS = EmulatorOptions(rate_limits=False, companies=3, contacts=5, deals=2, notes=2)


@pytest.fixture
async def revyops() -> AsyncIterator[httpx.AsyncClient]:
    async with emulator_client(create_emulator("revyops", OPTIONS), "revyops") as client:
        yield client


@pytest.fixture
async def basicsos() -> AsyncIterator[httpx.AsyncClient]:
    async with emulator_client(create_emulator("basicsos", OPTIONS), "basicsos") as client:
        yield client


@pytest.mark.parametrize("odd", ODD_IDS)
async def test_revyops_answers_404_for_a_non_integer_id(
    revyops: httpx.AsyncClient, odd: str
) -> None:
    params = {"client_id": DEMO_CREDENTIALS["revyops"]["client_id"]}
    for method in ("GET", "PATCH", "DELETE"):
        response = await revyops.request(
            method,
            f"/public/v2/contacts/{odd}",
            params=params,
            json={} if method == "PATCH" else None,
        )
        assert response.status_code == 404, (method, response.text)


@pytest.mark.parametrize("odd", ODD_IDS)
async def test_basicsos_answers_400_for_a_non_integer_id(
    basicsos: httpx.AsyncClient, odd: str
) -> None:
    headers = {"Authorization": f"Bearer {DEMO_CREDENTIALS['basicsos']['token']}"}
    for method in ("GET", "PUT", "DELETE"):
        response = await basicsos.request(
            method,
            f"/api/contacts/{odd}",
            headers=headers,
            json={} if method == "PUT" else None,
        )
        assert response.status_code == 400, (method, response.text)
        assert response.json() == {"error": "Invalid request"}
