"""Sequential latency on one kept-alive connection, from the servers the command line starts.

Runs `crm-gateway emulate revyops` and `crm-gateway serve --config` over it as processes
(the path whose sockets once left Nagle's algorithm on, ~40 ms an answer), then times
`{ __typename }` on the gateway and a one-contact page on the emulator, one request at a
time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.common import RESULTS, percentile, save, table
from gateway.servers import LOOPBACK, free_port

REQUESTS = 500
WARM_UP = 20


@contextmanager
def command(*args: str, ready: str) -> Iterator[None]:
    """`crm-gateway *args` as a process, once `ready` answers; stopped at the end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *args, "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(ready, timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"crm-gateway {' '.join(args)} did not start") from None
                time.sleep(0.1)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


def timed(request: Callable[[], httpx.Response]) -> list[float]:
    """Milliseconds of each of REQUESTS answers, one after the other."""
    for _ in range(WARM_UP):
        request().raise_for_status()
    latencies = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        request().raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def measure(config: Path) -> dict[str, list[float]]:
    emulator_port, gateway_port = free_port(), free_port()
    emulator, gateway = f"http://{LOOPBACK}:{emulator_port}", f"http://{LOOPBACK}:{gateway_port}"
    config.write_text(
        f'[[providers]]\nname = "crm"\nkind = "revyops"\nbase_url = "{emulator}"\n'
        'credentials = { client_id = "revyops-demo-client" }\n'
    )
    emulate = ("emulate", "revyops", "--port", str(emulator_port), "--no-rate-limit")
    serve = ("serve", "--config", str(config), "--port", str(gateway_port))
    with (
        command(*emulate, ready=f"{emulator}/_emulator/stats"),
        command(*serve, ready=f"{gateway}/healthz"),
        httpx.Client(timeout=30) as client,
    ):
        contacts = f"{emulator}/public/v2/contacts"
        params: dict[str, str | int] = {"client_id": "revyops-demo-client", "page_size": 1}
        query = {"query": "{ __typename }"}
        return {
            "serve: { __typename }": timed(lambda: client.post(f"{gateway}/graphql", json=query)),
            "emulate: 1 contact": timed(lambda: client.get(contacts, params=params)),
        }


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        samples = measure(Path(directory) / "gateway.toml")
    results: list[dict[str, Any]] = [
        {
            "request": name,
            "requests": len(latencies),
            "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2),
        }
        for name, latencies in samples.items()
    ]
    headers = list(results[0])
    print(table(headers, [[r[h] for h in headers] for r in results]))
    save("latency", results)
    fig, ax = plt.subplots(figsize=(6, 4))
    labels = [r["request"] for r in results]
    width = 0.35
    positions = range(len(results))
    ax.bar([p - width / 2 for p in positions], [r["p50_ms"] for r in results], width, label="p50")
    ax.bar([p + width / 2 for p in positions], [r["p99_ms"] for r in results], width, label="p99")
    ax.set_xticks(list(positions), labels)
    ax.set_ylabel("ms per answer, one kept-alive connection")
    ax.set_title("Sequential latency, servers started by crm-gateway")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "latency.png", dpi=120)
    return {"results": results}


if __name__ == "__main__":
    main()
