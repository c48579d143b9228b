"""A replay of the real Go agent (tensor-fusion ``ggo``): its bodies as it marshals them,
and every response checked against the typed structs it decodes them into.

Go's encoding/json ignores unknown fields and leaves a field alone on ``null``, but a
JSON value of the wrong type (a float for an ``int``, a number for a ``string``, a
string for a ``bool``) fails the whole decode, so that is what is checked here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gpugo.models import GpuMetricSample, SystemMetricSample
from tests.go_client import decode
from tests.rest.test_releases import RELEASES_RESPONSE
from tests.schema.support import Gql
from tests.support import (
    assert_error,
    flush_metrics,
    go_time,
    moment,
    out_time,
    roll_up_metrics,
)

GPU_IDS = [
    "GPU-8f2c1a3e-5b7d-4c1e-9a0b-1234567890ab",
    "GPU-0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a",
]

# --- the agent's structs (internal/api/types.go): field -> (Go type, always sent) ---------

LICENSE = {"plain": ("string", True), "encrypted": ("string", True)}
REGISTER_RESPONSE = {
    "agent_id": ("string", True),
    "agent_secret": ("string", True),
    "license": (("struct", LICENSE), True),
}
WORKER_CONFIG = {
    "worker_id": ("string", True),
    "gpu_ids": (("slice", "string"), True),
    "gpu_indices": (("slice", "int"), False),
    "vram_mb": ("int", False),
    "compute_percent": ("int", False),
    "isolation_mode": ("string", False),
    "listen_port": ("int", True),
    "enabled": ("bool", True),
    "share_codes": (("slice", "string"), False),
}
CONFIG_RESPONSE = {
    "config_version": ("int", True),
    "workers": (("slice", ("struct", WORKER_CONFIG)), True),
    "license": (("struct", LICENSE), True),
}
STATUS_RESPONSE = {
    "success": ("bool", True),
    "config_version": ("int", True),
    "license": (("struct", LICENSE), False),
    "worker_share_codes": (("map", ("slice", "string")), False),
}
SUCCESS_RESPONSE = {"success": ("bool", True)}
GPU_INFO = {
    "gpu_id": ("string", True),
    "gpu_index": ("int", False),
    "vendor": ("string", True),
    "model": ("string", True),
    "vram_mb": ("int", True),
    "driver_version": ("string", False),
    "cuda_version": ("string", False),
}
CONNECTION_INFO = {"client_ip": ("string", True), "connected_at": ("time", True)}
WORKER_INFO = {
    "worker_id": ("string", True),
    "agent_id": ("string", False),
    "agent_hostname": ("string", False),
    "name": ("string", True),
    "gpu_ids": (("slice", "string"), True),
    "gpu_indices": (("slice", "int"), False),
    "gpus": (("slice", ("struct", GPU_INFO)), False),
    "listen_port": ("int", True),
    "enabled": ("bool", False),
    "is_default": ("bool", False),
    "status": ("string", True),
    "pid": ("int", False),
    "restarts": ("int", False),
    "connections": (("slice", ("struct", CONNECTION_INFO)), False),
    "started_at": ("time", False),
    "created_at": ("time", False),
}
AGENT_INFO = {
    "agent_id": ("string", True),
    "hostname": ("string", True),
    "status": ("string", True),
    "os": ("string", True),
    "arch": ("string", True),
    "network_ips": (("slice", "string"), False),
    "gpus": (("slice", ("struct", GPU_INFO)), False),
    "workers": (("slice", ("struct", WORKER_INFO)), False),
    "gpu_count": ("int", False),
    "gpu_summary": ("string", False),
    "last_seen_at": ("time", True),
    "created_at": ("time", True),
}
AGENT_LIST_RESPONSE = {"agents": (("slice", ("struct", AGENT_INFO)), True)}
WORKER_LIST_RESPONSE = {"workers": (("slice", ("struct", WORKER_INFO)), True)}
SHARE_INFO = {
    "share_id": ("string", True),
    "short_code": ("string", True),
    "short_link": ("string", True),
    "worker_id": ("string", True),
    "hardware_vendor": ("string", True),
    "connection_url": ("string", True),
    "expires_at": ("time", False),
    "max_uses": ("int", False),
    "used_count": ("int", True),
    "created_at": ("time", True),
}
SHARE_LIST_RESPONSE = {"shares": (("slice", ("struct", SHARE_INFO)), True)}
SHARE_PUBLIC_INFO = {
    "worker_id": ("string", True),
    "hardware_vendor": ("string", True),
    "connection_url": ("string", True),
    "agent_arch": ("string", False),
}


# --- what the agent sends -----------------------------------------------------------------


def register_body(token: str) -> dict[str, Any]:
    # AgentRegisterRequest: the token also in the body; gpu_index always; versions omitempty;
    # a nil network_ips slice marshals as null.
    return {
        "token": token,
        "hostname": "gpu-box-01",
        "os": "linux",
        "arch": "amd64",
        "gpus": [
            {
                "gpu_id": GPU_IDS[0],
                "gpu_index": 0,
                # As the accelerator library spells it.
                "vendor": "NVIDIA",
                "model": "NVIDIA GeForce RTX 4090",
                "vram_mb": 24564,
                "driver_version": "550.54.14",
                "cuda_version": "12.4",
            },
            {
                "gpu_id": GPU_IDS[1],
                "gpu_index": 1,
                "vendor": "nvidia",
                "model": "NVIDIA GeForce RTX 4090",
                "vram_mb": 24564,
            },
        ],
        "network_ips": None,
    }


def gpu_statuses(used_by: str | None) -> list[dict[str, Any]]:
    return [
        {
            "gpu_id": gpu_id,
            "gpu_index": index,
            "used_by_worker": used_by,
            "vendor": "nvidia",
            "model": "NVIDIA GeForce RTX 4090",
            "vram_mb": 24564,
            "driver_version": "550.54.14",
            "cuda_version": "12.4",
            "gpu_changed": True,
        }
        for index, gpu_id in enumerate(GPU_IDS)
    ]


def agent_clock(at: datetime | None = None) -> str:
    """A time as the agent stamps it: its local zone (+08:00 here), nanoseconds."""
    return go_time(at or moment(), offset_hours=8, nanos=456789)


def worker_status(worker_id: str, *, connections: bool, changed: bool) -> dict[str, Any]:
    status: dict[str, Any] = {
        "worker_id": worker_id,
        "status": "running",
        "pid": 48213,
        "restarts": 1,
        "gpu_ids": GPU_IDS,
        "gpu_indices": [0, 1],
        "worker_changed": changed,
        "connection_changed": changed,
        "gpu_changed": False,
    }
    if connections:
        # The agent stamps connected_at with its own clock at each report.
        status["connections"] = [
            {
                "client_ip": "192.168.1.50",
                "connected_at": agent_clock(),
                "client_port": 51234,
                "client_pid": 7781,
            }
        ]
    return status


def line_protocol(agent_id: str, worker_id: str | None = None) -> str:
    at_ms = int(moment().timestamp() * 1000)
    workers = (
        f"\nworker_metrics,agent_id={agent_id},worker_id={worker_id} "
        f"status=1i,connections=1i,restarts=1i {at_ms}"
        if worker_id
        else ""
    )
    return (
        f"gpu_metrics,agent_id={agent_id},gpu_id={GPU_IDS[0]},model=NVIDIA\\ GeForce\\ RTX\\ 4090,"
        "vendor=nvidia utilization=87.50,vram_used_mb=20000i,vram_total_mb=24564i,"
        f"temperature=61.7,power_usage_w=312.4,pcie_rx_kb=1234.5,pcie_tx_kb=99.9 {at_ms}\n"
        f"system_metrics,agent_id={agent_id},hostname=gpu-box-01 cpu_usage=12.50,"
        f"memory_used_mb=8192i,memory_total_mb=65536i {at_ms}"
    ) + workers


def status_report(agent_id: str, license: dict[str, str], **fields: Any) -> dict[str, Any]:
    worker_ids = [w["worker_id"] for w in fields.get("workers") or []]
    body: dict[str, Any] = {
        "timestamp": agent_clock(),
        "gpus": None,
        "workers": None,
        "license_expiration": int(license["plain"].split("|")[2]),
        "metrics": line_protocol(agent_id, worker_ids[0] if worker_ids else None),
    }
    body.update(fields)
    return body


def metrics_report() -> dict[str, Any]:
    return {
        "timestamp": agent_clock(),
        "system": {"cpu_usage": 12.5, "memory_used_mb": 8192, "memory_total_mb": 65536},
        "gpus": [
            {
                "gpu_id": gpu_id,
                "utilization": 87.5,
                "vram_used_mb": 20000,
                "vram_total_mb": 24564,
                "temperature": 61.7,
                "power_usage_w": 312.4,
                "pcie_rx_kb": 1234.5,
                "pcie_tx_kb": 99.9,
            }
            for gpu_id in GPU_IDS
        ],
    }


async def test_the_real_agent_lifecycle(api, client):
    user = await api.user(plan="team")
    token = await user.install_token()
    pat = {"Authorization": f"Bearer {await user.create_pat()}"}

    # ggo agent register first syncs the release catalogue (no credential); anything but
    # 200 would end it there.
    releases = decode(await client.get("/api/ecosystem/releases?size=500"), RELEASES_RESPONSE)
    assert releases["count"] == len(releases["releases"])

    # ggo agent register: Bearer token, body with the token again; 200 or 201 accepted.
    response = await client.post(
        "/api/v1/agents/register",
        json=register_body(token),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    registered = decode(response, REGISTER_RESPONSE, ok=(200, 201))
    agent_id = registered["agent_id"]
    secret = {"Authorization": f"Bearer {registered['agent_secret']}"}
    license = registered["license"]
    assert license["plain"].split("|")[0] == ",".join(GPU_IDS)
    base = f"/api/v1/agents/{agent_id}"

    # Start(): the initial config pull (200 only).
    config = decode(await client.get(f"{base}/config", headers=secret), CONFIG_RESPONSE)
    [default] = config["workers"]
    assert default["gpu_ids"] == GPU_IDS and default["enabled"] is True
    version = config["config_version"]

    # The first report: everything flagged changed, no GPU in use yet (used_by_worker null).
    first = status_report(
        agent_id,
        license,
        gpus=gpu_statuses(None),
        workers=[worker_status(default["worker_id"], connections=True, changed=True)],
    )
    reply = decode(await client.post(f"{base}/status", json=first, headers=secret), STATUS_RESPONSE)
    assert reply["success"] is True and reply["config_version"] == version
    # The license it holds is good for two hours: none comes back.
    assert "license" not in reply

    # The next minute: nothing changed. Connections re-stamped, flagged unchanged.
    steady = status_report(
        agent_id,
        license,
        gpus=gpu_statuses(default["worker_id"]),
        workers=[worker_status(default["worker_id"], connections=True, changed=False)],
    )
    first_connected = first["workers"][0]["connections"][0]["connected_at"]
    steady["timestamp"] = agent_clock(moment(timedelta(minutes=1)))
    steady["workers"][0]["connections"][0]["connected_at"] = steady["timestamp"]
    reply = decode(
        await client.post(f"{base}/status", json=steady, headers=secret), STATUS_RESPONSE
    )
    assert reply["config_version"] == version

    # The agent as the dashboard and ggo CLI read it.
    agent = decode(await client.get(base, headers=pat), AGENT_INFO)
    assert agent["status"] == "online"
    assert agent["network_ips"] == []
    [worker] = agent["workers"]
    assert (worker["status"], worker["pid"], worker["restarts"]) == ("running", 48213, 1)
    assert [(c["client_ip"], c["connected_at"]) for c in worker["connections"]] == [
        ("192.168.1.50", out_time(datetime.fromisoformat(first_connected[:23] + "+08:00")))
    ]
    assert [g["used_by_worker"] for g in agent["gpus"]] == [default["worker_id"]] * 2
    assert {g["vendor"] for g in agent["gpus"]} == {"nvidia"}
    listed = decode(await client.get("/api/v1/agents", headers=pat), AGENT_LIST_RESPONSE)
    assert [a["agent_id"] for a in listed["agents"]] == [agent_id]
    # What interactive `ggo worker create` offers: agents whose list item has GPUs.
    assert listed["agents"][0]["gpu_count"] == 2 and len(listed["agents"][0]["gpus"]) == 2

    # The reports' line protocol reached the dashboard's charts (hourly buckets: the
    # hourly rollups, once written and rolled up).
    await flush_metrics(api.app)
    await roll_up_metrics(moment(-timedelta(hours=1)), moment(timedelta(hours=1)))
    charts = """query($id: ID!, $from: DateTime!, $to: DateTime!) {
      agentMetrics(agentId: $id, from: $from, to: $to, bucket: 3600) {
        gpus { gpuId points { samples } } system { samples }
        workers { workerId points { samples connectionsMax } } } }"""
    window = {
        "id": agent_id,
        "from": out_time(moment(-timedelta(hours=1))),
        "to": out_time(moment(timedelta(hours=1))),
    }
    charted = (await Gql(user).data(charts, window))["agentMetrics"]
    assert [s["gpuId"] for s in charted["gpus"]] == [GPU_IDS[0]]
    assert sum(p["samples"] for p in charted["system"]) == 2
    assert [w["workerId"] for w in charted["workers"]] == [default["worker_id"]]

    # Metrics (Team plan): the two reports' line protocol (one GPU and the host each), then
    # a POST /metrics for both GPUs; floats where the spec has ints are stored rounded.
    response = await client.post(f"{base}/metrics", json=metrics_report(), headers=secret)
    decode(response, SUCCESS_RESPONSE)
    await flush_metrics(api.app)
    samples = await GpuMetricSample.filter(agent_id=agent_id).order_by("gpu_id").values()
    assert [(s["temperature"], s["pcie_rx_kb"], s["pcie_tx_kb"]) for s in samples] == [
        (62, 1234, 100)
    ] * 4
    assert await SystemMetricSample.filter(agent_id=agent_id).count() == 3

    # A report from an agent whose hypervisor lists nothing: null slices everywhere.
    empty = status_report(agent_id, license)
    empty_worker = {"worker_id": default["worker_id"], "status": "stopped", "gpu_ids": None}
    empty["workers"] = [empty_worker]
    reply = decode(await client.post(f"{base}/status", json=empty, headers=secret), STATUS_RESPONSE)
    assert reply["success"] is True

    # The user adds a worker (ggo worker create with a PAT): the next report says so, the
    # agent pulls the new config and finds the worker.
    response = await client.post(
        "/api/v1/workers",
        json={
            "agent_id": agent_id,
            "name": "second",
            "gpu_ids": [GPU_IDS[1]],
            "listen_port": 9002,
            "enabled": True,
        },
        headers=pat,
    )
    created = decode(response, WORKER_INFO, ok=(200, 201))
    again = status_report(
        agent_id,
        license,
        gpus=gpu_statuses(default["worker_id"]),
        workers=[worker_status(default["worker_id"], connections=False, changed=True)],
    )
    reply = decode(await client.post(f"{base}/status", json=again, headers=secret), STATUS_RESPONSE)
    assert reply["config_version"] > version
    config = decode(await client.get(f"{base}/config", headers=secret), CONFIG_RESPONSE)
    assert config["config_version"] == reply["config_version"]
    assert [w["worker_id"] for w in config["workers"]] == [
        default["worker_id"],
        created["worker_id"],
    ]
    assert config["workers"][1] == {
        "worker_id": created["worker_id"],
        "gpu_ids": [GPU_IDS[1]],
        "listen_port": 9002,
        "enabled": True,
        "share_codes": [],
    }
    # connection_changed true with the (empty, so omitted) list: the client is gone.
    agent = decode(await client.get(base, headers=pat), AGENT_INFO)
    assert agent["workers"][0]["connections"] == []

    # The user shares the default worker: its code reaches the next status reply and config
    # pull, so the worker lets its holders in; the holder's client reads /s/.
    response = await client.post(
        "/api/v1/shares",
        json={"worker_id": default["worker_id"], "connection_ip": "203.0.113.9"},
        headers=pat,
    )
    share = decode(response, SHARE_INFO, ok=(200, 201))
    reply = decode(await client.post(f"{base}/status", json=again, headers=secret), STATUS_RESPONSE)
    assert reply["worker_share_codes"] == {default["worker_id"]: [share["short_code"]]}
    config = decode(await client.get(f"{base}/config", headers=secret), CONFIG_RESPONSE)
    assert config["config_version"] == reply["config_version"]
    assert config["workers"][0]["share_codes"] == [share["short_code"]]
    public = decode(await client.get(f"/s/{share['short_code']}"), SHARE_PUBLIC_INFO)
    assert (public["hardware_vendor"], public["agent_arch"]) == ("nvidia", "amd64")

    # The CLI on this host (ggo worker list/create, ggo share create/list) sends the host's
    # agent secret to the user endpoints; it acts within this agent.
    listed = decode(await client.get("/api/v1/workers", headers=secret), WORKER_LIST_RESPONSE)
    assert {w["worker_id"] for w in listed["workers"]} == {
        default["worker_id"],
        created["worker_id"],
    }
    response = await client.post(
        "/api/v1/workers",
        json={
            "agent_id": agent_id,
            "name": "cli",
            "gpu_ids": [GPU_IDS[0]],
            "listen_port": 9003,
            "enabled": True,
        },
        headers={**secret, "Content-Type": "application/json"},
    )
    from_cli = decode(response, WORKER_INFO, ok=(200, 201))
    response = await client.post(
        "/api/v1/shares",
        json={"worker_id": from_cli["worker_id"], "connection_ip": "203.0.113.9"},
        headers=secret,
    )
    decode(response, SHARE_INFO, ok=(200, 201))
    shares = decode(await client.get("/api/v1/shares", headers=secret), SHARE_LIST_RESPONSE)
    assert len(shares["shares"]) == 2
    # The daemon pulls the worker the CLI made.
    config = decode(await client.get(f"{base}/config", headers=secret), CONFIG_RESPONSE)
    assert config["workers"][-1]["worker_id"] == from_cli["worker_id"]

    # Stop(): the shutdown event makes the agent offline at once.
    shutdown = status_report(
        agent_id,
        license,
        event="shutdown",
        gpus=gpu_statuses(None),
        workers=[worker_status(default["worker_id"], connections=False, changed=False)],
    )
    decode(await client.post(f"{base}/status", json=shutdown, headers=secret), STATUS_RESPONSE)
    assert decode(await client.get(base, headers=pat), AGENT_INFO)["status"] == "offline"

    # Uninstall: the agent deletes itself with its own secret (200 or 204 accepted).
    response = await client.delete(base, headers=secret)
    assert response.status_code in (200, 204)
    decode(response, SUCCESS_RESPONSE)
    assert_error(
        await client.post(f"{base}/status", json=shutdown, headers=secret), 401, "unauthorized"
    )
    assert_error(await client.get(base, headers=pat), 404, "not_found")
