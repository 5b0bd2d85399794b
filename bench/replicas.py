"""Two gateway processes behind one Redis, with the emulators enforcing their limits.

First a query read cold through replica 1 is read again through replica 2: the second
read should cost no upstream request. Then both replicas take a mixed read load (list
pages of every provider, forward walks from cursors, random page sizes; seeded) for
`DURATION` seconds, more than the providers' documented limits allow: client `bulk`
floods through replica 1 with three times the workers client `interactive` has on
replica 2 (both weigh 1). Redis is killed a third of the way in and started again at two
thirds. Measured: the upstream requests the load asked for (offered: those sent, and
those the limiter refused, as the cost estimate counts them) and those sent, per minute,
against each documented limit; answers of 429 at the emulators; answers that failed
other than by a rate-limit refusal; and each client's part of each provider's requests.
"""

from __future__ import annotations

import hashlib
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
from emulators import EmulatorOptions
from gateway.datasources import source_class
from gateway.demo import DEMO_CREDENTIALS, demo_kinds
from gateway.servers import RedisProcess, emulator_servers, free_port

ROOT = Path(__file__).resolve().parents[1]
DURATION = float(os.environ.get("BENCH_REPLICAS_SECONDS", "60"))
# 0: Redis stays up (to tell what the outage costs from what the shared budget does).
OUTAGE = os.environ.get("BENCH_REPLICAS_REDIS_OUTAGE", "1") != "0"
# Workers per client (a client asks through one replica): enough that the providers with
# the lower limits are asked for more than they allow.
WORKERS = {"bulk": 12, "interactive": 4}
KEYS = {"bulk": "bench-bulk-client-key-0123", "interactive": "bench-interactive-key-0123"}
# Short: a request the budget has no slot for is refused soon, so the load keeps offering.
DEADLINE = float(os.environ.get("BENCH_REPLICAS_DEADLINE", "3"))
REFUSED = ("UPSTREAM_RATE_LIMITED", "CLIENT_RATE_LIMITED")
# Short, so the load keeps reaching the providers and their budgets are what holds it back.
CACHE_TTL = float(os.environ.get("BENCH_REPLICAS_CACHE_TTL", "1"))
FIELDS = ("contacts", "companies")
# Most of the load goes to the providers with the lowest limits (100 a minute), so that it
# asks them for more than they allow on this machine's pace; the others get some each.
LEANING = {"attio": 4, "haste": 4}
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
    for name, key in KEYS.items():
        digest = hashlib.sha256(key.encode()).hexdigest()
        lines += ["", "[[clients]]", f'name = "{name}"', f'api_key_sha256 = "{digest}"']
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
            f"request_deadline = {DEADLINE:g}",
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


def client(url: str, name: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=120, headers={"X-API-Key": KEYS[name]})


def cold_then_warm(one: str, two: str, urls: dict[str, str]) -> list[dict[str, Any]]:
    """Per provider, a page read cold on replica 1, then on replica 2."""
    rows = []
    with client(one, "bulk") as a, client(two, "interactive") as b:
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


class Load:
    """What the load's threads share: its counters (under `lock`) and the 1 s samples."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.offered: Counter[str] = Counter()  # per provider
        self.sent_by: Counter[tuple[str, str]] = Counter()  # per provider and client
        self.samples: list[dict[str, Any]] = []
        self.started = time.monotonic()

    def worker(self, url: str, name: str, seed: int) -> None:
        """Client `name` asking through the replica at `url` until told to stop."""
        rng = random.Random(seed)
        cursors: dict[tuple[str, str], str | None] = {}
        kinds = list(self.urls)
        with client(url, name) as http:
            while not self.stop.is_set():
                kind = rng.choices(kinds, [LEANING.get(k, 1) for k in kinds])[0]
                field = rng.choice(FIELDS)
                after = cursors.get((kind, field)) if rng.random() < 0.9 else None
                body = ask(http, field, kind, first=rng.choice(SIZES), after=after)
                with self.lock:
                    self.count(kind, name, field, body, cursors)

    def count(
        self,
        kind: str,
        name: str,
        field: str,
        body: dict[str, Any],
        cursors: dict[tuple[str, str], str | None],
    ) -> None:
        """Tally one answer; the caller holds `lock`."""
        cost = body.get("extensions", {}).get("cost", {})
        self.sent_by[(kind, name)] += cost.get("actual", 0)
        self.offered[kind] += cost.get("actual", 0)
        code = ""
        if body.get("errors"):
            code = str(body["errors"][0].get("extensions", {}).get("code", "?"))
        if code in REFUSED:
            # Not sent for want of budget: what it would have sent was offered.
            self.outcomes["refused"] += 1
            self.offered[kind] += max(1, (cost.get("estimated") or 0) - (cost.get("actual") or 0))
        elif code:
            self.failures[code] += 1
            self.outcomes["failed"] += 1
        else:
            self.outcomes["ok"] += 1
            info = body["data"][field]["pageInfo"]
            cursors[(kind, field)] = info["endCursor"] if info["hasNextPage"] else None

    def sampler(self) -> None:
        """Every second, the answers so far and each emulator's request count."""
        while not self.stop.is_set():
            with self.lock:
                answered = sum(self.outcomes.values())
            self.samples.append(
                {
                    "t": round(time.monotonic() - self.started, 2),
                    "answers": answered,
                    "upstream": {k: stats(u)["requests"] for k, u in self.urls.items()},
                }
            )
            self.stop.wait(1.0)


def outage(counts: Load, redis: RedisProcess) -> tuple[float, float]:
    """Wait out the load's three thirds, Redis killed in the middle one (if OUTAGE); when
    the middle third began and ended, in seconds since the load started."""
    time.sleep(DURATION / 3)
    down_from = time.monotonic() - counts.started
    if OUTAGE:
        redis.stop()
    time.sleep(DURATION / 3)
    if OUTAGE:
        redis.start()
    down_to = time.monotonic() - counts.started
    time.sleep(DURATION / 3)
    return down_from, down_to


def busiest_windows(kind: str, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The most sent to `kind` in any window of each documented length, from the 1 s
    samples (a window shorter than that is judged by the emulator's 429s, which count
    exactly)."""
    counts = [(s["t"], s["upstream"][kind]) for s in samples]
    windows = []
    for window in source_class(kind).rate_limits:
        spans = [b - a for ta, a in counts for tb, b in counts if 0 < tb - ta <= window.seconds]
        windows.append(
            {
                "window": f"{window.requests}/{window.seconds:g}s",
                "most": max(spans) if spans else None,
                "limit": window.requests,
            }
        )
    return windows


def provider_summary(
    kind: str, base: dict[str, Any], now: dict[str, Any], counts: Load, seconds: float
) -> dict[str, Any]:
    """What the load asked of `kind` and what it sent, from its emulator's stats before
    (`base`) and after (`now`) the load."""
    sent = now["requests"] - base["requests"]
    minutes = seconds / 60
    by_client = {name: counts.sent_by[(kind, name)] for name in WORKERS}
    counted = sum(by_client.values())
    return {
        "provider": kind,
        "upstream_requests": sent,
        "per_second": round(sent / seconds, 2),
        "offered_per_minute": round(counts.offered[kind] / minutes, 1),
        "sent_per_minute": round(sent / minutes, 1),
        # The documented limits as requests per minute (an hourly one is spread out).
        "limits_per_minute": [
            round(w.requests * 60 / w.seconds, 1) for w in source_class(kind).rate_limits
        ],
        "windows": busiest_windows(kind, counts.samples),
        "answers_429": now["by_status"].get("429", 0) - base["by_status"].get("429", 0),
        "by_client": by_client,
        "client_shares": {
            name: round(n / counted, 3) if counted else None for name, n in by_client.items()
        },
    }


def load(
    replicas: list[str], urls: dict[str, str], redis: RedisProcess
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Both replicas under load for DURATION s, Redis away for its middle third."""
    counts = Load(urls)
    base = {kind: stats(url) for kind, url in urls.items()}
    threads = [threading.Thread(target=counts.sampler)] + [
        threading.Thread(target=counts.worker, args=(url, name, 100 * r + w))
        for r, (url, name) in enumerate(zip(replicas, WORKERS, strict=True))
        for w in range(WORKERS[name])
    ]
    for thread in threads:
        thread.start()
    down_from, down_to = outage(counts, redis)
    counts.stop.set()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - counts.started
    providers = [
        provider_summary(kind, base[kind], stats(url), counts, seconds)
        for kind, url in urls.items()
    ]
    summary = {
        "seconds": round(seconds, 1),
        "answers": sum(counts.outcomes.values()),
        "refused_answers": counts.outcomes["refused"],
        "failed_answers": counts.outcomes["failed"],
        "failures": dict(counts.failures),
        "redis_outage": OUTAGE,
        "redis_down_from": round(down_from, 1),
        "redis_down_to": round(down_to, 1),
        "providers": providers,
    }
    return summary, counts.samples


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
    for ax in (top, bottom) if summary["redis_outage"] else ():
        ax.axvspan(summary["redis_down_from"], summary["redis_down_to"], alpha=0.15, color="red")
    top.set_ylabel("upstream requests/s")
    top.legend(fontsize=7)
    bottom.set_ylabel("answers/s (both replicas)")
    bottom.set_xlabel("seconds (shaded: Redis killed)")
    top.set_title("Two replicas, one Redis, limits enforced by the emulators")
    fig.tight_layout()
    fig.savefig(RESULTS / "replicas.png", dpi=120)


def start_replicas(exits: ExitStack, urls: dict[str, str], redis_url: str) -> list[str]:
    """Two gateway processes over the emulators at `urls` and one Redis, stopped when
    `exits` closes; their URLs."""
    folder = Path(exits.enter_context(tempfile.TemporaryDirectory()))
    path = folder / "replicas.toml"
    path.write_text(config(urls, redis_url))
    logs = [exits.enter_context((folder / f"replica{n}.log").open("wb")) for n in (1, 2)]
    try:
        return [exits.enter_context(replica(path, log)) for log in logs]
    except RuntimeError:
        # The logs go with the temporary folder: show why a replica did not start.
        for n in (1, 2):
            print((folder / f"replica{n}.log").read_text()[-3000:], file=sys.stderr)
        raise


def print_tables(cold: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    print(
        table(
            ["provider", "cold on replica 1", "same query on replica 2"],
            [[r["provider"], r["cold_on_1"], r["again_on_2"]] for r in cold],
        )
    )
    print(
        table(
            [
                "provider",
                "offered/min",
                "sent/min",
                "limits/min",
                "most in a window / limit",
                "429s",
                "bulk : interactive",
            ],
            [
                [
                    p["provider"],
                    p["offered_per_minute"],
                    p["sent_per_minute"],
                    ", ".join(f"{n:g}" for n in p["limits_per_minute"]),
                    ", ".join(
                        f"{w['most'] if w['most'] is not None else '-'}/{w['window']}"
                        for w in p["windows"]
                    ),
                    p["answers_429"],
                    " : ".join(str(n) for n in p["by_client"].values()),
                ]
                for p in summary["providers"]
            ],
        )
    )
    print(
        f"{summary['answers']} answers in {summary['seconds']} s, "
        f"{summary['refused_answers']} refused for want of budget, "
        f"{summary['failed_answers']} failed otherwise {summary['failures'] or ''}; "
        + (
            f"Redis killed from {summary['redis_down_from']} s to {summary['redis_down_to']} s"
            if OUTAGE
            else "Redis up throughout"
        )
    )


def overloaded_providers(summary: dict[str, Any]) -> list[str]:
    """The providers asked for more than a documented window allows in the run's time (an
    hourly window is not spread over the minute: the provider lets it all go at once)."""
    return [
        p["provider"]
        for p in summary["providers"]
        if any(
            p["offered_per_minute"] * summary["seconds"] / 60
            > w.requests * max(1.0, summary["seconds"] / w.seconds)
            for w in source_class(p["provider"]).rate_limits
        )
    ]


def targets_met(cold: list[dict[str, Any]], summary: dict[str, Any], overloaded: list[str]) -> bool:
    """Overload offered, replica 2's reads free, nothing failed, no 429s, and no window
    sent more than its limit."""
    return (
        bool(overloaded)
        and all(r["again_on_2"] == 0 for r in cold)
        and summary["failed_answers"] == 0
        and all(
            p["answers_429"] == 0
            and all(w["most"] is None or w["most"] <= w["limit"] for w in p["windows"])
            for p in summary["providers"]
        )
    )


def main() -> dict[str, Any]:
    with ExitStack() as exits:
        urls = emulator_servers(exits, demo_kinds(), EmulatorOptions(rate_limits=True))
        redis = exits.enter_context(RedisProcess())
        replicas = start_replicas(exits, urls, redis.url)
        cold = cold_then_warm(replicas[0], replicas[1], urls)
        summary, samples = load(replicas, urls, redis)
    print_tables(cold, summary)
    overloaded = overloaded_providers(summary)
    met = targets_met(cold, summary, overloaded)
    print(f"offered more than a documented limit allows: {', '.join(overloaded) or 'none'}")
    print(
        "targets: overload offered, replica 2 reads free, 0 failed, 0 429s, rates within "
        f"limits: {met}"
    )
    data = {
        "cold_then_warm": cold,
        "load": summary,
        "samples": samples,
        "overloaded": overloaded,
        "targets_met": met,
    }
    save("replicas", data)
    plot(summary, samples)
    return data


if __name__ == "__main__":
    main()
