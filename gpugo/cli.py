"""The `gpugo` command: serve, migrate, user create, user set-plan, user reset-password,
schema export, releases validate, audit tail."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import json
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from tortoise import Tortoise

from gpugo import clock, db
from gpugo.errors import GpugoError
from gpugo.plans import PLANS
from gpugo.settings import Settings, SettingsError
from gpugo.timefmt import iso

# Exit codes scripts can rely on.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpugo", description="GPU Go control plane server.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server (applies migrations first)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1, GPUGO_HOST)")
    serve.add_argument("--port", type=int, help="port to bind (default 8080, GPUGO_PORT)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes serving the one port (PostgreSQL only; default 1)",
    )
    # A worker of `serve --workers`: the listening socket it inherited (no migrations).
    serve.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)

    commands.add_parser("migrate", help="apply pending database migrations")

    user = commands.add_parser("user", help="manage user accounts")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = user_commands.add_parser("create", help="create an account")
    create.add_argument("email")
    create.add_argument("--plan", default="free", choices=PLANS)
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    set_plan = user_commands.add_parser("set-plan", help="change an account's plan")
    set_plan.add_argument("email")
    set_plan.add_argument("plan", choices=PLANS)
    reset = user_commands.add_parser(
        "reset-password",
        help="set a new password for an account and end all its sessions",
        description="The new password comes from a prompt (asked twice), from standard input "
        "(--password-stdin), or is generated and printed once (--generate). It is never "
        "logged. Every session of the account ends; personal access tokens keep working.",
    )
    reset.add_argument("email")
    source = reset.add_mutually_exclusive_group()
    source.add_argument(
        "--password-stdin", action="store_true", help="read the new password from standard input"
    )
    source.add_argument(
        "--generate",
        action="store_true",
        help="generate a random password and print it once (give it to the user)",
    )

    audit = commands.add_parser("audit", help="the security log (docs/audit.md)")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    tail = audit_commands.add_parser("tail", help="print the latest events, one per line")
    tail.add_argument("--user", metavar="EMAIL", help="only this account's events")
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.add_argument("-n", "--lines", type=int, default=20, help="how many (default 20)")

    export = commands.add_parser("export-schema", help="write the GraphQL SDL to a file")
    export.add_argument("path", nargs="?", default="schema.graphql")

    releases = commands.add_parser("releases", help="the release catalogue agents download from")
    releases_commands = releases.add_subparsers(
        dest="releases_command", required=True, metavar="ACTION"
    )
    validate = releases_commands.add_parser(
        "validate", help="check a release manifest file (GPUGO_RELEASES_FILE)"
    )
    validate.add_argument("file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        overrides = {}
        if args.command == "serve":
            overrides = {"host": args.host, "port": args.port}
        settings = Settings.from_env(**overrides)
        return _dispatch(args, settings)
    except SettingsError as exc:
        print(f"gpugo: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        print(f"gpugo: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        if args.listen_fd is not None:
            return _serve(settings, listen_fd=args.listen_fd)
        if args.workers != 1:
            from gpugo.supervisor import serve_workers

            _check_workers(args.workers, settings)
            _migrate_for_serve(settings)
            return serve_workers(settings, args.workers)
        return _serve(settings)
    if args.command == "migrate":
        _run_db(settings, lambda: db.migrate(settings), migrate_first=False)
        print("migrations applied")
        return EXIT_OK
    if args.command == "export-schema":
        from gpugo.schema import export_sdl

        export_sdl(args.path)
        print(f"wrote {args.path}")
        return EXIT_OK
    if args.command == "releases":
        return _validate_releases(args.file, settings)
    if args.command == "audit":
        return _audit_tail(args, settings)
    if args.user_command == "create":
        password = _read_password(args.password_stdin)
        from gpugo.services import users

        view = _run_db(
            settings,
            lambda: users.create_user(email=args.email, password=password, plan=args.plan),
        )
        print(f"created {view.email} ({view.plan})")
        return EXIT_OK
    if args.user_command == "reset-password":
        return _reset_password(args, settings)
    from gpugo.services import users

    view = _run_db(settings, lambda: _audited(users.set_plan(email=args.email, plan=args.plan)))
    print(f"{view.email} is now on the {view.plan} plan")
    return EXIT_OK


async def _audited(work: Awaitable[T]) -> T:
    """Run an operator's change with the audit log bound, and write its rows at once."""
    from gpugo.services import audit

    audit_log = audit.AuditLog(flush_seconds=1.0, capacity=1000)
    audit.bind(audit_log)
    try:
        return await work
    finally:
        await audit_log.flush()


# Between two looks for new events with --follow.
FOLLOW_SECONDS = 1.0
# Rows reach the table up to a flush interval after their time (GPUGO_AUDIT_FLUSH_SECONDS,
# of every instance): --follow looks this far back and skips what it has printed.
FOLLOW_LATE = timedelta(seconds=30)


def _audit_tail(args: argparse.Namespace, settings: Settings) -> int:
    """Print the latest events (oldest first); with --follow, new ones as they are written."""
    from gpugo.services import audit

    if args.lines < 1:
        raise CliError("--lines must be at least 1", EXIT_USAGE)

    async def tail() -> None:
        printed: dict[str, datetime] = {}
        since = None
        while True:
            batch = await audit.operator_events(
                email=args.user, limit=args.lines if since is None else 1000, since=since
            )
            for found in batch:
                if found.event.id not in printed:
                    print(_event_line(found, as_json=args.json), flush=True)
                    printed[found.event.id] = found.event.at
            if not args.follow:
                return
            since = max([*printed.values(), clock.now() - FOLLOW_LATE]) - FOLLOW_LATE
            printed = {k: at for k, at in printed.items() if at >= since}
            await asyncio.sleep(FOLLOW_SECONDS)

    _run_db(settings, tail)
    return EXIT_OK


def _event_line(found: Any, *, as_json: bool) -> str:
    event = found.event
    fields = {
        "at": iso(event.at),
        "kind": event.kind,
        "user": found.email or found.user_id,
        "actor": event.actor_kind,
        "actor_id": event.actor_id,
        "address": event.address,
        "user_agent": event.user_agent,
        "subject_kind": event.subject_kind,
        "subject_id": event.subject_id,
        "outcome": event.outcome,
        "detail": event.detail,
    }
    if as_json:
        return json.dumps(fields)
    text = " ".join(
        f"{name}={value!r}" if " " in str(value) else f"{name}={value}"
        for name, value in fields.items()
        if value is not None and name not in ("at", "kind")
    )
    return f"{fields['at']} {event.kind} {text}"


def _validate_releases(path: str, settings: Settings) -> int:
    """The manifest as the server would load it: 0 when it would serve it, 2 otherwise.

    Valid entries the agent would not use as one may expect are warnings (stderr, exit 0).
    """
    from gpugo.inputs.releases import ManifestError, load_manifest, warnings

    try:
        manifest = load_manifest(path, max_bytes=settings.releases_max_bytes)
    except ManifestError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    for warning in warnings(manifest):
        print(f"gpugo: warning: {warning}", file=sys.stderr)
    artifacts = sum(len(r.artifacts) for r in manifest.releases)
    print(f"{path}: {len(manifest.releases)} releases, {artifacts} artifacts")
    return EXIT_OK


# Generated passwords: 16 characters of secrets.token_urlsafe, about 96 bits.
GENERATED_PASSWORD_BYTES = 12


def _reset_password(args: argparse.Namespace, settings: Settings) -> int:
    from gpugo.services import users

    if args.generate:
        import secrets

        password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
    else:
        password = _read_password(args.password_stdin)
    view, ended = _run_db(
        settings,
        lambda: _audited(users.reset_password(email=args.email, password=password)),
    )
    print(f"password of {view.email} reset; {ended} session(s) ended")
    if args.generate:
        # Shown this once; only its hash is kept.
        print(f"new password: {password}")
    return EXIT_OK


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise CliError("passwords do not match", EXIT_USAGE)
    else:
        raise CliError("no terminal for a password prompt; use --password-stdin", EXIT_USAGE)
    if not password:
        raise CliError("the password is empty", EXIT_USAGE)
    return password


T = TypeVar("T")


def _run_db(
    settings: Settings, work: Callable[[], Awaitable[T]], *, migrate_first: bool = True
) -> T:
    async def run() -> T:
        try:
            if migrate_first:
                await db.migrate(settings)
            url = settings.effective_database_url
            db.prepare_sqlite(settings)
            await Tortoise.init(config=db.tortoise_config(url), _enable_global_fallback=True)
            return await work()
        finally:
            await Tortoise.close_connections()

    try:
        return asyncio.run(run())
    except GpugoError as exc:
        raise CliError(exc.message) from None
    except (OSError, ConnectionError) as exc:
        raise CliError(f"cannot reach the database: {exc}", EXIT_DATABASE) from None
    except Exception as exc:
        if _is_database_error(exc):
            raise CliError(f"database error: {exc}", EXIT_DATABASE) from None
        raise


def _is_database_error(exc: Exception) -> bool:
    module = type(exc).__module__
    return module.startswith(("tortoise", "asyncpg", "sqlite3", "aiosqlite"))


def _check_workers(workers: int, settings: Settings) -> None:
    if workers < 1:
        raise CliError("--workers must be at least 1", EXIT_USAGE)
    if not settings.effective_database_url.startswith(("postgres://", "postgresql://")):
        raise CliError(
            "--workers needs PostgreSQL (GPUGO_DATABASE_URL=postgres://...): an SQLite "
            "database is served by one process; drop --workers or move to PostgreSQL",
            EXIT_USAGE,
        )


def _migrate_for_serve(settings: Settings) -> None:
    from gpugo.logs import configure_logging

    configure_logging(settings)
    try:
        asyncio.run(db.migrate(settings))
    except (OSError, ConnectionError) as exc:
        raise CliError(f"cannot reach the database: {exc}", EXIT_DATABASE) from None
    except Exception as exc:
        if _is_database_error(exc):
            raise CliError(f"database error: {exc}", EXIT_DATABASE) from None
        raise


def _serve(settings: Settings, *, listen_fd: int | None = None) -> int:
    """One process serving: its own port, or (a worker) the socket it inherited."""
    import uvicorn

    from gpugo.app import create_app
    from gpugo.gcwatch import collect_between_requests, freeze_after_setup, watch_collections
    from gpugo.logs import configure_logging
    from gpugo.serving import ensure_file_limit, http_protocol

    if listen_fd is None:
        _migrate_for_serve(settings)
    else:
        configure_logging(settings)
    # The connection cap the open-file limit allows (raised to the hard limit first).
    settings = settings.replace(max_connections=ensure_file_limit(settings.max_connections))
    watch_collections()
    app = create_app(settings, auto_migrate=False)
    events = app.state.ctx.events

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            # What exists now (modules, schema, routes, pools) lives as long as the process:
            # frozen, the collector's full passes no longer walk it (under load those passes
            # paused every request for ~40 ms; frozen, ~5 ms).
            gc.collect()
            gc.freeze()
            # Live connections' objects are frozen after their set-up too (gcwatch.py).
            freeze_after_setup()
            # And full passes run between requests, not in the middle of a burst.
            waiting = app.state.ctx.requests_first
            collect_between_requests(lambda: waiting.unanswered == 0)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Live streams (agent event streams, subscriptions) end first, so the drain
            # waits for requests only, not for its timeout; clients reconnect elsewhere.
            events.close_streams()
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        # Read deadlines and the connection cap (gpugo/serving.py).
        http=http_protocol(settings),
        log_config=None,
        # gpugo.access replaces uvicorn's access log; off, uvicorn no longer formats an
        # access line per request for a logger that would drop it.
        access_log=False,
        server_header=False,
        # The app decides who the client is (GPUGO_TRUSTED_PROXIES, gpugo/proxies.py):
        # uvicorn's own rewrite would believe X-Forwarded-For from any local process.
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
    server = Server(config)
    sockets = None
    if listen_fd is None:
        print(f"gpugo serving on {settings.effective_public_url}", file=sys.stderr, flush=True)
    else:
        sockets = [socket.socket(fileno=listen_fd)]
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets)
    # As uvicorn.run: a server that could not start (port taken) exits with 3.
    return EXIT_OK if server.started else 3


if __name__ == "__main__":
    sys.exit(main())
