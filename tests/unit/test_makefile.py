"""`make run` installs the runtime only; `make test` adds the test and benchmark tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
    assert any(line.endswith("install --quiet -e .") for line in installs)
    assert not any("[test" in line or "bench]" in line for line in installs)


def test_make_test_installs_the_test_tools() -> None:
    assert any("-e '.[test,bench]'" in line for line in planned("test"))


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


def test_make_coverage_measures_the_whole_suite() -> None:
    [line] = commands("coverage")
    assert " --cov " in f"{line} "
    assert " -m " not in line
