"""The suite's own guards: a hang fails with a traceback, and no property has a deadline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hypothesis import settings

ROOT = Path(__file__).resolve().parents[2]

HANGING = """
import threading

def test_waits_for_what_never_comes():
    threading.Event().wait()
"""


def test_a_hanging_test_fails_within_its_timeout(tmp_path: Path) -> None:
    test = tmp_path / "test_hang.py"
    test.write_text(HANGING)
    # The project's own configuration (pyproject.toml) with its timeout shortened to 1 s.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "timeout=1",
            "--rootdir",
            str(ROOT),
            "-c",
            str(ROOT / "pyproject.toml"),
            str(test),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Timeout" in result.stdout
    assert "test_waits_for_what_never_comes" in result.stdout


def test_the_suite_has_a_timeout_for_every_test() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert 60 <= config["tool"]["pytest"]["ini_options"]["timeout"] <= 300


def test_properties_run_without_a_deadline() -> None:
    """Loaded by conftest.py: a busy machine makes examples slower, not wrong."""
    assert settings().deadline is None
