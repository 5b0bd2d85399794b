"""N+1 or not: upstream requests and latency of a nested query, naive vs batched vs cached.

For each provider: "first N contacts, each with company { name },
notes(first: 3) { body } and deals(first: 3) { name company { name } }"
(the parts the provider has), for N = 10 and 50, through three gateways:
naive (no batching, no cache), batched (dataloaders, no cache), and batched
with a warm cache (the same query again within the TTL).

Then the lookup planner's targets (issue 10), each on a fresh gateway with its
cache, run cold and then warm: N contacts with `company { id name }` (at most 3
requests on every provider, the same for 10 and 50), the same with
`company { name domain }` (what the API does not send inline), and 100 RevyOps
contacts with `company { name }` (at most 2 cold, 0 warm).
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
# (name, company selection, providers (None: all), sizes, most requests cold, warm)
TARGETS: list[tuple[str, str, tuple[str, ...] | None, tuple[int, ...], int | None, int | None]] = [
    ("company { id name }", "id name", None, SIZES, 3, 0),
    ("company { name domain }", "name domain", None, SIZES, None, 0),
    ("company { name }", "name", ("revyops",), (100,), 2, 0),
]


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
        targets = planner_targets(urls)
    headers = ["provider", "mode", "first", "upstream_requests", "p50_ms"]
    print(table(headers, [[r[h] for h in headers] for r in results]))
    headers = ["query", "provider", "first", "cold", "warm", "target_cold", "target_warm", "met"]
    print()
    print(table(headers, [[r[h] for h in headers] for r in targets]))
    save("nplus1", {"results": results, "targets": targets})
    plot(results)
    return {"results": results, "targets": targets}


def planner_targets(urls: dict[str, str]) -> list[dict[str, Any]]:
    """Each target's query on a fresh gateway: its requests cold, then warm."""
    rows: list[dict[str, Any]] = []
    for name, selection, kinds, sizes, cold_most, warm_most in TARGETS:
        text = (
            "query($p: String!, $n: Int!) { contacts(provider: $p, first: $n) "
            f"{{ edges {{ node {{ name company {{ {selection} }} }} }} }} }}"
        )
        for kind in kinds or tuple(urls):
            for n in sizes:
                with (
                    gateway(urls) as url,
                    httpx.Client(base_url=url, timeout=120) as client,
                ):
                    costs = []
                    for _ in range(2):
                        before = upstream_requests(urls[kind])
                        body = client.post(
                            "/graphql", json={"query": text, "variables": {"p": kind, "n": n}}
                        ).json()
                        assert "errors" not in body, body["errors"]
                        costs.append(upstream_requests(urls[kind]) - before)
                met = (cold_most is None or costs[0] <= cold_most) and (
                    warm_most is None or costs[1] <= warm_most
                )
                rows.append(
                    {
                        "query": name,
                        "provider": kind,
                        "first": n,
                        "cold": costs[0],
                        "warm": costs[1],
                        "target_cold": "-" if cold_most is None else f"<= {cold_most}",
                        "target_warm": "-" if warm_most is None else f"<= {warm_most}",
                        "met": "yes" if met else "NO",
                    }
                )
    return rows


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
