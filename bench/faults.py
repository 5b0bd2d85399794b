"""Flaky upstreams: success rate, latency and upstream load at 0%, 5% and 20% injected errors.

Every emulator answers that share of requests with a 500; the gateway retries
idempotent reads (full-jitter backoff, retry budget) and trips its circuit
breakers when a provider keeps failing. Each run sends the same mixed read
load: lists, nested relationships and node lookups, across all providers.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.common import RESULTS, emulators, gateway, percentile, save, table, upstream_requests

RATES = (0.0, 0.05, 0.20)
QUERIES_PER_PROVIDER = 60


def load(kind: str, i: int) -> dict[str, Any]:
    """The i-th query of the load for one provider: lists at varying offsets and shapes."""
    if i % 3 == 0:
        text = (
            "query($p: String!) { contacts(provider: $p, first: 25) { edges { node { name } } } }"
        )
        return {"query": text, "variables": {"p": kind}}
    if i % 3 == 1:
        text = (
            "query($p: String!) { contacts(provider: $p, last: 10) "
            "{ edges { node { name company { name } } } } }"
        )
        return {"query": text, "variables": {"p": kind}}
    text = "query($p: String!) { companies(provider: $p, first: 15) { edges { node { name } } } }"
    return {"query": text, "variables": {"p": kind}}


def main() -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    with emulators() as urls:
        for rate in RATES:
            for url in urls.values():
                httpx.post(f"{url}/_emulator/reset").raise_for_status()
                httpx.post(f"{url}/_emulator/faults", json={"error_rate": rate}).raise_for_status()
            # Caching off: every query must reach the flaky upstreams.
            with (
                gateway(urls, cache=False) as url,
                httpx.Client(base_url=url, timeout=60) as client,
            ):
                latencies, ok, total, statuses = [], 0, 0, set()
                before = {k: upstream_requests(u) for k, u in urls.items()}
                for i in range(QUERIES_PER_PROVIDER):
                    for kind in urls:
                        started = time.perf_counter()
                        response = client.post("/graphql", json=load(kind, i))
                        latencies.append((time.perf_counter() - started) * 1000)
                        statuses.add(response.status_code)
                        total += 1
                        ok += "errors" not in response.json()
                sent = sum(upstream_requests(u) - before[k] for k, u in urls.items())
            results.append(
                {
                    "error_rate": f"{rate:.0%}",
                    "queries": total,
                    "success_rate": f"{ok / total:.1%}",
                    "p50_ms": round(percentile(latencies, 50), 1),
                    "p99_ms": round(percentile(latencies, 99), 1),
                    "upstream_requests": sent,
                    "requests_per_query": round(sent / total, 2),
                    "gateway_5xx": sum(1 for s in statuses if s >= 500),
                }
            )
    headers = list(results[0])
    print(table(headers, [[r[h] for h in headers] for r in results]))
    save("faults", results)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    labels = [r["error_rate"] for r in results]
    left.bar(labels, [float(r["success_rate"].rstrip("%")) for r in results], color="#55a868")
    left.set_ylabel("queries without errors (%)")
    left.set_xlabel("injected upstream error rate")
    right.plot(labels, [r["p50_ms"] for r in results], marker="o", label="p50")
    right.plot(labels, [r["p99_ms"] for r in results], marker="o", label="p99")
    right.set_ylabel("latency (ms)")
    right.set_xlabel("injected upstream error rate")
    right.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "faults.png", dpi=120)
    return {"results": results}


if __name__ == "__main__":
    main()
