"""Schemathesis over the GraphQL schema at /graphql (introspected from a live server).

Bounded like the REST fuzzing: a fixed seed, ``EXAMPLES`` documents per query and
mutation, a deadline per request and a time budget. Authenticated as a real Pro user
(PAT) owning an agent, workers and a share. Checks: no 5xx, no error with
``internal_error`` (a bug behind a 200), every error carrying a contract code, and
responses shaped as the schema says.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, seed, settings

from tests.hardening.live import POSTGRES_URL, LiveServer
from tests.hardening.world import World

SEED = 20261125
# At least 100 per field in the SQLite pass; a quarter of that on PostgreSQL.
EXAMPLES = 25 if POSTGRES_URL else 100
REQUEST_TIMEOUT = 10
BUDGET_SECONDS = 300
CODES = {
    "validation_error",
    "unauthorized",
    "forbidden",
    "plan_limit_exceeded",
    "plan_feature_unavailable",
    "not_found",
    "conflict",
    "gone",
    "rate_limited",
}

schema = schemathesis.pytest.from_fixture("graphql_schema")
calls: Counter[str] = Counter()
pytestmark = pytest.mark.usefixtures("schemathesis_node_id")


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    print(f"\nGraphQL fuzzing: {len(calls)} fields, {sum(calls.values())} requests")
    print("\n".join(f"{count:5d}  {label}" for label, count in sorted(calls.items())))


@pytest.fixture(scope="module")
def graphql_schema(live: LiveServer, world: World) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "request-timeout": REQUEST_TIMEOUT,
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            "checks": {
                # Schemathesis counts every execution error as a server error, refusals
                # such as not_found included; the test checks the codes itself instead.
                "not_a_server_error": {"enabled": False},
                # Valid-by-schema documents are refused for rules GraphQL types cannot
                # state (an unknown id, a short password): refusals with codes are right.
                "positive_data_acceptance": {"enabled": False},
            },
        }
    )
    return schemathesis.graphql.from_url(
        f"{live.url}/graphql", config=config, headers=world.user_auth
    )


@schema.parametrize()
@seed(SEED)
@settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=REQUEST_TIMEOUT * 3),
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_graphql_field(case: schemathesis.Case, world: World) -> None:
    assert time.monotonic() - world.started < BUDGET_SECONDS, "GraphQL fuzzing ran too long"
    calls[case.operation.label] += 1
    headers = world.user_auth
    response = case.call(headers=headers)
    try:
        assert response.status_code < 500, response.text
        case.validate_response(response, headers=headers, transport_kwargs={"headers": headers})
        body = response.json()
        for error in body.get("errors") or []:
            code = (error.get("extensions") or {}).get("code")
            assert code in CODES, f"{case.operation.label}: {error}"
    finally:
        _after(world, case.operation.label, response)


_DESTRUCTIVE = ("deletePersonalAccessToken", "deleteAgent", "deleteWorker", "deleteShare")


def _after(world: World, label: str, response: object) -> None:
    """Keep the fuzzer's own credential and resources alive."""
    data = (response.json() or {}).get("data") or {}  # type: ignore[attr-defined]
    new_pat = data.get("createPersonalAccessToken")
    if new_pat and new_pat.get("token"):
        world.pat = new_pat["token"]
    elif any(data.get(name) for name in _DESTRUCTIVE):
        world.repair()
