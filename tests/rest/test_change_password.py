"""Changing the password: the current one is checked, the other sessions end, this one and
the PAT keep working; each attempt is in the audit log. REST and GraphQL."""

from __future__ import annotations

import httpx

from gpugo.models import AuditEvent, Session
from tests.schema.support import Gql
from tests.support import ORIGIN, PASSWORD, PUBLIC_URL, assert_error

NEW = "a much longer new passphrase"
CHANGE = """mutation($input: ChangePasswordInput!) { changePassword(input: $input) }"""


async def login_with(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await http.post(
        "/api/v1/auth/login", json={"email": email, "password": password}, headers=ORIGIN
    )


async def login(api, email: str, password: str) -> httpx.Response:
    return await login_with(api.client(), email, password)


async def second_browser(api, email: str) -> httpx.AsyncClient:
    """Another signed-in session of the user (its client keeps the cookie)."""
    http = api.client()
    response = await login_with(http, email, PASSWORD)
    assert response.status_code == 200, response.text
    return http


async def me(http: httpx.AsyncClient) -> int:
    return (await http.get("/api/v1/auth/me")).status_code


async def kinds(user_id: str) -> list[tuple[str, str]]:
    rows = await AuditEvent.filter(user_id=user_id).order_by("at", "id").values("kind", "outcome")
    return [(r["kind"], r["outcome"]) for r in rows]


async def test_rest_change_ends_other_sessions_keeps_this_one_and_the_pat(app, api):
    user = await api.user()
    pat = await user.create_pat()
    other = await second_browser(api, user.email)
    assert await me(other) == 200
    assert await Session.filter(user_id=user.user_id).count() == 2

    response = await user.post(
        "/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": NEW}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "sessions_ended": 1}

    assert await me(user.http) == 200  # the asking session stays
    assert await me(other) == 401  # the other one ended at once
    async with httpx.AsyncClient(transport=user.http._transport, base_url=PUBLIC_URL) as bare:
        headers = {"Authorization": f"Bearer {pat}"}
        assert (await bare.get("/api/v1/auth/me", headers=headers)).status_code == 200
    assert (await login(api, user.email, PASSWORD)).status_code == 401
    assert (await login(api, user.email, NEW)).status_code == 200

    await app.state.ctx.audit.flush()
    assert ("password.changed", "success") in await kinds(user.user_id)


async def test_rest_wrong_current_password_changes_nothing(app, api):
    user = await api.user()
    other = await second_browser(api, user.email)
    response = await user.post(
        "/api/v1/auth/password", json={"current_password": "not it at all", "new_password": NEW}
    )
    error = assert_error(response, 400, "validation_error")
    assert error["details"] == [
        {"field": "current_password", "message": "The current password is wrong."}
    ]
    assert await me(user.http) == 200
    assert await me(other) == 200
    assert (await login(api, user.email, PASSWORD)).status_code == 200
    await app.state.ctx.audit.flush()
    assert ("password.change_refused", "failure") in await kinds(user.user_id)


async def test_rest_new_password_rules_and_credentials(api):
    user = await api.user()
    response = await user.post(
        "/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": "short"}
    )
    error = assert_error(response, 400, "validation_error")
    assert error["details"] == [
        {"field": "new_password", "message": "Must be at least 8 characters long."}
    ]
    anonymous = api.client()
    response = await anonymous.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW},
        headers=ORIGIN,
    )
    assert_error(response, 401, "unauthorized")
    # A cookie request from another site: refused before anything is read.
    response = await user.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW},
        headers={"Origin": "https://evil.example"},
    )
    assert_error(response, 403, "forbidden")
    assert (await login(api, user.email, PASSWORD)).status_code == 200


async def test_graphql_change_and_wrong_current_password(app, api):
    user = await api.user()
    other = await second_browser(api, user.email)
    gql = Gql(user)
    response = await gql(CHANGE, {"input": {"currentPassword": "nope", "newPassword": NEW}})
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "validation_error"
    assert error["extensions"]["details"] == [
        {"field": "currentPassword", "message": "The current password is wrong."}
    ]
    assert await me(other) == 200

    data = await gql.data(CHANGE, {"input": {"currentPassword": PASSWORD, "newPassword": NEW}})
    assert data == {"changePassword": 1}
    assert await me(other) == 401
    assert await me(user.http) == 200
    assert (await login(api, user.email, NEW)).status_code == 200
    await app.state.ctx.audit.flush()
    found = await kinds(user.user_id)
    assert ("password.change_refused", "failure") in found
    assert ("password.changed", "success") in found
