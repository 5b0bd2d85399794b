"""`crm-gateway`: serve the gateway, run an emulator, print the schema.

crm-gateway serve --demo               emulators on loopback + gateway on :8000
crm-gateway serve --config gw.toml     a real deployment
crm-gateway emulate revyops --port 8101
crm-gateway schema > schema.graphql
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError

from gateway.demo import DEMO_GATEWAY_PORT, demo_kinds, demo_settings
from gateway.emulators import DEMO_PORTS, KINDS, EmulatorOptions, Faults, create_emulator
from gateway.settings import ConfigError, Settings, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm-gateway", description="GraphQL gateway over CRM REST APIs."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="Run the gateway (GraphQL at /graphql).")
    serve.add_argument("--config", type=Path, help="TOML file of provider instances.")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="Start every built-in emulator on loopback and use them as the providers; "
        "GraphiQL, introspection, field suggestions, OpenAPI and remoteData on.",
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
        "--emulator-rate-limits",
        action="store_true",
        help="With --demo: let the emulators enforce their providers' rate limits.",
    )

    emulate = commands.add_parser("emulate", help="Run one provider API emulator.")
    emulate.add_argument("kind", choices=KINDS, help="Which provider API to emulate.")
    emulate.add_argument("--port", type=int, help="Port (default: the kind's demo port).")
    emulate.add_argument("--host", default="127.0.0.1", help="Interface to listen on.")
    emulate.add_argument("--seed", type=int, default=EmulatorOptions.seed, help="Data seed.")
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

    commands.add_parser("schema", help="Print the GraphQL schema (SDL).")
    return parser


async def _serve_all(servers: Sequence[uvicorn.Server]) -> None:
    await asyncio.gather(*(s.serve() for s in servers))


def _server(app: Any, host: str, port: int) -> uvicorn.Server:
    # No access log line per request: a log call per request on the warm path; what an
    # operation did belongs in one structured line per operation.
    config = uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False)
    return uvicorn.Server(config)


def _serve(args: argparse.Namespace) -> int:
    from gateway.app import create_app

    servers = []
    if args.demo:
        options = EmulatorOptions(rate_limits=args.emulator_rate_limits)
        for kind in demo_kinds():
            servers.append(_server(create_emulator(kind, options), "127.0.0.1", DEMO_PORTS[kind]))
        settings: Settings = demo_settings()
    else:
        settings = load_settings(args.config)
        if not settings.providers:
            raise ConfigError("no providers configured: pass --config FILE, or --demo")
    if args.no_batching or args.no_cache:
        settings = settings.model_copy(
            update={
                "batching": settings.batching and not args.no_batching,
                "cache": settings.cache and not args.no_cache,
            }
        )
    servers.append(_server(create_app(settings), args.host, args.port))
    ide = " (GraphiQL)" if settings.graphiql else ""
    print(f"GraphQL: http://{args.host}:{args.port}/graphql{ide}", file=sys.stderr)
    asyncio.run(_serve_all(servers))
    return 0


def _emulate(args: argparse.Namespace) -> int:
    faults = Faults(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        rate_limit_rate=args.rate_limit_rate,
        timeout_rate=args.timeout_rate,
        garbage_rate=args.garbage_rate,
    )
    options = EmulatorOptions(seed=args.seed, rate_limits=not args.no_rate_limit, faults=faults)
    port = args.port or DEMO_PORTS[args.kind]
    asyncio.run(_serve_all([_server(create_emulator(args.kind, options), args.host, port)]))
    return 0


def _schema() -> int:
    from schema import schema

    print(schema.as_str())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "emulate":
            return _emulate(args)
        return _schema()
    except ConfigError as error:
        print(f"crm-gateway: {error}", file=sys.stderr)
        return 2
    except ValidationError as error:  # e.g. a fault rate outside 0..1
        problems = "; ".join(
            f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
            for e in error.errors()
        )
        print(f"crm-gateway: {problems}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
