from __future__ import annotations

import base64
from datetime import timedelta

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gpugo import clock
from gpugo.app import create_app
from gpugo.models import Agent, Gpu, User
from gpugo.services import licenses
from tests.conftest import make_client
from tests.support import BAD_GPU_IDS, assert_error, moment, out_time, register_agent

TTL = timedelta(minutes=120)
REPORT = {"timestamp": out_time(moment()), "gpus": [], "workers": []}


async def public_key(client: httpx.AsyncClient) -> Ed25519PublicKey:
    response = await client.get("/api/v1/license/public-key")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"algorithm", "public_key"}
    assert body["algorithm"] == "Ed25519"
    assert body["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    key = load_pem_public_key(body["public_key"].encode())
    assert isinstance(key, Ed25519PublicKey)
    return key


def verify(key: Ed25519PublicKey, license: dict[str, str]) -> tuple[list[str], str, int]:
    """Check the signature and the format; return (gpu ids, plan, expiry in unix ms)."""
    assert set(license) == {"plain", "encrypted"}
    key.verify(base64.b64decode(license["encrypted"], validate=True), license["plain"].encode())
    gpu_ids, plan, expiry = license["plain"].split("|")
    assert expiry.isdigit()
    return gpu_ids.split(","), plan, int(expiry)


def now_ms() -> int:
    return int(clock.now().timestamp() * 1000)


def assert_fresh(expiry_ms: int) -> None:
    """Valid for 120 minutes from now (a few seconds of slack for the test's own run)."""
    expected = now_ms() + int(TTL.total_seconds() * 1000)
    assert expected - 5000 <= expiry_ms <= expected, (expiry_ms, expected)


async def test_register_status_and_config_each_give_a_fresh_signed_license(api, client):
    user = await api.user()
    agent = await register_agent(user, gpus=2)
    key = await public_key(client)
    for license in (
        agent.license,
        (await agent.report(REPORT)).json()["license"],
        (await agent.config()).json()["license"],
    ):
        gpu_ids, plan, expiry = verify(key, license)
        assert (gpu_ids, plan) == (["GPU-0", "GPU-1"], "free")
        assert_fresh(expiry)


async def test_after_121_minutes_the_old_license_is_expired_and_a_report_renews_it(api, client):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    key = await public_key(client)
    _, _, old_expiry = verify(key, agent.license)
    clock.advance(timedelta(minutes=121))
    assert old_expiry < now_ms()
    renewed = (await agent.report(REPORT)).json()["license"]
    _, _, new_expiry = verify(key, renewed)
    assert new_expiry > now_ms()
    assert_fresh(new_expiry)
    assert renewed["plain"] != agent.license["plain"]
    pulled = (await agent.config()).json()["license"]
    assert verify(key, pulled)[2] > now_ms()


async def test_a_tampered_license_does_not_verify(api, client):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    key = await public_key(client)
    plain = agent.license["plain"].replace("|free|", "|pro|")
    with pytest.raises(InvalidSignature):
        key.verify(base64.b64decode(agent.license["encrypted"]), plain.encode())


async def test_the_license_follows_the_current_plan(api, client):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    await User.filter(id=user.user_id).update(plan="team")
    key = await public_key(client)
    assert verify(key, (await agent.report(REPORT)).json()["license"])[1] == "team"
    assert verify(key, (await agent.config()).json()["license"])[1] == "team"


async def test_the_license_names_gpus_in_the_agents_index_order(api, client):
    user = await api.user(plan="personal")
    token = await user.install_token()
    gpus = [
        {"gpu_id": gpu_id, "gpu_index": index, "vendor": "nvidia", "model": "m", "vram_mb": 1}
        for gpu_id, index in (("GPU-b", 2), ("GPU-c", 10), ("GPU-a", 1))
    ]
    response = await client.post(
        "/api/v1/agents/register",
        json={"hostname": "h", "os": "linux", "arch": "amd64", "gpus": gpus},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201
    body = response.json()
    key = await public_key(client)
    expected = ["GPU-a", "GPU-b", "GPU-c"]
    assert verify(key, body["license"])[0] == expected
    secret = {"Authorization": f"Bearer {body['agent_secret']}"}
    status = await client.post(
        f"/api/v1/agents/{body['agent_id']}/status", json=REPORT, headers=secret
    )
    assert verify(key, status.json()["license"])[0] == expected
    config = await client.get(f"/api/v1/agents/{body['agent_id']}/config", headers=secret)
    assert verify(key, config.json()["license"])[0] == expected


async def test_the_key_is_stable_across_restarts_of_the_app(app, settings, client):
    first = await public_key(client)
    async with make_client(create_app(settings, auto_migrate=False)) as again:
        second = await public_key(again)
    assert first.public_bytes_raw() == second.public_bytes_raw()


FORGED = BAD_GPU_IDS[0]  # one GPU whose id reads as 8 GPUs on the Pro plan for millennia


async def register_gpus(client: httpx.AsyncClient, token: str, gpu_ids: list[str]):
    gpus = [{"gpu_id": g, "vendor": "nvidia", "model": "m", "vram_mb": 1} for g in gpu_ids]
    return await client.post(
        "/api/v1/agents/register",
        json={"hostname": "h", "os": "linux", "arch": "amd64", "gpus": gpus},
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_a_gpu_id_that_would_forge_a_license_is_refused(api, client):
    user = await api.user()
    response = await register_gpus(client, await user.install_token(), [FORGED])
    error = assert_error(response, 400, "validation_error")
    assert [d["field"] for d in error["details"]] == ["gpus[0].gpu_id"]
    assert FORGED not in response.text  # the message states the rule, not the value
    assert not await Agent.exists()


async def test_every_license_reads_back_as_exactly_its_gpus_plan_and_expiry(api, client):
    user = await api.user(plan="personal")
    # The edges of the rule: MIG ids with "/", 128 characters, letters beyond ASCII.
    gpu_ids = ["GPU-\u00e9", "MIG-GPU-5a0c/1/0", "G" * 128]
    response = await register_gpus(client, await user.install_token(), gpu_ids)
    assert response.status_code == 201, response.text
    body = response.json()
    secret = {"Authorization": f"Bearer {body['agent_secret']}"}
    status = await client.post(
        f"/api/v1/agents/{body['agent_id']}/status", json=REPORT, headers=secret
    )
    config = await client.get(f"/api/v1/agents/{body['agent_id']}/config", headers=secret)
    key = await public_key(client)
    for license in (body["license"], status.json()["license"], config.json()["license"]):
        ids, plan, expiry = verify(key, license)
        assert (ids, plan) == (sorted(gpu_ids), "personal")
        assert license["plain"] == f"{','.join(sorted(gpu_ids))}|personal|{expiry}"


@pytest.mark.parametrize(
    ("gpu_ids", "plan"),
    [
        ([FORGED], "free"),
        (["GPU-0,GPU-1"], "free"),
        (["GPU-0", ""], "free"),
        ([""], "free"),
        (["GPU-0"], "free|99999999999999"),
        (["GPU-0"], ""),
    ],
)
async def test_the_builder_refuses_to_sign_text_that_reads_back_otherwise(app, gpu_ids, plan):
    with pytest.raises(licenses.UnsignableLicense):
        licenses.issue(ctx=app.state.ctx, gpu_ids=gpu_ids, plan=plan)


async def test_a_stored_id_holding_a_separator_gets_no_license(api):
    # A row written before the GPU id rule: refused (a 500, logged) rather than signed.
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    await Gpu.filter(agent_id=agent.agent_id).update(gpu_id=FORGED)
    for response in (await agent.report(REPORT), await agent.config()):
        assert_error(response, 500, "internal_error")
        assert "license" not in response.text
