"""`crm-gateway`: serve the gateway, run an emulator, print the schema.

crm-gateway serve --demo               emulators on loopback + gateway on :8000 (+ /demo)
crm-gateway serve --config gw.toml     a real deployment
crm-gateway emulate revyops --port 8101
crm-gateway schema > schema.graphql
crm-gateway check --config gw.toml     can every provider be reached, with these credentials?
crm-gateway init                       a commented starter config, and its schema
crm-gateway config-schema              the config file's JSON Schema, for editors
crm-gateway webhooks list --config gw.toml   the providers' webhooks (sync: register them)
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import socket
import sys
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError

from gateway import logs
from gateway.auth import exposed_without_auth
from gateway.configschema import config_schema
from gateway.demo import DEMO_GATEWAY_PORT, demo_kinds, demo_settings, emulator_lines
from gateway.providers import KINDS, PROVIDERS, create_emulator, emulator_options
from gateway.serving import ServerSettings, uvicorn_config
from gateway.settings import ConfigError, Settings, load_settings
from gateway.starter import SCHEMA_FILE, starter_config
from gateway.version import gateway_version

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="crm-gateway",
        description="GraphQL gateway over CRM REST APIs.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {gateway_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    _serve_arguments(
        commands.add_parser(
            "serve", help="Run the gateway (GraphQL at /graphql).", formatter_class=formatter
        )
    )
    _emulate_arguments(
        commands.add_parser(
            "emulate", help="Run one provider API emulator.", formatter_class=formatter
        )
    )
    commands.add_parser("schema", help="Print the GraphQL schema (SDL).", formatter_class=formatter)
    check = commands.add_parser(
        "check",
        help="Check a config: every credential resolves and every provider answers one cheap "
        "authenticated request. Exit status 1 when one does not.",
        formatter_class=formatter,
    )
    check.add_argument("--config", type=Path, required=True, help="TOML file to check.")
    _init_arguments(
        commands.add_parser(
            "init",
            help="Write a commented starter config (and its JSON Schema beside it).",
            formatter_class=formatter,
        )
    )
    commands.add_parser(
        "config-schema",
        help="Print the config file's JSON Schema (for editors: Taplo, Even Better TOML).",
        formatter_class=formatter,
    )
    _webhooks_arguments(
        commands.add_parser(
            "webhooks",
            help="List or register the webhooks of the providers with `webhooks = true`.",
            formatter_class=formatter,
        )
    )
    return parser


def _init_arguments(init: argparse.ArgumentParser) -> None:
    init.add_argument(
        "--config", type=Path, default=Path("crm-gateway.toml"), help="The file to write."
    )
    init.add_argument(
        "--kind",
        dest="kinds",
        action="append",
        choices=KINDS,
        help="A provider kind to configure; repeat for several (default: every kind).",
    )
    init.add_argument("--force", action="store_true", help="Overwrite files that exist.")


def _webhooks_arguments(webhooks: argparse.ArgumentParser) -> None:
    actions = webhooks.add_subparsers(dest="action", required=True)
    for action, text in (
        ("list", "Print each provider's webhooks: id, status, URL, events (no secrets)."),
        ("sync", "Register, reuse or replace each webhook as start-up does; say what it did."),
    ):
        parser = actions.add_parser(action, help=text, description=text)
        parser.add_argument("--config", type=Path, required=True, help="The gateway's TOML file.")


def _serve_arguments(serve: argparse.ArgumentParser) -> None:
    source = serve.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, help="TOML file of provider instances.")
    source.add_argument(
        "--demo",
        action="store_true",
        help="Start every built-in emulator on loopback and use them as the providers; "
        "GraphiQL, introspection, field suggestions, OpenAPI, remoteData and subscriptions on, "
        "and a live contact list at /demo.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="Interface to listen on.")
    serve.add_argument("--port", type=int, default=DEMO_GATEWAY_PORT, help="Gateway port.")
    serve.add_argument(
        "--no-batching",
        action="store_true",
        help="Naive mode: one upstream request per lookup (for comparisons only).",
    )
    serve.add_argument(
        "--no-cache", action="store_true", help="Do not cache upstream reads across requests."
    )
    serve.add_argument(
        "--no-blocks",
        action="store_true",
        help="Fetch each list window with the exact page that fits it instead of reading "
        "cached blocks (for comparisons only).",
    )
    serve.add_argument(
        "--emulator-rate-limits",
        action="store_true",
        help="With --demo: the emulators enforce their providers' rate limits, and the "
        "gateway keeps under them (without it, neither throttles).",
    )
    serve.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="Log level of the gateway and the server (default: the settings' log_level, info).",
    )
    serve.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="text, or json: one object per line (default: the settings' log_format, text).",
    )


def _emulate_arguments(emulate: argparse.ArgumentParser) -> None:
    emulate.add_argument("kind", choices=KINDS, help="Which provider API to emulate.")
    emulate.add_argument("--port", type=int, help="Port; none: the kind's demo port (8101-8105).")
    emulate.add_argument("--host", default="127.0.0.1", help="Interface to listen on.")
    # No default here: the emulators' own is the demo's, and reading it would load their
    # package whenever the CLI runs.
    emulate.add_argument(
        "--seed", type=int, default=argparse.SUPPRESS, help="Data seed (default: the demo's)."
    )
    emulate.add_argument(
        "--no-rate-limit", action="store_true", help="Do not enforce the API's rate limits."
    )
    emulate.add_argument("--latency-ms", type=float, default=0.0, help="Added latency.")
    emulate.add_argument("--error-rate", type=float, default=0.0, help="Share answered 500.")
    emulate.add_argument("--rate-limit-rate", type=float, default=0.0, help="Share answered 429.")
    emulate.add_argument(
        "--timeout-rate", type=float, default=0.0, help="Share that hang, then answer 504."
    )
    emulate.add_argument(
        "--garbage-rate", type=float, default=0.0, help="Share answered 200 with a bad body."
    )
    emulate.add_argument(
        "--require-api-key",
        action="store_true",
        help="RevyOps only: also require the workspace's x-api-key (demo: revyops-demo-key).",
    )
    emulate.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="Log level.")
    emulate.add_argument("--log-format", choices=LOG_FORMATS, default="text", help="Log format.")


class PortInUse(Exception):
    """A port to listen on is taken; the message says which and what to do."""


Listener = tuple[uvicorn.Server, socket.socket]


# True in the tasks serving the demo's emulators: their uvicorn start-up and shutdown lines
# would repeat the gateway's five times over, and say nothing their banner lines do not.
_QUIET: ContextVar[bool] = ContextVar("quiet", default=False)


class _QuietWhereAsked(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not _QUIET.get()


async def _serve_all(listeners: Sequence[Listener], quiet: Sequence[Listener] = ()) -> None:
    """Serve them all; `quiet` ones log only warnings and errors of uvicorn's."""

    async def serve(listener: Listener, hush: bool) -> None:
        # Each gathered task runs in its own copy of the context: this stays in this task.
        _QUIET.set(hush)
        server, sock = listener
        await server.serve(sockets=[sock])

    tasks = [serve(each, True) for each in quiet] + [serve(each, False) for each in listeners]
    # uvicorn logs its start-up and shutdown lines here; the filter goes with the servers.
    uvicorn_log = logging.getLogger("uvicorn.error")
    quieting = _QuietWhereAsked()
    uvicorn_log.addFilter(quieting)
    try:
        await asyncio.gather(*tasks)
    finally:
        uvicorn_log.removeFilter(quieting)


def _bind(host: str, port: int, hint: str) -> socket.socket:
    """A socket bound to host:port, so a taken port is one clear message, not a traceback
    from every server started beside it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Made as asyncio makes its own, so it also sets TCP_NODELAY on each connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        reason = "is already in use" if error.errno == errno.EADDRINUSE else error.strerror
        raise PortInUse(f"cannot listen on {host}:{port}: the port {reason}; {hint}") from None
    return sock


def _server(
    app: Any,
    host: str,
    port: int,
    hint: str,
    limits: ServerSettings | None = None,
    **options: Any,
) -> Listener:
    """`limits` of the gateway's settings; an emulator's are the defaults. `options`: more of
    uvicorn's (the gateway bounds WebSocket messages as it bounds bodies)."""
    sock = _bind(host, port, hint)
    # No access lines: the gateway logs one line per operation (`gateway.operation`). No
    # log config or level: `logs.configure` has set up the process's logging, uvicorn's too.
    config = uvicorn_config(
        app, host, port, limits or ServerSettings(), log_config=None, access_log=False, **options
    )
    return uvicorn.Server(config), sock


def _gateway_server(settings: Settings, args: argparse.Namespace) -> Listener:
    """The gateway's server; with `--demo`, the live contact list at /demo too."""
    from gateway.app import create_app
    from gateway.demopage import demo_router

    app = create_app(settings, probe=True)
    if args.demo:
        app.include_router(demo_router())
    # WebSocket messages are bounded as bodies are (the app checks them too).
    limit = settings.max_request_size
    return _server(app, args.host, args.port, "pass --port", settings.server, ws_max_size=limit)


def _serve(args: argparse.Namespace) -> int:

    emulators: list[Listener] = []
    if args.demo:
        options = emulator_options(rate_limits=args.emulator_rate_limits)
        hint = "is another `crm-gateway serve --demo` running?"
        try:
            for kind in demo_kinds():
                app = create_emulator(kind, options)
                emulators.append(_server(app, "127.0.0.1", PROVIDERS[kind].demo_port, hint))
        except PortInUse:
            _close(emulators)
            raise
        settings: Settings = demo_settings(rate_limits=args.emulator_rate_limits, port=args.port)
    else:
        settings = load_settings(args.config)
        if not settings.providers:
            raise ConfigError("no providers configured: pass --config FILE, or --demo")
    if args.log_level:
        settings = settings.model_copy(update={"log_level": args.log_level.upper()})
    if args.log_format:
        settings = settings.model_copy(update={"log_format": args.log_format})
    if args.no_batching or args.no_cache or args.no_blocks:
        settings = settings.model_copy(
            update={
                "batching": settings.batching and not args.no_batching,
                "cache": settings.cache and not args.no_cache,
                "blocks": settings.blocks and not args.no_blocks,
            }
        )
    logs.configure(settings.log_level, settings.log_format)
    try:
        server = _gateway_server(settings, args)
    except PortInUse:
        _close(emulators)
        raise
    if exposed_without_auth(args.host, settings):
        logging.getLogger("gateway").warning(
            "listening on %s with no [[clients]] or [auth.jwt] configured: anyone who reaches "
            "the port can read and write every provider",
            args.host,
        )
    ide = " (GraphiQL)" if settings.graphiql else ""
    banner = [*emulator_lines()] if args.demo else []
    banner.append(f"GraphQL: http://{args.host}:{args.port}/graphql{ide}")
    if args.demo:
        banner.append(f"Demo:    http://{args.host}:{args.port}/demo (every CRM's contacts, live)")
    if settings.log_format == "json":  # nothing but JSON objects on stderr
        for line in banner:
            logging.getLogger("gateway").info(line)
    else:
        print(*banner, sep="\n", file=sys.stderr)
    asyncio.run(_serve_all([server], quiet=emulators))
    return 0


def _close(listeners: Sequence[Listener]) -> None:
    for _, sock in listeners:
        sock.close()


def _emulate(args: argparse.Namespace) -> int:
    faults = {
        "latency_ms": args.latency_ms,
        "error_rate": args.error_rate,
        "rate_limit_rate": args.rate_limit_rate,
        "timeout_rate": args.timeout_rate,
        "garbage_rate": args.garbage_rate,
    }
    seed = {"seed": args.seed} if "seed" in args else {}
    options = emulator_options(
        faults, rate_limits=not args.no_rate_limit, require_api_key=args.require_api_key, **seed
    )
    if args.require_api_key and args.kind != "revyops":
        raise ConfigError(f"--require-api-key: only the revyops API has one, not {args.kind}")
    port = args.port or PROVIDERS[args.kind].demo_port
    logs.configure(args.log_level, args.log_format)
    app = create_emulator(args.kind, options)
    asyncio.run(_serve_all([_server(app, args.host, port, "pass --port")]))
    return 0


def _webhooks(args: argparse.Namespace) -> int:
    from gateway.live import commands

    settings = load_settings(args.config)
    run = commands.sync_webhooks if args.action == "sync" else commands.list_webhooks
    return 0 if asyncio.run(run(settings, print)) else 1


def _schema() -> int:
    from schema import schema

    print(schema.as_str())
    return 0


def _check(args: argparse.Namespace) -> int:
    from gateway.check import check, table

    settings = load_settings(args.config)
    if not settings.providers:
        raise ConfigError(f"{args.config}: no providers configured")
    results = asyncio.run(check(settings))
    print(table(results))
    failed = [r.provider for r in results if not r.usable]
    if failed:
        print(f"crm-gateway: not usable: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _init(args: argparse.Namespace) -> int:
    config: Path = args.config
    schema = config.parent / SCHEMA_FILE
    if not args.force:
        for path in (config, schema):
            if path.exists():
                raise ConfigError(f"{path} exists; pass --force to overwrite it")
    schema.write_text(json.dumps(config_schema(), indent=2) + "\n", encoding="utf-8")
    config.write_text(starter_config(args.kinds or list(KINDS), config.name), encoding="utf-8")
    print(f"wrote {config} and {schema}", file=sys.stderr)
    return 0


def _config_schema() -> int:
    print(json.dumps(config_schema(), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "emulate":
            return _emulate(args)
        if args.command == "check":
            return _check(args)
        if args.command == "init":
            return _init(args)
        if args.command == "config-schema":
            return _config_schema()
        if args.command == "webhooks":
            return _webhooks(args)
        return _schema()
    except ConfigError as error:
        print(f"crm-gateway: {error}", file=sys.stderr)
        return 2
    except PortInUse as error:
        print(f"crm-gateway: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the servers have shut down and logged it, no traceback
        return 130
    except ValidationError as error:  # e.g. a fault rate outside 0..1
        problems = "; ".join(
            f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
            for e in error.errors()
        )
        print(f"crm-gateway: {problems}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
