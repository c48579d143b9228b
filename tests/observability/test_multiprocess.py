"""Two `gpugo serve` processes sharing PROMETHEUS_MULTIPROC_DIR (as `serve --workers`
runs them): a scrape of either sums both processes' counters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.hardening.live import Database
from tests.live.remote import ServerProcess
from tests.observability.support import parse, value

TOKEN = "multiprocess-scrape-token-42"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    database = Database(tmp_path)
    env = {
        "GPUGO_DATA_DIR": str(tmp_path / "data"),
        "GPUGO_DATABASE_URL": database.url,
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
        "GPUGO_METRICS_TOKEN": TOKEN,
    }
    servers = [ServerProcess(tmp_path, env), ServerProcess(tmp_path, env)]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()
        database.drop()


async def test_a_scrape_sums_the_processes(pair):
    first, second = pair
    # One after the other: the first applies the migrations.
    first.start()
    await first.wait_ready()
    second.start()
    await second.wait_ready()
    async with httpx.AsyncClient() as http:
        for server, count in ((first, 3), (second, 2)):
            for _ in range(count):
                assert (await http.get(f"{server.url}/healthz")).status_code == 200
        headers = {"Authorization": f"Bearer {TOKEN}"}
        scrapes = [
            parse((await http.get(f"{server.url}/metrics", headers=headers)).text)
            for server in pair
        ]
    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    for samples in scrapes:
        assert value(samples, "gpugo_http_requests_total", **healthz) == 5
        assert (
            value(
                samples, "gpugo_http_request_duration_seconds_count", route="/healthz", method="GET"
            )
            == 5
        )
