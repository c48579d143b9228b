from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gpugo import clock
from gpugo.auth.tokens import TokenKind, hash_token, new_token
from gpugo.models import Agent, Gpu, InstallToken, Worker
from tests.live.support import serve
from tests.support import BAD_GPU_IDS, assert_error, gpu_infos, register_agent

RACERS = 20


def register_body(gpus: int = 1, **change: Any) -> dict[str, Any]:
    return {
        "hostname": "gpu-host-1",
        "os": "linux",
        "arch": "amd64",
        "gpus": gpu_infos(gpus),
        "network_ips": ["192.168.1.20", "fe80::1"],
        **change,
    }


async def register(client: httpx.AsyncClient, token: str | None, body: dict[str, Any]):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await client.post("/api/v1/agents/register", json=body, headers=headers)


async def public_key(client: httpx.AsyncClient) -> Ed25519PublicKey:
    response = await client.get("/api/v1/license/public-key")
    assert response.status_code == 200
    body = response.json()
    assert body["algorithm"] == "Ed25519"
    key = load_pem_public_key(body["public_key"].encode())
    assert isinstance(key, Ed25519PublicKey)
    return key


async def token_status(user, token_id: str) -> str:
    return (await user.get(f"/api/v1/tokens/{token_id}/status")).json()["status"]


async def new_install_token(user) -> tuple[str, str]:
    response = await user.post("/api/v1/tokens/generate", json={"type": "agent_install"})
    assert response.status_code == 201
    return response.json()["token_id"], response.json()["token"]


async def row_counts() -> tuple[int, int, int]:
    return await Agent.all().count(), await Gpu.all().count(), await Worker.all().count()


async def test_register_answers_201_with_the_agent_its_secret_and_a_license(api, client):
    user = await api.user()
    _, token = await new_install_token(user)
    response = await register(client, token, register_body(gpus=2))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"agent_id", "agent_secret", "license"}
    assert isinstance(body["agent_id"], str) and body["agent_id"].startswith("agt_")
    assert isinstance(body["agent_secret"], str) and body["agent_secret"].startswith("gpgo_agent_")
    assert set(body["license"]) == {"plain", "encrypted"}
    gpu_ids, plan, expiry = body["license"]["plain"].split("|")
    assert (gpu_ids, plan) == ("GPU-0,GPU-1", "free")
    assert expiry.isdigit()
    key = await public_key(client)
    key.verify(base64.b64decode(body["license"]["encrypted"]), body["license"]["plain"].encode())
    # The secret is stored only as its hash.
    agent = await Agent.get(id=body["agent_id"])
    assert body["agent_secret"] not in agent.secret_hash


async def test_register_creates_a_pending_agent_its_gpus_and_a_default_worker(api, client):
    user = await api.user()
    _, token = await new_install_token(user)
    body = register_body(gpus=2)
    body["gpus"][1]["vendor"] = "amd"
    del body["gpus"][1]["driver_version"], body["gpus"][1]["cuda_version"]
    agent_id = (await register(client, token, body)).json()["agent_id"]
    shown = (await user.get(f"/api/v1/agents/{agent_id}")).json()
    assert (shown["hostname"], shown["os"], shown["arch"]) == ("gpu-host-1", "linux", "amd64")
    assert shown["status"] == "pending"
    assert shown["network_ips"] == ["192.168.1.20", "fe80::1"]
    assert [(g["gpu_id"], g["vendor"], g["driver_version"]) for g in shown["gpus"]] == [
        ("GPU-0", "nvidia", "550.54.14"),
        ("GPU-1", "amd", None),
    ]
    [worker] = shown["workers"]
    assert worker["is_default"] is True
    assert worker["gpu_ids"] == ["GPU-0", "GPU-1"]
    assert (worker["listen_port"], worker["enabled"], worker["status"]) == (9001, True, "pending")
    assert shown["config_version"] == 1


async def test_network_ips_may_be_absent_or_null(api, client):
    user = await api.user(plan="personal")
    for network_ips in ("absent", None):
        _, token = await new_install_token(user)
        body = register_body()
        if network_ips == "absent":
            del body["network_ips"]
        else:
            body["network_ips"] = None
        response = await register(client, token, body)
        assert response.status_code == 201, response.text
        shown = (await user.get(f"/api/v1/agents/{response.json()['agent_id']}")).json()
        assert shown["network_ips"] == []


async def test_a_token_works_once(api, client):
    user = await api.user(plan="personal")
    token_id, token = await new_install_token(user)
    assert (await register(client, token, register_body())).status_code == 201
    assert_error(await register(client, token, register_body()), 401, "token_used")
    assert await token_status(user, token_id) == "used"
    assert await Agent.all().count() == 1


@pytest.mark.parametrize(
    "credential",
    ["missing", "empty", "basic", "garbage", "unknown_token", "pat", "agent_secret", "session"],
)
async def test_register_needs_an_install_token(api, client, credential):
    user = await api.user()
    existing = await register_agent(user, gpus=1)
    before = await row_counts()
    token = {
        "missing": None,
        "empty": "",
        "garbage": "not-a-token",
        "unknown_token": new_token(TokenKind.INSTALL),
        "pat": await user.create_pat(),
        "agent_secret": existing.secret,
        "basic": None,
        "session": None,
    }[credential]
    if credential == "basic":
        response = await client.post(
            "/api/v1/agents/register",
            json=register_body(),
            headers={"Authorization": "Basic dXNlcjpwYXNz"},
        )
    elif credential == "session":
        # A logged-in browser is not an agent either.
        response = await user.post("/api/v1/agents/register", json=register_body())
    else:
        response = await register(client, token, register_body())
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert await row_counts() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hostname": ""}, "hostname"),
        ({"hostname": "h" * 256}, "hostname"),
        ({"hostname": None}, "hostname"),
        ({"os": "o" * 21}, "os"),
        ({"arch": ""}, "arch"),
        ({"gpus": None}, "gpus"),
        ({"gpus": [{**gpu_infos(1)[0], "vendor": "v" * 33}]}, "gpus[0].vendor"),
        ({"gpus": [{**gpu_infos(1)[0], "vendor": 1}]}, "gpus[0].vendor"),
        ({"gpus": [{**gpu_infos(1)[0], "vram_mb": 0}]}, "gpus[0].vram_mb"),
        ({"gpus": [{**gpu_infos(1)[0], "vram_mb": "24564"}]}, "gpus[0].vram_mb"),
        ({"gpus": [{**gpu_infos(1)[0], "gpu_id": ""}]}, "gpus[0].gpu_id"),
        ({"gpus": [{"gpu_id": "GPU-0", "vendor": "nvidia", "vram_mb": 1}]}, "gpus[0].model"),
        ({"network_ips": "192.168.1.20"}, "network_ips"),
        ({"network_ips": [1]}, "network_ips[0]"),
    ],
)
async def test_a_bad_body_is_refused_with_details_and_keeps_the_token(api, client, change, field):
    user = await api.user()
    token_id, token = await new_install_token(user)
    body = {**register_body(), **change}
    error = assert_error(await register(client, token, body), 400, "validation_error")
    assert field in [d["field"] for d in error["details"]], error
    assert all(isinstance(d["message"], str) and d["message"] for d in error["details"])
    assert await row_counts() == (0, 0, 0)
    assert await token_status(user, token_id) == "active"


@pytest.mark.parametrize("gpu_id", BAD_GPU_IDS)
async def test_gpu_ids_outside_the_rule_are_refused(api, client, gpu_id):
    user = await api.user()
    token_id, token = await new_install_token(user)
    body = {**register_body(), "gpus": [{**gpu_infos(1)[0], "gpu_id": gpu_id}]}
    error = assert_error(await register(client, token, body), 400, "validation_error")
    assert [d["field"] for d in error["details"]] == ["gpus[0].gpu_id"]
    assert await row_counts() == (0, 0, 0)
    assert await token_status(user, token_id) == "active"


async def test_missing_fields_and_bad_json_are_refused(api, client):
    user = await api.user()
    _, token = await new_install_token(user)
    error = assert_error(await register(client, token, {}), 400, "validation_error")
    assert {d["field"] for d in error["details"]} == {"hostname", "os", "arch", "gpus"}
    assert all(d["message"] == "This field is required." for d in error["details"])
    bad = await client.post(
        "/api/v1/agents/register",
        content=b'{"hostname": ',
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert_error(bad, 400, "validation_error")


async def test_duplicate_gpu_ids_are_refused(api, client):
    user = await api.user()
    token_id, token = await new_install_token(user)
    gpus = gpu_infos(2)
    gpus[1]["gpu_id"] = "GPU-0"
    response = await register(client, token, {**register_body(), "gpus": gpus})
    error = assert_error(response, 400, "validation_error")
    assert error["details"][0]["field"] == "gpus"
    assert await row_counts() == (0, 0, 0)
    assert await token_status(user, token_id) == "active"


async def test_the_token_is_checked_before_the_body(api, client):
    """A bad body is a 400 only with a live token: an unknown one is refused as a
    credential, a spent one as spent (the credential first, as on every agent path)."""
    user = await api.user()
    bad = {**register_body(), "gpus": None}
    assert_error(await register(client, new_token(TokenKind.INSTALL), bad), 401, "unauthorized")
    token_id, token = await new_install_token(user)
    assert (await register(client, token, register_body())).status_code == 201
    assert_error(await register(client, token, bad), 401, "token_used")
    _, revoked = await new_install_token(user)
    await InstallToken.filter(token_hash=hash_token(revoked)).update(expires_at=clock.now())
    assert_error(await register(client, revoked, bad), 401, "token_expired")
    assert await row_counts() == (1, 1, 1)
    assert await token_status(user, token_id) == "used"


async def test_too_many_gpus_for_the_plan_leave_no_trace_and_the_token_active(api, client):
    user = await api.user()  # free: 2 GPUs, 2 workers
    token_id, token = await new_install_token(user)
    response = await register(client, token, register_body(gpus=3))
    error = assert_error(response, 403, "plan_limit_exceeded")
    assert "2" in error["message"]
    assert await row_counts() == (0, 0, 0)
    assert await token_status(user, token_id) == "active"
    status = (await user.get(f"/api/v1/tokens/{token_id}/status")).json()
    assert status["used_at"] is None and "agent" not in status
    # The same token still registers a host that fits.
    assert (await register(client, token, register_body(gpus=2))).status_code == 201
    assert await token_status(user, token_id) == "used"


async def test_gpus_count_over_all_of_the_users_agents(api, client):
    user = await api.user()
    await register_agent(user, gpus=2)
    before = await row_counts()
    token_id, token = await new_install_token(user)
    assert_error(await register(client, token, register_body(gpus=2)), 403, "plan_limit_exceeded")
    assert await row_counts() == before
    assert await token_status(user, token_id) == "active"


async def test_the_default_worker_must_fit_the_plan_too(api, client):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    created = await user.post(
        "/api/v1/workers",
        json={"agent_id": agent.agent_id, "name": "w", "gpu_ids": ["GPU-0"], "listen_port": 9100},
    )
    assert created.status_code == 201  # 2 workers of 2
    before = await row_counts()
    _, token = await new_install_token(user)
    error = assert_error(
        await register(client, token, register_body(gpus=1)), 403, "plan_limit_exceeded"
    )
    assert "workers" in error["message"]
    assert await row_counts() == before


async def test_another_users_agents_do_not_count(api, client):
    other = await api.user()
    await register_agent(other, gpus=2)
    user = await api.user()
    _, token = await new_install_token(user)
    assert (await register(client, token, register_body(gpus=2))).status_code == 201


async def assert_one_winner(responses: list[httpx.Response]) -> None:
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [401] * (len(responses) - 1), codes
    for response in responses:
        if response.status_code == 401:
            assert response.json()["error"]["code"] == "token_used"
    winner = next(r for r in responses if r.status_code == 201).json()
    assert await Agent.all().values_list("id", flat=True) == [winner["agent_id"]]
    assert await Gpu.all().count() == 1
    assert await Worker.all().count() == 1
    token = await InstallToken.get(agent_id=winner["agent_id"])
    assert token.used_at is not None


async def test_racing_registrations_with_one_token_make_one_agent(api, client):
    user = await api.user(plan="team")
    _, token = await new_install_token(user)
    responses = await asyncio.gather(
        *(register(client, token, register_body(hostname=f"h{n}")) for n in range(RACERS))
    )
    await assert_one_winner(list(responses))


async def test_racing_registrations_of_one_user_do_not_exceed_the_plan(api, client):
    user = await api.user()  # free: 2 GPUs
    tokens = [(await new_install_token(user))[1] for _ in range(5)]
    responses = await asyncio.gather(
        *(register(client, token, register_body(gpus=2)) for token in tokens)
    )
    assert sorted(r.status_code for r in responses) == [201, 403, 403, 403, 403]
    assert await Gpu.all().count() == 2


@pytest.fixture
async def live_server(app) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a free TCP port, on this test's event loop."""
    async with serve(app) as url:
        yield url


async def test_racing_registrations_over_tcp_make_one_agent(api, live_server):
    user = await api.user(plan="team")
    _, token = await new_install_token(user)
    clients = [httpx.AsyncClient(base_url=live_server) for _ in range(RACERS)]
    try:
        responses = await asyncio.gather(
            *(
                register(http, token, register_body(hostname=f"h{n}"))
                for n, http in enumerate(clients)
            )
        )
    finally:
        await asyncio.gather(*(http.aclose() for http in clients))
    await assert_one_winner(list(responses))


@pytest.mark.parametrize(
    ("reported", "stored"),
    [
        ("NVIDIA", "nvidia"),
        ("AMD", "amd"),
        ("Ascend", "ascend"),
        (" Intel ", "intel"),
        ("", "unknown"),
    ],
)
async def test_the_vendor_is_taken_as_the_accelerator_library_spells_it(
    api, client, reported, stored
):
    user = await api.user(plan="pro")
    _, token = await new_install_token(user)
    body = register_body(gpus=1)
    body["gpus"][0]["vendor"] = reported
    response = await register(client, token, body)
    assert response.status_code == 201, response.text
    agent_id = response.json()["agent_id"]
    shown = (await user.get(f"/api/v1/agents/{agent_id}")).json()
    assert [g["vendor"] for g in shown["gpus"]] == [stored]
    # A share of its worker names the same vendor.
    [worker] = shown["workers"]
    share = await user.post(
        "/api/v1/shares", json={"worker_id": worker["worker_id"], "connection_ip": "10.0.0.1"}
    )
    assert share.json()["hardware_vendor"] == stored


async def test_a_host_without_gpus_registers_without_a_worker(api, client):
    user = await api.user()
    token_id, token = await new_install_token(user)
    response = await register(client, token, register_body(gpus=0))
    assert response.status_code == 201, response.text
    body = response.json()
    # A license for no GPU: nothing before the first separator.
    assert body["license"]["plain"].split("|")[:2] == ["", "free"]
    shown = (await user.get(f"/api/v1/agents/{body['agent_id']}")).json()
    assert (shown["gpus"], shown["workers"]) == ([], [])
    assert await token_status(user, token_id) == "used"
    # No GPU and no worker counted: the free plan still has room for a 2-GPU host.
    _, second = await new_install_token(user)
    assert (await register(client, second, register_body(gpus=2))).status_code == 201
