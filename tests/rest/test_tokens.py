from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from gpugo import clock
from tests.support import assert_error, assert_iso, gpu_infos, register_agent


async def test_generate_install_token(api, settings):
    user = await api.user()
    response = await user.post("/api/v1/tokens/generate", json={"type": "agent_install"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token_id", "token", "expires_at", "install_command"}
    assert body["token"].startswith("gpgo_inst_")
    assert_iso(body["expires_at"])
    assert body["install_command"] == (
        f'curl -sfL {settings.install_script_url} | GPU_GO_TOKEN="{body["token"]}" '
        f'GPU_GO_ENDPOINT="{settings.public_url}" sh'
    )


@pytest.mark.parametrize("payload", [{}, {"type": "other"}, {"type": None}, []])
async def test_generate_rejects_other_token_types(api, payload):
    user = await api.user()
    response = await user.post("/api/v1/tokens/generate", json=payload)
    assert_error(response, 400, "validation_error")


async def test_token_status_goes_active_then_used_with_the_agent(api):
    user = await api.user()
    generated = (await user.post("/api/v1/tokens/generate", json={"type": "agent_install"})).json()
    status = (await user.get(f"/api/v1/tokens/{generated['token_id']}/status")).json()
    assert status["status"] == "active"
    assert status["is_expired"] is False
    assert status["used_at"] is None
    assert "agent" not in status

    response = await user.http.post(
        "/api/v1/agents/register",
        json={"hostname": "h1", "os": "linux", "arch": "amd64", "gpus": gpu_infos(1)},
        headers={"Authorization": f"Bearer {generated['token']}"},
    )
    assert response.status_code == 201
    status = (await user.get(f"/api/v1/tokens/{generated['token_id']}/status")).json()
    assert status["status"] == "used"
    assert_iso(status["used_at"])
    assert status["agent"] == {"agent_id": response.json()["agent_id"], "hostname": "h1"}


async def test_token_expires_after_30_minutes(api):
    user = await api.user()
    generated = (await user.post("/api/v1/tokens/generate", json={"type": "agent_install"})).json()
    clock.advance(timedelta(minutes=29, seconds=59))
    status = (await user.get(f"/api/v1/tokens/{generated['token_id']}/status")).json()
    assert status["status"] == "active"
    clock.advance(timedelta(seconds=1))
    status = (await user.get(f"/api/v1/tokens/{generated['token_id']}/status")).json()
    assert status["status"] == "expired"
    assert status["is_expired"] is True
    response = await user.http.post(
        "/api/v1/agents/register",
        json={"hostname": "h1", "os": "linux", "arch": "amd64", "gpus": gpu_infos(1)},
        headers={"Authorization": f"Bearer {generated['token']}"},
    )
    assert_error(response, 401, "token_expired")


async def test_token_status_of_another_user_is_not_found(api):
    owner = await api.user()
    other = await api.user()
    generated = (await owner.post("/api/v1/tokens/generate", json={"type": "agent_install"})).json()
    assert_error(
        await other.get(f"/api/v1/tokens/{generated['token_id']}/status"), 404, "not_found"
    )
    assert_error(await other.get("/api/v1/tokens/tok_doesnotexist/status"), 404, "not_found")


async def test_pat_lifecycle(api, client):
    user = await api.user()
    info = (await user.get("/api/v1/tokens/pat")).json()
    assert info == {"exists": False, "expires_at": None, "last_used_at": None, "created_at": None}

    created = await user.post("/api/v1/tokens/pat", json={"expires_in_days": 30})
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"token", "expires_at", "created_at"}
    assert body["token"].startswith("gpgo_pat_")
    assert_iso(body["expires_at"])
    assert_iso(body["created_at"])

    info = (await user.get("/api/v1/tokens/pat")).json()
    assert info["exists"] is True
    assert info["last_used_at"] is None
    assert info["expires_at"] == body["expires_at"]

    bearer = {"Authorization": f"Bearer {body['token']}"}
    assert (await client.get("/api/v1/auth/me", headers=bearer)).status_code == 200
    info = (await user.get("/api/v1/tokens/pat")).json()
    assert_iso(info["last_used_at"])

    deleted = await user.delete("/api/v1/tokens/pat")
    assert deleted.json() == {"success": True}
    assert_error(await client.get("/api/v1/auth/me", headers=bearer), 401, "unauthorized")
    assert (await user.delete("/api/v1/tokens/pat")).json() == {"success": False}
    assert (await user.get("/api/v1/tokens/pat")).json()["exists"] is False


async def test_pat_without_expiry(api, client):
    user = await api.user()
    body = (await user.post("/api/v1/tokens/pat", json={"expires_in_days": None})).json()
    assert body["expires_at"] is None
    clock.advance(timedelta(days=3650))
    bearer = {"Authorization": f"Bearer {body['token']}"}
    assert (await client.get("/api/v1/auth/me", headers=bearer)).status_code == 200


async def test_regenerating_the_pat_invalidates_the_old_one_at_once(api, client):
    user = await api.user()
    old = await user.create_pat()
    new = await user.create_pat()
    assert old != new
    assert_error(
        await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {old}"}),
        401,
        "unauthorized",
    )
    response = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {new}"})
    assert response.status_code == 200


async def test_pat_expires(api, client):
    user = await api.user()
    body = (await user.post("/api/v1/tokens/pat", json={"expires_in_days": 1})).json()
    bearer = {"Authorization": f"Bearer {body['token']}"}
    clock.advance(timedelta(hours=23, minutes=59))
    assert (await client.get("/api/v1/auth/me", headers=bearer)).status_code == 200
    clock.advance(timedelta(minutes=1))
    assert_error(await client.get("/api/v1/auth/me", headers=bearer), 401, "unauthorized")


@pytest.mark.parametrize("days", [0, -1, 1.5, "x", "1", True, 100000])
async def test_pat_expiry_must_be_a_positive_whole_number_of_days(api, days):
    user = await api.user()
    response = await user.post("/api/v1/tokens/pat", json={"expires_in_days": days})
    error = assert_error(response, 400, "validation_error")
    assert error["details"][0]["field"] == "expires_in_days"
    assert (await user.get("/api/v1/tokens/pat")).json()["exists"] is False


async def test_concurrent_pat_creations_leave_exactly_one_working_pat(api, client):
    user = await api.user()
    responses = await asyncio.gather(
        *(user.post("/api/v1/tokens/pat", json={"expires_in_days": None}) for _ in range(10))
    )
    assert all(r.status_code == 201 for r in responses)
    working = []
    for response in responses:
        token = response.json()["token"]
        me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        if me.status_code == 200:
            working.append(token)
    assert len(working) == 1


async def test_a_pat_works_wherever_a_session_does(api, client):
    user = await api.user()
    pat = await user.create_pat()
    bearer = {"Authorization": f"Bearer {pat}"}
    generated = await client.post(
        "/api/v1/tokens/generate", json={"type": "agent_install"}, headers=bearer
    )
    assert generated.status_code == 201
    token_id = generated.json()["token_id"]
    status = await client.get(f"/api/v1/tokens/{token_id}/status", headers=bearer)
    assert status.status_code == 200
    assert (await client.get("/api/v1/tokens/pat", headers=bearer)).json()["exists"] is True
    assert (await client.get("/api/v1/auth/me", headers=bearer)).status_code == 200


async def test_agent_secrets_and_install_tokens_are_not_users(api, client):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    install = await user.install_token()
    for credential, status, code in (
        (agent.secret, 403, "forbidden"),
        (install, 401, "unauthorized"),
    ):
        response = await client.get(
            "/api/v1/tokens/pat", headers={"Authorization": f"Bearer {credential}"}
        )
        assert_error(response, status, code)
