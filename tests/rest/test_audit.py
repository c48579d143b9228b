"""The audit log over HTTP: each kind of event comes from the real action, with its actor,
address and user agent; the list pages newest first; sessions are listed and revoked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from tortoise import connections

from gpugo import clock
from gpugo.app import create_app
from gpugo.auth.sessions import COOKIE_NAME
from gpugo.models import AuditEvent, Session
from gpugo.services import audit
from gpugo.settings import Settings
from tests.support import (
    ORIGIN,
    PASSWORD,
    PUBLIC_URL,
    assert_error,
    assert_iso,
    empty_database,
    register_agent,
)

UA = {"User-Agent": "audit-test/1.0"}


def client_from(app: Starlette, address: str) -> httpx.AsyncClient:
    """A client whose connection comes from ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL, headers=UA)


async def flush(app: Starlette) -> None:
    await app.state.ctx.audit.flush()


async def events(app: Starlette, http: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    await flush(app)
    response = await http.get("/api/v1/audit-events", params=params, headers=ORIGIN)
    assert response.status_code == 200, response.text
    return response.json()["events"]


def kinds(found: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in found]


def one(found: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    matching = [e for e in found if e["kind"] == kind]
    assert len(matching) == 1, (kind, kinds(found))
    return matching[0]


async def signed_up(app: Starlette, email: str, address: str = "203.0.113.7") -> httpx.AsyncClient:
    http = client_from(app, address)
    response = await http.post(
        "/api/v1/auth/signup", json={"email": email, "password": PASSWORD}, headers=ORIGIN
    )
    assert response.status_code == 201, response.text
    return http


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    client = await signed_up(app, "owner@example.com")
    yield client
    await client.aclose()


async def test_signup_login_logout_and_failed_logins(app, http):
    other = client_from(app, "198.51.100.4")
    login = {"email": "owner@example.com", "password": PASSWORD}
    wrong = {"email": "owner@example.com", "password": "not the password"}
    unknown = {"email": "nobody@example.com", "password": "a password typed"}
    assert (await other.post("/api/v1/auth/login", json=wrong)).status_code == 401
    assert (await other.post("/api/v1/auth/login", json=unknown)).status_code == 401
    assert (await other.post("/api/v1/auth/login", json=login)).status_code == 200
    assert (await other.post("/api/v1/auth/logout", headers=ORIGIN)).status_code == 200
    found = await events(app, http)
    # Newest first.
    assert kinds(found) == ["logout", "login.succeeded", "login.failed", "signup"]
    signup = one(found, "signup")
    assert signup["address"] == "203.0.113.7"
    assert signup["user_agent"] == "audit-test/1.0"
    assert signup["actor"] == "anonymous"
    failed = one(found, "login.failed")
    assert failed["outcome"] == "failure"
    assert failed["address"] == "198.51.100.4"
    logout = one(found, "logout")
    assert logout["actor"] == "user"
    assert logout["subject_kind"] == "session"
    for event in found:
        assert_iso(event["at"])
        assert set(event) == {
            "event_id",
            "at",
            "kind",
            "actor",
            "actor_id",
            "address",
            "user_agent",
            "subject_kind",
            "subject_id",
            "outcome",
            "detail",
        }
    # The unknown e-mail's attempt is kept for no account, and names no e-mail.
    stray = await AuditEvent.filter(user_id=None, kind="login.failed").values()
    assert len(stray) == 1
    assert "nobody" not in repr(stray)
    await other.aclose()


async def test_graphql_login_and_signup_are_recorded(app):
    http = client_from(app, "192.0.2.10")
    signup = 'mutation { signup(input: {email: "g@example.com", password: "%s"}) { id } }'
    response = await http.post("/graphql", json={"query": signup % PASSWORD}, headers=ORIGIN)
    assert response.json()["data"]["signup"]["id"]
    login = 'mutation { login(input: {email: "g@example.com", password: "%s"}) { id } }'
    assert (
        "errors"
        in (
            await http.post("/graphql", json={"query": login % "wrong-password"}, headers=ORIGIN)
        ).json()
    )
    document = "{ auditEvents { edges { node { kind address userAgent actor } } totalCount } }"
    await flush(app)
    data = (await http.post("/graphql", json={"query": document}, headers=ORIGIN)).json()
    nodes = [edge["node"] for edge in data["data"]["auditEvents"]["edges"]]
    assert [n["kind"] for n in nodes] == ["login.failed", "signup"]
    assert {n["address"] for n in nodes} == {"192.0.2.10"}
    assert data["data"]["auditEvents"]["totalCount"] == 2
    await http.aclose()


async def test_pat_lifecycle_and_first_use_from_a_new_address(app, http):
    created = await http.post("/api/v1/tokens/pat", json={"expires_in_days": 30}, headers=ORIGIN)
    again = await http.post("/api/v1/tokens/pat", json={"expires_in_days": None}, headers=ORIGIN)
    token = again.json()["token"]
    assert created.status_code == again.status_code == 201
    bearer = {"Authorization": f"Bearer {token}"}
    for address in ("198.51.100.1", "198.51.100.1", "198.51.100.2"):
        async with client_from(app, address) as elsewhere:
            assert (await elsewhere.get("/api/v1/auth/me", headers=bearer)).status_code == 200
    found = await events(app, http)
    new_addresses = [e for e in found if e["kind"] == "pat.new_address"]
    assert sorted(e["address"] for e in new_addresses) == ["198.51.100.1", "198.51.100.2"]
    assert {e["actor"] for e in new_addresses} == {"pat"}
    assert one(found, "pat.created")["detail"] == "expires in 30 days"
    regenerated = one(found, "pat.regenerated")
    assert regenerated["actor"] == "user"
    # Events made with the PAT name it as the actor.
    async with client_from(app, "198.51.100.2") as elsewhere:
        deleted = await elsewhere.delete("/api/v1/tokens/pat", headers=bearer)
        assert deleted.status_code == 200
    gone = one(await events(app, http, kind="pat.deleted"), "pat.deleted")
    assert gone["actor"] == "pat"
    assert gone["subject_id"] == regenerated["subject_id"]
    assert gone["address"] == "198.51.100.2"


async def test_install_token_agent_and_agent_secret_events(app, api, http):
    user = await api.user("agents@example.com", plan="pro")
    agent = await register_agent(user, gpus=1, hostname="host-a")
    second = await register_agent(user, gpus=1, hostname="host-b")
    # A spent token is refused, and recorded.
    token = await user.install_token()
    body = {"hostname": "h", "os": "linux", "arch": "amd64", "gpus": []}
    register = {"Authorization": f"Bearer {token}"}
    assert (
        await agent.http.post("/api/v1/agents/register", json=body, headers=register)
    ).status_code == 201
    refused = await agent.http.post("/api/v1/agents/register", json=body, headers=register)
    assert_error(refused, 401, "token_used")
    # Another agent's secret on this agent's path, then a deleted agent's secret.
    wrong = await agent.http.get(f"/api/v1/agents/{second.agent_id}/config", headers=agent.auth)
    assert wrong.status_code == 403
    report = {"timestamp": clock.now().isoformat(), "gpus": [], "workers": []}
    wrong = await agent.http.post(
        f"/api/v1/agents/{second.agent_id}/status", json=report, headers=agent.auth
    )
    assert wrong.status_code == 403
    deleted = await user.delete(f"/api/v1/agents/{second.agent_id}")
    assert deleted.status_code == 200
    dead = await second.http.get(f"/api/v1/agents/{second.agent_id}/config", headers=second.auth)
    assert dead.status_code == 401
    itself = await agent.http.delete(f"/api/v1/agents/{agent.agent_id}", headers=agent.auth)
    assert itself.status_code in (200, 204)

    found = await events(app, user.http)
    assert kinds(found).count("install_token.created") == 3
    used = [e for e in found if e["kind"] == "install_token.used"]
    assert sorted(e["outcome"] for e in used) == ["failure", "success", "success", "success"]
    assert [e["detail"] for e in used if e["outcome"] == "failure"] == ["used"]
    assert {e["actor"] for e in used} == {"install_token"}
    registered = [e for e in found if e["kind"] == "agent.registered"]
    assert {e["subject_id"] for e in registered} >= {agent.agent_id, second.agent_id}
    refusals = [e for e in found if e["kind"] == "agent_secret.refused"]
    assert len(refusals) == 2
    assert {e["subject_id"] for e in refusals} == {second.agent_id}
    assert {e["actor_id"] for e in refusals} == {agent.agent_id}
    assert one(found, "agent.deleted")["actor"] == "user"
    unregistered = one(found, "agent.unregistered")
    assert unregistered["actor"] == "agent"
    assert unregistered["actor_id"] == agent.agent_id
    # The deleted agent's secret belongs to no account any more: the operator sees it.
    stray = await AuditEvent.filter(kind="agent_secret.refused", user_id=None).values()
    assert [(r["subject_id"], r["detail"]) for r in stray] == [(second.agent_id, "unknown secret")]
    # The owner's events are not the first user's.
    assert "agent.registered" not in kinds(await events(app, http))


async def test_install_token_expired_unused_is_recorded_once(app, http):
    response = await http.post(
        "/api/v1/tokens/generate", json={"type": "agent_install"}, headers=ORIGIN
    )
    token_id = response.json()["token_id"]
    ctx = app.state.ctx
    assert await audit.note_expired_install_tokens(audit_log=ctx.audit) == 0
    clock.advance(timedelta(minutes=31))
    assert await audit.note_expired_install_tokens(audit_log=ctx.audit) == 1
    assert await audit.note_expired_install_tokens(audit_log=ctx.audit) == 0
    expired = one(await events(app, http), "install_token.expired")
    assert expired["subject_id"] == token_id
    assert expired["actor"] == "system"


async def test_share_created_used_up_and_deleted_keep_only_a_code_prefix(app, api):
    user = await api.user("shares@example.com", plan="pro")
    await register_agent(user, gpus=1)
    workers = (await user.get("/api/v1/workers")).json()["workers"]
    share = await user.post(
        "/api/v1/shares",
        json={"worker_id": workers[0]["worker_id"], "connection_ip": "10.1.2.3", "max_uses": 1},
    )
    assert share.status_code == 201, share.text
    code = share.json()["short_code"]
    async with client_from(app, "192.0.2.77") as stranger:
        assert (await stranger.get(f"/s/{code}")).status_code == 200
        assert (await stranger.get(f"/s/{code}")).status_code == 410
    assert (await user.delete(f"/api/v1/shares/{share.json()['share_id']}")).status_code == 200
    found = await events(app, user.http)
    for kind in ("share.created", "share.used_up", "share.deleted"):
        event = one(found, kind)
        assert event["subject_id"] == share.json()["share_id"]
    used_up = one(found, "share.used_up")
    assert used_up["address"] == "192.0.2.77"
    assert used_up["actor"] == "anonymous"
    assert one(found, "share.created")["detail"] == f"{code[:4]}…"
    dump = repr(await AuditEvent.all().values())
    assert code not in dump
    assert code[:6] not in dump


async def test_sessions_list_revoke_and_log_out_everywhere_else(app, http):
    phone = client_from(app, "198.51.100.30")
    laptop = client_from(app, "198.51.100.31")
    login = {"email": "owner@example.com", "password": PASSWORD}
    for device in (phone, laptop):
        assert (await device.post("/api/v1/auth/login", json=login)).status_code == 200
    listed = (await http.get("/api/v1/auth/sessions")).json()["sessions"]
    assert len(listed) == 3
    assert [s["current"] for s in listed].count(True) == 1
    current = next(s for s in listed if s["current"])
    assert current["address"] == "203.0.113.7"
    assert current["user_agent"] == "audit-test/1.0"
    for session in listed:
        for name in ("created_at", "last_seen_at", "expires_at"):
            assert_iso(session[name])
    phone_session = next(s for s in listed if s["address"] == "198.51.100.30")
    revoked = await http.delete(
        f"/api/v1/auth/sessions/{phone_session['session_id']}", headers=ORIGIN
    )
    assert revoked.status_code == 200
    assert (await phone.get("/api/v1/auth/me")).status_code == 401
    assert_error(
        await http.delete(f"/api/v1/auth/sessions/{phone_session['session_id']}", headers=ORIGIN),
        404,
        "not_found",
    )
    others = await http.post("/api/v1/auth/sessions/revoke-others", headers=ORIGIN)
    assert others.json() == {"success": True, "revoked": 1}
    assert (await laptop.get("/api/v1/auth/me")).status_code == 401
    assert (await http.get("/api/v1/auth/me")).status_code == 200
    assert [
        s["session_id"] for s in (await http.get("/api/v1/auth/sessions")).json()["sessions"]
    ] == [current["session_id"]]
    revocations = [e for e in await events(app, http) if e["kind"] == "session.revoked"]
    assert len(revocations) == 2
    assert {e["actor_id"] for e in revocations} == {current["session_id"]}
    await phone.aclose()
    await laptop.aclose()


async def test_graphql_sessions_and_revocation(app, http):
    laptop = client_from(app, "198.51.100.31")
    login = {"email": "owner@example.com", "password": PASSWORD}
    assert (await laptop.post("/api/v1/auth/login", json=login)).status_code == 200
    query = "{ sessions { id current address } }"
    data = (await http.post("/graphql", json={"query": query}, headers=ORIGIN)).json()
    other = next(s for s in data["data"]["sessions"] if not s["current"])
    mutation = f'mutation {{ revokeSession(id: "{other["id"]}") }}'
    data = (await http.post("/graphql", json={"query": mutation}, headers=ORIGIN)).json()
    assert data["data"]["revokeSession"] is True
    assert (await laptop.get("/api/v1/auth/me")).status_code == 401
    data = (
        await http.post(
            "/graphql", json={"query": "mutation { revokeOtherSessions }"}, headers=ORIGIN
        )
    ).json()
    assert data["data"]["revokeOtherSessions"] == 0
    await laptop.aclose()


async def test_session_expiry_is_recorded(app, http, settings):
    other = await signed_up(app, "pat-user@example.com")
    response = await other.post("/api/v1/tokens/pat", json={}, headers=ORIGIN)
    bearer = {"Authorization": f"Bearer {response.json()['token']}"}
    clock.advance(timedelta(seconds=settings.session_idle_seconds + 1))
    # Idle sessions are not listed, even before they are presented again.
    listed = await other.get("/api/v1/auth/sessions", headers=bearer)
    assert listed.json() == {"sessions": []}
    await other.aclose()
    assert (await http.get("/api/v1/auth/me")).status_code == 401
    await flush(app)
    expired = await AuditEvent.filter(kind="session.expired").values()
    assert len(expired) == 1
    assert expired[0]["actor_kind"] == "system"


async def test_pages_newest_first_with_next_before_and_kind(app, http):
    bad = {"email": "owner@example.com", "password": "not the password"}
    for _ in range(5):
        assert (await http.post("/api/v1/auth/login", json=bad)).status_code == 401
    await flush(app)
    seen: list[str] = []
    before = None
    while True:
        params = {"limit": 2, **({"before": before} if before else {})}
        body = (await http.get("/api/v1/audit-events", params=params)).json()
        seen += [e["event_id"] for e in body["events"]]
        before = body["next_before"]
        if before is None:
            break
    everything = await events(app, http, limit=100)
    assert seen == [e["event_id"] for e in everything]
    assert len(seen) == 6
    assert len(await events(app, http, kind="login.failed")) == 5
    assert await events(app, http, kind="no.such_kind") == []
    for params in ({"limit": 0}, {"limit": 101}, {"limit": "x"}, {"before": "bogus"}):
        response = await http.get("/api/v1/audit-events", params=params)
        assert_error(response, 400, "validation_error")


@asynccontextmanager
async def own_app(settings: Settings, **changes: Any) -> AsyncIterator[Starlette]:
    """An app of its own settings, on an emptied database."""
    app = create_app(settings.replace(**changes), auto_migrate=False)
    async with app.router.lifespan_context(app):
        await empty_database()
        yield app


LIMITED = {"rate_limits_enabled": True, "rate_limit_login": "2/minute"}


async def login_as(http: httpx.AsyncClient, email: str, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    body = {"email": email, "password": "not the password"}
    return (await http.post("/api/v1/auth/login", json=body, headers=headers)).status_code


async def test_rate_limit_hits_are_recorded_with_the_address(settings):
    async with own_app(settings, **LIMITED) as app, client_from(app, "192.0.2.200") as http:
        codes = [await login_as(http, f"limited{i}@example.com") for i in range(3)]
        assert codes == [401, 401, 429]
        await flush(app)
        limited = await AuditEvent.filter(kind="rate_limited").values()
        assert [(r["address"], r["detail"], r["outcome"]) for r in limited] == [
            ("192.0.2.200", "login", "failure")
        ]


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(settings):
    async with (
        own_app(settings, trusted_proxies="10.0.0.0/8", **LIMITED) as app,
        client_from(app, "10.0.0.2") as proxy,
        client_from(app, "192.0.2.50") as stranger,
    ):
        # Behind the proxy each client has a bucket of its own.
        assert await login_as(proxy, "a1@example.com", "198.51.100.1") == 401
        assert await login_as(proxy, "a2@example.com", "198.51.100.1") == 401
        assert await login_as(proxy, "a3@example.com", "198.51.100.1") == 429
        assert await login_as(proxy, "b1@example.com", "198.51.100.2") == 401
        # A stranger's own header changes nothing: it counts (and is recorded) as its peer,
        # and the address it names keeps its own bucket.
        forged = "198.51.100.2"
        assert [await login_as(stranger, f"s{i}@example.com", forged) for i in range(3)] == [
            401,
            401,
            429,
        ]
        assert await login_as(proxy, "b2@example.com", "198.51.100.2") == 401
        await flush(app)
        rows = await AuditEvent.filter(kind__in=["login.failed", "rate_limited"]).values()
        failed = sorted(r["address"] for r in rows if r["kind"] == "login.failed")
        assert failed == ["192.0.2.50"] * 2 + ["198.51.100.1"] * 2 + ["198.51.100.2"] * 2
        limited = sorted(r["address"] for r in rows if r["kind"] == "rate_limited")
        assert limited == ["192.0.2.50", "198.51.100.1"]


async def test_an_audit_outage_loses_only_log_rows_within_the_bound(settings, is_postgres):
    changes = {"audit_buffer_rows": 3, "audit_flush_seconds": 60.0}
    async with own_app(settings, **changes) as app:
        http = client_from(app, "203.0.113.9")
        db = connections.get("default")
        await db.execute_script("ALTER TABLE audit_events RENAME TO audit_events_away")
        try:
            signup = {"email": "outage@example.com", "password": PASSWORD}
            assert (await http.post("/api/v1/auth/signup", json=signup)).status_code == 201
            bad = {"email": "outage@example.com", "password": "not the password"}
            for _ in range(4):
                assert (await http.post("/api/v1/auth/login", json=bad)).status_code == 401
            # The flush fails; the rows wait, the oldest beyond the bound dropped.
            assert await app.state.ctx.audit.flush() == 0
            assert app.state.ctx.audit.buffer.pending == 3
            assert app.state.ctx.audit.buffer.dropped == 2
            assert (await http.get("/api/v1/auth/me", headers=ORIGIN)).status_code == 200
        finally:
            await db.execute_script("ALTER TABLE audit_events_away RENAME TO audit_events")
        assert await app.state.ctx.audit.flush() == 3
        rows = await AuditEvent.all().values("kind")
        assert [r["kind"] for r in rows] == ["login.failed"] * 3
        await http.aclose()


async def test_shutdown_flushes_the_buffer(settings):
    async with own_app(settings, audit_flush_seconds=60.0) as app:
        http = client_from(app, "203.0.113.9")
        signup = {"email": "flushed@example.com", "password": PASSWORD}
        assert (await http.post("/api/v1/auth/signup", json=signup)).status_code == 201
        assert app.state.ctx.audit.buffer.pending == 1
        await http.aclose()
    again = create_app(settings, auto_migrate=False)
    async with again.router.lifespan_context(again):
        assert await AuditEvent.filter(kind="signup").count() == 1


async def test_retention_prunes_old_events(app, http, settings):
    await flush(app)
    assert await AuditEvent.all().count() == 1
    clock.advance(timedelta(days=settings.audit_retention_days - 1))
    assert await audit.prune(retention_days=settings.audit_retention_days) == 0
    clock.advance(timedelta(days=2))
    assert await audit.prune(retention_days=settings.audit_retention_days) == 1


async def test_the_cookie_session_id_is_not_a_secret_in_the_log(app, http):
    cookie = http.cookies[COOKIE_NAME]
    await http.post("/api/v1/auth/logout", headers=ORIGIN)
    await flush(app)
    dump = repr(await AuditEvent.all().values())
    assert cookie not in dump
    assert cookie[-20:] not in dump
    assert await Session.all().count() == 0


async def test_the_standard_forwarded_header_from_a_trusted_proxy(settings):
    async with (
        own_app(settings, trusted_proxies="10.0.0.0/8") as app,
        client_from(app, "10.0.0.2") as proxy,
        client_from(app, "192.0.2.50") as stranger,
    ):
        bad = {"email": "fwd@example.com", "password": "not the password"}
        for http, header in (
            (proxy, 'for="[2001:db8::7]:4711";proto=https'),
            (proxy, "for=198.51.100.7, for=10.0.0.9"),
            (proxy, "for=_hidden"),
            (stranger, "for=198.51.100.8"),
        ):
            response = await http.post(
                "/api/v1/auth/login", json=bad, headers={"Forwarded": header}
            )
            assert response.status_code == 401
        await flush(app)
        rows = await AuditEvent.filter(kind="login.failed").values("address")
        assert sorted(r["address"] for r in rows) == sorted(
            ["2001:db8::7", "198.51.100.7", "10.0.0.2", "192.0.2.50"]
        )
