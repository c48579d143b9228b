"""signup, login, logout and me over GraphQL: the same cookie, services and limits as REST."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from gpugo.app import create_app
from gpugo.auth.sessions import COOKIE_NAME
from gpugo.models import Session, User
from tests.schema.support import as_pat, data, error, post
from tests.support import ORIGIN, PASSWORD, PUBLIC_URL, empty_database, register_agent

SIGNUP = """mutation($email: String!, $password: String!) {
  signup(input: {email: $email, password: $password}) { id email plan createdAt }
}"""
LOGIN = """mutation($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) { id email }
}"""
ME = """{ me { id email plan createdAt
  usage { gpusUsed gpusAllowed workersUsed workersAllowed metricsIncluded } } }"""


def _cookie_attributes(response: httpx.Response) -> set[str]:
    # Everything but the (random) value: name, flags, lifetime.
    header = response.headers["set-cookie"]
    name_value, *attributes = (part.strip() for part in header.split(";"))
    assert name_value.startswith(f"{COOKIE_NAME}=")
    return {a.lower() for a in attributes}


async def test_signup_sets_the_same_cookie_as_rest(client, app):
    response = await post(
        client, SIGNUP, {"email": "New@Example.com", "password": PASSWORD}, headers=ORIGIN
    )
    user = data(response)["signup"]
    assert user["email"] == "new@example.com"
    assert user["plan"] == "FREE"
    rest = await client.post(
        "/api/v1/auth/signup", json={"email": "rest@example.com", "password": PASSWORD}
    )
    assert _cookie_attributes(response) == _cookie_attributes(rest)
    assert "httponly" in _cookie_attributes(response)
    assert "samesite=lax" in _cookie_attributes(response)


async def test_the_signup_cookie_is_a_session(client):
    response = await post(client, SIGNUP, {"email": "a@example.com", "password": PASSWORD})
    user = data(response)["signup"]
    me = data(await post(client, ME, headers=ORIGIN))["me"]
    assert me["id"] == user["id"]
    assert me["usage"] == {
        "gpusUsed": 0,
        "gpusAllowed": 2,
        "workersUsed": 0,
        "workersAllowed": 2,
        "metricsIncluded": False,
    }


async def test_signup_validates_like_rest(client):
    response = await post(client, SIGNUP, {"email": "not-an-email", "password": "short"})
    err = error(response, "validation_error")
    fields = {d["field"]: d["message"] for d in err["extensions"]["details"]}
    rest = await client.post(
        "/api/v1/auth/signup", json={"email": "not-an-email", "password": "short"}
    )
    rest_fields = {d["field"]: d["message"] for d in rest.json()["error"]["details"]}
    assert fields == rest_fields
    assert not await User.exists()


async def test_signup_of_a_taken_email_is_a_conflict(api, client):
    await api.user(email="taken@example.com")
    response = await post(client, SIGNUP, {"email": "taken@example.com", "password": PASSWORD})
    error(response, "conflict")
    assert "set-cookie" not in response.headers


async def test_signup_can_be_disabled(settings):
    app = create_app(settings.replace(signup_enabled=False), auto_migrate=False)
    async with app.router.lifespan_context(app):
        await empty_database()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL
        ) as http:
            response = await post(http, SIGNUP, {"email": "a@example.com", "password": PASSWORD})
            error(response, "forbidden")
        assert not await User.exists()


async def test_login_gives_a_new_session_each_time(api, client):
    user = await api.user(email="me@example.com")
    first = await post(client, LOGIN, {"email": "ME@example.com", "password": PASSWORD})
    assert data(first)["login"] == {"id": user.user_id, "email": "me@example.com"}
    first_cookie = client.cookies[COOKIE_NAME]
    # The client now carries a session cookie: its POSTs need our Origin.
    second = await post(
        client, LOGIN, {"email": "me@example.com", "password": PASSWORD}, headers=ORIGIN
    )
    data(second)
    assert client.cookies[COOKIE_NAME] != first_cookie
    assert await Session.filter(user_id=user.user_id).count() == 3


async def test_wrong_password_and_unknown_email_answer_the_same(api, client):
    await api.user(email="me@example.com")
    wrong = error(
        await post(client, LOGIN, {"email": "me@example.com", "password": "wrong password"}),
        "unauthorized",
    )
    unknown = error(
        await post(client, LOGIN, {"email": "who@example.com", "password": "wrong password"}),
        "unauthorized",
    )
    assert wrong["message"] == unknown["message"]


async def test_logout_with_a_pat_keeps_sessions(api):
    user = await api.user()
    gql = await as_pat(user)
    response = await gql("mutation { logout }")
    assert data(response) == {"logout": True}
    assert await Session.filter(user_id=user.user_id).exists()


async def test_logout_needs_a_user(client):
    error(await post(client, "mutation { logout }"), "unauthorized")


async def test_me_counts_gpus_and_workers_and_follows_the_plan(api):
    user = await api.user(plan="team")
    await register_agent(user, gpus=3)
    me = (await (await as_pat(user)).data(ME))["me"]
    assert me["plan"] == "TEAM"
    assert me["usage"] == {
        "gpusUsed": 3,
        "gpusAllowed": 64,
        "workersUsed": 1,
        "workersAllowed": 100,
        "metricsIncluded": True,
    }
    assert me["createdAt"].endswith("Z")


@pytest.fixture
async def limited_app(settings) -> AsyncIterator[Starlette]:
    app = create_app(
        settings.replace(
            rate_limits_enabled=True,
            rate_limit_login="3/minute",
            rate_limit_signup="2/minute",
            rate_limit_token_generate="2/minute",
        ),
        auto_migrate=False,
    )
    async with app.router.lifespan_context(app):
        await empty_database()
        yield app


def client_from(app: Starlette, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL)


async def test_login_is_rate_limited_like_rest_and_each_alias_counts(limited_app):
    # Three aliased logins in one document are three attempts; the fourth is refused.
    logins = (
        f'a{i}: login(input: {{email: "v{i}@example.com", password: "wrong password"}}) {{ id }}'
        for i in range(4)
    )
    aliased = "mutation { " + " ".join(logins) + " }"
    async with (
        client_from(limited_app, "10.0.0.1") as http,
        client_from(limited_app, "10.0.0.2") as other,
    ):
        body = (await post(http, aliased)).json()
        codes = [e["extensions"]["code"] for e in body["errors"]]
        assert codes == ["unauthorized"] * 3 + ["rate_limited"]
        limited = body["errors"][3]
        assert limited["path"] == ["a3"]
        assert limited["extensions"]["retryAfter"] >= 1
        # REST shares the same counter.
        rest = await http.post(
            "/api/v1/auth/login", json={"email": "x@example.com", "password": "wrong password"}
        )
        assert rest.status_code == 429
        # Another address is not affected.
        error(
            await post(other, LOGIN, {"email": "v0@example.com", "password": "wrong password"}),
            "unauthorized",
        )


async def test_signup_is_rate_limited_per_address(limited_app):
    async with client_from(limited_app, "10.0.0.3") as http:
        for i in range(2):
            variables = {"email": f"s{i}@example.com", "password": PASSWORD}
            data(await post(http, SIGNUP, variables, headers=ORIGIN))
        variables = {"email": "s9@example.com", "password": PASSWORD}
        response = await post(http, SIGNUP, variables, headers=ORIGIN)
        error(response, "rate_limited")
    assert not await User.filter(email="s9@example.com").exists()


async def test_install_tokens_are_rate_limited_per_user(limited_app):
    async with client_from(limited_app, "10.0.0.4") as http:
        data(await post(http, SIGNUP, {"email": "t@example.com", "password": PASSWORD}))
        query = (
            "mutation { a: generateInstallToken { id } b: generateInstallToken { id } "
            "c: generateInstallToken { id } }"
        )
        body = (await post(http, query, headers=ORIGIN)).json()
        assert body["data"] is None or body["data"].get("c") is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["rate_limited"]
