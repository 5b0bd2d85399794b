"""What paging costs: upstream requests and latency per Relay window, per provider.

Walks every provider's contacts forward (`first: 37`) and backward (`last: 23`)
through the gateway and counts what the emulators received.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.common import RESULTS, percentile, save, stack, table, upstream_requests

QUERY = """query($p: String!, $first: Int, $after: String, $last: Int, $before: String) {
  contacts(provider: $p, first: $first, after: $after, last: $last, before: $before) {
    totalCount edges { node { id name } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


def walk(client: httpx.Client, provider: str, forward: bool) -> tuple[int, list[float]]:
    cursor, pages, latencies = None, 0, []
    while True:
        variables: dict[str, Any] = {"p": provider}
        variables.update(
            {"first": 37, "after": cursor} if forward else {"last": 23, "before": cursor}
        )
        started = time.perf_counter()
        body = client.post("/graphql", json={"query": QUERY, "variables": variables}).json()
        latencies.append((time.perf_counter() - started) * 1000)
        page = body["data"]["contacts"]
        pages += 1
        info = page["pageInfo"]
        if not (info["hasNextPage"] if forward else info["hasPreviousPage"]):
            return pages, latencies
        cursor = info["endCursor"] if forward else info["startCursor"]


def main() -> dict[str, Any]:
    results = []
    with stack() as (gateway, emulators), httpx.Client(base_url=gateway, timeout=60) as client:
        for kind, url in emulators.items():
            for forward in (True, False):
                before = upstream_requests(url)
                pages, latencies = walk(client, kind, forward)
                requests = upstream_requests(url) - before
                results.append(
                    {
                        "provider": kind,
                        "direction": "first: 37" if forward else "last: 23",
                        "pages": pages,
                        "upstream_requests": requests,
                        "requests_per_page": round(requests / pages, 2),
                        "p50_ms": round(percentile(latencies, 50), 2),
                        "p99_ms": round(percentile(latencies, 99), 2),
                    }
                )
    headers = list(results[0])
    print(table(headers, [[r[h] for h in headers] for r in results]))
    save("pagination", results)
    labels = [f"{r['provider']}\n{r['direction']}" for r in results]
    fig, ax = plt.subplots(figsize=(max(6, len(results) * 1.1), 4))
    ax.bar(labels, [r["requests_per_page"] for r in results], color="#4c72b0")
    ax.set_ylabel("upstream requests per Relay page")
    ax.set_title("Cost of one connection window (contacts)")
    fig.tight_layout()
    fig.savefig(RESULTS / "pagination.png", dpi=120)
    return {"results": results}


if __name__ == "__main__":
    main()
