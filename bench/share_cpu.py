"""In-process CPU per share use: gpugo's app and the raw baseline (baseline_raw.py) called
as ASGI apps in one process, no server and no client, over the seeded database.

    .venv/bin/python -m bench seed
    .venv/bin/python -m bench.share_cpu                  # --uses 4000 --rounds 5 --concurrency 32

Each round times ``--uses`` uses of each app (``time.process_time``, alternating who goes
first), ``--concurrency`` at a time as wrk's connections send them, cycling over the
seeded codes with no Accept header (what the ``share`` scenario sends). The apps run as
``bench run`` starts them: gpugo with rate limits off and logging at WARNING, the heap
frozen after start-up; the raw app behind uvicorn's proxy-headers middleware. What the
HTTP server itself costs (parsing, writing) is left out of both. ``--profile`` loops on
one app for py-spy instead (``py-spy record -f raw -p PID``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import seed
from bench.__main__ import DEFAULT_SERVER

DEFAULT_WORKDIR = Path(__file__).resolve().parent / ".work"

CLK_TCK = os.sysconf("SC_CLK_TCK")

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def share_scope(code: str, headers: list[tuple[bytes, bytes]] = []) -> dict[str, Any]:  # noqa: B006
    """What uvicorn (httptools) hands the app for wrk's ``GET /s/{code}`` (with ``headers``
    besides Host: another client's)."""
    path = f"/s/{code}"
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 18280),
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:18280"), *headers],
        "state": {},
    }


async def use(app: App, code: str, headers: list[tuple[bytes, bytes]]) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(share_scope(code, headers), receive, send)
    return status


# The request headers besides Host (--header): none, as wrk sends.
HEADERS: list[tuple[bytes, bytes]] = []


async def uses(app: App, codes: list[str], start: int, count: int, concurrency: int) -> None:
    """``count`` uses, ``concurrency`` at a time, codes from ``start`` on."""
    next_index = start
    left = count

    async def connection() -> None:
        nonlocal next_index, left
        while left > 0:
            left -= 1
            code = codes[next_index % len(codes)]
            next_index += 1
            status = await use(app, code, HEADERS)
            if status != 200:
                raise RuntimeError(f"/s/{code} answered {status}")

    await asyncio.gather(*(connection() for _ in range(concurrency)))


def gpugo_app(database_url: str, workdir: Path) -> Any:
    os.environ.update(
        GPUGO_DATABASE_URL=database_url,
        GPUGO_DATA_DIR=str(workdir / "gpugo-data"),
        GPUGO_RATE_LIMITS="off",
        GPUGO_LOG_LEVEL="WARNING",
        GPUGO_PROFILE="production",
    )
    from gpugo.app import create_app
    from gpugo.logs import configure_logging
    from gpugo.settings import Settings

    settings = Settings.from_env()
    configure_logging(settings)
    return create_app(settings, auto_migrate=False)


def raw_app(database_url: str) -> Any:
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from bench import baseline_raw

    dsn = database_url.replace("postgres://", "postgresql://", 1).split("?")[0]
    return ProxyHeadersMiddleware(baseline_raw.create_app(dsn, 10), trusted_hosts="127.0.0.1")


def database_cpu(db: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving database ``db``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
            if not title.startswith(b"postgres: ") or f" {db} ".encode() not in title:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


async def measure(args: argparse.Namespace) -> None:
    database_url = seed.db_url(args.server, args.db)
    codes = [c for c in (args.workdir / "codes.txt").read_text().split() if c]
    apps: dict[str, Any] = {}
    if "gpugo" in args.systems:
        query = f"?{args.gpugo_db_query}" if args.gpugo_db_query else ""
        apps["gpugo"] = gpugo_app(database_url + query, args.workdir)
    if "raw" in args.systems:
        apps["raw"] = raw_app(database_url)
    async with _lifespans(apps):
        for app in apps.values():  # warm: pools filled, statements prepared
            await uses(app, codes, 0, 2000, args.concurrency)
        gc.collect()
        gc.freeze()
        if args.profile:
            app = apps[args.systems[0]]
            print(f"profiling {args.systems[0]} in pid {os.getpid()}", flush=True)
            deadline = time.monotonic() + args.profile
            start = 0
            while time.monotonic() < deadline:
                await uses(app, codes, start, args.uses, args.concurrency)
                start += args.uses
            return
        per_use: dict[str, list[float]] = {name: [] for name in apps}
        database: dict[str, list[float]] = {name: [] for name in apps}
        start = 2000
        for round_ in range(args.rounds):
            order = list(apps) if round_ % 2 == 0 else list(reversed(apps))
            for name in order:
                began, began_db = time.process_time(), database_cpu(args.db)
                await uses(apps[name], codes, start, args.uses, args.concurrency)
                per_use[name].append((time.process_time() - began) / args.uses * 1e6)
                # The NOTIFYs of the last 5 ms go out after the last use: counted too.
                await asyncio.sleep(0.05)
                database[name].append((database_cpu(args.db) - began_db) / args.uses * 1e6)
                start += args.uses
        for name, figures in per_use.items():
            shown = " / ".join(f"{f:.0f}" for f in figures)
            print(
                f"{name:6} {statistics.median(figures):6.1f} us per use"
                f" (median; best {min(figures):.0f}; {shown})"
            )
            shown = " / ".join(f"{f:.0f}" for f in database[name])
            print(f"{'':6} {statistics.median(database[name]):6.1f} us of PostgreSQL ({shown})")


class _lifespans:
    def __init__(self, apps: dict[str, Any]) -> None:
        self.apps = apps
        self.contexts: list[Any] = []

    async def __aenter__(self) -> None:
        for app in self.apps.values():
            inner = getattr(app, "app", app)  # behind the proxy-headers middleware
            context = inner.router.lifespan_context(inner)
            await context.__aenter__()
            self.contexts.append(context)

    async def __aexit__(self, *exc: object) -> None:
        for context in reversed(self.contexts):
            await context.__aexit__(None, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=DEFAULT_SERVER)
    parser.add_argument("--db", default="gpugo_bench")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--uses", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--systems", nargs="+", default=["gpugo", "raw"])
    parser.add_argument("--gpugo-db-query", help="query string for gpugo's database URL")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        help="'Name: value' sent besides Host, e.g. 'User-Agent: curl/8.5.0' 'Accept: */*'",
    )
    parser.add_argument("--profile", type=float, default=0, help="seconds of looping on one app")
    args = parser.parse_args()
    for header in args.header:
        name, _, value = header.partition(":")
        HEADERS.append((name.strip().lower().encode(), value.strip().encode()))
    import uvloop

    uvloop.run(measure(args))


if __name__ == "__main__":
    main()
