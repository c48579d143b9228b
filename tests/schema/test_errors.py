"""Errors: contract codes in extensions, bugs masked and logged with their trace."""

from __future__ import annotations

import logging

from gpugo.errors import RateLimited
from gpugo.schema.errors import camel_field
from gpugo.services import install_tokens, pats
from tests.schema.support import Gql, error


async def test_a_bug_is_masked_and_logged_with_its_trace(api, monkeypatch, caplog):
    user = await api.user()

    async def broken(**_: object) -> None:
        raise RuntimeError("SELECT secret FROM users -- boom")

    monkeypatch.setattr(install_tokens, "status", broken)
    with caplog.at_level(logging.ERROR, logger="gpugo.graphql"):
        response = await Gql(user)('{ installToken(id: "tok_x") { id } me { id } }')
    body = response.json()
    err = error(response, "internal_error")
    assert err["message"] == "Internal server error."
    assert set(err["extensions"]) == {"code"}
    assert "secret" not in response.text and "boom" not in response.text
    # The rest of the document still answers.
    assert body["data"]["me"]["id"] == user.user_id
    records = [r for r in caplog.records if r.name == "gpugo.graphql"]
    assert len(records) == 1
    assert records[0].exc_info and "boom" in str(records[0].exc_info[1])


async def test_refusals_are_not_logged_as_errors(api, caplog):
    user = await api.user()
    with caplog.at_level(logging.INFO):
        error(await Gql(user)('{ worker(id: "wkr_x") { id } }'), "not_found")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_rate_limited_carries_retry_after(api, monkeypatch):
    user = await api.user()

    async def limited(**_: object) -> None:
        raise RateLimited(retry_after=7)

    monkeypatch.setattr(pats, "get_info", limited)
    err = error(await Gql(user)("{ personalAccessToken { exists } }"), "rate_limited")
    assert err["extensions"]["retryAfter"] == 7


def test_detail_fields_use_graphql_names():
    assert camel_field("gpu_ids[1]") == "gpuIds[1]"
    assert camel_field("expires_in_days") == "expiresInDays"
    assert camel_field("gpus[0].vram_mb") == "gpus[0].vramMb"
    assert camel_field("body") == "body"
