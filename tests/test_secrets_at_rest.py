"""Nothing secret is stored in the clear: dump every table and search for the raw values."""

from __future__ import annotations

from tortoise import Tortoise

from gpugo.auth.sessions import COOKIE_NAME
from gpugo.models import AuditEvent
from tests.support import PASSWORD, register_agent


async def _dump_database() -> str:
    dump = []
    for app_models in Tortoise.apps.values():
        for model in app_models.values():
            for row in await model.all().values():
                dump.append(repr(row))
    return "\n".join(dump)


async def test_no_raw_token_or_password_is_stored(api):
    user = await api.user()
    cookie = user.http.cookies[COOKIE_NAME]
    pat = await user.create_pat()
    install = await user.install_token()
    agent = await register_agent(user, gpus=1)

    dump = await _dump_database()
    assert user.email in dump  # the dump really holds the rows
    for secret in (PASSWORD, cookie, pat, install, agent.secret):
        assert secret not in dump
        # Nor any long fragment of the random part.
        assert secret[-20:] not in dump


async def test_the_audit_log_holds_no_secret(api):
    """Every flow that writes the audit log, then its table searched for each secret."""
    user = await api.user(plan="pro")
    cookie = user.http.cookies[COOKIE_NAME]
    typed = "a wrong password typed"
    wrong = {"email": user.email, "password": typed}
    assert (await user.http.post("/api/v1/auth/login", json=wrong)).status_code == 401
    unknown = {"email": "mistyped-secret@example.com", "password": typed}
    assert (await user.http.post("/api/v1/auth/login", json=unknown)).status_code == 401
    old_pat = await user.create_pat()
    pat = await user.create_pat()
    bearer = {"Authorization": f"Bearer {pat}"}
    assert (await user.http.get("/api/v1/auth/me", headers=bearer)).status_code == 200
    agent = await register_agent(user, gpus=1)
    other = await register_agent(user, gpus=1, hostname="other-host")
    install = await user.install_token()
    register = {"Authorization": f"Bearer {install}"}
    body = {"hostname": "h", "os": "linux", "arch": "amd64", "gpus": []}
    for _ in range(2):  # used, then refused as used
        await agent.http.post("/api/v1/agents/register", json=body, headers=register)
    path = f"/api/v1/agents/{other.agent_id}/config"
    assert (await agent.http.get(path, headers=agent.auth)).status_code == 403
    worker = (await user.get("/api/v1/workers")).json()["workers"][0]
    share = await user.post(
        "/api/v1/shares",
        json={"worker_id": worker["worker_id"], "connection_ip": "10.0.0.1", "max_uses": 1},
    )
    code = share.json()["short_code"]
    assert (await agent.http.get(f"/s/{code}")).status_code == 200
    await user.delete(f"/api/v1/shares/{share.json()['share_id']}")
    await user.delete("/api/v1/tokens/pat", headers=bearer)
    await user.post("/api/v1/auth/logout")
    await api.app.state.ctx.audit.flush()

    rows = await AuditEvent.all().values()
    kinds = {row["kind"] for row in rows}
    assert {"login.failed", "pat.regenerated", "share.used_up", "agent_secret.refused"} <= kinds
    dump = "\n".join(repr(row) for row in rows)
    for secret in (PASSWORD, typed, cookie, old_pat, pat, install, agent.secret, other.secret):
        assert secret not in dump
        assert secret[-20:] not in dump
    assert code not in dump
    assert code[:6] not in dump
    assert "mistyped-secret" not in dump


async def test_password_changes_store_and_log_no_password(app, api):
    user = await api.user()
    wrong = "a wrong current password"
    new = "the new secret passphrase"
    for current in (wrong, PASSWORD):
        await user.post(
            "/api/v1/auth/password", json={"current_password": current, "new_password": new}
        )
    await app.state.ctx.audit.flush()
    assert await AuditEvent.filter(user_id=user.user_id, kind="password.changed").exists()
    dump = await _dump_database()
    for secret in (PASSWORD, wrong, new):
        assert secret not in dump
