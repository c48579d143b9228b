from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from gpugo.app import create_app
from gpugo.models import SystemMetricSample
from tests.conftest import make_client
from tests.support import (
    ORIGIN,
    PASSWORD,
    PUBLIC_URL,
    Api,
    assert_error,
    empty_database,
    flush_metrics,
    moment,
    register_agent,
)


@pytest.fixture
async def limited_app(settings) -> AsyncIterator[Starlette]:
    app = create_app(
        settings.replace(
            rate_limits_enabled=True,
            rate_limit_login="3/minute",
            rate_limit_signup="2/minute",
            rate_limit_token_generate="2/minute",
            rate_limit_register="2/minute",
            rate_limit_metrics="2/minute",
        ),
        auto_migrate=False,
    )
    async with app.router.lifespan_context(app):
        await empty_database()
        yield app


def client_from(app: Starlette, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL)


async def _login(
    http: httpx.AsyncClient, email: str, password: str = "wrong password"
) -> httpx.Response:
    return await http.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_login_is_limited_per_client_address(limited_app):
    async with (
        client_from(limited_app, "10.0.0.1") as attacker,
        client_from(limited_app, "10.0.0.2") as bystander,
    ):
        for i in range(3):
            assert (await _login(attacker, f"victim{i}@example.com")).status_code == 401
        refused = await _login(attacker, "victim9@example.com")
        error = assert_error(refused, 429, "rate_limited")
        assert error["message"]
        assert int(refused.headers["retry-after"]) >= 1
        # Another address is not affected.
        assert (await _login(bystander, "someone@example.com")).status_code == 401


async def test_login_is_limited_per_account_across_addresses(limited_app):
    for i in range(3):
        async with client_from(limited_app, f"10.0.1.{i}") as http:
            assert (await _login(http, "target@example.com")).status_code == 401
    async with client_from(limited_app, "10.0.1.99") as http:
        assert_error(await _login(http, "Target@Example.com"), 429, "rate_limited")
        assert (await _login(http, "other@example.com")).status_code == 401


async def test_signup_is_limited_per_client_address(limited_app):
    async with client_from(limited_app, "10.0.2.1") as http:
        for i in range(2):
            response = await http.post(
                "/api/v1/auth/signup", json={"email": f"u{i}@example.com", "password": PASSWORD}
            )
            assert response.status_code == 201
        refused = await http.post(
            "/api/v1/auth/signup", json={"email": "u9@example.com", "password": PASSWORD}
        )
        assert_error(refused, 429, "rate_limited")
        assert "retry-after" in refused.headers


async def test_install_token_generation_is_limited_per_user(limited_app):
    async with client_from(limited_app, "10.0.3.1") as http:
        await http.post(
            "/api/v1/auth/signup", json={"email": "t@example.com", "password": PASSWORD}
        )
        for _ in range(2):
            response = await http.post(
                "/api/v1/tokens/generate", json={"type": "agent_install"}, headers=ORIGIN
            )
            assert response.status_code == 201
        refused = await http.post(
            "/api/v1/tokens/generate", json={"type": "agent_install"}, headers=ORIGIN
        )
        assert_error(refused, 429, "rate_limited")


async def test_registration_is_limited_per_client_address(limited_app):
    async with client_from(limited_app, "10.0.4.1") as agent:
        for _ in range(2):
            response = await agent.post(
                "/api/v1/agents/register",
                json={},
                headers={"Authorization": "Bearer gpgo_inst_not_a_real_token"},
            )
            assert response.status_code == 401
        refused = await agent.post(
            "/api/v1/agents/register",
            json={},
            headers={"Authorization": "Bearer gpgo_inst_not_a_real_token"},
        )
        assert_error(refused, 429, "rate_limited")


async def test_metrics_reports_are_limited_per_agent(limited_app):
    api = Api(limited_app, make_client)
    try:
        user = await api.user(plan="team")
        agent = await register_agent(user, gpus=1)
        other = await register_agent(user, gpus=1, hostname="other")

        async def report(who) -> httpx.Response:
            body = {
                "timestamp": moment().isoformat(),
                "system": {"cpu_usage": 1.0, "memory_used_mb": 1, "memory_total_mb": 2},
                "gpus": [],
            }
            return await who.http.post(
                f"/api/v1/agents/{who.agent_id}/metrics", json=body, headers=who.auth
            )

        for _ in range(2):
            assert (await report(agent)).status_code == 200
        refused = await report(agent)
        assert_error(refused, 429, "rate_limited")
        assert int(refused.headers["retry-after"]) >= 1
        await flush_metrics(limited_app)
        assert await SystemMetricSample.filter(agent_id=agent.agent_id).count() == 2
        # Counted per agent: another agent of the same user still reports.
        assert (await report(other)).status_code == 200
    finally:
        await api.aclose()


async def test_rate_limits_off_lets_everything_through(app):
    async with client_from(app, "10.0.5.1") as http:
        for _ in range(20):
            assert (await _login(http, "x@example.com")).status_code == 401
