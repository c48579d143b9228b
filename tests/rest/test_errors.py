from __future__ import annotations

import logging

import pytest

from tests.support import assert_error


async def test_unknown_route_is_a_json_404(client):
    assert_error(await client.get("/api/v1/nothing-here"), 404, "not_found")
    # "/" is the dashboard (gpugo/web); any other unknown path is a JSON 404.
    assert_error(await client.get("/nothing-here"), 404, "not_found")


async def test_wrong_method_is_a_json_405(client):
    assert_error(await client.delete("/api/v1/auth/me"), 405, "method_not_allowed")
    assert_error(await client.put("/api/v1/tokens/pat"), 405, "method_not_allowed")


async def test_invalid_json_is_a_400(client):
    response = await client.post(
        "/api/v1/auth/login",
        content=b'{"email": "a@example.com", "password": ',
        headers={"Content-Type": "application/json"},
    )
    error = assert_error(response, 400, "validation_error")
    assert error["details"][0]["field"] == "body"


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"email": ' * 100_000, b'{"email": %s}' % (b"9" * 5000)],
)
async def test_json_too_deep_or_too_large_to_read_is_a_400(client, body):
    response = await client.post(
        "/api/v1/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    error = assert_error(response, 400, "validation_error")
    assert error["details"][0]["field"] == "body"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/agents/agt_x%0A2026-01-01T00:00:00 INFO gpugo.access GET /forged 200",
        "/api/v1/agents/agt_x%0D%1B[2J",
        "/api/v1/agents/" + "a" * 10_000,
    ],
)
async def test_a_path_is_logged_on_one_short_line(client, caplog, path):
    with caplog.at_level(logging.INFO, logger="gpugo.access"):
        assert_error(await client.get(path), 404, "not_found")
    (record,) = [r for r in caplog.records if r.name == "gpugo.access"]
    message = record.getMessage()
    assert len(message) < 300
    assert message.isprintable(), message


async def test_wrong_json_types_are_a_400_with_the_field(client):
    response = await client.post("/api/v1/auth/login", json={"email": 5, "password": ["x"]})
    error = assert_error(response, 400, "validation_error")
    assert {d["field"] for d in error["details"]} == {"email", "password"}


async def test_body_over_one_mebibyte_is_a_413(client):
    body = b'{"email": "' + b"a" * (1024 * 1024) + b'"}'
    response = await client.post(
        "/api/v1/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")


async def test_body_over_one_mebibyte_without_content_length_is_a_413(client):
    async def chunks():
        for _ in range(17):
            yield b"x" * 65536

    response = await client.post(
        "/api/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")


async def test_non_json_content_type_is_a_415(client):
    response = await client.post(
        "/api/v1/auth/login",
        content=b"email=a@example.com",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 415, "unsupported_media_type")


async def test_responses_carry_security_headers(client):
    response = await client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


async def test_each_response_has_its_own_request_id(client):
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert len(first.headers["x-request-id"]) == 16
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert "strict-transport-security" not in first.headers


async def test_robots_txt_keeps_share_links_out_of_search_engines(client):
    response = await client.get("/robots.txt")
    assert response.status_code == 200
    assert "Disallow: /s/" in response.text.splitlines()


async def test_a_nul_character_in_stored_text_is_refused_by_name(api, client):
    # PostgreSQL's text cannot hold U+0000: refused at the door on both databases.
    user = await api.user()
    token = await user.install_token()
    body = {
        "hostname": "gpu\u0000host",
        "os": "linux",
        "arch": "amd64",
        "gpus": [],
        "network_ips": ["10.0.0.1", "10.0.0.\u00002"],
    }
    response = await client.post(
        "/api/v1/agents/register", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    error = assert_error(response, 400, "validation_error")
    assert [d["field"] for d in error["details"]] == ["hostname", "network_ips[1]"]
    signup = await client.post(
        "/api/v1/auth/signup", json={"email": "a\u0000b@example.com", "password": "x" * 12}
    )
    assert_error(signup, 400, "validation_error")
