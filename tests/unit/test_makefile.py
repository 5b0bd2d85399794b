"""`make run` installs the runtime only; `make test` adds the test and benchmark tools."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# How the venv's pip installs uv, which then installs everything else.
UV_BOOTSTRAP = (
    "-m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/uv.txt"
)


def planned(target: str) -> list[str]:
    make = shutil.which("make")
    assert make, "make is needed: the README's commands are make targets"
    # -n prints the commands without running them; -B as if nothing were installed yet.
    result = subprocess.run(
        [make, "-n", "-B", "-C", str(ROOT), target], capture_output=True, text=True, check=True
    )
    return [line for line in result.stdout.splitlines() if "pip install" in line]


def test_make_run_installs_the_runtime_only() -> None:
    installs = planned("run")
    assert any("--require-hashes -r requirements/runtime.txt" in line for line in installs)
    assert any(line.endswith("--no-deps --no-build-isolation -e .") for line in installs)
    assert not any("dev.txt" in line or "[test" in line for line in installs)


def test_make_test_installs_the_test_tools_from_the_lock() -> None:
    installs = planned("test")
    assert any("--require-hashes -r requirements/dev.txt" in line for line in installs)
    # Nothing else reaches past the lock: the project goes in without its dependencies.
    assert all("--require-hashes" in line or "--no-deps" in line for line in installs)


def test_make_test_latest_installs_the_newest_releases_in_a_venv_of_its_own() -> None:
    # Everything but the installer (uv, from its lock into .venv) goes into .venv-latest.
    installs = [line for line in planned("test-latest") if not line.endswith(UV_BOOTSTRAP)]
    assert any(line.endswith("-e '.[test,bench]'") for line in installs)
    assert all("--python .venv-latest/bin/python " in line for line in installs)
    assert not any("requirements/" in line for line in installs)


@pytest.mark.parametrize("target", ["run", "test", "test-latest"])
def test_uv_comes_from_its_own_lock_before_it_installs_anything(target: str) -> None:
    first, *rest = planned(target)
    assert first.startswith(".venv/bin/python ")
    assert first.endswith(UV_BOOTSTRAP)
    assert rest
    assert all(line.startswith(".venv/bin/uv pip install ") for line in rest)


def commands(target: str) -> list[str]:
    make = shutil.which("make")
    assert make
    result = subprocess.run(
        [make, "-n", "-C", str(ROOT), target], capture_output=True, text=True, check=True
    )
    return [line for line in result.stdout.splitlines() if "pytest" in line]


def test_make_unit_runs_the_tests_without_servers() -> None:
    assert any(line.endswith('pytest -q -m "not integration"') for line in commands("unit"))


def test_make_test_runs_every_test_and_measures_the_fast_layer() -> None:
    lines = commands("test")
    [unit] = [line for line in lines if '-m "not integration"' in line]
    assert "--cov " in unit
    assert "--cov-fail-under=" in unit
    assert any(line.rstrip().endswith("-m integration") for line in lines)


@pytest.mark.parametrize("target", ["test", "test-latest"])
def test_the_integration_layer_runs_two_workers_a_core(target: str) -> None:
    """It waits a third of its time; the fast layer, busy throughout, keeps one per core."""
    [line] = [line for line in commands(target) if line.rstrip().endswith("-m integration")]
    assert f" -n {2 * (os.cpu_count() or 1)} " in line
    [unit] = [line for line in commands(target) if '-m "not integration"' in line]
    assert " -n auto " in unit


def test_make_coverage_measures_the_whole_suite() -> None:
    [line] = commands("coverage")
    assert " --cov " in f"{line} "
    assert " -m " not in line
