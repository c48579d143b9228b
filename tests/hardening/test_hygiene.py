"""Response and log hygiene: no trace, SQL or banner on the wire; structured logs with
request ids; no raw secret in the logs or the tables of a real `gpugo serve`."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise import connections

from gpugo.app import create_app
from gpugo.auth.sessions import COOKIE_NAME
from gpugo.logs import QUIET_LOGGERS
from tests.hardening.live import Database, LiveServer
from tests.live.support import graphql_ws
from tests.support import PASSWORD, PUBLIC_URL, gpu_infos, moment

INTERNAL = {"error": {"code": "internal_error", "message": "Internal server error."}}


async def _raises(request: Request) -> Response:
    raise RuntimeError("SELECT password_hash FROM users WHERE email = 'x'")


async def _bad_sql(request: Request) -> Response:
    await connections.get("default").execute_query("SELECT secret_column FROM no_such_table")
    raise AssertionError("unreachable")


async def _database_down(request: Request) -> Response:
    raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")


@pytest.fixture
async def faulty_app(settings):
    """The real app plus test-only routes that fail the ways production code can."""
    app = create_app(settings, auto_migrate=False)
    app.router.routes.extend(
        [
            Route("/test-only/raises", _raises),
            Route("/test-only/bad-sql", _bad_sql),
            Route("/test-only/database-down", _database_down),
        ]
    )
    async with app.router.lifespan_context(app):
        yield app


def _assert_hygienic(response: httpx.Response) -> None:
    text = response.text
    for leak in ("Traceback", "SELECT", "no_such_table", "password_hash", 'File "'):
        assert leak not in text, text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert len(response.headers["x-request-id"]) == 16
    assert "server" not in response.headers


@pytest.mark.parametrize("path", ["/test-only/raises", "/test-only/bad-sql"])
async def test_an_internal_error_answers_500_without_trace_or_sql(faulty_app, path, caplog):
    transport = httpx.ASGITransport(app=faulty_app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
        with caplog.at_level(logging.ERROR):
            response = await http.get(path)
    assert response.status_code == 500
    assert response.json() == INTERNAL
    _assert_hygienic(response)
    # Logged once, with its trace, for the operator.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None


async def test_a_lost_database_answers_503_service_unavailable(faulty_app):
    transport = httpx.ASGITransport(app=faulty_app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
        response = await http.get("/test-only/database-down")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert "database" in error["message"].lower()
    _assert_hygienic(response)


def test_query_and_websocket_loggers_stay_quiet_at_debug(monkeypatch):
    from gpugo.logs import configure_logging
    from gpugo.settings import Settings

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging(Settings(log_level="DEBUG", log_format="json"))
        for name, level in QUIET_LOGGERS.items():
            assert logging.getLogger(name).getEffectiveLevel() == level
        assert QUIET_LOGGERS["uvicorn.error"] == logging.INFO  # websockets' frames and headers
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])


# --- a live process -------------------------------------------------------------------


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveServer, Database]]:
    database = Database(tmp_path)
    server = LiveServer(
        tmp_path,
        database_url=database.url,
        env={"GPUGO_LOG_FORMAT": "json", "GPUGO_LOG_LEVEL": "DEBUG"},
    )
    try:
        yield server.start(), database
    finally:
        server.stop()
        database.drop()


def _dump_tables(database: Database) -> str:
    """Every row of every table, as text."""
    if database.is_postgres:

        async def dump() -> str:
            conn = await asyncpg.connect(database.url.replace("postgres://", "postgresql://"))
            try:
                tables = await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
                rows = []
                for table in tables:
                    name = table["tablename"]
                    rows += [repr(dict(r)) for r in await conn.fetch(f'SELECT * FROM "{name}"')]
                return "\n".join(rows)
            finally:
                await conn.close()

        return asyncio.run(dump())
    path = database.url.removeprefix("sqlite://")
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(repr(row) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"'))


async def _subscribe(url: str, **credential: Any) -> None:
    async with asyncio.timeout(30), graphql_ws(url, **credential) as socket:
        op = await socket.subscribe("subscription { agentEvents { kind } }")
        await socket.complete(op)


def test_a_live_server_logs_json_with_request_ids_and_no_secret(live):
    server, database = live
    secrets: dict[str, str] = {"password": PASSWORD}
    request_ids: list[str] = []
    with httpx.Client(base_url=server.url, timeout=30) as http:

        def call(method: str, url: str, **kwargs: object) -> httpx.Response:
            response = http.request(method, url, **kwargs)  # type: ignore[arg-type]
            assert "server" not in response.headers  # no version banner
            request_ids.append(response.headers["x-request-id"])
            assert response.status_code < 400, response.text
            return response

        origin = {"Origin": server.url}
        credentials = {"email": "hygiene@example.com", "password": PASSWORD}
        call("POST", "/api/v1/auth/signup", json=credentials)
        call("POST", "/api/v1/auth/login", json=credentials)
        secrets["session cookie"] = http.cookies[COOKIE_NAME]
        pat = call("POST", "/api/v1/tokens/pat", json={}, headers=origin).json()["token"]
        secrets["PAT"] = pat
        # GraphQL subscriptions over WebSockets: by the session cookie of the handshake, and
        # by the PAT in connection_init.
        cookie = {"Cookie": f"{COOKIE_NAME}={secrets['session cookie']}", **origin}
        asyncio.run(_subscribe(server.url, headers=cookie))
        asyncio.run(_subscribe(server.url, init={"authorization": f"Bearer {pat}"}))
        bearer = {"Authorization": f"Bearer {pat}"}
        install = call(
            "POST", "/api/v1/tokens/generate", json={"type": "agent_install"}, headers=bearer
        ).json()["token"]
        secrets["install token"] = install
        http.cookies.clear()
        body = {"hostname": "h", "os": "linux", "arch": "amd64", "gpus": gpu_infos(1)}
        agent = call(
            "POST",
            "/api/v1/agents/register",
            json=body,
            headers={"Authorization": f"Bearer {install}"},
        ).json()
        secrets["agent secret"] = agent["agent_secret"]
        agent_auth = {"Authorization": f"Bearer {agent['agent_secret']}"}
        report = {"timestamp": moment().isoformat(), "gpus": [], "workers": []}
        call("POST", f"/api/v1/agents/{agent['agent_id']}/status", json=report, headers=agent_auth)
        call("GET", f"/api/v1/agents/{agent['agent_id']}/config", headers=agent_auth)
        workers = call("GET", "/api/v1/workers", headers=bearer).json()["workers"]
        share = call(
            "POST",
            "/api/v1/shares",
            json={"worker_id": workers[0]["worker_id"], "connection_ip": "10.0.0.9"},
            headers=bearer,
        ).json()
        call("GET", f"/s/{share['short_code']}")
        call("HEAD", f"/s/{share['short_code']}")
    server.stop()

    log = server.logs()
    entries = []
    for line in log.splitlines():
        if line.startswith("gpugo serving on "):
            continue  # the one plain line, printed before logging starts
        entry = json.loads(line)
        assert {"time", "level", "logger", "message", "request_id"} <= set(entry), line
        entries.append(entry)
    # Every request has an access line carrying the id its response carried.
    logged_ids = {e["request_id"] for e in entries if e["logger"] == "gpugo.access"}
    assert set(request_ids) <= logged_ids
    assert any(e["level"] == "debug" for e in entries)  # DEBUG really was on
    for entry in entries:
        for name, level in QUIET_LOGGERS.items():
            if entry["logger"] == name or entry["logger"].startswith(f"{name}."):
                assert logging.getLevelName(entry["level"].upper()) >= level, entry
    assert any("WebSocket /graphql" in e["message"] for e in entries)  # both were served

    tables = _dump_tables(database)
    assert "hygiene@example.com" in tables  # the dump really holds the rows
    for name, secret in secrets.items():
        assert secret not in log, f"the log holds the {name}"
        assert secret not in tables, f"a table holds the {name}"
        if name != "password":
            assert secret[-20:] not in log and secret[-20:] not in tables, name
    # Share codes are capabilities: stored (they are looked up), never logged.
    assert share["short_code"] not in log


async def test_graphql_answers_a_lost_database_as_service_unavailable(api, monkeypatch, caplog):
    user = await api.user()
    pat = await user.create_pat()

    async def lost(**kwargs: object) -> None:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    monkeypatch.setattr("gpugo.services.users.get_current", lost)
    http = api.client()
    with caplog.at_level(logging.ERROR):
        response = await http.post(
            "/graphql",
            json={"query": "{ me { id } }"},
            headers={"Authorization": f"Bearer {pat}"},
        )
    assert response.status_code == 200
    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["service_unavailable"]
    assert "5432" not in response.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
