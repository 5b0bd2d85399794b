"""What the benchmarks share: servers on loopback, timing, result files."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from emulators import EmulatorOptions
from gateway.app import create_app
from gateway.demo import demo_kinds, demo_provider
from gateway.servers import ServerThread, emulator_servers
from gateway.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"


@contextmanager
def emulators(options: EmulatorOptions | None = None) -> Iterator[dict[str, str]]:
    """Every demo emulator on loopback: {kind: url}."""
    with ExitStack() as exits:
        yield emulator_servers(exits, demo_kinds(), options)


@contextmanager
def gateway(urls: dict[str, str], **settings: Any) -> Iterator[str]:
    """A gateway over the emulators at `urls`; its URL. Its own limiter is off: the
    emulators do not throttle here, and latency should be the gateway's own."""
    providers = [
        demo_provider(k, u).model_copy(update={"rate_limit": False}) for k, u in urls.items()
    ]
    # The benchmarks count requests, naive modes included: no cost limit in the way.
    settings.setdefault("max_operation_cost", 1_000_000)
    with ServerThread(create_app(Settings(providers=providers, **settings))) as server:
        yield server.url


@contextmanager
def stack(options: EmulatorOptions | None = None) -> Iterator[tuple[str, dict[str, str]]]:
    """The gateway and every demo emulator on loopback: (gateway url, {kind: emulator url})."""
    with emulators(options) as urls, gateway(urls) as url:
        yield url, urls


def upstream_requests(url: str) -> int:
    count: int = httpx.get(f"{url}/_emulator/stats").json()["requests"]
    return count


def percentile(samples: Sequence[float], q: float) -> float:
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def save(name: str, data: Any) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path
