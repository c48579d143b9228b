"""The same scenario through REST and through GraphQL leaves the same database state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from gpugo.models import (
    Agent,
    Gpu,
    InstallToken,
    PersonalAccessToken,
    Session,
    Share,
    User,
    Worker,
)
from tests.schema.support import data, post
from tests.support import ORIGIN, PASSWORD, PUBLIC_URL, gpu_infos

SECRET_COLUMNS = {"password_hash", "token_hash", "secret_hash", "short_code"}


def _normalize(rows: list[dict[str, Any]], ids: dict[str, str]) -> list[dict[str, Any]]:
    """Ids become their order of appearance; secrets and times become markers."""

    def value(key: str, v: Any) -> Any:
        if isinstance(v, datetime):
            return "<time>"
        if key in SECRET_COLUMNS:
            return "<secret>"
        if key == "email":
            return "<email>"
        if (
            isinstance(v, str)
            and (key == "id" or key.endswith("_id"))
            and v[:4]
            in (
                "usr_",
                "agt_",
                "wkr_",
                "shr_",
                "tok_",
                "pat_",
                "ses_",
                "gpu_",
            )
        ):
            return ids.setdefault(v, f"<{v[:3]}{len(ids)}>")
        return v

    return [{k: value(k, v) for k, v in sorted(row.items())} for row in rows]


async def state(user_id: str) -> dict[str, list[dict[str, Any]]]:
    ids: dict[str, str] = {}
    tables = {
        "users": User.filter(id=user_id),
        "sessions": Session.filter(user_id=user_id),
        "personal_access_tokens": PersonalAccessToken.filter(user_id=user_id),
        "install_tokens": InstallToken.filter(user_id=user_id),
        "agents": Agent.filter(user_id=user_id),
        "gpus": Gpu.filter(agent__user_id=user_id),
        "workers": Worker.filter(agent__user_id=user_id),
        "shares": Share.filter(user_id=user_id),
    }
    found = {}
    for name, query in tables.items():
        rows = await query.order_by("id").values()
        found[name] = rows
    # Ids are random: order rows by something stable before numbering the ids.
    found["gpus"].sort(key=lambda r: r["gpu_id"])
    found["workers"].sort(key=lambda r: r["listen_port"])
    return {name: _normalize(rows, ids) for name, rows in found.items()}


async def _register(http: httpx.AsyncClient, token: str) -> str:
    response = await http.post(
        "/api/v1/agents/register",
        json={
            "hostname": "gpu-host",
            "os": "linux",
            "arch": "amd64",
            "gpus": gpu_infos(2),
            "network_ips": ["192.168.1.20"],
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["agent_id"]


async def rest_scenario(http: httpx.AsyncClient) -> str:
    def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
        assert response.status_code == status, response.text
        return response.json()

    user = ok(
        await http.post(
            "/api/v1/auth/signup", json={"email": "rest@example.com", "password": PASSWORD}
        ),
        201,
    )
    ok(await http.post("/api/v1/tokens/pat", json={"expires_in_days": 30}, headers=ORIGIN), 201)
    token = ok(
        await http.post("/api/v1/tokens/generate", json={"type": "agent_install"}, headers=ORIGIN),
        201,
    )["token"]
    agent_id = await _register(http, token)
    worker = ok(
        await http.post(
            "/api/v1/workers",
            json={"agent_id": agent_id, "name": "train", "gpu_ids": ["GPU-1"], "listen_port": 9100},
            headers=ORIGIN,
        ),
        201,
    )
    ok(
        await http.patch(
            f"/api/v1/workers/{worker['worker_id']}",
            json={"name": "train-2", "gpu_ids": ["GPU-0", "GPU-1"], "enabled": False},
            headers=ORIGIN,
        )
    )
    kept = ok(
        await http.post(
            "/api/v1/shares",
            json={"worker_id": worker["worker_id"], "connection_ip": "203.0.113.7", "max_uses": 5},
            headers=ORIGIN,
        ),
        201,
    )
    dropped = ok(
        await http.post(
            "/api/v1/shares",
            json={"worker_id": worker["worker_id"], "connection_ip": "203.0.113.8"},
            headers=ORIGIN,
        ),
        201,
    )
    ok(await http.delete(f"/api/v1/shares/{dropped['share_id']}", headers=ORIGIN))
    assert kept["share_id"]
    return user["user_id"]


async def graphql_scenario(http: httpx.AsyncClient) -> str:
    async def gql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return data(await post(http, query, variables, headers=ORIGIN))

    user = (
        await gql(
            'mutation { signup(input: {email: "gql@example.com", password: "'
            + PASSWORD
            + '"}) { id } }'
        )
    )["signup"]
    await gql("mutation { createPersonalAccessToken(expiresInDays: 30) { token } }")
    token = (await gql("mutation { generateInstallToken { token } }"))["generateInstallToken"][
        "token"
    ]
    agent_id = await _register(http, token)
    worker = (
        await gql(
            'mutation($a: ID!) { createWorker(input: {agentId: $a, name: "train", '
            'gpuIds: ["GPU-1"], listenPort: 9100}) { id } }',
            {"a": agent_id},
        )
    )["createWorker"]
    await gql(
        'mutation($w: ID!) { updateWorker(id: $w, input: {name: "train-2", '
        'gpuIds: ["GPU-0", "GPU-1"], enabled: false}) { id } }',
        {"w": worker["id"]},
    )
    shares = await gql(
        "mutation($w: ID!) {"
        ' kept: createShare(input: {workerId: $w, connectionIp: "203.0.113.7", maxUses: 5}) { id }'
        ' dropped: createShare(input: {workerId: $w, connectionIp: "203.0.113.8"}) { id } }',
        {"w": worker["id"]},
    )
    await gql("mutation($s: ID!) { deleteShare(id: $s) }", {"s": shares["dropped"]["id"]})
    return user["id"]


async def test_rest_and_graphql_end_in_the_same_state(app):
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as rest_http,
        httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as gql_http,
    ):
        rest_user = await rest_scenario(rest_http)
        gql_user = await graphql_scenario(gql_http)
    rest_state = await state(rest_user)
    gql_state = await state(gql_user)
    assert rest_state == gql_state
    # And the scenario did something.
    assert len(rest_state["workers"]) == 2 and len(rest_state["shares"]) == 1
    # 1, then a worker created and updated, two links created and one deleted.
    assert rest_state["agents"][0]["config_version"] == 6
