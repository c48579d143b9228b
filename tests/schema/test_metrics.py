"""agentMetrics: samples bucketed by the database, Team/Pro only, at most 1440 buckets."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gpugo.models import GpuMetricSample, SystemMetricSample
from tests.schema.support import Gql, error
from tests.sql_counter import count_sql
from tests.support import go_time, moment, out_time, register_agent

# Samples within the retention window: an hour ago, on a whole minute (buckets start there).
T0 = moment(-timedelta(hours=1)).replace(second=0, microsecond=0)
QUERY = """query($agentId: ID!, $from: DateTime!, $to: DateTime!, $bucket: Int! = 60) {
  agentMetrics(agentId: $agentId, from: $from, to: $to, bucket: $bucket) {
    agentId from to bucketSeconds
    gpus { gpuId points { at samples utilizationAvg utilizationMax vramUsedMbAvg vramUsedMbMax
      vramTotalMb temperatureAvg temperatureMax powerUsageWAvg powerUsageWMax } }
    system { at samples cpuUsageAvg cpuUsageMax memoryUsedMbAvg memoryUsedMbMax memoryTotalMb }
  }
}"""


async def _seed(agent_id: str) -> None:
    """GPU-0 and GPU-1 every 20 s from T0 for 3 minutes, the host too; one sample outside."""
    gpu_rows, system_rows = [], []
    for i in range(9):
        at = T0 + timedelta(seconds=20 * i)
        for gpu in range(2):
            gpu_rows.append(
                GpuMetricSample(
                    agent_id=agent_id,
                    gpu_id=f"GPU-{gpu}",
                    recorded_at=at,
                    utilization=10.0 * i + gpu,
                    vram_used_mb=1000 + i,
                    vram_total_mb=24564,
                    temperature=50 + i,
                    power_usage_w=100.5 + i,
                )
            )
        system_rows.append(
            SystemMetricSample(
                agent_id=agent_id,
                recorded_at=at,
                cpu_usage=5.0 * i,
                memory_used_mb=2000 + i,
                memory_total_mb=64000,
            )
        )
    gpu_rows.append(
        GpuMetricSample(
            agent_id=agent_id,
            gpu_id="GPU-0",
            recorded_at=T0 - timedelta(seconds=1),
            utilization=99,
            vram_used_mb=1,
            vram_total_mb=1,
            temperature=1,
            power_usage_w=1,
        )
    )
    await GpuMetricSample.bulk_create(gpu_rows)
    await SystemMetricSample.bulk_create(system_rows)


async def test_samples_are_bucketed(api):
    user = await api.user(plan="team")
    agent = await register_agent(user)
    await _seed(agent.agent_id)
    gql = Gql(user)
    variables = {
        "agentId": agent.agent_id,
        "from": out_time(T0),
        "to": out_time(T0 + timedelta(minutes=3)),
    }
    with count_sql() as sql:
        result = (await gql.data(QUERY, variables))["agentMetrics"]
    # The session, the agent's ownership, the GPU buckets, the host buckets: never the samples.
    assert len(sql) == 4, sql
    assert result["agentId"] == agent.agent_id
    assert (result["from"], result["to"], result["bucketSeconds"]) == (
        out_time(T0),
        out_time(T0 + timedelta(minutes=3)),
        60,
    )
    assert [s["gpuId"] for s in result["gpus"]] == ["GPU-0", "GPU-1"]
    gpu0 = result["gpus"][0]["points"]
    # Samples at 0,20,40 | 60,80,100 | 120,140,160 s: three buckets of three.
    assert [p["at"] for p in gpu0] == [
        out_time(T0),
        out_time(T0 + timedelta(minutes=1)),
        out_time(T0 + timedelta(minutes=2)),
    ]
    assert [p["samples"] for p in gpu0] == [3, 3, 3]
    assert gpu0[0]["utilizationAvg"] == pytest.approx(10.0)
    assert gpu0[0]["utilizationMax"] == pytest.approx(20.0)
    assert gpu0[2]["temperatureMax"] == 58
    assert gpu0[1]["vramUsedMbMax"] == 1005
    assert gpu0[1]["vramTotalMb"] == 24564
    assert gpu0[1]["powerUsageWAvg"] == pytest.approx(104.5)
    assert result["gpus"][1]["points"][0]["utilizationAvg"] == pytest.approx(11.0)
    system = result["system"]
    assert [p["samples"] for p in system] == [3, 3, 3]
    assert system[2]["cpuUsageMax"] == pytest.approx(40.0)
    assert system[0]["memoryUsedMbAvg"] == pytest.approx(2001.0)
    assert system[0]["memoryTotalMb"] == 64000


async def test_empty_buckets_are_left_out_and_bounds_are_half_open(api):
    user = await api.user(plan="pro")
    agent = await register_agent(user)
    await _seed(agent.agent_id)
    gql = Gql(user)
    # [T0+40s, T0+8min) with 4-minute buckets (the samples' own tier): all seven later
    # samples land in the first.
    variables = {
        "agentId": agent.agent_id,
        "from": out_time(T0 + timedelta(seconds=40)),
        "to": out_time(T0 + timedelta(minutes=8)),
        "bucket": 240,
    }
    result = (await gql.data(QUERY, variables))["agentMetrics"]
    points = result["gpus"][0]["points"]
    assert [(p["at"], p["samples"]) for p in points] == [(out_time(T0 + timedelta(seconds=40)), 7)]
    # The end is exclusive.
    variables = {
        "agentId": agent.agent_id,
        "from": out_time(T0),
        "to": out_time(T0 + timedelta(seconds=20)),
    }
    result = (await gql.data(QUERY, variables))["agentMetrics"]
    assert [p["samples"] for p in result["gpus"][0]["points"]] == [1]


async def test_no_samples_gives_empty_series(api):
    user = await api.user(plan="team")
    agent = await register_agent(user)
    gql = Gql(user)
    variables = {
        "agentId": agent.agent_id,
        "from": out_time(T0),
        "to": out_time(T0 + timedelta(hours=1)),
    }
    result = (await gql.data(QUERY, variables))["agentMetrics"]
    assert (result["gpus"], result["system"]) == ([], [])


@pytest.mark.parametrize("plan", ["free", "personal"])
async def test_metrics_need_team_or_pro(gql_user, plan):
    gql = await gql_user(plan=plan)
    agent = await register_agent(gql.user, gpus=1)
    variables = {
        "agentId": agent.agent_id,
        "from": out_time(T0),
        "to": out_time(T0 + timedelta(hours=1)),
    }
    error(await gql(QUERY, variables), "plan_feature_unavailable")


@pytest.mark.parametrize(
    ("span", "bucket", "fields"),
    [
        (timedelta(seconds=1441), 1, ["bucket"]),
        (timedelta(days=7), 419, ["bucket"]),
        (timedelta(0), 60, ["to"]),
        (timedelta(seconds=-60), 60, ["to"]),
        (timedelta(hours=1), 0, ["bucket"]),
        (timedelta(hours=1), -5, ["bucket"]),
    ],
)
async def test_the_range_is_validated(gql_user, span, bucket, fields):
    gql = await gql_user(plan="team")
    agent = await register_agent(gql.user, gpus=1)
    variables = {
        "agentId": agent.agent_id,
        "from": out_time(T0),
        "to": out_time(T0 + span),
        "bucket": bucket,
    }
    err = error(await gql(QUERY, variables), "validation_error")
    assert [d["field"] for d in err["extensions"]["details"]] == fields


async def test_exactly_1440_buckets_is_fine(gql_user):
    gql = await gql_user(plan="team")
    agent = await register_agent(gql.user, gpus=1)
    variables = {
        "agentId": agent.agent_id,
        "from": out_time(T0),
        "to": out_time(T0 + timedelta(seconds=1440)),
        "bucket": 1,
    }
    assert (await gql.data(QUERY, variables))["agentMetrics"]["bucketSeconds"] == 1


async def test_another_users_agent_is_not_found(gql_user):
    owner = await gql_user(plan="team")
    other = await gql_user(plan="team")
    agent = await register_agent(owner.user, gpus=1)
    await _seed(agent.agent_id)
    variables = {
        "agentId": agent.agent_id,
        "from": out_time(T0),
        "to": out_time(T0 + timedelta(hours=1)),
    }
    response = await other(QUERY, variables)
    error(response, "not_found")
    assert response.json()["data"] == {"agentMetrics": None}


async def test_timestamps_with_offsets_are_read_as_instants(gql_user):
    gql = await gql_user(plan="team")
    agent = await register_agent(gql.user, gpus=2)
    await _seed(agent.agent_id)
    variables = {
        "agentId": agent.agent_id,
        "from": go_time(T0, offset_hours=8, nanos=0),
        # Without an offset: UTC.
        "to": (T0 + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S"),
    }
    result = (await gql.data(QUERY, variables))["agentMetrics"]
    assert result["from"] == out_time(T0)
    assert [p["samples"] for p in result["system"]] == [3]


async def test_a_day_in_minutes_equals_the_samples_averages_and_maxima(api):
    """The day's chart the dashboard can ask for (1,440 one-minute buckets): every point
    is its raw samples' count, averages and maxima, series in the order of their ids and
    points in time order, whatever order the samples were written in."""
    user = await api.user(plan="pro")
    agent = await register_agent(user)
    start = moment(-timedelta(days=1)).replace(second=0, microsecond=0)
    gpu_ids = ["GPU-b", "GPU-10", "GPU-a", "GPU-9"]
    # Every 25 s: two or three samples a minute (averages over three are not exact).
    samples = [
        GpuMetricSample(
            agent_id=agent.agent_id,
            gpu_id=gpu_id,
            recorded_at=start + timedelta(seconds=25 * i),
            utilization=(7 * i + g) % 101 + 0.25,
            vram_used_mb=1000 + (i * 13 + g) % 977,
            vram_total_mb=24564,
            temperature=40 + (i + 3 * g) % 45,
            power_usage_w=100.0 + (i % 17) / 3,
        )
        for i in range(86400 // 25)
        for g, gpu_id in enumerate(gpu_ids)
    ]
    await GpuMetricSample.bulk_create(list(reversed(samples)), batch_size=1000)
    expected: dict[str, dict[str, list[GpuMetricSample]]] = {}
    for sample in samples:
        minute = start + (sample.recorded_at - start) // timedelta(minutes=1) * timedelta(minutes=1)
        expected.setdefault(sample.gpu_id, {}).setdefault(out_time(minute), []).append(sample)

    variables = {
        "agentId": agent.agent_id,
        "from": out_time(start),
        "to": out_time(start + timedelta(days=1)),
        "bucket": 60,
    }
    result = (await Gql(user).data(QUERY, variables))["agentMetrics"]

    assert [s["gpuId"] for s in result["gpus"]] == sorted(gpu_ids)
    for series in result["gpus"]:
        buckets = expected[series["gpuId"]]
        assert [p["at"] for p in series["points"]] == sorted(buckets) and len(buckets) == 1440
        for point in series["points"]:
            rows = buckets[point["at"]]

            def avg(column: str, rows: list[GpuMetricSample] = rows) -> float:
                return pytest.approx(sum(getattr(r, column) for r in rows) / len(rows), rel=1e-12)

            assert point == {
                "at": point["at"],
                "samples": len(rows),
                "utilizationAvg": avg("utilization"),
                "utilizationMax": max(r.utilization for r in rows),
                "vramUsedMbAvg": avg("vram_used_mb"),
                "vramUsedMbMax": max(r.vram_used_mb for r in rows),
                "vramTotalMb": 24564,
                "temperatureAvg": avg("temperature"),
                "temperatureMax": max(r.temperature for r in rows),
                "powerUsageWAvg": avg("power_usage_w"),
                "powerUsageWMax": max(r.power_usage_w for r in rows),
            }
            assert isinstance(point["vramUsedMbMax"], int)
            assert isinstance(point["utilizationMax"], float)
    assert {len(rows) for b in expected.values() for rows in b.values()} == {2, 3}
