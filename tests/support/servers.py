"""Servers the tests start: the gateway in a thread over emulators, the CLI as a process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from gateway.app import create_app
from gateway.demo import demo_provider
from gateway.servers import ServerThread
from gateway.settings import ProviderSettings, Settings
from tests.support.clients import GraphQLClient


def demo_providers(urls: Mapping[str, str], **update: Any) -> list[ProviderSettings]:
    """Each emulator at `urls` configured as the demo does, with `update`; the gateway's
    rate limits off, as the tests' emulators do not throttle."""
    return [
        demo_provider(kind, url).model_copy(update={"rate_limit": False, **update})
        for kind, url in urls.items()
    ]


def gateway_on(urls: Mapping[str, str], **settings: Any) -> ServerThread:
    """The gateway over the emulators at `urls`, with `settings`, to run in a thread."""
    return ServerThread(create_app(Settings(providers=demo_providers(urls), **settings)))


@contextmanager
def serving(settings: Settings) -> Iterator[GraphQLClient]:
    """A client of the gateway of `settings`, running in a thread until the block ends."""
    with ServerThread(create_app(settings)) as server:
        client = GraphQLClient(server.url)
        try:
            yield client
        finally:
            client.http.close()


@contextmanager
def client_on(urls: Mapping[str, str], **settings: Any) -> Iterator[GraphQLClient]:
    """A client of `gateway_on(urls, **settings)`, running until the block ends."""
    with serving(Settings(providers=demo_providers(urls), **settings)) as client:
        yield client


def _command() -> list[str]:
    script = shutil.which("crm-gateway", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "gateway.cli"]


@contextmanager
def running(*args: str, stderr: list[str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`crm-gateway *args` until the block ends; what it wrote to stderr is appended to
    `stderr`."""
    process = subprocess.Popen(
        [*_command(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        if stderr is not None:
            stderr.append(err.decode())


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> httpx.Response:
    """The first answer of `url`, once `process` serves it; fails if the process dies."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if process.poll() is not None:
                message = process.stderr.read().decode() if process.stderr else "died"
                raise AssertionError(message) from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
