"""Every operation x every kind of credential -> the refusal docs/decisions.md promises
("Who is refused how"), and a refused request leaves every table as it was.

Operations: every documented REST route and method (walked from the app, so a new
route joins the matrix or fails it) and every GraphQL query and mutation (walked
from the schema). Credentials: none, garbage, an expired PAT, a revoked PAT, a
deleted user's session, an install token, the owner's agent secret, another
user's session and PAT, another user's agent secret, and the owner's session and
PAT. Cookie requests carry ``Origin: http://testserver``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from tortoise import Tortoise

from gpugo import clock
from gpugo.auth import passwords
from gpugo.auth.sessions import COOKIE_NAME, create_session
from gpugo.models import AuditEvent, PersonalAccessToken, Session, User, WebhookDelivery
from gpugo.rest.openapi import AGENT, INSTALL, OPERATIONS, route_operations
from tests.support import PUBLIC_URL, empty_database, gpu_infos

NONE = "none"
GARBAGE = "garbage"
EXPIRED_PAT = "expired PAT"
REVOKED_PAT = "revoked PAT"
DELETED_SESSION = "deleted user's session"
INSTALL_TOKEN = "install token"
AGENT_SECRET = "agent secret"
OTHER_SESSION = "other user's session"
OTHER_PAT = "other user's PAT"
OTHER_AGENT = "other user's agent secret"
OWNER_SESSION = "owner's session"
OWNER_PAT = "owner's PAT"
CREDENTIALS = [
    NONE,
    GARBAGE,
    EXPIRED_PAT,
    REVOKED_PAT,
    DELETED_SESSION,
    INSTALL_TOKEN,
    AGENT_SECRET,
    OTHER_SESSION,
    OTHER_PAT,
    OTHER_AGENT,
    OWNER_SESSION,
    OWNER_PAT,
]
DEAD = {NONE, GARBAGE, EXPIRED_PAT, REVOKED_PAT, DELETED_SESSION}
OTHER_USER = {OTHER_SESSION, OTHER_PAT}
OWNER = {OWNER_SESSION, OWNER_PAT}

cells: dict[str, int] = {"rest": 0, "graphql": 0}


@dataclass
class Scene:
    """Two Pro users with an agent each, and the dead credentials, made over HTTP."""

    http: httpx.AsyncClient
    values: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def headers(self, credential: str) -> tuple[dict[str, str], dict[str, str]]:
        """(headers, cookies) presenting the credential."""
        if credential == NONE:
            return {}, {}
        if credential in (DELETED_SESSION, OTHER_SESSION, OWNER_SESSION):
            return {"Origin": PUBLIC_URL}, {COOKIE_NAME: self.values[credential]}
        return {"Authorization": f"Bearer {self.values[credential]}"}, {}

    async def request(
        self, credential: str, method: str, url: str, body: Any = None
    ) -> httpx.Response:
        headers, cookies = self.headers(credential)
        self.http.cookies.clear()
        for name, value in cookies.items():
            self.http.cookies.set(name, value)
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["json"] = body
        try:
            return await self.http.request(method, url, **kwargs)
        finally:
            self.http.cookies.clear()

    async def request_as(
        self, session_key: str, method: str, url: str, body: Any
    ) -> httpx.Response:
        """A set-up request with the session stored under ``session_key``."""
        self.http.cookies.clear()
        self.http.cookies.set(COOKIE_NAME, self.values[session_key])
        try:
            return await self.http.request(method, url, json=body, headers={"Origin": PUBLIC_URL})
        finally:
            self.http.cookies.clear()


# Every scene user's password; hashed once per run (hashing per scene would slow the
# matrix down), so a password change can succeed where it should.
SCENE_PASSWORD = "matrix scene password"
_scene_hash: list[str] = []


async def _password_hash() -> str:
    if not _scene_hash:
        _scene_hash.append(await passwords.hash_password(SCENE_PASSWORD))
    return _scene_hash[0]


async def _session_for(email: str, plan: str = "pro") -> tuple[str, str]:
    # Created directly, with the one precomputed hash.
    user = await User.create(
        email=email, password_hash=await _password_hash(), plan=plan, created_at=clock.now()
    )
    from gpugo.settings import Settings

    return user.id, await create_session(user_id=user.id, settings=Settings())


async def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


async def build_scene(app: Starlette) -> Scene:
    await empty_database()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL)
    scene = Scene(http)
    v = scene.values
    for who in ("owner", "other", "expired", "revoked", "deleted"):
        user_id, session = await _session_for(f"{who}@example.com")
        scene.ids[f"{who}_user"] = user_id
        v[f"{who}_session"] = session
    v[OWNER_SESSION] = v["owner_session"]
    v[OTHER_SESSION] = v["other_session"]
    v[DELETED_SESSION] = v["deleted_session"]

    async def pat(session_key: str) -> str:
        body = await _ok(await scene.request_as(session_key, "POST", "/api/v1/tokens/pat", {}))
        return body["token"]

    v[OWNER_PAT] = await pat("owner_session")
    v[OTHER_PAT] = await pat("other_session")
    v[EXPIRED_PAT] = await pat("expired_session")
    await PersonalAccessToken.filter(user_id=scene.ids["expired_user"]).update(
        expires_at=clock.now() - timedelta(days=1)
    )
    v[REVOKED_PAT] = await pat("revoked_session")
    await pat("revoked_session")  # regenerating kills the first one at once
    v[GARBAGE] = "not-a-real-token"

    for who, key in (("owner", AGENT_SECRET), ("other", OTHER_AGENT)):
        agent = await _register(scene, f"{who}_session", f"{who}-host")
        scene.ids[f"{who}_agent"] = agent["agent_id"]
        v[key] = agent["agent_secret"]
    token = await _ok(
        await scene.request_as(
            "owner_session", "POST", "/api/v1/tokens/generate", {"type": "agent_install"}
        )
    )
    v[INSTALL_TOKEN] = token["token"]
    scene.ids["token"] = token["token_id"]
    worker = await _ok(
        await scene.request_as(
            "owner_session",
            "POST",
            "/api/v1/workers",
            {
                "agent_id": scene.ids["owner_agent"],
                "name": "matrix",
                "gpu_ids": ["GPU-1"],
                "listen_port": 9100,
            },
        )
    )
    scene.ids["worker"] = worker["worker_id"]
    share = await _ok(
        await scene.request_as(
            "owner_session",
            "POST",
            "/api/v1/shares",
            {"worker_id": worker["worker_id"], "connection_ip": "10.0.0.1"},
        )
    )
    scene.ids["share"] = share["share_id"]
    scene.ids["owner_session_id"] = (await Session.get(user_id=scene.ids["owner_user"])).id
    webhook = await _ok(
        await scene.request_as(
            "owner_session",
            "POST",
            "/api/v1/webhooks",
            {"url": "http://127.0.0.1:9/hook", "events": ["share.expired"]},
        )
    )
    scene.ids["webhook"] = webhook["webhook_id"]
    # A past delivery to redeliver (the scene sends nothing: its sender is off).
    delivery = await WebhookDelivery.create(
        endpoint_id=webhook["webhook_id"],
        event_type="share.expired",
        payload={},
        created_at=clock.now(),
        queued_at=clock.now(),
        next_attempt_at=clock.now(),
        status="delivered",
    )
    scene.ids["delivery"] = delivery.id
    await User.filter(id=scene.ids["deleted_user"]).delete()
    # Use every live credential once, so that refused requests have no bookkeeping
    # (PAT last_used_at, session last_seen_at) left to write.
    for credential in (OWNER_PAT, OTHER_PAT, OWNER_SESSION, OTHER_SESSION):
        assert (await scene.request(credential, "GET", "/api/v1/auth/me")).status_code == 200
    return scene


async def _register(scene: Scene, session_key: str, hostname: str) -> dict[str, Any]:
    token = await _ok(
        await scene.request_as(
            session_key, "POST", "/api/v1/tokens/generate", {"type": "agent_install"}
        )
    )
    response = await scene.http.post(
        "/api/v1/agents/register",
        json=_register_body(hostname),
        headers={"Authorization": f"Bearer {token['token']}"},
    )
    return await _ok(response)


def _register_body(hostname: str = "matrix-host") -> dict[str, Any]:
    return {"hostname": hostname, "os": "linux", "arch": "amd64", "gpus": gpu_infos(2)}


async def snapshot() -> list[str]:
    """Every row but the audit log's: recording a refusal there is its job."""
    rows = []
    for models in Tortoise.apps.values():
        for name, model in sorted(models.items()):
            if model is AuditEvent:
                continue
            for row in await model.all().values():
                rows.append(f"{name} {sorted(row.items())!r}")
    return sorted(rows)


# --- REST -----------------------------------------------------------------------------


def _url(path: str, scene: Scene) -> str:
    return (
        path.replace("{agent_id}", scene.ids["owner_agent"])
        .replace("{worker_id}", scene.ids["worker"])
        .replace("{share_id}", scene.ids["share"])
        .replace("{token_id}", scene.ids["token"])
        .replace("{session_id}", scene.ids["owner_session_id"])
        .replace("{webhook_id}", scene.ids["webhook"])
        .replace("{delivery_id}", scene.ids["delivery"])
    )


def _body(method: str, path: str, scene: Scene) -> Any:
    now = clock.now().isoformat()
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/api/v1/tokens/generate"): {"type": "agent_install"},
        ("POST", "/api/v1/tokens/pat"): {"expires_in_days": None},
        ("POST", "/api/v1/agents/register"): _register_body(),
        ("POST", "/api/v1/agents/{agent_id}/status"): {
            "timestamp": now,
            "gpus": [],
            "workers": [],
        },
        ("POST", "/api/v1/agents/{agent_id}/metrics"): {
            "timestamp": now,
            "system": {"cpu_usage": 1.0, "memory_used_mb": 1, "memory_total_mb": 2},
            "gpus": [],
        },
        ("POST", "/api/v1/workers"): {
            "agent_id": scene.ids["owner_agent"],
            "name": "new",
            "gpu_ids": ["GPU-0"],
            "listen_port": 9200,
        },
        ("PATCH", "/api/v1/workers/{worker_id}"): {"name": "renamed"},
        ("PATCH", "/api/v1/agents/{agent_id}/labels"): {"tags": ["rack-1"]},
        ("POST", "/api/v1/shares"): {"worker_id": scene.ids["worker"], "connection_ip": "10.0.0.2"},
        ("POST", "/api/v1/webhooks"): {"url": "http://127.0.0.1:9/new", "events": ["agent.online"]},
        ("PATCH", "/api/v1/webhooks/{webhook_id}"): {"description": "renamed"},
        ("POST", "/api/v1/auth/password"): {
            "current_password": SCENE_PASSWORD,
            "new_password": "a new matrix password",
        },
    }
    return bodies.get((method, path))


# Operations of a user whose ids (in the path or the body) name the owner's resources.
_OWNER_RESOURCE_BODIES = {("POST", "/api/v1/workers"), ("POST", "/api/v1/shares")}


def rest_expected(method: str, path: str, credential: str) -> tuple[int, str | None] | None:
    """(status, code) of the cell; None when it succeeds (2xx)."""
    op = OPERATIONS.get((method, path)) or OPERATIONS[("GET", path)]
    auth = set(op.auth)
    if INSTALL in auth:
        return None if credential == INSTALL_TOKEN else (401, "unauthorized")
    touches_owner = "{" in path or (method, path) in _OWNER_RESOURCE_BODIES
    if auth == {AGENT}:
        # The agent's own endpoints: another agent's secret on its path is forbidden.
        if credential == AGENT_SECRET:
            return None
        return (403, "forbidden") if credential == OTHER_AGENT else (401, "unauthorized")
    if AGENT in auth:
        # Agents, workers, shares: an agent secret acts for its owner within its agent
        # (every resource of the scene is the owner's agent's); another's, as a stranger.
        if credential in OWNER or credential == AGENT_SECRET:
            return None
        if credential in OTHER_USER or credential == OTHER_AGENT:
            return (404, "not_found") if touches_owner else None
        return (401, "unauthorized")
    # Token and account endpoints: a user's only; an agent secret is refused as such.
    if credential in OWNER:
        return None
    if credential in OTHER_USER:
        return (404, "not_found") if touches_owner else None
    if credential in (AGENT_SECRET, OTHER_AGENT):
        return (403, "forbidden")
    return (401, "unauthorized")


def _rest_operations(app: Starlette) -> list[tuple[str, str]]:
    return sorted(
        (method, path)
        for method, path in route_operations(app.routes)
        if (OPERATIONS.get((method, path)) or OPERATIONS.get(("GET", path)))
        and (OPERATIONS.get((method, path)) or OPERATIONS[("GET", path)]).auth
    )


async def test_rest_matrix(app):
    failures: list[str] = []
    for method, path in _rest_operations(app):
        scene = await build_scene(app)
        # Refusals first: each must leave the database exactly as it was.
        successes = []
        # Refusals write nothing, so one snapshot is the baseline for all of them.
        before = await snapshot()
        for credential in CREDENTIALS:
            expected = rest_expected(method, path, credential)
            if expected is None:
                successes.append(credential)
                continue
            response = await scene.request(
                credential, method, _url(path, scene), _body(method, path, scene)
            )
            cells["rest"] += 1
            status, code = expected
            if response.status_code != status or (
                method != "HEAD" and response.json()["error"]["code"] != code
            ):
                failures.append(
                    f"{method} {path} as {credential}: {response.status_code} "
                    f"{response.text[:120]}, expected {status} {code}"
                )
            elif await snapshot() != before:
                failures.append(f"{method} {path} as {credential}: refused but wrote")
            if status == 401 and "www-authenticate" not in response.headers:
                failures.append(f"{method} {path} as {credential}: 401 without WWW-Authenticate")
        dirty = False
        for credential in successes:
            if path.endswith("/events") and credential == AGENT_SECRET:
                continue  # the accepted stream stays open: tests/live covers it
            if dirty:
                # The previous success changed the world (deleted, regenerated, created).
                await scene.http.aclose()
                scene = await build_scene(app)
            dirty = method not in ("GET", "HEAD")
            response = await scene.request(
                credential, method, _url(path, scene), _body(method, path, scene)
            )
            cells["rest"] += 1
            if not 200 <= response.status_code < 300:
                failures.append(
                    f"{method} {path} as {credential}: {response.status_code} "
                    f"{response.text[:160]}, expected success"
                )
        await scene.http.aclose()
    print(f"\nREST authorization matrix: {cells['rest']} cells")
    assert not failures, "\n".join(failures)


# --- GraphQL --------------------------------------------------------------------------

# One document per field. ``$x`` placeholders are filled from the scene.
GRAPHQL: dict[str, str] = {
    "me": "{ me { id } }",
    "personalAccessToken": "{ personalAccessToken { exists } }",
    "installToken": '{ installToken(id: "$token") { id } }',
    "agents": "{ agents { edges { node { id } } } }",
    "agent": '{ agent(id: "$owner_agent") { id } }',
    "agentMetrics": '{ agentMetrics(agentId: "$owner_agent", from: "$from", to: "$to") '
    "{ agentId } }",
    "workers": "{ workers { edges { node { id } } } }",
    "worker": '{ worker(id: "$worker") { id } }',
    "shares": "{ shares { edges { node { id } } } }",
    "auditEvents": "{ auditEvents { edges { node { id kind } } totalCount } }",
    "sessions": "{ sessions { id current } }",
    "revokeSession": 'mutation { revokeSession(id: "$owner_session_id") }',
    "revokeOtherSessions": "mutation { revokeOtherSessions }",
    "changePassword": "mutation { changePassword(input: "
    '{currentPassword: "matrix scene password", newPassword: "a new matrix password"}) }',
    "logout": "mutation { logout }",
    "generateInstallToken": "mutation { generateInstallToken { token } }",
    "createPersonalAccessToken": "mutation { createPersonalAccessToken { token } }",
    "deletePersonalAccessToken": "mutation { deletePersonalAccessToken }",
    "deleteAgent": 'mutation { deleteAgent(id: "$owner_agent") }',
    "createWorker": 'mutation { createWorker(input: {agentId: "$owner_agent", name: "n", '
    'gpuIds: ["GPU-0"], listenPort: 9200}) { id } }',
    "updateWorker": 'mutation { updateWorker(id: "$worker", input: {name: "renamed"}) { id } }',
    "deleteWorker": 'mutation { deleteWorker(id: "$worker") }',
    "restartWorker": 'mutation { restartWorker(id: "$worker") }',
    "createShare": 'mutation { createShare(input: {workerId: "$worker", '
    'connectionIp: "10.0.0.3"}) { id } }',
    "deleteShare": 'mutation { deleteShare(id: "$share") }',
    "extendShare": 'mutation { extendShare(id: "$share", input: {maxUses: 9}) { id } }',
    "fleet": "{ fleet { matching machines { name } } }",
    "setAgentLabels": 'mutation { setAgentLabels(id: "$owner_agent", input: {tags: ["t"]}) '
    "{ agentId } }",
    "webhooks": "{ webhooks { id } }",
    "webhookEndpointsAllowed": "{ webhookEndpointsAllowed }",
    "webhook": '{ webhook(id: "$webhook") { id deliveries { id } } }',
    "createWebhook": 'mutation { createWebhook(input: {url: "http://127.0.0.1:9/new", '
    'events: ["agent.online"]}) { secret } }',
    "updateWebhook": 'mutation { updateWebhook(id: "$webhook", input: {description: "r"}) { id } }',
    "deleteWebhook": 'mutation { deleteWebhook(id: "$webhook") }',
    "testWebhook": 'mutation { testWebhook(id: "$webhook") { id } }',
    "rotateWebhookSecret": 'mutation { rotateWebhookSecret(id: "$webhook") { secret } }',
    "redeliverWebhookDelivery": 'mutation { redeliverWebhookDelivery(id: "$delivery") { id } }',
}
# Public fields: credentials play no part (their own tests cover them).
GRAPHQL_PUBLIC = {"signup", "login"}
# Fields naming the owner's resources: another user gets not_found.
GRAPHQL_OWNER_RESOURCE = {
    "installToken",
    "agent",
    "agentMetrics",
    "worker",
    "deleteAgent",
    "createWorker",
    "updateWorker",
    "deleteWorker",
    "restartWorker",
    "createShare",
    "deleteShare",
    "extendShare",
    "setAgentLabels",
    "revokeSession",
    "webhook",
    "updateWebhook",
    "deleteWebhook",
    "testWebhook",
    "rotateWebhookSecret",
    "redeliverWebhookDelivery",
}


def graphql_expected(name: str, credential: str) -> str | None:
    """The error code of the cell; None when it succeeds."""
    if credential in OWNER:
        return None
    if credential in OTHER_USER:
        return "not_found" if name in GRAPHQL_OWNER_RESOURCE else None
    # Agent secrets and install tokens are never a user; dead credentials are nobody.
    return "unauthorized"


def _document(name: str, scene: Scene) -> str:
    document = GRAPHQL[name]
    now = clock.now()
    values = {
        "$owner_agent": scene.ids["owner_agent"],
        "$worker": scene.ids["worker"],
        "$share": scene.ids["share"],
        "$token": scene.ids["token"],
        "$owner_session_id": scene.ids["owner_session_id"],
        "$webhook": scene.ids["webhook"],
        "$delivery": scene.ids["delivery"],
        "$from": (now - timedelta(hours=1)).isoformat(),
        "$to": now.isoformat(),
    }
    for placeholder, value in values.items():
        document = document.replace(placeholder, value)
    return document


def _graphql_fields(app: Starlette) -> set[str]:
    from gpugo.schema import build_schema

    schema = build_schema()._schema
    return {
        name
        for root in (schema.query_type, schema.mutation_type)
        if root is not None
        for name in root.fields
    }


async def test_every_graphql_field_is_in_the_matrix(app):
    assert _graphql_fields(app) - GRAPHQL_PUBLIC == set(GRAPHQL)


async def test_graphql_matrix(app):
    failures: list[str] = []
    for name in sorted(GRAPHQL):
        scene = await build_scene(app)
        successes = []
        before = await snapshot()
        for credential in CREDENTIALS:
            expected = graphql_expected(name, credential)
            if expected is None:
                successes.append(credential)
                continue
            response = await scene.request(
                credential, "POST", "/graphql", {"query": _document(name, scene)}
            )
            cells["graphql"] += 1
            codes = [e["extensions"]["code"] for e in response.json().get("errors", [])]
            if response.status_code != 200 or codes != [expected]:
                failures.append(
                    f"{name} as {credential}: {response.status_code} {response.text[:160]}, "
                    f"expected {expected}"
                )
            elif await snapshot() != before:
                failures.append(f"{name} as {credential}: refused but wrote")
        dirty = False
        for credential in successes:
            if dirty:
                await scene.http.aclose()
                scene = await build_scene(app)
            dirty = GRAPHQL[name].startswith("mutation")
            response = await scene.request(
                credential, "POST", "/graphql", {"query": _document(name, scene)}
            )
            cells["graphql"] += 1
            body = response.json()
            if response.status_code != 200 or body.get("errors"):
                failures.append(f"{name} as {credential}: {response.text[:200]}")
        await scene.http.aclose()
    print(f"\nGraphQL authorization matrix: {cells['graphql']} cells")
    assert not failures, "\n".join(failures)


@pytest.fixture
def settings(settings):
    # The scene's webhook points at 127.0.0.1; nothing is sent (no sender races the
    # snapshots or the truncation of a new scene).
    return settings.replace(webhooks_allow_private=True, webhooks_sender=False)


@pytest.fixture(autouse=True)
def _clock() -> None:
    clock.reset()


async def _visible(scene: Scene, credential: str) -> tuple[set[str], set[str]]:
    """(audit event ids, session ids) the credential is shown, over REST and GraphQL."""
    events = (await scene.request(credential, "GET", "/api/v1/audit-events?limit=100")).json()
    sessions = (await scene.request(credential, "GET", "/api/v1/auth/sessions")).json()
    document = "{ auditEvents(first: 100) { edges { node { id } } } sessions { id } }"
    data = (await scene.request(credential, "POST", "/graphql", {"query": document})).json()
    event_ids = {e["event_id"] for e in events["events"]}
    session_ids = {s["session_id"] for s in sessions["sessions"]}
    assert event_ids == {e["node"]["id"] for e in data["data"]["auditEvents"]["edges"]}
    assert session_ids == {s["id"] for s in data["data"]["sessions"]}
    return event_ids, session_ids


async def test_audit_events_and_sessions_are_the_users_own(app):
    scene = await build_scene(app)
    await app.state.ctx.audit.flush()
    owner_events, owner_sessions = await _visible(scene, OWNER_PAT)
    assert owner_events and owner_sessions
    assert await _visible(scene, OWNER_SESSION) == (owner_events, owner_sessions)
    for credential in OTHER_USER:
        other_events, other_sessions = await _visible(scene, credential)
        assert other_events and other_sessions
        assert not other_events & owner_events
        assert not other_sessions & owner_sessions
    owners = await AuditEvent.filter(id__in=list(owner_events)).values_list("user_id", flat=True)
    assert set(owners) == {scene.ids["owner_user"]}
    await scene.http.aclose()
