"""How long a page of the overview takes over a fleet of 1,000 machines of 8 GPUs.

    .venv/bin/python -m bench.fleet_pages                      # SQLite, in a temporary directory
    .venv/bin/python -m bench.fleet_pages --postgres postgres://postgres@127.0.0.1:5432/postgres

A fresh database (a temporary SQLite file, or a throwaway PostgreSQL database that is
dropped afterwards), one Pro user and the fleet of ``tests/schema/test_fleet_scale.py``
seeded in bulk (``tests.support.seed_fleet``: a third online with a reading per GPU,
a third offline, a third pending). Then each page that test checks (the first, a
state, an order, a search, the last), asked as the overview asks it (the same GraphQL
query, cookie session), once to warm up and ``--runs`` times in turn; prints each
page's median and its spread, in milliseconds, from the request to the parsed answer
(the app in process over ASGI: no network, everything else included).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bench.live_latency import throwaway_database
from gpugo import db
from gpugo.app import create_app
from gpugo.models import User as UserModel
from gpugo.settings import Settings
from tests.schema.support import Gql
from tests.schema.test_fleet_scale import GPUS, MACHINES, OVERVIEW, PAGES, variables
from tests.support import PASSWORD, PUBLIC_URL, User, seed_fleet


@contextlib.asynccontextmanager
async def database(postgres: str | None, data_dir: Path) -> AsyncIterator[str]:
    if postgres:
        async with throwaway_database(postgres) as url:
            yield url
    else:
        yield f"sqlite://{data_dir / 'fleet.sqlite3'}"


async def measure(postgres: str | None, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="gpugo-fleet-pages-") as tmp:
        await _measure(postgres, runs, Path(tmp))


async def _measure(postgres: str | None, runs: int, data_dir: Path) -> None:
    async with database(postgres, data_dir) as url:
        settings = Settings(
            database_url=url, data_dir=data_dir, public_url=PUBLIC_URL, rate_limits_enabled=False
        )
        await db.migrate(settings)
        app = create_app(settings, auto_migrate=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as http,
        ):
            email = "fleet@example.com"
            signup = await http.post(
                "/api/v1/auth/signup", json={"email": email, "password": PASSWORD}
            )
            assert signup.status_code == 201, signup.text
            user_id = signup.json()["user_id"]
            await UserModel.filter(id=user_id).update(plan="pro")
            started = time.perf_counter()
            await seed_fleet(user_id, MACHINES, gpus=GPUS, readings=True)
            print(
                f"{'PostgreSQL' if postgres else 'SQLite'}: {MACHINES} machines of {GPUS} GPUs "
                f"seeded in {time.perf_counter() - started:.1f} s; {runs} runs per page"
            )
            gql = Gql(User(http, email, user_id))
            for name, chosen in PAGES.items():
                await gql.data(OVERVIEW, variables(**chosen))  # warm-up
                times = []
                for _ in range(runs):
                    started = time.perf_counter()
                    await gql.data(OVERVIEW, variables(**chosen))
                    times.append((time.perf_counter() - started) * 1000)
                print(
                    f"  {name:<7} median {statistics.median(times):6.1f} ms"
                    f"  (min {min(times):.1f}, max {max(times):.1f})"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", metavar="SERVER_URL", help="a PostgreSQL server to use")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(measure(args.postgres, args.runs))


if __name__ == "__main__":
    main()
