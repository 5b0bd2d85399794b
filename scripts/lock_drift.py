"""Which installed releases differ from a lock: `python scripts/lock_drift.py requirements/dev.txt`.

`make test-latest` runs it in its venv of the newest releases, so a failure there comes with the
list of what moved since `make lock`. It only reports; it always exits 0.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import distributions
from pathlib import Path

UNLOCKED = {"crm-gateway", "pip"}  # the project itself, and the venv's own installer
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, set[str]]:
    pins: dict[str, set[str]] = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins.setdefault(canonical(match[1]), set()).add(match[2])
    return pins


def main(lock: str) -> None:
    pins = locked(Path(lock))
    installed = {canonical(d.metadata["Name"]): d.version for d in distributions()}
    moved = sorted(
        (name, ", ".join(sorted(pins[name])), version)
        for name, version in installed.items()
        if name in pins and version not in pins[name]
    )
    new = sorted(set(installed) - pins.keys() - UNLOCKED)
    print(f"Newest releases against {lock}: {len(moved)} moved, {len(new)} not in the lock")
    for name, was, now in moved:
        print(f"  {name:<32} {was:>16} -> {now}")
    for name in new:
        print(f"  {name:<32} {'(not locked)':>16} -> {installed[name]}")


if __name__ == "__main__":
    main(sys.argv[1])
