"""The long history: agentMetrics reads the tier its bucket asks for (raw under 5 minutes,
5-minute rollups under an hour, hourly above), with the same answer shape; each tier is
kept for its own window, by dropping day partitions on PostgreSQL (no DELETE)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gpugo import clock
from gpugo.models import GpuMetricRollup
from gpugo.services import metrics_rollups
from tests.schema.support import Gql
from tests.sql_counter import count_sql
from tests.support import flush_metrics, moment, out_time, register_agent, roll_up_metrics

QUERY = """query($id: ID!, $from: DateTime!, $to: DateTime!, $bucket: Int!) {
  agentMetrics(agentId: $id, from: $from, to: $to, bucket: $bucket) {
    bucketSeconds
    gpus { gpuId points { at samples utilizationAvg utilizationMax temperatureMax vramTotalMb } }
    system { at samples cpuUsageAvg cpuUsageMax memoryTotalMb }
    workers { workerId points { at samples runningSamples connectionsMax } }
  } }"""


def hour_start() -> datetime:
    """A whole hour two to three hours back: well inside the raw window."""
    at = moment(-timedelta(hours=2))
    return datetime.fromtimestamp(int(at.timestamp()) // 3600 * 3600, UTC)


def body(at: datetime, i: int) -> dict[str, Any]:
    return {
        "timestamp": out_time(at),
        "system": {"cpu_usage": float(i), "memory_used_mb": 1000, "memory_total_mb": 64000},
        "gpus": [
            {
                "gpu_id": f"GPU-{g}",
                "utilization": float(5 * i + g),
                "vram_used_mb": 100,
                "vram_total_mb": 24564,
                "temperature": 50 + i,
                "power_usage_w": 100.0,
            }
            for g in range(2)
        ],
    }


async def chart(gql: Gql, agent_id: str, start: datetime, span: timedelta, bucket: int):
    variables = {
        "id": agent_id,
        "from": out_time(start),
        "to": out_time(start + span),
        "bucket": bucket,
    }
    return (await gql.data(QUERY, variables))["agentMetrics"]


def gpu0(result: dict[str, Any]) -> list[tuple[str, int, float, float]]:
    points = result["gpus"][0]["points"] if result["gpus"] else []
    return [
        (p["at"], p["samples"], round(p["utilizationAvg"], 6), p["utilizationMax"]) for p in points
    ]


async def report_twelve(api, agent, t0: datetime) -> None:
    """Twelve reports 30 s apart from ``t0`` (to t0 + 5:30), each answered 200, written."""
    for i in range(12):
        response = await agent.http.post(
            f"/api/v1/agents/{agent.agent_id}/metrics",
            json=body(t0 + timedelta(seconds=30 * i), i),
            headers=agent.auth,
        )
        assert response.status_code == 200, response.text
    await flush_metrics(api.app)


@pytest.fixture
async def history(api):
    """Twelve reports 30 s apart from a whole hour, written and rolled up."""
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=2)
    t0 = hour_start()
    await report_twelve(api, agent, t0)
    await roll_up_metrics(t0, t0 + timedelta(minutes=6))
    # A PAT without expiry: the tests move the clock by weeks.
    return Gql(user, pat=await user.create_pat()), agent.agent_id, t0


async def test_each_bucket_reads_its_tier_with_the_same_figures(history):
    gql, agent_id, t0 = history
    hour = timedelta(hours=1)
    # Raw: one-minute buckets of two samples (utilization 5i for GPU-0).
    raw = await chart(gql, agent_id, t0, hour, 60)
    assert gpu0(raw) == [
        (out_time(t0 + timedelta(minutes=m)), 2, 10.0 * m + 2.5, 10.0 * m + 5) for m in range(6)
    ]
    # 5-minute rollups: ten samples, then two.
    five = await chart(gql, agent_id, t0, hour, 300)
    assert gpu0(five) == [
        (out_time(t0), 10, 22.5, 45.0),
        (out_time(t0 + timedelta(minutes=5)), 2, 52.5, 55.0),
    ]
    # Hourly rollups: all twelve; the average over sums and counts is the samples' own.
    hourly = await chart(gql, agent_id, t0, timedelta(hours=24), 3600)
    assert gpu0(hourly) == [(out_time(t0), 12, 27.5, 55.0)]
    [system] = hourly["system"]
    assert (system["samples"], system["cpuUsageAvg"], system["cpuUsageMax"]) == (12, 5.5, 11.0)
    assert system["memoryTotalMb"] == 64000
    assert hourly["gpus"][1]["points"][0]["temperatureMax"] == 61
    assert hourly["gpus"][1]["points"][0]["vramTotalMb"] == 24564
    # The same shape whichever tier answers.
    assert set(raw) == set(five) == set(hourly)


async def test_each_tier_is_kept_for_its_window(history, settings, is_postgres):
    gql, agent_id, t0 = history
    hour = timedelta(hours=1)

    async def retention_after(delta: timedelta) -> list[str]:
        clock.advance(delta)
        with count_sql() as sql:
            await metrics_rollups.apply_retention(settings)
        # On PostgreSQL whole day partitions go: no row is deleted one by one.
        assert is_postgres != any(s.startswith("DELETE") for s in sql), sql
        return sql

    # Past the raw window (and its day's partition): the raw tier is empty, rollups stay.
    await retention_after(timedelta(hours=settings.metrics_raw_hours) + timedelta(days=1))
    assert gpu0(await chart(gql, agent_id, t0, hour, 60)) == []
    assert gpu0(await chart(gql, agent_id, t0, hour, 300))[0][:2] == (out_time(t0), 10)
    assert gpu0(await chart(gql, agent_id, t0, timedelta(days=5), 3600)) == [
        (out_time(t0), 12, 27.5, 55.0)
    ]
    # Past the 5-minute window: the hourly tier alone.
    await retention_after(timedelta(days=settings.metrics_5m_days))
    assert gpu0(await chart(gql, agent_id, t0, hour, 300)) == []
    hourly = await chart(gql, agent_id, t0, timedelta(days=30), 3600)
    assert gpu0(hourly) == [(out_time(t0), 12, 27.5, 55.0)]
    # Past the retention window: nothing.
    await retention_after(timedelta(days=settings.metrics_retention_days))
    assert gpu0(await chart(gql, agent_id, t0, timedelta(days=30), 3600)) == []


async def test_a_second_rollup_pass_changes_nothing(history):
    gql, agent_id, t0 = history
    before = await chart(gql, agent_id, t0, timedelta(hours=1), 300)
    await roll_up_metrics(t0, t0 + timedelta(hours=1))
    assert await chart(gql, agent_id, t0, timedelta(hours=1), 300) == before


async def test_the_sweepers_pass_rolls_up_late_points_it_wrote(api, settings):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=2)
    ingest = api.app.state.ctx.metrics
    upkeep = metrics_rollups.MetricsUpkeep(settings, ingest)
    await upkeep.run()
    # A report from two hours ago arrives after that pass (an agent back online).
    t0 = hour_start()
    response = await agent.http.post(
        f"/api/v1/agents/{agent.agent_id}/metrics", json=body(t0, 3), headers=agent.auth
    )
    assert response.status_code == 200, response.text
    await flush_metrics(api.app)
    gql = Gql(user, pat=await user.create_pat())
    late = [(out_time(t0), 1, 15.0, 15.0)]
    # Charted at once, from the samples: nothing of the agent is rolled up yet.
    assert gpu0(await chart(gql, agent.agent_id, t0, timedelta(hours=24), 3600)) == late
    await upkeep.run()
    assert await rollup_buckets(agent.agent_id) == {
        (300, t0): 1,
        (3600, t0): 1,
    }
    # With the samples gone (past the raw window), the rollups still hold it.
    clock.advance(timedelta(hours=settings.metrics_raw_hours + 1))
    await metrics_rollups.apply_retention(settings)
    assert gpu0(await chart(gql, agent.agent_id, t0, timedelta(hours=24), 3600)) == late


async def rollup_buckets(agent_id: str) -> dict[tuple[int, datetime], int]:
    """The agent's GPU rollup rows: (width, bucket start) -> samples of GPU-0."""
    rows = await GpuMetricRollup.filter(agent_id=agent_id, gpu_id="GPU-0").values_list(
        "width", "bucket_start", "samples"
    )
    return {(width, start.astimezone(UTC)): samples for width, start, samples in rows}


async def test_a_bucket_is_rolled_up_once_closed_and_charts_stay_as_fresh_as_the_samples(
    api, settings
):
    """The sweeper writes a bucket once it is complete (ended ``LATE_TOLERANCE`` ago),
    never the open ones; a chart takes what is newer than a tier's last bucket from the
    finer tier and the samples, so its figures never wait for a pass."""
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=2)
    # Six and a half minutes into the next whole hour.
    now = clock.now()
    t0 = datetime.fromtimestamp(int(now.timestamp()) // 3600 * 3600 + 3600, UTC)
    clock.advance(t0 + timedelta(minutes=6, seconds=30) - now)
    await report_twelve(api, agent, t0)
    gql = Gql(user, pat=await user.create_pat())
    upkeep = metrics_rollups.MetricsUpkeep(settings, api.app.state.ctx.metrics)
    five_minutes = [
        (out_time(t0), 10, 22.5, 45.0),
        (out_time(t0 + timedelta(minutes=5)), 2, 52.5, 55.0),
    ]
    hourly = [(out_time(t0), 12, 27.5, 55.0)]

    async def charts() -> tuple[list[Any], list[Any]]:
        five = await chart(gql, agent.agent_id, t0, timedelta(hours=1), 300)
        hour = await chart(gql, agent.agent_id, t0, timedelta(hours=24), 3600)
        return gpu0(five), gpu0(hour)

    # t0 + 6:30: the first 5-minute bucket is closed, the second and the hour are open.
    await upkeep.run()
    assert await rollup_buckets(agent.agent_id) == {(300, t0): 10}
    # The hour's bucket: one 5-minute row (10 samples) and two samples.
    assert await charts() == (five_minutes, hourly)
    # t0 + 11:30: the second bucket closed.
    clock.advance(timedelta(minutes=5))
    await upkeep.run()
    assert await rollup_buckets(agent.agent_id) == {(300, t0): 10, (300, t0 + FIVE): 2}
    assert await charts() == (five_minutes, hourly)
    # A pass with nothing newly closed writes nothing.
    with count_sql() as sql:
        await upkeep.run()
    assert not [s for s in sql if s.startswith("INSERT")], sql
    # t0 + 1:01:30: the hour closed, from its 5-minute rows.
    clock.advance(timedelta(minutes=50))
    await upkeep.run()
    assert await rollup_buckets(agent.agent_id) == {
        (300, t0): 10,
        (300, t0 + FIVE): 2,
        (3600, t0): 12,
    }
    assert await charts() == (five_minutes, hourly)


FIVE = timedelta(minutes=5)
