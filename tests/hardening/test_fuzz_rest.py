"""Schemathesis over /api/v1/openapi.json against a live `gpugo serve`.

Bounded: a fixed seed, ``EXAMPLES`` generated cases per operation (plus the
coverage phase's boundary cases), a deadline per request, and a time budget for
the whole module. Every request is authenticated as a real Pro user (PAT), the
agent endpoints with a real agent's secret and registration with a fresh install
token; half of the positive cases use ids that exist. Checks: no 5xx, statuses,
headers, content types and bodies as documented, schema-violating requests
refused, and a request without its credential refused.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, seed, settings
from schemathesis.core.parameters import ParameterLocation

from tests.hardening.live import POSTGRES_URL, LiveServer
from tests.hardening.world import World

SEED = 20261125
# At least 100 generated cases per operation once per CI run (the SQLite pass); the
# PostgreSQL pass repeats a quarter of them against the other database.
EXAMPLES = 25 if POSTGRES_URL else 100
# Hard bounds: one request may not take longer, nor the module's fuzzing as a whole.
REQUEST_TIMEOUT = 10
BUDGET_SECONDS = 420

CHECKS = {
    "not_a_server_error": {"enabled": True},
    "status_code_conformance": {"enabled": True},
    "content_type_conformance": {"enabled": True},
    "response_headers_conformance": {"enabled": True},
    "response_schema_conformance": {"enabled": True},
    "negative_data_rejection": {"enabled": True},
    "missing_required_header": {"enabled": True},
    "ignored_auth": {"enabled": True},
    "unsupported_method": {"enabled": True},
    # Valid-by-schema data is refused for rules JSON Schema cannot state (an unknown GPU
    # id, a past expiry, a taken port): 400/404/409 answers are correct there.
    "positive_data_acceptance": {"enabled": False},
}

# The agent's event streams stay open by design: their refusals are in the matrix test
# (/events) and tests/live/test_push_channel.py (/v1/stream).
schema = schemathesis.pytest.from_fixture("rest_schema").exclude(
    path_regex=r"(/events|/v1/stream)$"
)
calls: Counter[str] = Counter()
pytestmark = pytest.mark.usefixtures("schemathesis_node_id")


@pytest.fixture(scope="module", autouse=True)
def report(live: LiveServer) -> Iterator[None]:
    yield
    _report(live)


def _report(live: LiveServer) -> None:
    lines = [f"{count:5d}  {label}" for label, count in sorted(calls.items())]
    print(f"\nREST fuzzing: {len(calls)} operations, {sum(calls.values())} requests")
    print("\n".join(lines))


@pytest.fixture(scope="module")
def rest_schema(live: LiveServer, world: World) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "request-timeout": REQUEST_TIMEOUT,
            "generation": {
                "max-examples": EXAMPLES,
                "database": "none",
                # Credentials are ours (real ones); generated cookies would only add noise.
                "with-security-parameters": False,
            },
            "checks": CHECKS,
        }
    )
    return schemathesis.openapi.from_url(f"{live.url}/api/v1/openapi.json", config=config)


def _credential(world: World, case: schemathesis.Case) -> dict[str, str]:
    security = {name for item in case.operation.definition.raw.get("security", []) for name in item}
    if "installToken" in security:
        return world.install_auth
    if security == {"agentSecret"}:
        return world.agent_auth
    if security:
        return world.user_auth
    return {}


def _use_real_ids(world: World, case: schemathesis.Case) -> None:
    # Every other positive case aims at resources that exist.
    if not case.path_parameters or case.meta.is_negative_at(ParameterLocation.PATH):
        return
    if calls[case.operation.label] % 2:
        return
    real = world.real_ids()
    for name in case.path_parameters:
        choices = real.get(name)
        if choices:
            case.path_parameters[name] = choices[calls[case.operation.label] // 2 % len(choices)]


@schema.parametrize()
@seed(SEED)
@settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=REQUEST_TIMEOUT * 3),
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_rest_operation(case: schemathesis.Case, world: World) -> None:
    elapsed = time.monotonic() - world.started
    assert elapsed < BUDGET_SECONDS, "REST fuzzing ran past its time budget"
    _use_real_ids(world, case)
    calls[case.operation.label] += 1
    headers = _credential(world, case)
    response = case.call(headers=headers)
    try:
        case.validate_response(response, headers=headers, transport_kwargs={"headers": headers})
    finally:
        # A fuzzed request may spend the install token, regenerate the PAT or delete the
        # agent, worker or share: put the world back before the next one.
        world.after(case.method, case.operation.path, response)
