"""An app that embeds the gateway keeps its logging as it set it up (but for the redacting
filter on httpx's logger, see `gateway.logredact.guard_httpx`).

Run in a fresh interpreter: logging state is process-wide, and pytest's own handlers and
what earlier tests configured would hide (or fake) a change.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

HOST_APP = """
import asyncio
import logging

import httpx


def snapshot():
    root = logging.getLogger()
    noisy = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    return {
        "root handlers": list(root.handlers),
        "root level": root.level,
        "root filters": list(root.filters),
        "record factory": logging.getLogRecordFactory(),
        "httpx levels": [logger.level for logger in noisy],
        "httpx handlers": [list(logger.handlers) for logger in noisy],
    }


before = snapshot()

from fastapi import FastAPI

from gateway.app import create_app, create_router
from gateway.demo import demo_settings
from emulators import EmulatorOptions
from gateway.providers import create_emulator

settings = demo_settings()
transports = {"haste": httpx.ASGITransport(create_emulator("haste", EmulatorOptions()))}
host = FastAPI()
host.include_router(create_router(settings, transports=transports), prefix="/crm")
host.mount("/mounted", create_app(settings, transports=transports))
QUERY = 'query Listed { contacts(provider: "haste", first: 1) { edges { node { id } } } }'


async def ask():
    transport = httpx.ASGITransport(host)
    async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
        for prefix in ("/crm", "/mounted"):
            answer = await client.post(f"{prefix}/graphql", json={"query": QUERY})
            assert answer.status_code == 200 and "errors" not in answer.json(), answer.text


asyncio.run(ask())
after = snapshot()
changed = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
print(changed or "unchanged")
"""


def test_importing_and_mounting_the_gateway_leaves_logging_alone() -> None:
    result = subprocess.run(
        [sys.executable, "-c", HOST_APP],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "unchanged\n"
