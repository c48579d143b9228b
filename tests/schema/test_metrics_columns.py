"""agentMetrics as columns: each series' values as whole arrays, equal to its points
value for value (bucket starts in epoch milliseconds), from every tier; the same
errors as the points."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tortoise import connections

from gpugo.models import GpuMetricSample, SystemMetricSample, WorkerMetricSample
from tests.schema.support import Gql, error
from tests.support import moment, out_time, register_agent, roll_up_metrics

GPU_FIELDS = (
    "at samples utilizationAvg utilizationMax vramUsedMbAvg vramUsedMbMax vramTotalMb "
    "temperatureAvg temperatureMax powerUsageWAvg powerUsageWMax"
)
SYSTEM_FIELDS = "at samples cpuUsageAvg cpuUsageMax memoryUsedMbAvg memoryUsedMbMax memoryTotalMb"
WORKER_FIELDS = "at samples runningSamples connectionsAvg connectionsMax restartsMax"
VARIABLES = "$id: ID!, $from: DateTime!, $to: DateTime!, $bucket: Int!"
ARGUMENTS = "agentId: $id, from: $from, to: $to, bucket: $bucket"
BOTH = f"""query({VARIABLES}) {{ agentMetrics({ARGUMENTS}) {{
  gpus {{ gpuId points {{ {GPU_FIELDS} }} columns {{ {GPU_FIELDS} }} }}
  system {{ {SYSTEM_FIELDS} }}
  systemColumns {{ {SYSTEM_FIELDS} }}
  workers {{ workerId points {{ {WORKER_FIELDS} }} columns {{ {WORKER_FIELDS} }} }}
}} }}"""
# What the dashboard asks: the columns alone.
COLUMNS = f"""query({VARIABLES}) {{ agentMetrics({ARGUMENTS}) {{
  from to bucketSeconds
  gpus {{ gpuId columns {{ {GPU_FIELDS} }} }}
  systemColumns {{ {SYSTEM_FIELDS} }}
  workers {{ workerId columns {{ {WORKER_FIELDS} }} }}
}} }}"""


def hour_start() -> datetime:
    """A whole hour two to three hours back: inside the raw window, whole tier buckets."""
    at = moment(-timedelta(hours=2))
    return datetime.fromtimestamp(int(at.timestamp()) // 3600 * 3600, UTC)


async def _seed(agent_id: str, t0: datetime) -> None:
    """Every 20 s for 40 minutes, with gaps: GPU-1 and the second worker skip minutes
    10 to 14, the host minute 7, so series have different buckets."""
    gpus, system, workers = [], [], []
    for i in range(120):
        at = t0 + timedelta(seconds=20 * i)
        minute = i // 3
        for g in range(2):
            if g == 1 and 10 <= minute < 15:
                continue
            gpus.append(
                GpuMetricSample(
                    agent_id=agent_id,
                    gpu_id=f"GPU-{g}",
                    recorded_at=at,
                    utilization=(7 * i + g) % 101 + 0.25,
                    vram_used_mb=1000 + (13 * i + g) % 977,
                    vram_total_mb=24564 + g,
                    temperature=40 + (i + 3 * g) % 45,
                    power_usage_w=100.0 + (i % 17) / 3,
                )
            )
        if minute != 7:
            system.append(
                SystemMetricSample(
                    agent_id=agent_id,
                    recorded_at=at,
                    cpu_usage=(11 * i % 97) / 4,
                    memory_used_mb=2_000_000 + 37 * i,
                    memory_total_mb=64_000_000,
                )
            )
        for w, worker_id in enumerate(("w-one", "w-two")):
            if w == 1 and 10 <= minute < 15:
                continue
            workers.append(
                WorkerMetricSample(
                    agent_id=agent_id,
                    worker_id=worker_id,
                    recorded_at=at,
                    status=1 if (i + w) % 4 else 0,
                    connections=(i + w) % 5,
                    restarts=i // 30,
                )
            )
    await GpuMetricSample.bulk_create(gpus)
    await SystemMetricSample.bulk_create(system)
    await WorkerMetricSample.bulk_create(workers)


@pytest.fixture
async def charted(api):
    user = await api.user(plan="pro")
    agent = await register_agent(user, gpus=2)
    t0 = hour_start()
    await _seed(agent.agent_id, t0)
    await roll_up_metrics(t0, t0 + timedelta(hours=1))
    return Gql(user), agent.agent_id, t0


def as_points(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Columns turned back into points, bucket starts as DateTime writes them."""
    # One entry per point in every column (strict: a shorter column fails).
    entries = zip(*columns.values(), strict=True)
    rows = [dict(zip(columns, values, strict=True)) for values in entries]
    for row in rows:
        assert isinstance(row["at"], int)
        row["at"] = out_time(datetime.fromtimestamp(row["at"] / 1000, UTC))
    return rows


def variables(agent_id: str, start: datetime, span: timedelta, bucket: int) -> dict[str, Any]:
    return {"id": agent_id, "from": out_time(start), "to": out_time(start + span), "bucket": bucket}


@pytest.mark.parametrize(
    ("offset", "span", "bucket", "tier"),
    [
        (timedelta(0), timedelta(hours=1), 60, "raw samples"),
        # Buckets that do not start on a whole second.
        (timedelta(milliseconds=-250), timedelta(minutes=50), 45, "raw samples"),
        (timedelta(0), timedelta(hours=1), 300, "5-minute rollups"),
        (timedelta(0), timedelta(hours=6), 3600, "hourly rollups"),
    ],
)
async def test_columns_equal_the_points_of_every_series(charted, offset, span, bucket, tier):
    gql, agent_id, t0 = charted
    answer = (await gql.data(BOTH, variables(agent_id, t0 + offset, span, bucket)))["agentMetrics"]

    assert [s["gpuId"] for s in answer["gpus"]] == ["GPU-0", "GPU-1"]
    assert [s["workerId"] for s in answer["workers"]] == ["w-one", "w-two"]
    for series in answer["gpus"] + answer["workers"]:
        assert series["points"], tier
        assert as_points(series["columns"]) == series["points"], tier
    assert answer["system"]
    assert as_points(answer["systemColumns"]) == answer["system"], tier
    # Equal to the points with their gaps: GPU-1 lacks what GPU-0 has in minutes 10-14.
    if bucket == 60:
        assert len(answer["gpus"][0]["columns"]["at"]) == 40
        assert len(answer["gpus"][1]["columns"]["at"]) == 35
        assert len(answer["systemColumns"]["at"]) == 39
    # The columns alone (the dashboard's query) are the same arrays.
    alone = (await gql.data(COLUMNS, variables(agent_id, t0 + offset, span, bucket)))[
        "agentMetrics"
    ]
    assert [s["columns"] for s in alone["gpus"]] == [s["columns"] for s in answer["gpus"]]
    assert [s["columns"] for s in alone["workers"]] == [s["columns"] for s in answer["workers"]]
    assert alone["systemColumns"] == answer["systemColumns"]


async def test_a_range_without_samples_has_empty_columns(charted):
    gql, agent_id, t0 = charted
    empty = variables(agent_id, t0 - timedelta(hours=3), timedelta(hours=1), 60)
    answer = (await gql.data(COLUMNS, empty))["agentMetrics"]
    assert answer["gpus"] == [] and answer["workers"] == []
    assert answer["systemColumns"] == {name: [] for name in SYSTEM_FIELDS.split()}


@pytest.mark.parametrize(
    ("span", "bucket", "fields"),
    [
        (timedelta(seconds=1441), 1, ["bucket"]),
        (timedelta(0), 60, ["to"]),
        (timedelta(hours=1), 0, ["bucket"]),
    ],
)
async def test_the_columns_have_the_points_errors(charted, span, bucket, fields):
    gql, agent_id, t0 = charted
    asked = variables(agent_id, t0, span, bucket)
    err = error(await gql(COLUMNS, asked), "validation_error")
    assert [d["field"] for d in err["extensions"]["details"]] == fields
    assert err == error(await gql(BOTH, asked), "validation_error")


async def test_the_columns_need_a_plan_with_metrics_and_the_agent(api, charted):
    _, agent_id, t0 = charted
    asked = variables(agent_id, t0, timedelta(hours=1), 60)
    free = Gql(await api.user(plan="free"))
    error(await free(COLUMNS, asked), "plan_feature_unavailable")
    other = Gql(await api.user(plan="pro"))
    response = await other(COLUMNS, asked)
    error(response, "not_found")
    assert response.json()["data"] == {"agentMetrics": None}


async def test_integer_averages_are_the_databases_own_avg(api):
    """A bucket's average of an integer reading is what the database's AVG gives, last
    bit included, whatever the bucket's count of samples (the read takes a faster path
    for some counts: it must not change a value)."""
    user = await api.user(plan="pro")
    agent = await register_agent(user, gpus=1)
    t0 = hour_start()
    rng = random.Random(20261206)
    gpus, system = [], []
    for minute in range(120):
        count = minute % 9 + 1  # 1 to 9 samples per one-minute bucket
        for k in range(count):
            at = t0 + timedelta(minutes=minute, seconds=k * 6)
            # Where a float division by 3, 6 or 9 differs from the numeric one in the last
            # bit for many sums (by 3: sums 40,000-49,151, 67% of them; by 9: sums 11, 16,
            # 22, 23...), and anywhere up to 2^31 - 1.
            gpus.append(
                GpuMetricSample(
                    agent_id=agent.agent_id,
                    gpu_id="GPU-0",
                    recorded_at=at,
                    utilization=1.0,
                    vram_used_mb=rng.randrange(13_400, 16_300),
                    vram_total_mb=2**31 - 1,
                    temperature=rng.randrange(1, 4),
                    power_usage_w=1.0,
                )
            )
            system.append(
                SystemMetricSample(
                    agent_id=agent.agent_id,
                    recorded_at=at,
                    cpu_usage=1.0,
                    memory_used_mb=rng.randrange(2**31),
                    memory_total_mb=2**31 - 1,
                )
            )
    await GpuMetricSample.bulk_create(gpus)
    await SystemMetricSample.bulk_create(system)

    answer = (await Gql(user).data(COLUMNS, variables(agent.agent_id, t0, timedelta(hours=2), 60)))[
        "agentMetrics"
    ]
    [gpu] = answer["gpus"]
    assert gpu["columns"]["samples"] == [m % 9 + 1 for m in range(120)]

    async def database_avg(table: str, column: str) -> list[float]:
        """The database's own AVG of each minute."""
        client = connections.get("default")
        marks = ("?", "?", "?") if client.capabilities.dialect == "sqlite" else ("$1", "$2", "$3")
        sql = (
            f"SELECT CAST(AVG({column}) AS DOUBLE PRECISION) AS a FROM {table} "
            f"WHERE agent_id = {marks[0]} AND recorded_at >= {marks[1]} "
            f"AND recorded_at < {marks[2]}"
        )
        averages = []
        for minute in range(120):
            since = t0 + timedelta(minutes=minute)
            _, rows = await client.execute_query(
                sql, [agent.agent_id, since, since + timedelta(minutes=1)]
            )
            averages.append(rows[0]["a"])
        return averages

    assert gpu["columns"]["vramUsedMbAvg"] == await database_avg(
        "gpu_metric_samples", "vram_used_mb"
    )
    assert gpu["columns"]["temperatureAvg"] == await database_avg(
        "gpu_metric_samples", "temperature"
    )
    assert answer["systemColumns"]["memoryUsedMbAvg"] == await database_avg(
        "system_metric_samples", "memory_used_mb"
    )
