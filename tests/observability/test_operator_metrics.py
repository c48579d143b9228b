"""GET /metrics: off without GPUGO_METRICS_TOKEN, only that bearer with it, and its
series move as traffic arrives, labelled by route template, never by user data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from gpugo.app import create_app
from gpugo.models import Worker
from tests.conftest import make_client
from tests.observability.support import label_values, parse, value
from tests.support import (
    PASSWORD,
    Api,
    assert_error,
    empty_database,
    gpu_infos,
    moment,
    out_time,
    register_agent,
)

TOKEN = "operator-scrape-token-0123456789"


@pytest.fixture
async def observed_app(settings) -> AsyncIterator[Starlette]:
    app = create_app(
        settings.replace(
            metrics_token=TOKEN,
            rate_limits_enabled=True,
            rate_limit_login="2/minute",
            audit_flush_seconds=3600.0,
        ),
        auto_migrate=False,
    )
    async with app.router.lifespan_context(app):
        await empty_database()
        yield app


async def scrape(http: httpx.AsyncClient) -> dict:
    response = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


async def test_metrics_are_off_without_a_token(client):
    assert_error(await client.get("/metrics"), 404, "not_found")
    assert_error(
        await client.get("/metrics", headers={"Authorization": "Bearer anything"}),
        404,
        "not_found",
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ],
)
async def test_metrics_answer_only_the_token(observed_app, headers):
    async with make_client(observed_app) as http:
        response = await http.get("/metrics", headers=headers)
    error = assert_error(response, 401, "unauthorized")
    assert TOKEN not in error["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_series_move_with_traffic_and_carry_no_user_data(observed_app, is_postgres):
    api = Api(observed_app, make_client)
    scraper = api.client()
    try:
        before = await scrape(scraper)
        user = await api.user(plan="team")
        agent = await register_agent(user, hostname="secret-host-name")
        worker_id = (await Worker.get(agent_id=agent.agent_id)).id
        other = await register_agent(user, gpus=0, hostname="other")
        # A status report (accepted, with a license), and one with another agent's secret.
        ok = await agent.report({"timestamp": out_time(moment()), "gpus": [], "workers": []})
        assert ok.status_code == 200, ok.text
        stranger = await agent.http.post(
            f"/api/v1/agents/{agent.agent_id}/status",
            json={"timestamp": out_time(moment()), "gpus": [], "workers": []},
            headers=other.auth,
        )
        assert stranger.status_code == 403
        # Refused before the report is read: no secret, a malformed one, a bad body.
        status_path = f"/api/v1/agents/{agent.agent_id}/status"
        report = {"timestamp": out_time(moment()), "gpus": [], "workers": []}
        for headers in ({}, {"Authorization": "Bearer gpgo_agent_not-a-secret"}):
            refused = await api.client().post(status_path, json=report, headers=headers)
            assert refused.status_code == 401, refused.text
        bad_body = await agent.http.post(
            status_path, json={**report, "workers": "none"}, headers=agent.auth
        )
        assert bad_body.status_code == 400, bad_body.text
        # A share use.
        created = await user.post(
            "/api/v1/shares", json={"worker_id": worker_id, "connection_ip": "203.0.113.7"}
        )
        assert created.status_code == 201, created.text
        code = created.json()["short_code"]
        used = await api.client().get(f"/s/{code}")
        assert used.status_code == 200, used.text
        # Refused logins: the limit is 2 a minute, the third is refused by it.
        login = api.client()
        for expected in (401, 401, 429):
            response = await login.post(
                "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD + "x"}
            )
            assert response.status_code == expected, response.text
        # The audit log's buffer writes what waits (a background writer).
        await observed_app.state.ctx.audit.buffer.flush()
        after = await scrape(scraper)
    finally:
        await api.aclose()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    status_route = "/api/v1/agents/{agent_id}/status"
    assert delta("gpugo_http_requests_total", route=status_route, method="POST", status="200") == 1
    assert delta("gpugo_http_requests_total", route=status_route, method="POST", status="403") == 1
    assert delta("gpugo_http_requests_total", route=status_route, method="POST", status="401") == 2
    assert delta("gpugo_http_requests_total", route=status_route, method="POST", status="400") == 1
    assert (
        delta("gpugo_http_request_duration_seconds_count", route=status_route, method="POST") == 5
    )
    # Every report is counted by outcome, those refused before the service runs too.
    assert delta("gpugo_status_reports_total", outcome="accepted") == 1
    assert delta("gpugo_status_reports_total", outcome="forbidden") == 1
    assert delta("gpugo_status_reports_total", outcome="unauthorized") == 2
    assert delta("gpugo_status_reports_total", outcome="validation_error") == 1
    assert (
        delta("gpugo_http_requests_total", route="/s/{short_code}", method="GET", status="200") == 1
    )
    login_route = "/api/v1/auth/login"
    assert delta("gpugo_http_requests_total", route=login_route, method="POST", status="401") == 2
    assert delta("gpugo_http_requests_total", route=login_route, method="POST", status="429") == 1
    assert delta("gpugo_rate_limit_refusals_total", rule="login") == 1
    # Registration and the report each handed the agent a license.
    assert delta("gpugo_licenses_issued_total") >= 2
    assert delta("gpugo_events_published_total", kind="agent.registered") == 2
    assert delta("gpugo_writer_rows_written_total", writer="audit log") >= 1
    assert value(after, "gpugo_writer_flush_duration_seconds_count", writer="audit log") >= 1
    assert value(after, "gpugo_agents", state="online") == 1
    assert value(after, "gpugo_agents", state="pending") == 1  # the other one

    if is_postgres:
        # The pool of this process (SQLite has one connection, no pool).
        assert value(after, "gpugo_db_pool_connections", pool="default") >= 1
        in_use = value(after, "gpugo_db_pool_connections_in_use", pool="default")
        assert 0 <= in_use <= value(after, "gpugo_db_pool_connections", pool="default")

    # No label value names a user, an agent, a host, a share or a credential.
    secrets = {
        user.user_id,
        user.email,
        agent.agent_id,
        agent.secret,
        worker_id,
        code,
        "secret-host-name",
        "203.0.113.7",
    }
    values = label_values(after)
    leaked = {v for v in values for s in secrets if s in v}
    assert not leaked, leaked
    # Paths are templates: nothing but {names} where ids were.
    routes = {v for (name, labels) in after for k, v in labels if k == "route"}
    assert status_route in routes and "/s/{short_code}" in routes


async def test_license_signatures_are_counted_once_per_text(observed_app):
    api = Api(observed_app, make_client)
    try:
        scraper = api.client()
        user = await api.user(plan="team")
        before = await scrape(scraper)
        # A GPU id no other test uses: a license text this process never signed.
        gpu = {**gpu_infos(1)[0], "gpu_id": f"GPU-{uuid.uuid4()}"}
        token = await user.install_token()
        http = user.client_for_agent()
        registered = await http.post(
            "/api/v1/agents/register",
            json={"hostname": "licensed", "os": "linux", "arch": "amd64", "gpus": [gpu]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert registered.status_code == 201, registered.text
        agent = registered.json()
        licenses = [agent["license"]]
        # The config call hands the agent a license too: the same text within a second.
        for _ in range(2):
            config = await http.get(
                f"/api/v1/agents/{agent['agent_id']}/config",
                headers={"Authorization": f"Bearer {agent['agent_secret']}"},
            )
            assert config.status_code == 200, config.text
            licenses.append(config.json()["license"])
        after = await scrape(scraper)
    finally:
        await api.aclose()

    def delta(name: str) -> float:
        return value(after, name) - value(before, name)

    assert all(lic["plain"].startswith(f"{gpu['gpu_id']}|team|") for lic in licenses)
    assert delta("gpugo_licenses_issued_total") == 3
    # Each distinct text signed once (two, if a second ticked between the calls).
    assert delta("gpugo_license_signatures_total") == len({lic["plain"] for lic in licenses})


async def test_unmatched_paths_are_one_series(observed_app):
    async with make_client(observed_app) as http:
        before = await scrape(http)
        for path in ("/no/such/path", "/api/v1/agents/../../etc", "/s/not-a-code!"):
            await http.get(path)
        after = await scrape(http)
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert (
        value(after, "gpugo_http_requests_total", **unmatched)
        - value(before, "gpugo_http_requests_total", **unmatched)
        == 3
    )
    assert not any("no/such" in v for v in label_values(after))


async def test_agents_are_counted_by_state(observed_app):
    api = Api(observed_app, make_client)
    try:
        user = await api.user(plan="team")
        await register_agent(user, gpus=1)
        online = await register_agent(user, gpus=1, hostname="b")
        shut = await register_agent(user, gpus=1, hostname="c")
        for agent, extra in ((online, {}), (shut, {"event": "shutdown"})):
            response = await agent.report(
                {"timestamp": out_time(moment()), "gpus": [], "workers": [], **extra}
            )
            assert response.status_code == 200, response.text
        samples = await scrape(api.client())
    finally:
        await api.aclose()
    assert value(samples, "gpugo_agents", state="pending") == 1
    assert value(samples, "gpugo_agents", state="online") == 1
    assert value(samples, "gpugo_agents", state="offline") == 1


async def test_event_subscribers_are_counted_while_open(observed_app):
    bus = observed_app.state.ctx.events
    async with make_client(observed_app) as http:
        before = value(await scrape(http), "gpugo_event_subscribers")
        async with bus.subscribe(user_id="usr_x"), bus.subscribe(agent_id="agt_y"):
            during = value(await scrape(http), "gpugo_event_subscribers")
        after = value(await scrape(http), "gpugo_event_subscribers")
    assert (during - before, after - before) == (2, 0)
