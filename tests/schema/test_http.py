"""/graphql over HTTP: POST + application/json only, who may call it, the CSRF rule."""

from __future__ import annotations

import pytest

from gpugo.auth.sessions import COOKIE_NAME
from gpugo.models import PersonalAccessToken
from tests.schema.support import GRAPHQL, as_cookie, as_pat, data, error, post
from tests.support import register_agent

ME = "{ me { id email } }"


async def test_cookie_user_with_our_origin(api):
    user = await api.user()
    me = (await (await as_cookie(user)).data(ME))["me"]
    assert me == {"id": user.user_id, "email": user.email}


async def test_pat_user_needs_no_origin_and_no_cookie(api):
    user = await api.user()
    gql = await as_pat(user)
    assert (await gql.data(ME))["me"]["id"] == user.user_id


async def test_no_credential_is_unauthorized(client):
    response = await post(client, ME)
    assert error(response, "unauthorized")["path"] == ["me"]
    assert response.json()["data"] is None


@pytest.mark.parametrize(
    "authorization",
    ["Bearer gpgo_pat_notavalidtoken", "Basic dXNlcjpwYXNz", "Bearer ", "gpgo_pat_x"],
)
async def test_bad_bearers_are_unauthorized(client, authorization):
    response = await post(client, ME, headers={"Authorization": authorization})
    error(response, "unauthorized")


async def test_agent_secrets_and_install_tokens_are_not_users(api, client):
    user = await api.user()
    install_token = await user.install_token()
    agent = await register_agent(user)
    for secret in (install_token, agent.secret, await user.install_token()):
        response = await post(client, ME, headers={"Authorization": f"Bearer {secret}"})
        error(response, "unauthorized")


async def test_an_expired_or_deleted_pat_is_unauthorized(api):
    user = await api.user()
    gql = await as_pat(user)
    await PersonalAccessToken.filter(user_id=user.user_id).delete()
    error(await gql(ME), "unauthorized")


async def test_bearer_ignores_the_cookie(api):
    # A valid session cookie does not rescue a bad bearer.
    user = await api.user()
    response = await post(
        user.http, ME, headers={"Authorization": "Bearer gpgo_pat_bad", "Origin": "http://evil"}
    )
    error(response, "unauthorized")


async def test_cookie_post_from_a_foreign_origin_is_refused_before_graphql_runs(api):
    user = await api.user()
    response = await post(
        user.http,
        "mutation { createPersonalAccessToken { token } }",
        headers={"Origin": "https://evil.example"},
    )
    error(response, "forbidden", status=403)
    assert not await PersonalAccessToken.filter(user_id=user.user_id).exists()


async def test_cookie_post_without_origin_is_refused_unless_same_origin_fetch(api):
    user = await api.user()
    error(await post(user.http, ME), "forbidden", status=403)
    error(await post(user.http, ME, headers={"Sec-Fetch-Site": "cross-site"}), "forbidden", 403)
    response = await post(user.http, ME, headers={"Sec-Fetch-Site": "same-origin"})
    assert data(response)["me"]["id"] == user.user_id


async def test_even_queries_need_the_origin_check(api):
    # Any GraphQL POST is unsafe: a query document may hold mutations too.
    user = await api.user()
    response = await post(user.http, ME, headers={"Origin": "http://testserver.evil.example"})
    error(response, "forbidden", status=403)


async def test_login_from_a_foreign_origin_is_refused(api, client):
    await api.user(email="a@example.com")
    response = await post(
        client,
        'mutation { login(input: {email: "a@example.com", password: "correct horse battery"}) '
        "{ id } }",
        headers={"Origin": "https://evil.example"},
    )
    error(response, "forbidden", status=403)
    assert "set-cookie" not in response.headers


async def test_pat_from_another_origin_is_fine(api):
    user = await api.user()
    pat = await user.create_pat()
    response = await post(
        user.http,
        ME,
        headers={"Authorization": f"Bearer {pat}", "Origin": "https://integrator.example"},
    )
    assert data(response)["me"]["id"] == user.user_id


async def test_get_is_refused(api):
    user = await api.user()
    for url in (f"{GRAPHQL}?query={{me{{id}}}}", GRAPHQL):
        response = await user.http.get(url, headers={"Accept": "text/html"})
        error(response, "method_not_allowed", status=405)
        assert response.headers["allow"] == "POST"


async def test_other_methods_are_refused(client):
    for method in ("PUT", "PATCH", "DELETE"):
        response = await client.request(method, GRAPHQL, json={"query": ME})
        error(response, "method_not_allowed", status=405)


async def test_batching_is_refused(api):
    gql = await as_pat(await api.user())
    response = await gql.user.http.post(
        GRAPHQL, json=[{"query": ME}, {"query": ME}], headers=gql.headers
    )
    error(response, "validation_error", status=400)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"query=%7Bme%7Bid%7D%7D"),
        ("multipart/form-data; boundary=x", b"--x\r\n"),
        ("text/plain", b'{"query": "{ me { id } }"}'),
        ("application/graphql", b"{ me { id } }"),
    ],
)
async def test_only_json_bodies(client, content_type, body):
    response = await client.post(GRAPHQL, content=body, headers={"Content-Type": content_type})
    error(response, "unsupported_media_type", status=415)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'"a string"',
        b'{"query": 5}',
        b'{"query": "{ me { id } }", "variables": 3}',
        b"{}",
    ],
)
async def test_malformed_requests(client, body):
    response = await client.post(
        GRAPHQL, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "validation_error"


async def test_body_over_the_limit_is_413(client):
    padding = "x" * (1024 * 1024)
    response = await post(client, f"{{ me {{ id }} }} # {padding}")
    error(response, "payload_too_large", status=413)


async def test_logout_clears_the_same_cookie_and_revokes_the_session(api):
    user = await api.user()
    gql = await as_cookie(user)
    cookie = user.http.cookies[COOKIE_NAME]
    response = await gql("mutation { logout }")
    assert data(response) == {"logout": True}
    assert f'{COOKIE_NAME}=""' in response.headers["set-cookie"]
    user.http.cookies.set(COOKIE_NAME, cookie)
    error(await gql(ME), "unauthorized")


async def test_graphql_and_rest_share_the_principal_rules(api):
    # The same cookie authenticates both doors.
    user = await api.user()
    rest = await user.get("/api/v1/auth/me")
    gql = await (await as_cookie(user)).data(ME)
    assert rest.json()["user_id"] == gql["me"]["id"]


async def test_an_install_token_cannot_act_as_its_user(api):
    # Agents speak REST only: nothing in the schema takes an install token.
    user = await api.user()
    token = await user.install_token()
    response = await post(
        user.http,
        "mutation { generateInstallToken { id } }",
        headers={"Authorization": f"Bearer {token}"},
    )
    error(response, "unauthorized")


async def test_the_principal_is_resolved_once_per_request(api):
    from tests.sql_counter import count_sql

    user = await api.user()
    gql = await as_cookie(user)
    query = "{ a: me { id } b: me { id } personalAccessToken { exists } c: workers { totalCount } }"
    with count_sql() as sql:
        await gql.data(query)
    assert sum('FROM "sessions"' in s for s in sql) == 1, sql


async def test_a_refused_credential_is_not_checked_again_per_field(client):
    from gpugo.auth.tokens import TokenKind, new_token
    from tests.sql_counter import count_sql

    # Well formed, so it is looked up; unknown, so it is refused.
    headers = {"Authorization": f"Bearer {new_token(TokenKind.PAT)}"}
    with count_sql() as sql:
        query = '{ a: agent(id: "agt_x") { id } b: worker(id: "wkr_x") { id } }'
        response = await post(client, query, headers=headers)
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["unauthorized"] * 2
    assert len(sql) == 1, sql
