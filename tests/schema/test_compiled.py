"""Compiled completion gives the answers graphql-core's own completion gives.

A document with a directive is never compiled (a plan must not depend on variables),
so each query here is also sent with a harmless ``@include(if: true)``: that answer is
graphql-core's, and both must be equal, value for value.
"""

from __future__ import annotations

import warnings

import pytest
import strawberry
from graphql import execute as graphql_execute
from graphql import parse

from gpugo.schema import compiled
from gpugo.schema.execution import GpugoExecutionContext
from tests.schema.support import Gql, as_pat
from tests.schema.test_sql_count import DASHBOARD, seed

# Fragments, aliases, __typename, enums, timestamps, nullable ints, lists of strings.
SHAPES = """query {
  agents(first: 10) {
    edges { node { ...agent again: hostname __typename } }
    total: totalCount
  }
}
fragment agent on Agent {
  id status lastSeenAt createdAt
  gpus { __typename gpuIndex vramMb driverVersion usedByWorker }
  workers { name gpuIds status pid restarts connections { clientIp clientPort clientPid } }
}"""

# Worker nodes of this list hold only some columns: their resolvers must load the rest
# (a compiled run gives up on a load and graphql-core completes it); ``agent`` is async.
LOADING = """query {
  workers(first: 50) {
    edges { node { id name isDefault pid restarts createdAt
      connections { clientIp connectedAt }
      agent { hostname status gpuCount }
    } }
  }
}"""


def _uncompiled(query: str) -> str:
    # One more root selection, with a directive (its value is dropped before comparing).
    head, brace, rest = query.partition("{")
    return f"{head}{brace} __typename @include(if: true) {rest}"


@pytest.mark.parametrize(
    "query", [DASHBOARD, SHAPES, LOADING], ids=["dashboard", "shapes", "loading"]
)
async def test_compiled_answers_equal_graphql_core(api, query: str) -> None:
    gql: Gql = await as_pat(await api.user())
    await seed(gql.user.user_id, 7)
    uncompiled = _uncompiled(query)
    assert "@include" in uncompiled and uncompiled != query

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no coroutine left un-awaited by a compiled run
        compiled_answer = await gql.data(query)
        reference = await gql.data(uncompiled)
        assert reference.pop("__typename") == "Query"
        again = await gql.data(query)  # a cached plan gives the same answer

    assert compiled_answer == reference == again
    pages = [v for v in compiled_answer.values() if isinstance(v, dict) and "edges" in v]
    assert pages and all(page["edges"] for page in pages)  # the answers hold data


async def test_the_dashboard_query_is_compiled(api) -> None:
    # White-box on purpose: the equality tests above would also pass if nothing compiled.
    gql = await as_pat(await api.user())
    await seed(gql.user.user_id, 1)
    compiled._PLANS.clear()
    await gql.data(DASHBOARD)
    plans = [plan for _, nodes, plan in compiled._PLANS.values() if nodes[0].name.value == "agents"]
    assert plans and all(plan is not None for plan in plans)


async def test_null_where_the_schema_allows_it(api) -> None:
    gql = await as_pat(await api.user())
    await seed(gql.user.user_id, 2)
    answer = await gql.data(
        "query { agents { edges { node { lastSeenAt gpus { cudaVersion } } } } }"
    )
    nodes = [edge["node"] for edge in answer["agents"]["edges"]]
    # seed(): one agent never reported; no GPU has a CUDA version.
    assert sorted(node["lastSeenAt"] is None for node in nodes) == [False, True]
    assert all(gpu["cudaVersion"] is None for node in nodes for gpu in node["gpus"])


@strawberry.type
class _Viewer:
    @strawberry.field
    def who(self, info: strawberry.Info) -> str:
        return info.context["user"]


@strawberry.type
class _Query:
    @strawberry.field
    def viewer(self) -> _Viewer:
        return _Viewer()


async def test_a_kept_plan_gives_each_request_its_own_context() -> None:
    # Plans are kept across requests: a synchronous resolver reading info.context must
    # see the request running the plan (its user), not the one that compiled it.
    schema = strawberry.Schema(query=_Query)._schema
    # Parsed once, as the server's document cache keeps it: the plan is kept with it.
    document = parse("{ viewer { who } }")
    for user in ("ann", "bob", "ann"):
        result = graphql_execute(
            schema,
            document,
            context_value={"user": user},
            executor_class=GpugoExecutionContext,
        )
        assert result.errors is None, result.errors
        assert result.data == {"viewer": {"who": user}}
    viewer = document.definitions[0].selection_set.selections[0]
    assert any(nodes == [viewer] and plan for _, nodes, plan in compiled._PLANS.values())
