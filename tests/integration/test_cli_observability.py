"""`--version`, `--log-level` and `--log-format` as a user runs them: the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from gateway.servers import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
# Companies: `serve`'s start-up probe reads the first contacts, and may have cached them.
QUERY = 'query Listed { companies(provider: "haste", first: 2) { edges { node { id } } } }'


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextmanager
def running(tmp_path: Path, *args: str) -> Iterator[Path]:
    """Run the CLI until the block ends; yields the file its stderr goes to (read it after)."""
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *args],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            yield log
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(url: str, log: Path, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)


def test_version_is_the_distributions() -> None:
    result = cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"crm-gateway {version('crm-gateway')}\n"


def test_an_unknown_log_level_is_refused() -> None:
    result = cli("serve", "--demo", "--log-level", "loud")
    assert result.returncode == 2
    assert "--log-level" in result.stderr


def _config(tmp_path: Path, haste_url: str) -> Path:
    config = tmp_path / "gateway.toml"
    config.write_text(
        'cursor_secret = "test-cursor-secret-for-the-cli"\n'
        "[[providers]]\n"
        'name = "haste"\nkind = "haste"\n'
        f'base_url = "{haste_url}"\n'
        "rate_limit = false\n"
        'credentials = { token = "haste-demo-token" }\n'
    )
    return config


@pytest.mark.parametrize("level", ["info", "warning"])
def test_serve_logs_one_line_per_operation_at_info_and_none_above(
    tmp_path: Path, emulators: dict[str, str], level: str
) -> None:
    port = free_port()
    config = _config(tmp_path, emulators["haste"])
    url = f"http://127.0.0.1:{port}"
    args = ("serve", "--config", str(config), "--port", str(port), "--log-level", level)
    with running(tmp_path, *args) as log:
        wait_for(f"{url}/healthz", log)
        for _ in range(2):
            body = httpx.post(f"{url}/graphql", json={"query": QUERY}, timeout=30).json()
            assert "errors" not in body, body
    stderr = log.read_text()
    lines = [line for line in stderr.splitlines() if "gateway.operation" in line]
    assert "haste-demo-token" not in stderr
    assert "POST /graphql" not in stderr  # no access lines at any level
    if level == "info":
        assert len(lines) == 2, stderr
        assert all("operation=Listed " in line and " cost=" in line for line in lines)
        assert "Application startup complete" in stderr
    else:
        assert lines == []
        assert "Application startup complete" not in stderr


def test_emulate_takes_a_log_level(tmp_path: Path) -> None:
    port = free_port()
    args = ("emulate", "revyops", "--port", str(port), "--log-level", "warning")
    with running(tmp_path, *args) as log:
        assert wait_for(f"http://127.0.0.1:{port}/_emulator/stats", log).status_code == 200
    assert "Uvicorn running on" not in log.read_text()


def test_json_logs_are_one_object_per_line(tmp_path: Path, emulators: dict[str, str]) -> None:
    port = free_port()
    config = _config(tmp_path, emulators["haste"])
    url = f"http://127.0.0.1:{port}"
    write = (
        'mutation { createContact(input: {provider: "haste", lastName: "J"}) { contact { id } } }'
    )
    args = ("serve", "--config", str(config), "--port", str(port), "--log-format", "json")
    with running(tmp_path, *args) as log:
        wait_for(f"{url}/healthz", log)
        for query, request_id in ((QUERY, "read-1"), (write, "write-1")):
            headers = {"X-Request-Id": request_id}
            body = httpx.post(f"{url}/graphql", json={"query": query}, headers=headers).json()
            assert "errors" not in body, body
    stderr = log.read_text()
    entries = [json.loads(line) for line in stderr.splitlines()]  # each line: one object
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    assert all(entry["time"].endswith("+00:00") for entry in entries)
    by_logger = {entry["logger"]: entry for entry in entries}
    assert "Application startup complete." in {e["message"] for e in entries}, stderr
    listed = next(e for e in entries if e.get("operation") == "Listed")
    assert listed["logger"] == "gateway.operation"
    assert listed["request_id"] == "read-1"
    assert listed["cost"] == 1
    audit = by_logger["gateway.audit"]
    assert audit["request_id"] == "write-1"
    assert audit["audit"]["operation"] == "createContact"
    assert audit["audit"]["outcome"] == "ok"
    assert "haste-demo-token" not in stderr
