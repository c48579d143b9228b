"""0008 (metrics tiers) on a database at 0007 holding samples: rows kept, rollups made,
and on PostgreSQL the tables day-partitioned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate as tortoise_migrate

from gpugo import db
from gpugo.models import (
    Agent,
    GpuMetricRollup,
    GpuMetricSample,
    SystemMetricRollup,
    SystemMetricSample,
    User,
    WorkerMetricRollup,
    WorkerMetricSample,
)
from gpugo.settings import Settings
from tests.conftest import POSTGRES_URL, _create_postgres_database, _drop_postgres_database
from tests.support import moment


async def _agent_at_0007(user_id: str, created_at: datetime) -> Agent:
    """An agent row as 0007 knows it: the model has columns later migrations add."""
    client = connections.get("default")
    sqlite = client.capabilities.dialect == "sqlite"
    marks = ["?"] * 4 if sqlite else ["$1", "$2", "$3", "$4"]
    await client.execute_query(
        "INSERT INTO agents (id, user_id, secret_hash, hostname, os, arch, network_ips, "
        "config_version, offline_notified, created_at, updated_at) VALUES "
        f"({marks[0]}, {marks[1]}, '{'h' * 64}', 'old', 'linux', 'amd64', '[]', 1, FALSE, "
        f"{marks[2]}, {marks[3]})",
        ["agt_old", user_id, created_at, created_at],
    )
    return Agent(id="agt_old")


@pytest.fixture
async def blank_url(tmp_path: Path) -> AsyncIterator[str]:
    """A database of its own, without any migration."""
    if POSTGRES_URL:
        name, url = await _create_postgres_database(POSTGRES_URL)
        yield url
        await _drop_postgres_database(POSTGRES_URL, name)
    else:
        yield f"sqlite://{tmp_path / 'old.sqlite3'}"


async def test_0008_keeps_the_samples_and_rolls_them_up(blank_url: str, tmp_path: Path):
    settings = Settings(database_url=blank_url, data_dir=tmp_path)
    config = db.tortoise_config(blank_url)
    db.prepare_sqlite(settings)
    try:
        await tortoise_migrate(config=config, target="models.0007_webhooks")
    finally:
        await Tortoise.close_connections()
    # An hour-aligned start two days back: three samples in one 5-minute bucket, one in
    # the next, and one a day later.
    start = moment(-timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    times = [
        start,
        start + timedelta(seconds=30),
        start + timedelta(seconds=60),
        start + timedelta(minutes=5),
        start + timedelta(days=1),
    ]
    await Tortoise.init(config=config)
    try:
        user = await User.create(email="old@example.com", password_hash="x", created_at=start)
        agent = await _agent_at_0007(user.id, start)
        for i, at in enumerate(times):
            await GpuMetricSample.create(
                agent_id=agent.id,
                gpu_id="GPU-0",
                recorded_at=at,
                utilization=10.0 * (i + 1),
                vram_used_mb=100,
                vram_total_mb=200,
                temperature=50 + i,
                power_usage_w=100.0,
            )
            await SystemMetricSample.create(
                agent_id=agent.id, recorded_at=at, cpu_usage=i, memory_used_mb=1, memory_total_mb=2
            )
            await WorkerMetricSample.create(
                agent_id=agent.id,
                worker_id="wkr_1",
                recorded_at=at,
                status=1 if i % 2 == 0 else 0,
                connections=i,
                restarts=0,
            )
    finally:
        await Tortoise.close_connections()

    await db.migrate(settings)

    await Tortoise.init(config=config)
    try:
        assert await GpuMetricSample.filter(agent_id=agent.id).count() == 5
        assert await SystemMetricSample.filter(agent_id=agent.id).count() == 5
        five = (
            await GpuMetricRollup.filter(agent_id=agent.id, width=300)
            .order_by("bucket_start")
            .values("bucket_start", "samples", "utilization_sum", "utilization_max")
        )
        assert five == [
            {
                "bucket_start": start,
                "samples": 3,
                "utilization_sum": 60.0,
                "utilization_max": 30.0,
            },
            {
                "bucket_start": start + timedelta(minutes=5),
                "samples": 1,
                "utilization_sum": 40.0,
                "utilization_max": 40.0,
            },
            {
                "bucket_start": start + timedelta(days=1),
                "samples": 1,
                "utilization_sum": 50.0,
                "utilization_max": 50.0,
            },
        ]
        hourly = (
            await GpuMetricRollup.filter(agent_id=agent.id, width=3600)
            .order_by("bucket_start")
            .values_list("bucket_start", "samples", "temperature_max")
        )
        assert hourly == [(start, 4, 53), (start + timedelta(days=1), 1, 54)]
        assert await SystemMetricRollup.filter(agent_id=agent.id, width=3600).count() == 2
        [worker] = await WorkerMetricRollup.filter(
            agent_id=agent.id, width=3600, bucket_start=start
        ).values("samples", "running_samples", "connections_max")
        assert worker == {"samples": 4, "running_samples": 2, "connections_max": 3}
        if POSTGRES_URL:
            rows = await connections.get("default").execute_query_dict(
                "SELECT c.relname AS name FROM pg_class c WHERE c.relkind = 'p' "
                "AND c.relname LIKE '%metric%' ORDER BY 1"
            )
            assert [r["name"] for r in rows] == [
                "gpu_metric_rollups",
                "gpu_metric_rollups_300",
                "gpu_metric_rollups_3600",
                "gpu_metric_samples",
                "system_metric_rollups",
                "system_metric_rollups_300",
                "system_metric_rollups_3600",
                "system_metric_samples",
                "worker_metric_rollups",
                "worker_metric_rollups_300",
                "worker_metric_rollups_3600",
                "worker_metric_samples",
            ]
        # Deleting the agent still cascades to every tier.
        await Agent.filter(id=agent.id).delete()
        assert await GpuMetricSample.all().count() == 0
        assert await GpuMetricRollup.all().count() == 0
    finally:
        await Tortoise.close_connections()
