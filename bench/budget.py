"""What a client's paging costs in upstream requests, with the emulators enforcing limits.

Every emulator enforces its provider's documented rate limits (as the real APIs do) and
the gateway keeps under them. Per provider and entity a client walks the list forward in
pages of 37, backward from the end in pages of 23, then asks a dozen windows from random
cursors it was given (seeded); then the same walk again. Upstream requests are read from
each emulator's `/_emulator/stats` and compared with the floor: reading the list once in
blocks of 100. Then 50 users page the same Attio list at once, each with its own page size.
Block reads (the default) against `--no-blocks` (exact windows). Last, each entity's list
across every provider (issue 18) walked forward as one list, against the sum of the
providers' floors; then the whole walk of it again.
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.common import RESULTS, save, table
from emulators import EmulatorOptions
from gateway.app import create_app
from gateway.datasources import source_class
from gateway.demo import demo_kinds, demo_provider
from gateway.records import Entity
from gateway.servers import ServerThread, emulator_servers
from gateway.settings import Settings

FIELDS = {"contact": "contacts", "company": "companies", "deal": "deals", "note": "notes"}
# Each kind's entities, as its capabilities declare them.
ENTITIES = {
    kind: [e for e in FIELDS if Entity(e) in source_class(kind).describe().entities]
    for kind in demo_kinds()
}
# With limits enforced, exact windows on Attio and hasteCRM (100 a minute) take minutes
# per list: the comparison reads contacts only.
NO_BLOCKS_ENTITIES = {kind: ["contact"] for kind in ENTITIES}
FLOOR_BLOCK = 100
# Long enough that the repeat walk runs within it on a slow machine.
CACHE_TTL = 600.0
USERS = 50
USER_SIZES = (10, 15, 20, 25, 37, 50)
RATE_LIMITED = "UPSTREAM_RATE_LIMITED"


def merged_query(entity: str) -> str:
    """The same page of the list across the providers `$p` names."""
    return (
        query(entity).replace("$p: String!", "$p: [String!]").replace("(provider:", "(providers:")
    )


def query(entity: str) -> str:
    return f"""query($p: String!, $first: Int, $after: String, $last: Int, $before: String) {{
  {FIELDS[entity]}(provider: $p, first: $first, after: $after, last: $last, before: $before) {{
    edges {{ cursor node {{ id }} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
  }}
}}"""


@contextmanager
def stack(blocks: bool) -> Iterator[tuple[str, dict[str, str]]]:
    """Fresh emulators enforcing their limits and a gateway keeping under them."""
    with ExitStack() as exits:
        urls = emulator_servers(exits, demo_kinds(), EmulatorOptions(rate_limits=True))
        providers = [
            demo_provider(k, u).model_copy(update={"cache_ttl": CACHE_TTL}) for k, u in urls.items()
        ]
        settings = Settings(providers=providers, blocks=blocks)
        server = exits.enter_context(ServerThread(create_app(settings)))
        for url in urls.values():
            httpx.post(f"{url}/_emulator/reset").raise_for_status()
        yield server.url, urls


def requests_of(url: str) -> int:
    count: int = httpx.get(f"{url}/_emulator/stats").json()["requests"]
    return count


class Client:
    """One client of the gateway; waits and asks again when a provider has no slot."""

    def __init__(self, url: str, patience: int = 30) -> None:
        self.http = httpx.Client(base_url=url, timeout=120)
        self.patience = patience
        self.failures = 0

    def page(self, entity: str, provider: str | list[str], **window: Any) -> dict[str, Any] | None:
        document = merged_query(entity) if isinstance(provider, list) else query(entity)
        for _ in range(self.patience):
            body = self.http.post(
                "/graphql",
                json={"query": document, "variables": {"p": provider, **window}},
            ).json()
            errors = body.get("errors") or []
            if not errors:
                page: dict[str, Any] = body["data"][FIELDS[entity]]
                return page
            self.failures += 1
            if errors[0].get("extensions", {}).get("code") != RATE_LIMITED:
                raise RuntimeError(f"{provider} {entity}: {errors[0]}")
            time.sleep(5)
        return None


def walk(client: Client, provider: str | list[str], entity: str, seed: int) -> int:
    """The walk: forward by 37, backward from the end by 23, 12 windows from random cursors.
    Returns how many records the list has."""
    cursors: list[str] = []
    ids: list[str] = []
    after = None
    while True:
        page = client.page(entity, provider, first=37, after=after)
        if page is None:
            break
        ids += [e["node"]["id"] for e in page["edges"]]
        cursors += [e["cursor"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    before = None
    while True:
        page = client.page(entity, provider, last=23, before=before)
        if page is None:
            break
        cursors += [e["cursor"] for e in page["edges"]]
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    rng = random.Random(seed)
    for _ in range(12):
        if not cursors:
            break
        cursor, size = rng.choice(cursors), rng.randint(1, 50)
        if rng.random() < 0.5:
            client.page(entity, provider, first=size, after=cursor)
        else:
            client.page(entity, provider, last=size, before=cursor)
    return len(ids)


def row(
    provider: str,
    entity: str,
    blocks: bool,
    records: int,
    floor: int,
    spent: int,
    again: int,
    client: Client,
) -> dict[str, Any]:
    """One walk's line of the table (the client's failed queries counted, then reset)."""
    failures, client.failures = client.failures, 0
    return {
        "provider": provider,
        "entity": entity,
        "blocks": blocks,
        "records": records,
        "floor": floor,
        "requests": spent,
        "ratio": round(spent / floor, 2) if floor else None,
        "repeat": again,
        "failed_queries": failures,
    }


def walks(blocks: bool, entities: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Every provider's walks, providers concurrently (each has its own limits)."""
    with stack(blocks) as (gateway, urls):

        def one(kind: str) -> list[dict[str, Any]]:
            client, rows = Client(gateway), []
            for index, entity in enumerate(entities[kind]):
                seed = 1000 + index
                start = requests_of(urls[kind])
                records = walk(client, kind, entity, seed)
                first = requests_of(urls[kind]) - start
                start = requests_of(urls[kind])
                walk(client, kind, entity, seed)
                again = requests_of(urls[kind]) - start
                floor = -(-records // FLOOR_BLOCK)
                rows.append(row(kind, entity, blocks, records, floor, first, again, client))
            return rows

        with ThreadPoolExecutor(len(entities)) as pool:
            return [row for rows in pool.map(one, list(entities)) for row in rows]


def forward(client: Client, providers: list[str], entity: str) -> int:
    """A forward walk by 37 of the list across `providers`; how many records it has."""
    records, after = 0, None
    while (page := client.page(entity, providers, first=37, after=after)) is not None:
        records += len(page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    return records


def merged_walks(single: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each entity's list across every provider that has it: a forward walk against the sum
    of the providers' floors (from their own walks), then the whole walk again."""
    rows = []
    with stack(True) as (gateway, urls):
        client = Client(gateway)
        for index, entity in enumerate(FIELDS):
            kinds = [k for k in ENTITIES if entity in ENTITIES[k]]
            floor = sum(r["floor"] for r in single if r["entity"] == entity and r["blocks"])
            start = sum(requests_of(u) for u in urls.values())
            records = forward(client, kinds, entity)
            spent = sum(requests_of(u) for u in urls.values()) - start
            walk(client, kinds, entity, 2000 + index)
            again = sum(requests_of(u) for u in urls.values()) - start - spent
            rows.append(row("merged", entity, True, records, floor, spent, again, client))
    return rows


def many_users(blocks: bool) -> dict[str, Any]:
    """50 users page the Attio contacts at once, each with its own page size; a user stops
    at its first failed page."""
    with stack(blocks) as (gateway, urls):
        codes: Counter[str] = Counter()

        def user(number: int) -> tuple[int, bool]:
            http = httpx.Client(base_url=gateway, timeout=120)
            size, after, seen = USER_SIZES[number % len(USER_SIZES)], None, 0
            while True:
                body = http.post(
                    "/graphql",
                    json={
                        "query": query("contact"),
                        "variables": {"p": "attio", "first": size, "after": after},
                    },
                ).json()
                if body.get("errors"):
                    codes[str(body["errors"][0].get("extensions", {}).get("code"))] += 1
                    return seen, False
                page = body["data"]["contacts"]
                seen += len(page["edges"])
                if not page["pageInfo"]["hasNextPage"]:
                    return seen, True
                after = page["pageInfo"]["endCursor"]

        started = time.perf_counter()
        with ThreadPoolExecutor(USERS) as pool:
            outcomes = list(pool.map(user, range(USERS)))
        return {
            "blocks": blocks,
            "users": USERS,
            "requests": requests_of(urls["attio"]),
            "users_failed": sum(not ok for _, ok in outcomes),
            "records_read": sum(seen for seen, _ in outcomes),
            "errors": dict(codes),
            "seconds": round(time.perf_counter() - started, 1),
        }


def plot(rows: list[dict[str, Any]]) -> None:
    with_blocks = [r for r in rows if r["blocks"]]
    without = {(r["provider"], r["entity"]): r for r in rows if not r["blocks"]}
    labels = [f"{r['provider']}\n{r['entity']}" for r in with_blocks]
    xs = range(len(with_blocks))
    fig, ax = plt.subplots(figsize=(max(8, len(labels) * 0.7), 4.5))
    width = 0.28
    ax.bar([x - width for x in xs], [r["floor"] for r in with_blocks], width, label="floor")
    ax.bar(list(xs), [r["requests"] for r in with_blocks], width, label="blocks")
    ax.bar(
        [x + width for x in xs],
        [without.get((r["provider"], r["entity"]), {}).get("requests", 0) for r in with_blocks],
        width,
        label="--no-blocks",
    )
    ax.set_xticks(list(xs), labels, fontsize=7)
    ax.set_ylabel("upstream requests per walk")
    ax.set_yscale("symlog")
    ax.set_title("Walk forward 37, backward 23, 12 random windows (limits enforced)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "budget.png", dpi=120)


def main() -> dict[str, Any]:
    started = time.perf_counter()
    rows = walks(True, ENTITIES)
    crowd = [many_users(True)]
    print("blocks done; --no-blocks (contacts only) takes minutes", file=sys.stderr)
    # Separate emulators, so separate limits: the two slow runs go side by side.
    with ThreadPoolExecutor(2) as pool:
        slow_walks = pool.submit(walks, False, NO_BLOCKS_ENTITIES)
        slow_crowd = pool.submit(many_users, False)
        rows += slow_walks.result()
        crowd.append(slow_crowd.result())
    merged = merged_walks(rows)
    print_tables(rows + merged, crowd)
    within = all(r["requests"] <= 2 * r["floor"] and r["repeat"] == 0 for r in rows if r["blocks"])
    within = within and all(r["requests"] <= 1.5 * r["floor"] for r in merged)
    print(
        "targets (blocks): walk <= 2x floor and repeat 0 everywhere; "
        f"merged forward walk <= 1.5x the providers' floors: {within}"
    )
    print(f"cache_ttl {CACHE_TTL:.0f} s, so the repeat walk runs within it")
    data = {
        "walks": rows,
        "merged_walks": merged,
        "many_users": crowd,
        "targets_met": within,
        "cache_ttl": CACHE_TTL,
        "seconds": round(time.perf_counter() - started, 1),
    }
    save("budget", data)
    plot(rows)
    return data


def print_tables(rows: list[dict[str, Any]], crowd: list[dict[str, Any]]) -> None:
    walk_columns = ["provider", "entity", "mode", "records", "floor", "requests", "x floor"]
    print(
        table(
            [*walk_columns, "repeat", "failed"],
            [
                [
                    r["provider"],
                    r["entity"],
                    "blocks" if r["blocks"] else "no-blocks",
                    r["records"],
                    r["floor"],
                    r["requests"],
                    r["ratio"],
                    r["repeat"],
                    r["failed_queries"],
                ]
                for r in rows
            ],
        )
    )
    print("--no-blocks walks cover contacts only (exact windows under 100/min take minutes).")
    print(
        table(
            ["many users", "mode", "requests", "users failed", "errors", "records read", "seconds"],
            [
                [
                    c["users"],
                    "blocks" if c["blocks"] else "no-blocks",
                    c["requests"],
                    c["users_failed"],
                    ", ".join(f"{k} {v}" for k, v in c["errors"].items()) or "-",
                    c["records_read"],
                    c["seconds"],
                ]
                for c in crowd
            ],
        )
    )


if __name__ == "__main__":
    main()
