"""N+1 or not: upstream requests and latency of a nested query, naive vs batched vs cached.

For each provider: "first N contacts, each with company { name },
notes(first: 3) { body } and deals(first: 3) { name company { name } }"
(the parts the provider has), for N = 10 and 50, through three gateways:
naive (no batching, no cache), batched (dataloaders, no cache), and batched
with a warm cache (the same query again within the TTL).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.common import RESULTS, emulators, gateway, percentile, save, table, upstream_requests

MODES = {
    "naive": {"batching": False, "cache": False},
    "batched": {"batching": True, "cache": False},
    "warm cache": {"batching": True, "cache": True},
}
SIZES = (10, 50)
REPEATS = 5


def query(relationships: set[str]) -> str:
    parts = ["name"]
    if "Contact.company" in relationships:
        parts.append("company { name }")
    if "Contact.notes" in relationships:
        parts.append("notes(first: 3) { edges { node { body } } }")
    if "Contact.deals" in relationships:
        company = " company { name }" if "Deal.company" in relationships else ""
        parts.append(f"deals(first: 3) {{ edges {{ node {{ name{company} }} }} }}")
    fields = " ".join(parts)
    return (
        "query($p: String!, $n: Int!) { contacts(provider: $p, first: $n) "
        f"{{ edges {{ node {{ {fields} }} }} }} }}"
    )


def measure(
    client: httpx.Client, url: str, text: str, kind: str, n: int, warm: bool
) -> dict[str, Any]:
    payload = {"query": text, "variables": {"p": kind, "n": n}}
    if warm:
        client.post("/graphql", json=payload).raise_for_status()
    requests, latencies = [], []
    for _ in range(REPEATS):
        before = upstream_requests(url)
        started = time.perf_counter()
        body = client.post("/graphql", json=payload).json()
        latencies.append((time.perf_counter() - started) * 1000)
        assert "errors" not in body, body["errors"]
        requests.append(upstream_requests(url) - before)
    return {"upstream_requests": max(requests), "p50_ms": round(percentile(latencies, 50), 2)}


def main() -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    with emulators() as urls:
        for mode, settings in MODES.items():
            with (
                gateway(urls, **settings) as url,
                httpx.Client(base_url=url, timeout=120) as client,
            ):
                providers = client.post(
                    "/graphql",
                    json={"query": "{ providers { name capabilities { relationships } } }"},
                ).json()["data"]["providers"]
                for provider in providers:
                    kind = provider["name"]
                    text = query(set(provider["capabilities"]["relationships"]))
                    for n in SIZES:
                        row = measure(client, urls[kind], text, kind, n, warm=mode == "warm cache")
                        results.append({"provider": kind, "mode": mode, "first": n, **row})
    headers = ["provider", "mode", "first", "upstream_requests", "p50_ms"]
    print(table(headers, [[r[h] for h in headers] for r in results]))
    save("nplus1", results)
    plot(results)
    return {"results": results}


def plot(results: list[dict[str, Any]]) -> None:
    kinds = sorted({r["provider"] for r in results})
    fig, axes = plt.subplots(1, len(SIZES), figsize=(12, 4), sharey=True)
    width = 0.8 / len(MODES)
    for ax, n in zip(axes, SIZES, strict=True):
        for i, mode in enumerate(MODES):
            values = [
                next(
                    r["upstream_requests"]
                    for r in results
                    if r["provider"] == k and r["mode"] == mode and r["first"] == n
                )
                for k in kinds
            ]
            ax.bar([x + i * width for x in range(len(kinds))], values, width, label=mode)
        ax.set_xticks([x + width for x in range(len(kinds))], kinds)
        ax.set_title(f"first: {n} contacts with company, notes, deals")
        ax.set_yscale("symlog")
    axes[0].set_ylabel("upstream requests per query")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "nplus1.png", dpi=120)


if __name__ == "__main__":
    main()
