"""The warm path: the gateway with every read cached against stock Strawberry from memory.

Both serve the same query (a page of 100 contacts with `name emails { address }
updatedAt company { name }`, edges with cursors and pageInfo), each in its own
uvicorn process. One load generator (a separate process: httpx, async, 16
connections) drives each for a fixed time, in alternating rounds so that a
busy machine slows both alike; the table shows the median throughput of each,
the median ratio of the paired rounds, and each server's CPU time per request
(read from /proc; steadier than throughput on a shared machine). The gateway
reads a RevyOps emulator running in a process of its own, with no rate limits
anywhere; it is warmed first, so no request of
the measured rounds reaches the emulator (checked).

Memory: a second gateway caches 10,000 records (every contact and company of
an emulator seeded with 8,000 and 2,000, read in pages of 100 with cursors),
then resumes from 1,000 of the cursors it issued; the table shows the
process's resident set size (VmRSS) then.

    python -m bench.warm [--seconds 5] [--rounds 3] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import strawberry

from bench.common import RESULTS, save, table, upstream_requests
from gateway.servers import LOOPBACK, free_port

ROOT = Path(__file__).resolve().parent.parent
PROVIDER = "revyops"
CLIENT_ID = "revyops-demo-client"
SECRET = "warm-bench-cursor-secret-0123456789"

QUERY = """query($p: String!, $first: Int, $after: String) {
  contacts(provider: $p, first: $first, after: $after) {
    edges { cursor node { name emails { address } updatedAt company { name } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
PAGE = {"query": QUERY, "variables": {"p": PROVIDER, "first": 100}}


# --- stock Strawberry + FastAPI: the same shape, from memory -------------------------------


@strawberry.type
class StockEmail:
    address: str


@strawberry.type
class StockCompany:
    name: str | None


@strawberry.type
class StockContact:
    name: str | None
    emails: list[StockEmail]
    updated_at: dt.datetime | None
    company: StockCompany | None


@strawberry.type
class StockPageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class StockEdge:
    cursor: str
    node: StockContact


@strawberry.type
class StockConnection:
    edges: list[StockEdge]
    page_info: StockPageInfo


def _stock_contacts(count: int = 1000) -> list[StockContact]:
    companies = [StockCompany(name=f"Company {i}") for i in range(200)]
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return [
        StockContact(
            name=f"Person {i}",
            emails=[StockEmail(address=f"person{i}@example.com")],
            updated_at=start + dt.timedelta(minutes=i),
            company=None if i % 10 == 9 else companies[i % 200],
        )
        for i in range(count)
    ]


def _cursor(index: int) -> str:
    return base64.b64encode(f"arrayconnection:{index}".encode()).decode()


def stock_app() -> Any:
    """Stock Strawberry on FastAPI, as a team would write it for an in-memory list."""
    from fastapi import FastAPI
    from strawberry.fastapi import GraphQLRouter

    contacts = _stock_contacts()

    @strawberry.type
    class Query:
        @strawberry.field
        def contacts(
            self, provider: str, first: int | None = None, after: str | None = None
        ) -> StockConnection:
            start = 0
            if after is not None:
                start = int(base64.b64decode(after).decode().split(":")[1]) + 1
            end = min(len(contacts), start + (first or 20))
            edges = [StockEdge(cursor=_cursor(i), node=contacts[i]) for i in range(start, end)]
            return StockConnection(
                edges=edges,
                page_info=StockPageInfo(
                    has_next_page=end < len(contacts),
                    has_previous_page=start > 0,
                    start_cursor=edges[0].cursor if edges else None,
                    end_cursor=edges[-1].cursor if edges else None,
                ),
            )

    app = FastAPI()
    app.include_router(GraphQLRouter(strawberry.Schema(query=Query)), prefix="/graphql")
    return app


# --- processes -----------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


EMULATOR = """
import uvicorn
from emulators import EmulatorOptions
from gateway.providers import create_emulator
options = EmulatorOptions(rate_limits=False, contacts={contacts}, companies={companies})
uvicorn.run(create_emulator("revyops", options), host="{host}", port={port},
            log_level="warning", access_log=False)
"""


def _wait_until_up(url: str, process: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}: see its output above")
        try:
            httpx.get(url + path, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


@contextmanager
def _process(args: list[str], url: str, path: str) -> Iterator[subprocess.Popen[bytes]]:
    # The servers' own output is shown only when one fails to start.
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            [sys.executable, *args], env=_env(), cwd=ROOT, stdout=output, stderr=output
        )
        try:
            try:
                _wait_until_up(url, process, path)
            except RuntimeError:
                output.seek(0)
                sys.stderr.write(output.read().decode(errors="replace"))
                raise
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def emulator(contacts: int = 1000, companies: int = 200) -> Iterator[str]:
    port = free_port()
    code = EMULATOR.format(contacts=contacts, companies=companies, host=LOOPBACK, port=port)
    url = f"http://{LOOPBACK}:{port}"
    with _process(["-c", code], url, "/_emulator/stats"):
        yield url


@contextmanager
def gateway(emulator_url: str) -> Iterator[tuple[str, int]]:
    """`crm-gateway serve --config` over the emulator: (url, pid)."""
    port = free_port()
    config = f"""
cursor_secret = "{SECRET}"
[[providers]]
name = "{PROVIDER}"
kind = "{PROVIDER}"
base_url = "{emulator_url}"
credentials = {{ client_id = "{CLIENT_ID}" }}
rate_limit = false
cache_ttl = 3600
cache_size = 100000
"""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gateway.toml"
        path.write_text(config)
        url = f"http://{LOOPBACK}:{port}"
        args = ["-m", "gateway.cli", "serve", "--config", str(path), "--port", str(port)]
        with _process(args, url, "/healthz") as process:
            yield url, process.pid


@contextmanager
def stock() -> Iterator[tuple[str, int]]:
    """Stock Strawberry in a uvicorn process: (url, pid)."""
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    args = ["-m", "uvicorn", "bench.warm:stock_app", "--factory", "--host", LOOPBACK]
    args += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    with _process(args, url, "/graphql") as process:
        yield url, process.pid


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used (user + system): what a request costs, however busy the
    machine is."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the load generator (runs in a process of its own) -------------------------------------


async def _drive(url: str, seconds: float, connections: int) -> dict[str, Any]:
    body = json.dumps(PAGE).encode()
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    done, failed = 0, 0
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker(until: float) -> None:
            nonlocal done, failed
            while time.perf_counter() < until:
                response = await client.post("/graphql", content=body, headers=headers)
                if response.status_code == 200 and b'"errors"' not in response.content:
                    done += 1
                else:
                    failed += 1

        warm_until = time.perf_counter() + 1.0  # connections open, caches of both warm
        await asyncio.gather(*(worker(warm_until) for _ in range(connections)))
        warmup, done, failed = done, 0, 0
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + seconds) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {"requests": done, "warmup_requests": warmup, "failed": failed, "rps": done / elapsed}


def drive(url: str, seconds: float, connections: int) -> None:
    print(json.dumps(asyncio.run(_drive(url, seconds, connections))))


def load(url: str, pid: int, seconds: float, connections: int) -> dict[str, Any]:
    """Requests per second, and CPU milliseconds of server `pid` per request."""
    code = f"from bench.warm import drive; drive({url!r}, {seconds!r}, {connections!r})"
    cpu = cpu_seconds(pid)
    out = subprocess.run(
        [sys.executable, "-c", code], env=_env(), cwd=ROOT, capture_output=True, check=True
    )
    cpu = cpu_seconds(pid) - cpu
    result: dict[str, Any] = json.loads(out.stdout)
    if result["failed"]:
        raise RuntimeError(f"{url}: {result['failed']} requests failed")
    result["cpu_ms"] = 1000 * cpu / (result["requests"] + result["warmup_requests"])
    return result


def _check_same_shape(gateway_url: str, stock_url: str) -> None:
    pages = [
        httpx.post(f"{u}/graphql", json=PAGE, timeout=60).json() for u in (gateway_url, stock_url)
    ]
    for page in pages:
        if "errors" in page or len(page["data"]["contacts"]["edges"]) != 100:
            raise RuntimeError(f"unexpected answer: {str(page)[:300]}")


# --- memory --------------------------------------------------------------------------------

MEMORY_QUERY = """query($p: String!, $first: Int, $after: String) {
  %s(provider: $p, first: $first, after: $after) {
    edges { cursor node { id name updatedAt } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def memory(contacts: int = 8000, companies: int = 2000, resumed: int = 1000) -> dict[str, Any]:
    """RSS of a gateway holding `contacts + companies` cached records and `resumed` cursors."""
    with (
        emulator(contacts, companies) as emulator_url,
        gateway(emulator_url) as (url, pid),
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        idle = rss_mb(pid)
        cursors: list[str] = []
        records = 0
        for field in ("contacts", "companies"):
            after = None
            while True:
                variables = {"p": PROVIDER, "first": 100, "after": after}
                body = {"query": MEMORY_QUERY % field, "variables": variables}
                page = client.post("/graphql", json=body).json()["data"][field]
                records += len(page["edges"])
                if field == "contacts":
                    cursors += [edge["cursor"] for edge in page["edges"]]
                if not page["pageInfo"]["hasNextPage"]:
                    break
                after = page["pageInfo"]["endCursor"]
        step = max(1, len(cursors) // resumed)
        live = cursors[::step][:resumed]
        for cursor in live:
            variables = {"p": PROVIDER, "first": 10, "after": cursor}
            body = {"query": MEMORY_QUERY % "contacts", "variables": variables}
            page = client.post("/graphql", json=body).json()
            if "errors" in page:
                raise RuntimeError(f"resuming failed: {page['errors']}")
        return {
            "records_cached": records,
            "cursors_resumed": len(live),
            "idle_rss_mb": round(idle, 1),
            "rss_mb": round(rss_mb(pid), 1),
        }


# --- the benchmark -------------------------------------------------------------------------


def throughput(seconds: float, rounds: int, connections: int) -> dict[str, Any]:
    """Both servers driven in alternating rounds; medians of req/s and of CPU ms per request."""
    with (
        emulator() as emulator_url,
        gateway(emulator_url) as (gateway_url, gateway_pid),
        stock() as (stock_url, stock_pid),
    ):
        _check_same_shape(gateway_url, stock_url)
        before = upstream_requests(emulator_url)
        runs: dict[str, list[dict[str, Any]]] = {"stock": [], "gateway": []}
        for _ in range(rounds):
            runs["stock"].append(load(stock_url, stock_pid, seconds, connections))
            runs["gateway"].append(load(gateway_url, gateway_pid, seconds, connections))
        upstream = upstream_requests(emulator_url) - before
    if upstream:
        raise RuntimeError(f"the warm gateway sent {upstream} upstream requests")
    result: dict[str, Any] = {
        "connections": connections,
        "seconds_per_round": seconds,
        "rounds": rounds,
        "upstream_requests_while_measured": upstream,
    }
    for name, samples in runs.items():
        result[name] = {
            "rps": round(statistics.median(r["rps"] for r in samples), 1),
            "cpu_ms_per_request": round(statistics.median(r["cpu_ms"] for r in samples), 2),
            "rps_per_round": [round(r["rps"], 1) for r in samples],
        }
    # Rounds run in pairs, one right after the other: the median of the pairs' ratios is
    # steadier than the ratio of the medians when the machine's load changes.
    pairs = zip(runs["gateway"], runs["stock"], strict=True)
    result["ratio"] = round(statistics.median(g["rps"] / s["rps"] for g, s in pairs), 3)
    # CPU per request does not depend on what else the machine runs: the steadier ratio.
    result["cpu_ratio"] = round(
        result["stock"]["cpu_ms_per_request"] / result["gateway"]["cpu_ms_per_request"], 3
    )
    return result


def _plot(speed: dict[str, Any], mem: dict[str, Any]) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    names = ["stock Strawberry", "gateway (warm)"]
    left.bar(names, [speed["stock"]["rps"], speed["gateway"]["rps"]], color="#4c72b0")
    left.set_ylabel("requests per second (100 contacts a page)")
    left.set_title(f"Warm throughput: ratio {speed['ratio']}")
    labels = ["idle", f"{mem['records_cached']} records,\n{mem['cursors_resumed']} cursors"]
    right.bar(labels, [mem["idle_rss_mb"], mem["rss_mb"]], color="#55a868")
    right.axhline(150, color="#c44e52", linestyle="--", label="target 150 MB")
    right.set_ylabel("gateway RSS (MB)")
    right.set_title("Gateway memory")
    right.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "warm.png", dpi=120)


def main(seconds: float = 5.0, rounds: int = 3, connections: int = 16) -> dict[str, Any]:
    speed = throughput(seconds, rounds, connections)
    mem = memory()
    rows = [
        [name, speed[key]["rps"], speed[key]["cpu_ms_per_request"], speed[key]["rps_per_round"]]
        for name, key in (("stock Strawberry", "stock"), ("gateway, warm", "gateway"))
    ]
    print(table(["server", "req/s (median)", "CPU ms/request", "req/s per round"], rows))
    print(
        f"ratio gateway/stock: {speed['ratio']} in req/s, {speed['cpu_ratio']} in CPU per "
        "request (target >= 0.7)"
    )
    print(
        table(
            ["records cached", "cursors resumed", "idle RSS MB", "RSS MB"],
            [[mem["records_cached"], mem["cursors_resumed"], mem["idle_rss_mb"], mem["rss_mb"]]],
        )
    )
    print("RSS target: <= 150 MB")
    result = {"throughput": speed, "memory": mem}
    save("warm", result)
    _plot(speed, mem)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="Length of one round.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds per server.")
    parser.add_argument("--connections", type=int, default=16, help="Concurrent connections.")
    options = parser.parse_args()
    main(options.seconds, options.rounds, options.connections)
