"""Two gateway processes behind one Redis, with the emulators enforcing their limits.

First a query read cold through replica 1 is read again through replica 2: the second
read should cost no upstream request. Then both replicas take a mixed read load (list
pages of every provider, forward walks from cursors, random page sizes; seeded) for
`DURATION` seconds; Redis is killed a third of the way in and started again at two
thirds. Measured: answers that failed (HTTP error or GraphQL errors), answers of 429 at
the emulators, and each provider's upstream rate against its documented limits.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.common import RESULTS, save, table
from gateway.datasources import source_class
from gateway.demo import DEMO_CREDENTIALS, demo_kinds
from gateway.emulators import EmulatorOptions, create_emulator
from gateway.servers import RedisProcess, ServerThread, free_port

ROOT = Path(__file__).resolve().parents[1]
DURATION = float(os.environ.get("BENCH_REPLICAS_SECONDS", "60"))
WORKERS = 4  # per replica
# Short, so the load keeps reaching the providers and their budgets are what holds it back.
CACHE_TTL = float(os.environ.get("BENCH_REPLICAS_CACHE_TTL", "5"))
FIELDS = ("contacts", "companies")
SIZES = (10, 20, 25, 50)
QUERY = """query($p: String!, $first: Int, $after: String) {
  %s(provider: $p, first: $first, after: $after) {
    edges { node { id } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def config(urls: dict[str, str], redis_url: str) -> str:
    """The replicas' TOML: one provider per emulator, limits kept, shared Redis."""
    lines = [
        f"redis_url = {json.dumps(redis_url)}",
        'cursor_secret = "bench-replicas-shared-secret"',
        "replicas_hint = 2",
        "max_operation_cost = 1000000",
    ]
    for kind, url in urls.items():
        credentials = ", ".join(f"{k} = {json.dumps(v)}" for k, v in DEMO_CREDENTIALS[kind].items())
        lines += [
            "",
            "[[providers]]",
            f'name = "{kind}"',
            f'kind = "{kind}"',
            f"base_url = {json.dumps(url)}",
            f"credentials = {{ {credentials} }}",
            f"cache_ttl = {CACHE_TTL:g}",
        ]
    return "\n".join(lines) + "\n"


@contextmanager
def replica(config_path: Path, log: IO[bytes]) -> Iterator[str]:
    """A gateway process (`crm-gateway serve`) over `config_path`, logging to `log`; its URL
    once healthy."""
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "gateway.cli", "serve", "--config", str(config_path)),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("a gateway replica did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def stats(url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{url}/_emulator/stats", timeout=10).json()
    return body


def ask(http: httpx.Client, field: str, provider: str, **variables: Any) -> dict[str, Any]:
    response = http.post(
        "/graphql",
        json={"query": QUERY % field, "variables": {"p": provider, **variables}},
    )
    if response.status_code != 200:
        return {"errors": [{"extensions": {"code": f"HTTP {response.status_code}"}}]}
    body: dict[str, Any] = response.json()
    return body


def cold_then_warm(one: str, two: str, urls: dict[str, str]) -> list[dict[str, Any]]:
    """Per provider, a page read cold on replica 1, then on replica 2."""
    rows = []
    with httpx.Client(base_url=one, timeout=120) as a, httpx.Client(base_url=two, timeout=120) as b:
        for kind, url in urls.items():
            before = stats(url)["requests"]
            assert not ask(a, "contacts", kind, first=7).get("errors")
            cold = stats(url)["requests"] - before
            before = stats(url)["requests"]
            assert not ask(b, "contacts", kind, first=7).get("errors")
            rows.append(
                {"provider": kind, "cold_on_1": cold, "again_on_2": stats(url)["requests"] - before}
            )
    return rows


def load(
    replicas: list[str], urls: dict[str, str], redis: RedisProcess
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Both replicas under load for DURATION s, Redis away for its middle third."""
    stop = threading.Event()
    outcomes: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    lock = threading.Lock()
    outage: dict[str, float] = {}
    started = time.monotonic()

    def worker(url: str, seed: int) -> None:
        rng = random.Random(seed)
        cursors: dict[tuple[str, str], str | None] = {}
        with httpx.Client(base_url=url, timeout=120) as http:
            while not stop.is_set():
                kind, field = rng.choice(list(urls)), rng.choice(FIELDS)
                after = cursors.get((kind, field)) if rng.random() < 0.6 else None
                body = ask(http, field, kind, first=rng.choice(SIZES), after=after)
                with lock:
                    if body.get("errors"):
                        code = body["errors"][0].get("extensions", {}).get("code", "?")
                        failures[str(code)] += 1
                        outcomes["failed"] += 1
                    else:
                        outcomes["ok"] += 1
                        info = body["data"][field]["pageInfo"]
                        cursors[(kind, field)] = info["endCursor"] if info["hasNextPage"] else None

    samples: list[dict[str, Any]] = []

    def sampler() -> None:
        while not stop.is_set():
            with lock:
                answered = outcomes["ok"] + outcomes["failed"]
            samples.append(
                {
                    "t": round(time.monotonic() - started, 2),
                    "answers": answered,
                    "upstream": {k: stats(u)["requests"] for k, u in urls.items()},
                }
            )
            stop.wait(1.0)

    base = {kind: stats(url) for kind, url in urls.items()}
    threads = [threading.Thread(target=sampler)] + [
        threading.Thread(target=worker, args=(url, 100 * r + w))
        for r, url in enumerate(replicas)
        for w in range(WORKERS)
    ]
    for thread in threads:
        thread.start()
    time.sleep(DURATION / 3)
    outage["from"] = time.monotonic() - started
    redis.stop()
    time.sleep(DURATION / 3)
    redis.start()
    outage["to"] = time.monotonic() - started
    time.sleep(DURATION / 3)
    stop.set()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    providers = []
    for kind, url in urls.items():
        now = stats(url)
        sent = now["requests"] - base[kind]["requests"]
        throttled = now["by_status"].get("429", 0) - base[kind]["by_status"].get("429", 0)
        # The most sent in any window of each documented length, from the 1 s samples (a
        # window shorter than that is judged by the emulator's 429s, which count exactly).
        counts = [(s["t"], s["upstream"][kind]) for s in samples]
        windows = []
        for window in source_class(kind).rate_limits:
            spans = [b - a for ta, a in counts for tb, b in counts if 0 < tb - ta <= window.seconds]
            most = max(spans) if spans else None
            windows.append(
                {
                    "window": f"{window.requests}/{window.seconds:g}s",
                    "most": most,
                    "limit": window.requests,
                }
            )
        providers.append(
            {
                "provider": kind,
                "upstream_requests": sent,
                "per_second": round(sent / seconds, 2),
                "windows": windows,
                "answers_429": throttled,
            }
        )
    summary = {
        "seconds": round(seconds, 1),
        "answers": outcomes["ok"] + outcomes["failed"],
        "failed_answers": outcomes["failed"],
        "failures": dict(failures),
        "redis_down_from": round(outage["from"], 1),
        "redis_down_to": round(outage["to"], 1),
        "providers": providers,
    }
    return summary, samples


def plot(summary: dict[str, Any], samples: list[dict[str, Any]]) -> None:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    times = [s["t"] for s in samples]
    for kind in samples[0]["upstream"] if samples else []:
        counts = [s["upstream"][kind] for s in samples]
        rates = [0.0] + [
            (b - a) / max(1e-6, tb - ta)
            for a, b, ta, tb in zip(counts, counts[1:], times, times[1:], strict=False)
        ]
        top.plot(times, rates, label=kind)
    answers = [s["answers"] for s in samples]
    bottom.plot(
        times,
        [0.0]
        + [
            (b - a) / max(1e-6, tb - ta)
            for a, b, ta, tb in zip(answers, answers[1:], times, times[1:], strict=False)
        ],
    )
    for ax in (top, bottom):
        ax.axvspan(summary["redis_down_from"], summary["redis_down_to"], alpha=0.15, color="red")
    top.set_ylabel("upstream requests/s")
    top.legend(fontsize=7)
    bottom.set_ylabel("answers/s (both replicas)")
    bottom.set_xlabel("seconds (shaded: Redis killed)")
    top.set_title("Two replicas, one Redis, limits enforced by the emulators")
    fig.tight_layout()
    fig.savefig(RESULTS / "replicas.png", dpi=120)


def main() -> dict[str, Any]:
    with ExitStack() as exits:
        urls = {
            kind: exits.enter_context(
                ServerThread(create_emulator(kind, EmulatorOptions(rate_limits=True)))
            ).url
            for kind in demo_kinds()
        }
        redis = exits.enter_context(RedisProcess())
        folder = Path(exits.enter_context(tempfile.TemporaryDirectory()))
        path = folder / "replicas.toml"
        path.write_text(config(urls, redis.url))
        logs = [exits.enter_context((folder / f"replica{n}.log").open("wb")) for n in (1, 2)]
        try:
            replicas = [exits.enter_context(replica(path, log)) for log in logs]
        except RuntimeError:
            for n in (1, 2):
                print((folder / f"replica{n}.log").read_text()[-3000:], file=sys.stderr)
            raise
        cold = cold_then_warm(replicas[0], replicas[1], urls)
        summary, samples = load(replicas, urls, redis)
    print(
        table(
            ["provider", "cold on replica 1", "same query on replica 2"],
            [[r["provider"], r["cold_on_1"], r["again_on_2"]] for r in cold],
        )
    )
    print(
        table(
            ["provider", "upstream requests", "per s", "most in a window / limit", "429s"],
            [
                [
                    p["provider"],
                    p["upstream_requests"],
                    p["per_second"],
                    ", ".join(
                        f"{w['most'] if w['most'] is not None else '-'}/{w['window']}"
                        for w in p["windows"]
                    ),
                    p["answers_429"],
                ]
                for p in summary["providers"]
            ],
        )
    )
    print(
        f"{summary['answers']} answers in {summary['seconds']} s, "
        f"{summary['failed_answers']} failed {summary['failures'] or ''}; Redis killed from "
        f"{summary['redis_down_from']} s to {summary['redis_down_to']} s"
    )
    met = (
        all(r["again_on_2"] == 0 for r in cold)
        and summary["failed_answers"] == 0
        and all(
            p["answers_429"] == 0
            and all(w["most"] is None or w["most"] <= w["limit"] for w in p["windows"])
            for p in summary["providers"]
        )
    )
    print(f"targets: replica 2 reads free, 0 failed, 0 429s, rates within limits: {met}")
    data = {"cold_then_warm": cold, "load": summary, "samples": samples, "targets_met": met}
    save("replicas", data)
    plot(summary, samples)
    return data


if __name__ == "__main__":
    main()
