"""The command line's rough edges: a busy port, --demo with --config, defaults in --help."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.servers import LOOPBACK

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def busy_port() -> object:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_busy_port_is_one_clear_line(busy_port: int) -> None:
    result = run("emulate", "revyops", "--port", str(busy_port))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"crm-gateway: cannot listen on {LOOPBACK}:{busy_port}: the port is already in use; "
        "pass --port"
    ]


def test_a_busy_gateway_port_is_one_clear_line(busy_port: int, tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    (tmp_path / "token").write_text("bos_crm_x\n")
    config.write_text(
        '[[providers]]\nname = "crm"\nkind = "basicsos"\nbase_url = "http://127.0.0.1:9"\n'
        f'credentials_file = {{ token = "{tmp_path / "token"}" }}\n'
    )
    result = run("serve", "--config", str(config), "--port", str(busy_port))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"crm-gateway: cannot listen on {LOOPBACK}:{busy_port}: the port is already in use; "
        "pass --port"
    ]


def test_demo_and_config_together_are_refused(tmp_path: Path) -> None:
    result = run("serve", "--demo", "--config", str(tmp_path / "gateway.toml"))
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


def test_help_shows_the_defaults() -> None:
    result = run("serve", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "(default: 8000)" in text
    assert "(default: 127.0.0.1)" in text
    emulate = " ".join(run("emulate", "--help").stdout.split())
    assert "(default: 0.0)" in emulate
