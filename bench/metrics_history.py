"""``python -m bench metrics-history``: charts over a long history, through the real
GraphQL endpoint.

Seeds a fresh database (default ``gpugo_bench_history``, dropped and recreated): one
Pro user with a PAT and one agent with 8 GPUs registered over HTTP, then 30 days of
its reports every 30 s (8 GPU samples and the host's per report, COPYed straight into
the raw tables), rolled up by the sweeper's own statements
(``metrics_rollups.roll_up``). Before retention, the baseline: the 30-day chart the
way it was read before the tiers (the raw samples grouped per GPU and hour, the same
statement the raw tier runs) timed in SQL alone. Then retention applies (raw: 24 h,
5-minute rollups: 7 days) and the charts are timed over HTTP, sequentially, each
request once the previous one answered:

- 30 days in 1-hour buckets (the hourly rollups), target < 100 ms;
- 24 hours in 1-minute buckets (the raw samples), target < 50 ms.

Each chart is asked twice over: as columns (every value of every series, the shape the
dashboard asks for), then as points (one object per bucket, the shape integrators use).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from tortoise import Tortoise

from bench import seed
from bench.servers import Server, gpugo_server, other_trees
from gpugo import db
from gpugo.services import metrics_rollups
from gpugo.settings import Settings

GPUS = 8
PERIOD_SECONDS = 30
DAYS = 30
PASSWORD = "correct horse battery"
_GPU_VALUES = """at samples utilizationAvg utilizationMax vramUsedMbAvg vramUsedMbMax
  vramTotalMb temperatureAvg temperatureMax powerUsageWAvg powerUsageWMax"""
_SYSTEM_VALUES = "at samples cpuUsageAvg cpuUsageMax memoryUsedMbAvg memoryUsedMbMax memoryTotalMb"
# The dashboard's shape: each series as columns (one array per value), every value.
COLUMNS_QUERY = f"""query($id: ID!, $from: DateTime!, $to: DateTime!, $bucket: Int!) {{
  agentMetrics(agentId: $id, from: $from, to: $to, bucket: $bucket) {{
    bucketSeconds
    gpus {{ gpuId columns {{ {_GPU_VALUES} }} }}
    systemColumns {{ {_SYSTEM_VALUES} }}
  }} }}"""
# The same values as points: an object per bucket (11 values per GPU point, 7 per host's).
POINTS_QUERY = f"""query($id: ID!, $from: DateTime!, $to: DateTime!, $bucket: Int!) {{
  agentMetrics(agentId: $id, from: $from, to: $to, bucket: $bucket) {{
    bucketSeconds
    gpus {{ gpuId points {{ {_GPU_VALUES} }} }}
    system {{ {_SYSTEM_VALUES} }}
  }} }}"""
# The 30-day chart as it was read before the tiers: every raw sample, grouped.
BASELINE_SQL = """
SELECT gpu_id, FLOOR((EXTRACT(EPOCH FROM recorded_at) * 1000 - $2) / 3600000) AS bucket,
  COUNT(id), AVG(utilization), MAX(utilization), AVG(vram_used_mb), MAX(vram_used_mb),
  MAX(vram_total_mb), AVG(temperature), MAX(temperature), AVG(power_usage_w),
  MAX(power_usage_w)
FROM gpu_metric_samples WHERE agent_id = $1 AND recorded_at >= $3 AND recorded_at < $4
GROUP BY gpu_id, bucket ORDER BY gpu_id, bucket
"""


def _dsn(url: str) -> str:
    """asyncpg's spelling of the database URL."""
    return "postgresql://" + url.removeprefix("postgres://")


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


async def _register(base: str, url: str) -> tuple[str, str, str]:
    """A Pro user with a PAT and an agent with 8 GPUs: (user_id, pat, agent_id)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        email = "history@example.com"
        signup = await http.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
        signup.raise_for_status()
        user_id = signup.json()["user_id"]
        # Pro: metrics, and room for 8 GPUs.
        admin = await asyncpg.connect(_dsn(url))
        try:
            await admin.execute("UPDATE users SET plan = 'pro' WHERE id = $1", user_id)
        finally:
            await admin.close()
        pat = await http.post(
            "/api/v1/tokens/pat", json={"expires_in_days": None}, headers={"Origin": base}
        )
        pat.raise_for_status()
        token = pat.json()["token"]
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        bearer = {"Authorization": f"Bearer {token}"}
        install = await http.post(
            "/api/v1/tokens/generate", json={"type": "agent_install"}, headers=bearer
        )
        install.raise_for_status()
        gpus = [
            {
                "gpu_id": f"GPU-{i}",
                "vendor": "nvidia",
                "model": "NVIDIA H100",
                "vram_mb": 81559,
            }
            for i in range(GPUS)
        ]
        register = await http.post(
            "/api/v1/agents/register",
            json={"hostname": "history", "os": "linux", "arch": "amd64", "gpus": gpus},
            headers={"Authorization": f"Bearer {install.json()['token']}"},
        )
        register.raise_for_status()
        return user_id, token, register.json()["agent_id"]


def _records(agent_id: str, start: datetime, count: int) -> tuple[list[tuple], list[tuple]]:
    gpu_rows, system_rows = [], []
    for k in range(count):
        at = start + timedelta(seconds=PERIOD_SECONDS * k)
        phase = k % 120
        for g in range(GPUS):
            gpu_rows.append(
                (
                    agent_id,
                    f"GPU-{g}",
                    at,
                    float((phase + 7 * g) % 100),
                    20000 + g,
                    81559,
                    50 + (phase + g) % 30,
                    300.0 + g,
                    None,
                    None,
                )
            )
        system_rows.append((agent_id, at, float(phase % 100), 100_000 + phase, 1_000_000))
    return gpu_rows, system_rows


async def _seed_points(url: str, agent_id: str, now: datetime) -> int:
    start = datetime.fromtimestamp(
        (int(now.timestamp()) - DAYS * 86400) // PERIOD_SECONDS * PERIOD_SECONDS, UTC
    )
    count = DAYS * 86400 // PERIOD_SECONDS
    gpu_rows, system_rows = _records(agent_id, start, count)
    await Tortoise.init(config=db.tortoise_config(url))
    try:
        from gpugo import partitions

        client = Tortoise.get_connection("default")
        days = {(start + timedelta(days=d)).date() for d in range(DAYS + 2)}
        for spec in partitions.RAW:
            await partitions.ensure_days(client, spec.table, days)
        conn = await asyncpg.connect(_dsn(url))
        try:
            await conn.copy_records_to_table(
                "gpu_metric_samples",
                records=gpu_rows,
                columns=[
                    "agent_id",
                    "gpu_id",
                    "recorded_at",
                    "utilization",
                    "vram_used_mb",
                    "vram_total_mb",
                    "temperature",
                    "power_usage_w",
                    "pcie_rx_kb",
                    "pcie_tx_kb",
                ],
            )
            await conn.copy_records_to_table(
                "system_metric_samples",
                records=system_rows,
                columns=[
                    "agent_id",
                    "recorded_at",
                    "cpu_usage",
                    "memory_used_mb",
                    "memory_total_mb",
                ],
            )
        finally:
            await conn.close()
        began = time.monotonic()
        await metrics_rollups.roll_up(start, now)
        rolled = len(gpu_rows) + len(system_rows)
        print(f"rolled up {rolled:,} samples in {time.monotonic() - began:.1f} s")
    finally:
        await Tortoise.close_connections()
    return len(gpu_rows) + len(system_rows)


async def _baseline(
    url: str, agent_id: str, start: datetime, end: datetime, runs: int
) -> list[float]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        await conn.execute("ANALYZE")
        start_ms = int(start.timestamp() * 1000)
        timings = []
        for i in range(runs + 3):
            began = time.perf_counter()
            rows = await conn.fetch(BASELINE_SQL, agent_id, start_ms, start, end)
            if i >= 3:
                timings.append((time.perf_counter() - began) * 1000)
        assert len(rows) >= GPUS * 24 * DAYS - GPUS, len(rows)
        return timings
    finally:
        await conn.close()


async def _apply_retention(url: str, workdir: Path) -> None:
    await Tortoise.init(config=db.tortoise_config(url))
    try:
        settings = Settings(database_url=url, data_dir=workdir / "gpugo-data")
        await metrics_rollups.apply_retention(settings)
        conn = Tortoise.get_connection("default")
        await conn.execute_script("ANALYZE")
    finally:
        await Tortoise.close_connections()


async def _chart(
    http: httpx.AsyncClient,
    query: str,
    pat: str,
    agent_id: str,
    span: timedelta,
    bucket: int,
    runs: int,
    server: Server,
) -> tuple[list[float], dict[str, Any], float]:
    """Wall times (ms), the last answer, and the server's CPU ms per request."""
    now = datetime.now(UTC)
    to_s = -(-int(now.timestamp()) // bucket) * bucket
    to = datetime.fromtimestamp(to_s, UTC)
    variables = {"id": agent_id, "from": _iso(to - span), "to": _iso(to), "bucket": bucket}
    body = {"query": query, "variables": variables}
    headers = {"Authorization": f"Bearer {pat}"}
    timings, answer, cpu_began = [], {}, 0.0
    for i in range(runs + 5):
        if i == 5:
            cpu_began = server.cpu_seconds()
        began = time.perf_counter()
        response = await http.post("/graphql", json=body, headers=headers)
        elapsed = (time.perf_counter() - began) * 1000
        response.raise_for_status()
        answer = response.json()
        assert "errors" not in answer, answer
        if i >= 5:
            timings.append(elapsed)
    cpu_ms = (server.cpu_seconds() - cpu_began) * 1000 / runs
    return timings, answer["data"]["agentMetrics"], cpu_ms


def _gpu_points(answer: dict[str, Any]) -> int:
    """The GPU buckets of an answer, as columns or as points."""
    return sum(len(s["columns"]["at"] if "columns" in s else s["points"]) for s in answer["gpus"])


def _summary(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 1),
        "max_ms": round(ordered[-1], 1),
    }


CHARTS = (
    ("chart_30d_1h", timedelta(days=DAYS), 3600, 100),
    ("chart_24h_1m", timedelta(days=1), 60, 50),
)
SHAPES = (("", COLUMNS_QUERY), ("_points", POINTS_QUERY))


async def _measure(server: Server, pat: str, agent_id: str, runs: int) -> dict[str, Any]:
    """Each chart of each shape, ``runs`` requests in a row against one server."""
    charts: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for shape, query in SHAPES:
            for name, span, bucket, target in CHARTS:
                timings, answer, cpu = await _chart(
                    http, query, pat, agent_id, span, bucket, runs, server
                )
                charts[name + shape] = {
                    "timings": timings,
                    "server_cpu_ms": [cpu],
                    "gpu_points": _gpu_points(answer),
                    "target_ms": target,
                }
    return charts


def _merge(into: dict[str, Any], charts: dict[str, Any]) -> None:
    for name, chart in charts.items():
        if name not in into:
            into[name] = chart
        else:
            into[name]["timings"] += chart["timings"]
            into[name]["server_cpu_ms"] += chart["server_cpu_ms"]


def _summarised(charts: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {
            **_summary(chart["timings"]),
            "server_cpu_ms": round(statistics.median(chart["server_cpu_ms"]), 1),
            "gpu_points": chart["gpu_points"],
            "target_ms": chart["target_ms"],
        }
        for name, chart in charts.items()
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = seed.db_url(args.server, args.db)
    await seed.recreate_database(args.server, args.db)
    seed.migrate(url, args.workdir)
    server = gpugo_server(database_url=url, port=args.port_base, workdir=args.workdir)
    server.start()
    try:
        _, pat, agent_id = await _register(server.url, url)
    finally:
        # Stopped while the history is seeded: its sweeper would apply retention meanwhile.
        server.stop()
    now = datetime.now(UTC)
    began = time.monotonic()
    samples = await _seed_points(url, agent_id, now)
    print(
        f"seeded {samples:,} samples ({DAYS} days, {GPUS} GPUs + host every 30 s) "
        f"in {time.monotonic() - began:.1f} s"
    )
    baseline = await _baseline(url, agent_id, now - timedelta(days=DAYS), now, args.runs)
    await _apply_retention(url, args.workdir)
    # Other trees' gpugo on the same database, measured in turns with this one.
    servers = {"gpugo": server}
    for n, (label, src) in enumerate(args.also_trees):
        servers[label] = gpugo_server(
            database_url=url, port=args.port_base + 1 + n, workdir=args.workdir, name=label, src=src
        )
    measured: dict[str, dict[str, Any]] = {label: {} for label in servers}
    try:
        for each in servers.values():
            each.start()
        labels = list(servers)
        for turn in range(args.rounds):
            # Who goes first changes each round.
            for label in labels[turn % len(labels) :] + labels[: turn % len(labels)]:
                charts = await _measure(servers[label], pat, agent_id, args.runs)
                _merge(measured[label], charts)
                p50s = ", ".join(
                    f"{name} {statistics.median(c['timings']):.1f} ms "
                    f"({c['server_cpu_ms'][0]:.1f} CPU)"
                    for name, c in charts.items()
                )
                print(f"round {turn + 1} {label}: {p50s}", flush=True)
        rss = {label: round(each.rss_mb(), 1) for label, each in servers.items()}
    finally:
        for each in servers.values():
            each.stop()
    result = {
        "scenario": "metrics-history",
        "at": datetime.now(UTC).isoformat(),
        "samples_seeded": samples,
        "runs": args.runs,
        "rounds": args.rounds,
        # As columns (the dashboard's query), then the same charts as points.
        **_summarised(measured["gpugo"]),
        **{f"also_{label}": _summarised(measured[label]) for label in servers if label != "gpugo"},
        "load_average_1m": round(os.getloadavg()[0], 2),
        "baseline_30d_1h_raw_sql": _summary(baseline),
        "server_rss_mb": rss["gpugo"],
    }
    out = args.workdir / "results.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(result) + "\n")
    print(json.dumps(result))
    return result


def main(args: argparse.Namespace) -> int:
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.also_trees = other_trees(args.also)
    asyncio.run(run(args))
    return 0
