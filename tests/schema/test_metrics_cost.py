"""agentMetrics' cost budget (summed over a document, decided before anything runs) and
the per-user limit on metrics reads running at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from starlette.applications import Starlette

from gpugo.app import create_app
from tests.conftest import make_client
from tests.schema.support import Gql, data, error
from tests.sql_counter import count_sql
from tests.support import Api, empty_database, moment, out_time, register_agent

SELECTION = """{ agentId gpus { gpuId points { at utilizationAvg temperatureMax } }
  system { at cpuUsageAvg } }"""


def aliases(count: int, *, agent_id: str, days: float, bucket: int) -> str:
    """``count`` aliased agentMetrics over the last ``days`` in ``bucket``-second buckets."""
    to = moment()
    start = out_time(to - timedelta(days=days))
    fields = " ".join(
        f'm{i}: agentMetrics(agentId: "{agent_id}", from: "{start}", to: "{out_time(to)}", '
        f"bucket: {bucket}) {SELECTION}"
        for i in range(count)
    )
    return "{ " + fields + " }"


async def _team_agent(api) -> tuple[Gql, str]:
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=2)
    return Gql(user), agent.agent_id


async def test_the_reported_document_is_refused_before_any_query(api):
    # The review's document: 15 aliases over five days in 432 s buckets (1000 each).
    gql, agent_id = await _team_agent(api)
    document = aliases(15, agent_id=agent_id, days=5, bucket=432)
    with count_sql() as sql:
        response = await gql(document)
    err = error(response, "validation_error")
    assert "metric values" in err["message"] and "at most 1,100,000" in err["message"]
    assert response.json()["data"] is None
    # Not even the session is looked up.
    assert sql == []


async def test_one_query_over_the_whole_retention_window_answers(api):
    gql, agent_id = await _team_agent(api)
    # 30 days (the whole retention) in hourly buckets: 720 rows of the hourly tier.
    result = await gql.data(aliases(1, agent_id=agent_id, days=30, bucket=3600))
    assert result["m0"]["agentId"] == agent_id


async def test_the_cost_is_summed_over_aliases(api):
    gql, agent_id = await _team_agent(api)
    # Each fits alone; three do not.
    error(await gql(aliases(3, agent_id=agent_id, days=30, bucket=3600)), "validation_error")
    # Many short ranges do (the dashboard's last hour, 60 s buckets).
    result = await gql.data(aliases(15, agent_id=agent_id, days=1 / 24, bucket=60))
    assert len(result) == 15


async def test_one_wide_bucket_costs_the_rows_it_reads(api):
    # One bucket over 30 days still reads 30 days of hourly rows: three are refused.
    gql, agent_id = await _team_agent(api)
    month = 30 * 86400
    assert (await gql.data(aliases(1, agent_id=agent_id, days=30, bucket=month)))["m0"]
    error(await gql(aliases(3, agent_id=agent_id, days=30, bucket=month)), "validation_error")


async def test_variables_and_fragments_count_too(api):
    gql, agent_id = await _team_agent(api)
    to = moment()
    document = """
    query($id: ID!, $from: DateTime!, $to: DateTime!, $bucket: Int!) { ...A ... on Query { ...B } }
    fragment A on Query { a: agentMetrics(agentId: $id, from: $from, to: $to, bucket: $bucket)
      { agentId } }
    fragment B on Query { b: agentMetrics(agentId: $id, from: $from, to: $to, bucket: $bucket)
      { agentId } ...A }
    """
    variables = {
        "id": agent_id,
        "from": out_time(to - timedelta(days=7)),
        "to": out_time(to),
        "bucket": 605,
    }
    with count_sql() as sql:
        error(await gql(document, variables), "validation_error")
    assert sql == []
    # An hour: within the budget, and the repeated fragment is one field, not two.
    variables["from"] = out_time(to - timedelta(hours=1))
    result = await gql.data(document, variables)
    assert set(result) == {"a", "b"}


# --- metrics reads running at once, per user ------------------------------------------------


@pytest.fixture
async def one_read_app(settings) -> AsyncIterator[Starlette]:
    app = create_app(settings.replace(metrics_reads_per_user=1), auto_migrate=False)
    async with app.router.lifespan_context(app):
        await empty_database()
        yield app


async def test_a_user_has_at_most_the_limit_of_metrics_reads_running(one_read_app):
    api = Api(one_read_app, make_client)
    try:
        gql, agent_id = await _team_agent(api)
        other, other_agent = await _team_agent(api)
        document = aliases(1, agent_id=agent_id, days=1, bucket=300)
        responses = await asyncio.gather(*(gql(document) for _ in range(10)))
        codes = []
        for response in responses:
            body = response.json()
            codes.append(body["errors"][0]["extensions"]["code"] if "errors" in body else "ok")
        assert set(codes) == {"ok", "rate_limited"}, codes
        refused = next(r for r in responses if "errors" in r.json()).json()["errors"][0]
        assert refused["extensions"]["retryAfter"] >= 1
        assert "at once" in refused["message"]
        # Once they are done, the next read runs; another user never waited for them.
        assert data(await gql(document))["m0"]["agentId"] == agent_id
        other_document = aliases(1, agent_id=other_agent, days=1, bucket=300)
        assert data(await other(other_document))["m0"]["agentId"] == other_agent
        # The aliases of one request take turns: they never refuse each other.
        result = data(await gql(aliases(3, agent_id=agent_id, days=1, bucket=300)))
        assert len(result) == 3
    finally:
        await api.aclose()
