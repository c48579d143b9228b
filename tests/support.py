"""Helpers for tests: users that sign up and act over HTTP, and assertion helpers."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from starlette.applications import Starlette
from tortoise import Tortoise
from tortoise.contrib.test import _topological_sort_models

from gpugo import clock
from gpugo.ids import new_id

PUBLIC_URL = "http://testserver"
ORIGIN = {"Origin": PUBLIC_URL}
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PASSWORD = "correct horse battery"
# GPU ids outside the contract's rule (1 to 128 printable characters, never whitespace,
# "," or "|"): each entry point refuses every one of them.
BAD_GPU_IDS = [
    "GPU-0,GPU-1,GPU-2,GPU-3,GPU-4,GPU-5,GPU-6,GPU-7|pro|99999999999999",
    "GPU-0,GPU-1",
    "GPU-0|pro",
    "GPU 0",
    "GPU-0\t",
    "GPU-\n0",
    "GPU-\u00a00",  # no-break space
    "GPU-\x000",  # control character
    "GPU-\u200b0",  # zero-width space (a format character)
    "G" * 129,
    "",
]


def moment(delta: timedelta = timedelta(0)) -> datetime:
    """The server's now moved by ``delta``, in whole milliseconds (what the server keeps).

    Tests that send a time the server compares with its clock take it from here, never
    from a literal date: a literal expires with the calendar."""
    at = clock.now() + delta
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


async def eventually(check: Callable[[], Any], *, within: float = 15.0) -> Any:
    """Wait until ``check()`` is truthy (bounded); its value."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.05)


async def empty_database() -> None:
    """Delete every model's rows, children before parents: one script.

    Not Tortoise's ``truncate_all_models``: on PostgreSQL its one ``TRUNCATE`` of every
    table replaces each table's files and took ~110 ms, against ~3 ms for these
    ``DELETE``s of the few rows a test leaves; it ran before every test.
    """
    models = _topological_sort_models(list(Tortoise.apps.get_models_iterable()))
    script = "; ".join(f'DELETE FROM "{model._meta.db_table}"' for model in models)
    await models[0]._meta.db.execute_script(script)


async def flush_metrics(app: Starlette) -> int:
    """Write the metric points the app has accepted (the tests' app flushes only when told)."""
    return await app.state.ctx.metrics.flush()


async def roll_up_metrics(start: datetime, end: datetime) -> None:
    """The sweeper's rollup pass over [start, end) (the tests' app runs none by itself)."""
    from gpugo.services import metrics_rollups

    await metrics_rollups.roll_up(start, end)


def go_time(at: datetime, *, offset_hours: int = 0, nanos: int | None = None) -> str:
    """``at`` as the Go agent writes it (RFC 3339 with an offset; RFC3339Nano with ``nanos``)."""
    local = at.astimezone(timezone(timedelta(hours=offset_hours)))
    if nanos is None:
        fraction = f".{local.microsecond // 1000:03d}"
    else:
        fraction = f".{local.microsecond // 1000:03d}{nanos:06d}"
    if offset_hours == 0:
        zone = "Z"
    else:
        zone = f"{'+' if offset_hours > 0 else '-'}{abs(offset_hours):02d}:00"
    return local.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone


def out_time(at: datetime) -> str:
    """``at`` as the server writes timestamps out: UTC, milliseconds, ``Z``."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S") + f".{at.microsecond // 1000:03d}Z"


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def assert_iso(value: object) -> None:
    assert isinstance(value, str) and ISO_MS.match(value), value


class User:
    """A signed-up user with a cookie session (``http``) and, once made, a PAT client."""

    def __init__(self, http: httpx.AsyncClient, email: str, user_id: str) -> None:
        self.http = http
        self.email = email
        self.user_id = user_id
        self.pat: str | None = None

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**ORIGIN, **kwargs.pop("headers", {})}
        return await self.http.request(method, url, headers=headers, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    async def create_pat(self) -> str:
        response = await self.post("/api/v1/tokens/pat", json={"expires_in_days": None})
        assert response.status_code == 201, response.text
        self.pat = response.json()["token"]
        return self.pat

    def client_for_agent(self) -> httpx.AsyncClient:
        """A client without this user's cookies, for an agent on the same server."""
        return httpx.AsyncClient(transport=self.http._transport, base_url=PUBLIC_URL)

    async def install_token(self) -> str:
        response = await self.post("/api/v1/tokens/generate", json={"type": "agent_install"})
        assert response.status_code == 201, response.text
        return response.json()["token"]


class Api:
    def __init__(
        self, app: Starlette, make_client: Callable[[Starlette], httpx.AsyncClient]
    ) -> None:
        self.app = app
        self._make_client = make_client
        self._clients: list[httpx.AsyncClient] = []
        self._count = 0

    def client(self) -> httpx.AsyncClient:
        http = self._make_client(self.app)
        self._clients.append(http)
        return http

    async def user(self, email: str | None = None, plan: str = "free") -> User:
        self._count += 1
        email = email or f"user{self._count}@example.com"
        http = self.client()
        response = await http.post(
            "/api/v1/auth/signup", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        user = User(http, email, response.json()["user_id"])
        if plan != "free":
            from gpugo.models import User as UserModel

            await UserModel.filter(id=user.user_id).update(plan=plan)
        return user

    async def aclose(self) -> None:
        for http in self._clients:
            await http.aclose()


def gpu_infos(count: int, vendor: str = "nvidia") -> list[dict[str, Any]]:
    return [
        {
            "gpu_id": f"GPU-{i}",
            "vendor": vendor,
            "model": "NVIDIA GeForce RTX 4090" if vendor == "nvidia" else "AMD Instinct MI300X",
            "vram_mb": 24564,
            "driver_version": "550.54.14",
            "cuda_version": "12.4",
        }
        for i in range(count)
    ]


class Agent:
    """A registered agent speaking to the server with its own secret."""

    def __init__(self, http: httpx.AsyncClient, agent_id: str, secret: str, license: dict) -> None:
        self.http = http
        self.agent_id = agent_id
        self.secret = secret
        self.license = license

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    async def report(self, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(
            f"/api/v1/agents/{self.agent_id}/status", json=body, headers=self.auth
        )

    async def config(self) -> httpx.Response:
        return await self.http.get(f"/api/v1/agents/{self.agent_id}/config", headers=self.auth)


async def register_agent(
    user: User,
    *,
    gpus: int = 2,
    hostname: str = "gpu-host-1",
    vendor: str = "nvidia",
) -> Agent:
    token = await user.install_token()
    http = user.client_for_agent()
    response = await http.post(
        "/api/v1/agents/register",
        json={
            "hostname": hostname,
            "os": "linux",
            "arch": "amd64",
            "gpus": gpu_infos(gpus, vendor),
            "network_ips": ["192.168.1.20"],
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Agent(http, body["agent_id"], body["agent_secret"], body["license"])


async def seed_fleet(user_id: str, count: int, *, gpus: int = 2, readings: bool = False) -> None:
    """``count`` machines of the user straight into the database, in bulk (a fleet in
    seconds): ``node-000``, ``node-001``... in turn online, offline (silent for two
    hours) and pending, created a minute apart (the first newest), at ``10.0.x.y``;
    each with ``gpus`` GPUs (RTX 4090 on even machines, A100 on odd ones) and its
    default worker on all of them, running unless pending. ``readings``: each online
    machine's GPUs have a sample from now, at ``i % 100`` percent for machine ``i``."""
    from gpugo.models import Agent, Gpu, GpuMetricSample, Worker

    now = clock.now()
    agents, gpu_rows, workers, samples = [], [], [], []
    for i in range(count):
        kind = i % 3
        agent = Agent(
            id=new_id("agt"),
            user_id=user_id,
            secret_hash=secrets.token_hex(32),
            hostname=f"node-{i:03d}",
            os="linux",
            arch="amd64",
            network_ips=[f"10.0.{i // 250}.{i % 250}"],
            last_seen_at={0: now, 1: now - timedelta(hours=2), 2: None}[kind],
            created_at=now - timedelta(minutes=i),
            updated_at=now,
        )
        agents.append(agent)
        model = "NVIDIA A100 80GB" if i % 2 else "NVIDIA GeForce RTX 4090"
        gpu_ids = [f"GPU-{g}" for g in range(gpus)]
        gpu_rows += [
            Gpu(
                agent_id=agent.id,
                gpu_id=gpu_id,
                gpu_index=g,
                vendor="nvidia",
                model=model,
                vram_mb=81920,
            )
            for g, gpu_id in enumerate(gpu_ids)
        ]
        workers.append(
            Worker(
                agent_id=agent.id,
                name="default",
                gpu_ids=gpu_ids,
                listen_port=9001,
                is_default=True,
                status="running" if kind != 2 else "pending",
                created_at=now,
                updated_at=now,
            )
        )
        if readings and kind == 0:
            samples += [
                GpuMetricSample(
                    agent_id=agent.id,
                    gpu_id=gpu_id,
                    recorded_at=now,
                    utilization=float(i % 100),
                    vram_used_mb=40960,
                    vram_total_mb=81920,
                    temperature=40 + i % 50,
                    power_usage_w=300.0,
                )
                for gpu_id in gpu_ids
            ]
    await Agent.bulk_create(agents, batch_size=500)
    await Gpu.bulk_create(gpu_rows, batch_size=1000)
    await Worker.bulk_create(workers, batch_size=500)
    await GpuMetricSample.bulk_create(samples, batch_size=1000)
