"""`listener serve | migrate | check-config | ingest | customers import | calls import |
users add | sla explain`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from listener.config import Config, ConfigError, load_config
from listener.redact import redact_logs

EXIT_CONFIG = 2
T = TypeVar("T")


def _print_problems(path: str, problems: Sequence[tuple[str, str]]) -> None:
    print(f"{path}: the config has {len(problems)} problem(s):", file=sys.stderr)
    for key, message in problems:
        print(f"  {key}: {message}", file=sys.stderr)


def _load(path: str) -> Config:
    try:
        config = load_config(path)
    except ConfigError as exc:
        _print_problems(path, exc.problems)
        raise SystemExit(EXIT_CONFIG) from None
    redact_logs(config)
    return config


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.file)
    problems = _connector_problems(config)
    if problems:
        _print_problems(args.file, problems)
        return EXIT_CONFIG
    print(
        f"{args.file}: OK ({len(config.sources)} sources, {len(config.agents)} agents, "
        f"{len(config.sla.policies)} SLA policies)"
    )
    return 0


def _connector_problems(config: Config) -> list[tuple[str, str]]:
    """What only building the connectors finds (an X query too long once the brand's
    replies are added to it), so check-config catches what serve would refuse."""
    from connectors import build_connector
    from listener.app import brand_handles

    problems = []
    for index, source in enumerate(config.sources):
        if not source.enabled:
            continue
        try:
            connector = build_connector(source)
            if hasattr(connector, "watch_brand"):
                connector.watch_brand(brand_handles(config, source))
        except (LookupError, ValueError) as exc:
            problems.append((f"sources[{index}]", str(exc)))
    return problems


def _services(config: Config) -> object:
    from listener.app import build_services

    try:
        return build_services(config)
    except (LookupError, ValueError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def _run(config: Config, work: Coroutine[Any, Any, T], verbose: bool) -> T:
    """Run one command's database work; an unreachable or missing database is a clear
    one-line error (the password masked), not a traceback, unless --verbose."""
    try:
        return asyncio.run(work)
    except (OSError, DBAPIError) as exc:
        _fail_on_database(config, exc, verbose)
        raise


def _fail_on_database(config: Config, exc: Exception, verbose: bool) -> None:
    if verbose:
        return
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    where = make_url(config.database.url).render_as_string(hide_password=True)
    print(f"database error ({where}): {reason}", file=sys.stderr)
    raise SystemExit(1) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from listener.app import SchemaNotCurrent, init_app

    config = _load(args.config)
    services = _services(config)
    app = init_app(services, migrate=not args.no_migrate)  # type: ignore[arg-type]
    host, port = config.server.host, config.server.port
    try:
        # Bound before start-up, so a busy port fails before any poller runs.
        sock = socket.create_server((host, port))
    except OSError as exc:
        reason = str(exc.strerror).split(" (")[0]
        print(f"cannot listen on {host}:{port}: {reason}; stop the other process or "
              "change server.port", file=sys.stderr)
        return 1
    try:
        web.run_app(app, sock=sock, shutdown_timeout=30, access_log=None,
                    print=lambda _: print(f"Listener is running on http://{host}:{port} "
                                          "(Ctrl+C to stop)", flush=True))
    except (OSError, DBAPIError) as exc:
        _fail_on_database(config, exc, args.verbose)
        raise
    except SchemaNotCurrent as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    logging.getLogger("listener").info("stopped cleanly")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from listener import db

    config = _load(args.config)

    async def run() -> str | None:
        engine = db.create_engine(config.database.url)
        try:
            await db.migrate(engine)
            return await db.current_revision(engine)
        finally:
            await engine.dispose()

    print(f"database at revision {_run(config, run(), args.verbose)} (head)")
    return 0


def _file_command(args: argparse.Namespace,
                  work: Callable[[Any], Coroutine[Any, Any, Any]]) -> int:
    """A command that reads a file into the database: exit 1 when the file cannot be
    read, else the report's summary line (bad lines went to stderr as they came)."""
    config = _load(args.config)
    report = _run(config, work(_services(config)), args.verbose)
    if not report.readable:
        return 1
    print(report.summary())
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from listener.ingest_file import BATCH_SIZE, ingest_file

    return _file_command(args, lambda services: ingest_file(
        services, args.path, args.source, batch_size=args.batch_size or BATCH_SIZE))


def cmd_customers_import(args: argparse.Namespace) -> int:
    from listener.customers_import import import_customers

    return _file_command(args, lambda services: import_customers(services, args.path))


def cmd_calls_import(args: argparse.Namespace) -> int:
    from listener.calls_import import import_calls

    return _file_command(args, lambda services: import_calls(services, args.path,
                                                             args.backfill))


def _batch_size(text: str) -> int:
    try:
        lines = int(text)
    except ValueError:
        lines = 0
    if lines < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of lines above 0")
    return lines


def _duration(text: str) -> timedelta:
    from sla.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_users_add(args: argparse.Namespace) -> int:
    from listener.users_cli import add_user, read_password

    config = _load(args.config)
    password = read_password()
    services = _services(config)
    work = add_user(services, args.name, args.role, password, args.agent)  # type: ignore[arg-type]
    message, ok = _run(config, work, args.verbose)
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else EXIT_CONFIG


def cmd_sla_explain(args: argparse.Namespace) -> int:
    from listener.explain import explain

    config = _load(args.config)
    services = _services(config)
    work = explain(services, args.mention_id)  # type: ignore[arg-type]
    text, found = _run(config, work, args.verbose)
    print(text)
    return 0 if found else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="listener", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run pollers, router, SLA engine, dashboard and API")
    serve.add_argument("--config", required=True)
    serve.add_argument("--no-migrate", action="store_true", help="do not apply migrations")
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="upgrade the database to the latest schema")
    migrate.add_argument("--config", required=True)
    migrate.set_defaults(func=cmd_migrate)

    check = sub.add_parser("check-config", help="validate a config file (exit 2 on errors)")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)

    ingest = sub.add_parser("ingest", help="push mentions from a JSONL file through the pipeline")
    ingest.add_argument("--config", required=True)
    ingest.add_argument(
        "--source", help="source id for every line (default: the line's \"source\", else 'ingest')"
    )
    ingest.add_argument(
        "--batch-size", type=_batch_size, default=None, metavar="LINES",
        help="lines per transaction (default 10,000); smaller batches keep a `serve` on "
        "the same SQLite file from waiting long to write")
    ingest.add_argument("path")
    ingest.set_defaults(func=cmd_ingest)

    customers = sub.add_parser("customers", help="customer records")
    customers_sub = customers.add_subparsers(dest="customers_command", required=True)
    crm = customers_sub.add_parser(
        "import", help="create or update customers from a CRM export (.csv or .jsonl)")
    crm.add_argument("--config", required=True)
    crm.add_argument("path")
    crm.set_defaults(func=cmd_customers_import)

    calls = sub.add_parser("calls", help="call-centre contacts")
    calls_sub = calls.add_subparsers(dest="calls_command", required=True)
    calls_import = calls_sub.add_parser(
        "import", help="add calls from a call-centre export (.csv) to customers' timelines; "
                       "a promised callback becomes an open mention")
    calls_import.add_argument("--config", required=True)
    calls_import.add_argument(
        "--backfill", type=_duration, default=timedelta(days=1), metavar="DURATION",
        help="callbacks promised longer ago than this are kept as history, not queued "
             "(default 1d; e.g. 12h, 7d)")
    calls_import.add_argument("path")
    calls_import.set_defaults(func=cmd_calls_import)

    users = sub.add_parser("users", help="dashboard logins")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser(
        "add", help="create a login, or change its role, agent and password "
                    "(password from LISTENER_PASSWORD, else asked twice)")
    add.add_argument("--config", required=True)
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("agent", "lead", "admin"))
    add.add_argument("--agent", help="the configured agent id this login works as")
    add.set_defaults(func=cmd_users_add)

    sla = sub.add_parser("sla", help="SLA tools")
    sla_sub = sla.add_subparsers(dest="sla_command", required=True)
    explain = sla_sub.add_parser("explain", help="show how a mention's deadline was computed")
    explain.add_argument("--config", required=True)
    explain.add_argument("mention_id", type=int)
    explain.set_defaults(func=cmd_sla_explain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
