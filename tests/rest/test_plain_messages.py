"""Validation errors in plain words, every field's at once, in the contract's error body."""

from __future__ import annotations

from tests.schema.support import Gql
from tests.support import ORIGIN, assert_error, register_agent

RAW = ("Value error", "String should", "Input should", "List should", "Field required")


def assert_plain(details: list[dict[str, str]]) -> None:
    for detail in details:
        assert set(detail) == {"field", "message"}
        assert not any(raw in detail["message"] for raw in RAW), detail
        assert detail["message"][0].isupper() and detail["message"].endswith("."), detail


async def test_signup_says_every_problem_in_plain_words(api):
    http = api.client()
    response = await http.post(
        "/api/v1/auth/signup", json={"email": "nope", "password": "short"}, headers=ORIGIN
    )
    error = assert_error(response, 400, "validation_error")
    details = error["details"]
    assert details == [
        {"field": "email", "message": "Enter a valid e-mail address."},
        {"field": "password", "message": "Must be at least 8 characters long."},
    ]
    assert error["message"] == (
        "Invalid request: email: Enter a valid e-mail address.; "
        "password: Must be at least 8 characters long."
    )
    assert_plain(details)


async def test_a_worker_form_gets_all_its_errors_at_once(api):
    user = await api.user()
    agent = await register_agent(user)
    response = await user.post(
        "/api/v1/workers",
        json={
            "agent_id": agent.agent_id,
            "name": "",
            "gpu_ids": [],
            "listen_port": 80,
            "compute_percent": 1.5,
            "isolation_mode": "strict",
        },
    )
    details = assert_error(response, 400, "validation_error")["details"]
    assert {d["field"]: d["message"] for d in details} == {
        "name": "Must not be empty.",
        "gpu_ids": "Must hold at least 1 item.",
        "listen_port": "Must be at least 1024.",
        "compute_percent": "Must be a whole number.",
        "isolation_mode": "Must be one of 'shared', 'soft', 'hard' or 'partitioned'.",
    }
    assert_plain(details)
    # Nothing was written.
    assert len((await user.get("/api/v1/workers")).json()["workers"]) == 1


async def test_graphql_says_the_same(api):
    user = await api.user()
    agent = await register_agent(user)
    gql = Gql(user)
    response = await gql(
        """mutation($input: CreateWorkerInput!) { createWorker(input: $input) { id } }""",
        {"input": {"agentId": agent.agent_id, "name": "", "gpuIds": [], "listenPort": 70000}},
    )
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "validation_error"
    details = error["extensions"]["details"]
    assert {d["field"]: d["message"] for d in details} == {
        "name": "Must not be empty.",
        "gpuIds": "Must hold at least 1 item.",
        "listenPort": "Must be at most 65535.",
    }
    assert_plain(details)
