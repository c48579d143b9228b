from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest

from gpugo import clock
from gpugo.models import Share, Worker
from gpugo.services import shares as shares_service
from gpugo.timefmt import iso
from tests.sql_counter import count_sql
from tests.support import PUBLIC_URL, assert_error, assert_iso, gpu_infos, register_agent

SHARE_KEYS = {
    "share_id",
    "short_code",
    "short_link",
    "worker_id",
    "hardware_vendor",
    "connection_url",
    "expires_at",
    "max_uses",
    "used_count",
    "created_at",
}
BASE62_12 = re.compile(r"^[0-9A-Za-z]{12}$")


def assert_share_item(item: dict[str, Any]) -> None:
    """A ShareListItem, every field with its JSON type."""
    assert set(item) == SHARE_KEYS, item
    assert isinstance(item["share_id"], str) and item["share_id"].startswith("shr_")
    assert isinstance(item["short_code"], str) and BASE62_12.match(item["short_code"])
    assert item["short_link"] == f"{PUBLIC_URL}/s/{item['short_code']}"
    assert isinstance(item["worker_id"], str)
    assert isinstance(item["hardware_vendor"], str)
    assert isinstance(item["connection_url"], str) and item["connection_url"].startswith("tcp://")
    if item["expires_at"] is not None:
        assert_iso(item["expires_at"])
    assert item["max_uses"] is None or type(item["max_uses"]) is int
    assert type(item["used_count"]) is int
    assert_iso(item["created_at"])


async def worker_of(user, **register: Any) -> str:
    agent = await register_agent(user, **register)
    return (await Worker.get(agent_id=agent.agent_id, is_default=True)).id


async def share(user, target: str, **fields: Any) -> httpx.Response:
    return await user.post(
        "/api/v1/shares", json={"worker_id": target, "connection_ip": "203.0.113.7", **fields}
    )


async def test_create_share(api):
    user = await api.user()
    worker_id = await worker_of(user, gpus=2)
    response = await share(user, worker_id)
    assert response.status_code == 201, response.text
    body = response.json()
    assert_share_item(body)
    assert body["worker_id"] == worker_id
    assert body["hardware_vendor"] == "nvidia"
    assert body["connection_url"] == "tcp://203.0.113.7:9001"
    assert body["expires_at"] is None
    assert body["max_uses"] is None
    assert body["used_count"] == 0
    assert (await user.get("/api/v1/shares")).json() == {"shares": [body]}


async def test_create_share_with_expiry_and_max_uses(api):
    user = await api.user()
    worker_id = await worker_of(user, gpus=1)
    # A Go timestamp: nanoseconds and an offset.
    expires = (clock.now() + timedelta(days=1)).astimezone()
    go_time = expires.strftime("%Y-%m-%dT%H:%M:%S.") + "123456789" + expires.strftime("%z")
    go_time = go_time[:-2] + ":" + go_time[-2:]
    response = await share(user, worker_id, expires_at=go_time, max_uses=3)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["expires_at"] == iso(expires.replace(microsecond=123456))
    assert body["max_uses"] == 3


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("10.1.2.3", "tcp://10.1.2.3:9001"),
        (" 10.1.2.3 ", "tcp://10.1.2.3:9001"),
        ("2001:DB8::1", "tcp://[2001:db8::1]:9001"),
        ("[2001:db8:0:0::1]", "tcp://[2001:db8::1]:9001"),
        ("::1", "tcp://[::1]:9001"),
        ("GPU-Box.Example.com", "tcp://gpu-box.example.com:9001"),
        ("localhost", "tcp://localhost:9001"),
    ],
)
async def test_connection_url(api, given, url):
    user = await api.user()
    worker_id = await worker_of(user, gpus=1)
    response = await share(user, worker_id, connection_ip=given)
    assert response.status_code == 201, response.text
    assert response.json()["connection_url"] == url


async def test_hardware_vendor_follows_the_workers_gpus(api):
    user = await api.user()
    amd = await worker_of(user, gpus=1, vendor="amd")
    assert (await share(user, amd)).json()["hardware_vendor"] == "amd"


async def register_mixed_agent(user) -> str:
    """An agent with an NVIDIA GPU-0 and an AMD GPU-1; returns its agent id."""
    token = await user.install_token()
    gpus = [gpu_infos(1, "nvidia")[0], {**gpu_infos(2, "amd")[1]}]
    response = await user.http.post(
        "/api/v1/agents/register",
        json={"hostname": "mixed", "os": "linux", "arch": "amd64", "gpus": gpus},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["agent_id"]


async def test_a_worker_over_gpus_of_two_vendors_shares_as_mixed(api):
    user = await api.user()
    agent_id = await register_mixed_agent(user)
    worker = await Worker.get(agent_id=agent_id, is_default=True)
    assert worker.gpu_ids == ["GPU-0", "GPU-1"]
    assert (await share(user, worker.id)).json()["hardware_vendor"] == "mixed"


async def test_changing_the_workers_gpus_updates_its_shares_vendor(api):
    user = await api.user()
    agent_id = await register_mixed_agent(user)
    worker = await Worker.get(agent_id=agent_id, is_default=True)
    url = f"/api/v1/workers/{worker.id}"
    assert (await user.patch(url, json={"gpu_ids": ["GPU-1"]})).status_code == 200
    created = (await share(user, worker.id)).json()
    assert created["hardware_vendor"] == "amd"
    assert (await user.patch(url, json={"gpu_ids": ["GPU-0"]})).status_code == 200
    [listed] = (await user.get("/api/v1/shares")).json()["shares"]
    assert listed["hardware_vendor"] == "nvidia"


async def test_short_link_uses_the_configured_base(api, app, settings):
    app.state.ctx = dataclasses.replace(
        app.state.ctx, settings=settings.replace(short_link_base="https://go.example/")
    )
    user = await api.user()
    worker_id = await worker_of(user, gpus=1)
    body = (await share(user, worker_id)).json()
    assert body["short_link"] == f"https://go.example/s/{body['short_code']}"


async def test_short_codes_are_random_and_distinct(api):
    user = await api.user()
    worker_id = await worker_of(user, gpus=1)
    codes = {(await share(user, worker_id)).json()["short_code"] for _ in range(30)}
    assert len(codes) == 30
    assert all(BASE62_12.match(code) for code in codes)


async def test_a_short_code_collision_is_retried(api, monkeypatch):
    user = await api.user()
    worker_id = await worker_of(user, gpus=1)
    first = (await share(user, worker_id)).json()["short_code"]
    drawn = iter([first, first, "Fresh0code12"])
    monkeypatch.setattr(shares_service, "random_base62", lambda length: next(drawn))
    response = await share(user, worker_id)
    assert response.status_code == 201, response.text
    assert response.json()["short_code"] == "Fresh0code12"
    assert await Share.filter(worker_id=worker_id).count() == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"connection_ip": ""}, "connection_ip"),
        ({"connection_ip": "   "}, "connection_ip"),
        ({"connection_ip": "not a host"}, "connection_ip"),
        ({"connection_ip": "host:8080"}, "connection_ip"),
        ({"connection_ip": "300.1.2.3"}, "connection_ip"),
        ({"connection_ip": "10.0.0"}, "connection_ip"),
        ({"connection_ip": "[10.0.0.1]:80"}, "connection_ip"),
        ({"connection_ip": "a" * 256}, "connection_ip"),
        ({"connection_ip": 10}, "connection_ip"),
        ({"max_uses": 0}, "max_uses"),
        ({"max_uses": -1}, "max_uses"),
        ({"max_uses": 1.5}, "max_uses"),
        ({"max_uses": "3"}, "max_uses"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_at": 1893456000}, "expires_at"),
        ({"worker_id": ""}, "worker_id"),
    ],
)
async def test_create_validates_its_input(api, change, field):
    user = await api.user()
    worker_id = await worker_of(user, gpus=1)
    error = assert_error(await share(user, worker_id, **change), 400, "validation_error")
    assert [d["field"] for d in error["details"]] == [field]
    assert await Share.all().count() == 0


@pytest.mark.parametrize("missing", ["worker_id", "connection_ip"])
async def test_create_requires_its_fields(api, missing):
    user = await api.user()
    body = {"worker_id": "wkr_x", "connection_ip": "10.0.0.1"}
    del body[missing]
    error = assert_error(await user.post("/api/v1/shares", json=body), 400, "validation_error")
    assert error["details"] == [{"field": missing, "message": "This field is required."}]


@pytest.mark.parametrize("ago", [timedelta(0), timedelta(seconds=1), timedelta(days=400)])
async def test_expires_at_must_be_in_the_future(api, ago):
    user = await api.user()
    worker_id = await worker_of(user, gpus=1)
    response = await share(user, worker_id, expires_at=iso(clock.now() - ago))
    error = assert_error(response, 400, "validation_error")
    assert error["details"][0]["field"] == "expires_at"
    assert await Share.all().count() == 0


async def test_sharing_another_users_worker_is_not_found(api):
    owner = await api.user()
    intruder = await api.user()
    worker_id = await worker_of(owner, gpus=1)
    assert_error(await share(intruder, worker_id), 404, "not_found")
    assert_error(await share(owner, "wkr_unknown"), 404, "not_found")
    assert await Share.all().count() == 0


async def test_list_shows_only_the_callers_shares_newest_first(api):
    owner = await api.user()
    other = await api.user()
    worker_id = await worker_of(owner, gpus=1)
    others_worker = await worker_of(other, gpus=1)
    first = (await share(owner, worker_id)).json()
    clock.advance(timedelta(seconds=1))
    second = (await share(owner, worker_id, max_uses=2)).json()
    await share(other, others_worker)
    listed = (await owner.get("/api/v1/shares")).json()["shares"]
    assert [s["share_id"] for s in listed] == [second["share_id"], first["share_id"]]
    for item in listed:
        assert_share_item(item)
    assert len((await other.get("/api/v1/shares")).json()["shares"]) == 1


async def test_list_costs_the_same_statements_for_one_share_or_many(api):
    user = await api.user()
    worker_id = await worker_of(user, gpus=1)
    await share(user, worker_id)
    await user.get("/api/v1/shares")  # the session's idle clock is written at most once
    with count_sql() as few:
        assert len((await user.get("/api/v1/shares")).json()["shares"]) == 1
    for _ in range(5):
        await share(user, worker_id)
    with count_sql() as many:
        assert len((await user.get("/api/v1/shares")).json()["shares"]) == 6
    assert len(few) == len(many) == 2, (few, many)  # the session, then one SELECT


async def test_list_shows_the_workers_current_port(api):
    user = await api.user()
    worker_id = await worker_of(user, gpus=1)
    await share(user, worker_id)
    await user.patch(f"/api/v1/workers/{worker_id}", json={"listen_port": 9443})
    [listed] = (await user.get("/api/v1/shares")).json()["shares"]
    assert listed["connection_url"] == "tcp://203.0.113.7:9443"


async def test_delete_share(api, client):
    owner = await api.user()
    intruder = await api.user()
    worker_id = await worker_of(owner, gpus=1)
    created = (await share(owner, worker_id)).json()
    url = f"/api/v1/shares/{created['share_id']}"
    assert_error(await intruder.delete(url), 404, "not_found")
    assert await Share.filter(id=created["share_id"]).count() == 1
    assert (await client.get(f"/s/{created['short_code']}")).status_code == 200

    response = await owner.delete(url)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert (await owner.get("/api/v1/shares")).json() == {"shares": []}
    assert_error(await client.get(f"/s/{created['short_code']}"), 404, "not_found")
    assert_error(await owner.delete(url), 404, "not_found")


async def test_shares_need_a_user(api, client):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    for method, url in (
        ("GET", "/api/v1/shares"),
        ("POST", "/api/v1/shares"),
        ("DELETE", "/api/v1/shares/shr_x"),
    ):
        assert_error(await client.request(method, url), 401, "unauthorized")
        gone = {"Authorization": "Bearer gpgo_agent_unknown"}
        assert_error(await client.request(method, url, headers=gone), 401, "unauthorized")
    pat = await user.create_pat()
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    response = await client.post(
        "/api/v1/shares",
        json={"worker_id": worker_id, "connection_ip": "10.0.0.1"},
        headers={"Authorization": f"Bearer {pat}"},
    )
    assert response.status_code == 201
