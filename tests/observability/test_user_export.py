"""GET /api/v1/metrics/prometheus: a user's GPUs, hosts and workers as gauges for the
user's own Prometheus (PAT; Team and Pro), and never another user's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gpugo import clock
from gpugo.models import Worker
from tests.observability.support import parse, value
from tests.rest.test_status_report_metrics import LIBRARY_IDS, lines, register, report
from tests.support import assert_error, flush_metrics, moment

URL = "/api/v1/metrics/prometheus"
MIB = 1024 * 1024


async def reporting_agent(user, *, at=None):
    agent = await register(user)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    text = lines(agent.agent_id, worker_id, at or moment(-timedelta(seconds=5)))
    response = await agent.report(report(worker_id, text))
    assert response.status_code == 200, response.text
    return agent, worker_id


async def scrape(api, user, client) -> dict:
    # Accepted points are written by the ingest's next flush: write them now.
    await flush_metrics(api.app)
    token = user.pat or await user.create_pat()
    response = await client.get(URL, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


@pytest.mark.parametrize("plan", ["team", "pro"])
async def test_the_export_holds_the_users_latest_samples(api, client, plan):
    user = await api.user(plan=plan)
    agent, worker_id = await reporting_agent(user, at=moment(-timedelta(seconds=40)))
    # A newer report wins.
    text = lines(agent.agent_id, worker_id, moment(-timedelta(seconds=5))).replace(
        "utilization=50.50", "utilization=77.00"
    )
    assert (await agent.report(report(worker_id, text))).status_code == 200
    samples = await scrape(api, user, client)
    gpu0 = {
        "agent_id": agent.agent_id,
        "hostname": "gpu-box-01",
        "gpu_id": LIBRARY_IDS[0].lower(),
        "model": "RTX 4090",
    }
    gpu1 = {**gpu0, "gpu_id": LIBRARY_IDS[1].lower()}
    assert value(samples, "gpugo_gpu_utilization_percent", **gpu0) == 77.0
    assert value(samples, "gpugo_gpu_utilization_percent", **gpu1) == 51.5
    assert value(samples, "gpugo_gpu_memory_used_bytes", **gpu0) == 20000 * MIB
    assert value(samples, "gpugo_gpu_memory_total_bytes", **gpu0) == 24564 * MIB
    assert value(samples, "gpugo_gpu_temperature_celsius", **gpu0) == 62
    assert value(samples, "gpugo_gpu_power_watts", **gpu0) == pytest.approx(312.4)
    assert value(samples, "gpugo_gpu_pcie_rx_bytes_per_second", **gpu0) == 1234 * 1024
    host = {"agent_id": agent.agent_id, "hostname": "gpu-box-01"}
    assert value(samples, "gpugo_host_cpu_usage_percent", **host) == 12.5
    assert value(samples, "gpugo_host_memory_total_bytes", **host) == 65536 * MIB
    worker = {**host, "worker_id": worker_id}
    assert value(samples, "gpugo_worker_status", **worker) == 1
    assert value(samples, "gpugo_worker_connections", **worker) == 2
    # One series per GPU, host and worker: nothing else.
    assert {labels for name, labels in samples if name == "gpugo_gpu_utilization_percent"} == {
        frozenset(gpu0.items()),
        frozenset(gpu1.items()),
    }


async def test_the_export_shows_only_the_users_gpus(api, client):
    alice = await api.user(plan="team")
    bob = await api.user(plan="team")
    alices, _ = await reporting_agent(alice)
    bobs, _ = await reporting_agent(bob)
    for user, own, other in ((alice, alices, bobs), (bob, bobs, alices)):
        samples = await scrape(api, user, client)
        agents = {v for _, labels in samples for k, v in labels if k == "agent_id"}
        assert agents == {own.agent_id}, (agents, other.agent_id)


async def test_stale_samples_leave_the_export(api, client, settings):
    user = await api.user(plan="team")
    await reporting_agent(user)
    samples = await scrape(api, user, client)
    assert any(name == "gpugo_gpu_utilization_percent" for name, _ in samples)
    clock.advance(timedelta(seconds=settings.agent_offline_seconds + 10))
    samples = await scrape(api, user, client)
    assert not any(name.startswith("gpugo_gpu_") for name, _ in samples)


@pytest.mark.parametrize("plan", ["free", "personal"])
async def test_free_and_personal_plans_get_the_contracts_403(api, client, plan):
    user = await api.user(plan=plan)
    token = await user.create_pat()
    response = await client.get(URL, headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 403, "plan_feature_unavailable")


async def test_a_missing_or_bad_pat_is_401(api, client):
    user = await api.user(plan="team")
    token = await user.create_pat()
    agent, _ = await reporting_agent(user)
    for headers in (
        {},
        {"Authorization": "Bearer gpgo_pat_nonsense"},
        # Its last character changed (to another one: a token may end in "x").
        {"Authorization": f"Bearer {token[:-1]}{'y' if token.endswith('x') else 'x'}"},
        {"Authorization": f"Basic {token}"},
    ):
        response = await client.get(URL, headers=headers)
        assert_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
    # An agent secret is known, and not a user's key (as on every account endpoint).
    assert_error(await client.get(URL, headers=agent.auth), 403, "forbidden")
    # A signed-in browser may look at its own export.
    assert (await user.get(URL)).status_code == 200
    # A regenerated PAT ends the old one at once.
    await user.create_pat()
    assert_error(
        await client.get(URL, headers={"Authorization": f"Bearer {token}"}), 401, "unauthorized"
    )
