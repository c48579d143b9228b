from __future__ import annotations

import dataclasses
from datetime import timedelta

from gpugo import clock
from gpugo.auth.sessions import COOKIE_NAME
from gpugo.models import Session
from tests.support import ORIGIN, PASSWORD, assert_error, assert_iso


async def test_signup_sets_a_session_cookie_that_me_accepts(client):
    response = await client.post(
        "/api/v1/auth/signup", json={"email": "Ada@Example.com", "password": PASSWORD}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "ada@example.com"
    assert body["plan"] == "free"
    assert_iso(body["created_at"])
    cookie = response.headers["set-cookie"]
    assert COOKIE_NAME in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    me = await client.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["user_id"] == body["user_id"]
    assert me.json()["limits"] == {"max_gpus": 2, "max_workers": 2, "metrics": False}
    assert me.json()["usage"] == {"gpus": 0, "workers": 0}


async def test_signup_twice_with_one_email_conflicts(client):
    first = await client.post(
        "/api/v1/auth/signup", json={"email": "a@example.com", "password": PASSWORD}
    )
    assert first.status_code == 201
    second = await client.post(
        "/api/v1/auth/signup", json={"email": "A@example.com", "password": PASSWORD}
    )
    assert_error(second, 409, "conflict")


async def test_signup_of_a_taken_email_changes_nothing_and_signs_nobody_in(api, client):
    # The 409 is kept on purpose (docs/decisions.md, "Signup of a registered e-mail").
    await api.user(email="taken@example.com")
    sessions = await Session.all().count()
    response = await client.post(
        "/api/v1/auth/signup", json={"email": "taken@example.com", "password": "another password"}
    )
    assert_error(response, 409, "conflict")
    assert "set-cookie" not in response.headers
    assert await Session.all().count() == sessions
    login = {"email": "taken@example.com", "password": "another password"}
    assert_error(await client.post("/api/v1/auth/login", json=login), 401, "unauthorized")
    login["password"] = PASSWORD
    assert (await client.post("/api/v1/auth/login", json=login)).status_code == 200


async def test_signup_validates_email_and_password_length(client):
    short = await client.post(
        "/api/v1/auth/signup", json={"email": "a@example.com", "password": "short"}
    )
    error = assert_error(short, 400, "validation_error")
    assert error["details"][0]["field"] == "password"
    bad = await client.post("/api/v1/auth/signup", json={"email": "nope", "password": PASSWORD})
    assert assert_error(bad, 400, "validation_error")["details"][0]["field"] == "email"
    long = await client.post(
        "/api/v1/auth/signup", json={"email": "a@example.com", "password": "x" * 1025}
    )
    assert_error(long, 400, "validation_error")


async def test_signup_refused_when_disabled(settings, app, client):
    app.state.ctx = dataclasses.replace(
        app.state.ctx, settings=settings.replace(signup_enabled=False)
    )
    response = await client.post(
        "/api/v1/auth/signup", json={"email": "a@example.com", "password": PASSWORD}
    )
    assert_error(response, 403, "forbidden")


async def test_wrong_password_and_unknown_email_answer_identically(api, client):
    await api.user("known@example.com")
    wrong = await client.post(
        "/api/v1/auth/login", json={"email": "known@example.com", "password": "not the password"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "not the password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert "set-cookie" not in wrong.headers


async def test_login_gives_a_new_session_each_time(api, client):
    await api.user("a@example.com")
    first = await client.post(
        "/api/v1/auth/login", json={"email": "a@example.com", "password": PASSWORD}
    )
    assert first.status_code == 200
    first_cookie = first.cookies[COOKIE_NAME]
    second = await client.post(
        "/api/v1/auth/login", json={"email": "A@EXAMPLE.com", "password": PASSWORD}
    )
    assert second.status_code == 200
    assert second.cookies[COOKIE_NAME] != first_cookie


async def test_logout_revokes_the_session_on_the_server(api, client):
    user = await api.user()
    cookie = user.http.cookies[COOKIE_NAME]
    response = await user.post("/api/v1/auth/logout")
    assert response.status_code == 200
    assert response.json() == {"success": True}
    # The old cookie, replayed by someone who kept it, no longer works.
    client.cookies.set(COOKIE_NAME, cookie)
    replay = await client.get("/api/v1/auth/me")
    assert_error(replay, 401, "unauthorized")


async def test_session_expires_after_idle_time(api, settings):
    user = await api.user()
    assert (await user.get("/api/v1/auth/me")).status_code == 200
    clock.advance(timedelta(seconds=settings.session_idle_seconds - 120))
    assert (await user.get("/api/v1/auth/me")).status_code == 200  # refreshes idle time
    clock.advance(timedelta(seconds=settings.session_idle_seconds - 120))
    assert (await user.get("/api/v1/auth/me")).status_code == 200
    clock.advance(timedelta(seconds=settings.session_idle_seconds + 1))
    assert_error(await user.get("/api/v1/auth/me"), 401, "unauthorized")


async def test_session_expires_at_its_absolute_lifetime_even_when_active(api, settings):
    user = await api.user()
    step = timedelta(hours=12)
    elapsed = timedelta(0)
    while elapsed + step < timedelta(seconds=settings.session_absolute_seconds):
        clock.advance(step)
        elapsed += step
        assert (await user.get("/api/v1/auth/me")).status_code == 200
    clock.advance(step)
    assert_error(await user.get("/api/v1/auth/me"), 401, "unauthorized")


async def test_cookie_post_from_a_foreign_origin_is_refused(api):
    user = await api.user()
    foreign = await user.http.post(
        "/api/v1/tokens/generate",
        json={"type": "agent_install"},
        headers={"Origin": "https://evil.example"},
    )
    assert_error(foreign, 403, "forbidden")
    no_origin = await user.http.post("/api/v1/tokens/generate", json={"type": "agent_install"})
    assert_error(no_origin, 403, "forbidden")
    same_site = await user.http.post(
        "/api/v1/tokens/generate",
        json={"type": "agent_install"},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert same_site.status_code == 201
    right = await user.http.post(
        "/api/v1/tokens/generate", json={"type": "agent_install"}, headers=ORIGIN
    )
    assert right.status_code == 201
    # Safe methods need no Origin.
    assert (await user.http.get("/api/v1/auth/me")).status_code == 200


async def test_bearer_requests_need_no_origin_and_ignore_cookies(api, client):
    user = await api.user()
    pat = await user.create_pat()
    response = await client.post(
        "/api/v1/tokens/generate",
        json={"type": "agent_install"},
        headers={"Authorization": f"Bearer {pat}", "Origin": "https://evil.example"},
    )
    assert response.status_code == 201
    # A bad bearer is refused even when a valid cookie rides along.
    bad = await user.http.get("/api/v1/auth/me", headers={"Authorization": "Bearer nonsense"})
    assert_error(bad, 401, "unauthorized")


async def test_login_from_a_foreign_origin_is_refused(api, client):
    await api.user("a@example.com")
    response = await client.post(
        "/api/v1/auth/login",
        json={"email": "a@example.com", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert_error(response, 403, "forbidden")


async def test_me_without_credentials_is_401(client):
    assert_error(await client.get("/api/v1/auth/me"), 401, "unauthorized")
    assert_error(
        await client.get("/api/v1/auth/me", headers={"Authorization": "Basic abc"}),
        401,
        "unauthorized",
    )
