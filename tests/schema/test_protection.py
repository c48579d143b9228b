"""Limits on what a document may ask for, enforced before any resolver runs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from gpugo.app import create_app
from gpugo.models import PersonalAccessToken, Share, Worker
from gpugo.schema import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from tests.schema.support import Gql, as_pat, data, error, post
from tests.support import PUBLIC_URL, empty_database, register_agent

CREATE_PAT = "createPersonalAccessToken { token }"


def nested(depth: int, leaf: str = "id") -> str:
    """``agent { workers { agent { ... } } }``: below a root field, ``depth`` levels deep."""
    fields = ["agent", "workers"] * depth
    inner = leaf
    for name in reversed(fields[: depth - 1]):
        inner = f"{name} {{ {inner} }}"
    return inner


async def _pat_user(api) -> tuple[Gql, str]:
    user = await api.user()
    gql = await as_pat(user)
    agent = await register_agent(user)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    return gql, worker_id


async def test_depth_up_to_the_limit_is_fine(api):
    gql, worker_id = await _pat_user(api)
    query = f'{{ worker(id: "{worker_id}") {{ {nested(MAX_DEPTH)} }} }}'
    data(await gql(query))


async def test_a_deeper_query_is_refused(api):
    gql, worker_id = await _pat_user(api)
    query = f'{{ worker(id: "{worker_id}") {{ {nested(MAX_DEPTH + 1)} }} }}'
    response = await gql(query)
    err = error(response, "validation_error")
    assert "exceeds maximum operation depth" in err["message"]
    assert response.json()["data"] is None


async def test_a_deep_mutation_document_runs_nothing(api):
    gql, worker_id = await _pat_user(api)
    query = (
        f'mutation {{ createShare(input: {{workerId: "{worker_id}", connectionIp: "1.2.3.4"}}) '
        f"{{ worker {{ {nested(MAX_DEPTH)} }} }} }}"
    )
    error(await gql(query), "validation_error")
    assert not await Share.exists()


async def test_aliases_up_to_the_limit_are_fine(api):
    gql, _ = await _pat_user(api)
    query = "{ " + " ".join(f"m{i}: me {{ id }}" for i in range(MAX_ALIASES)) + " }"
    assert len(data(await gql(query))) == MAX_ALIASES


async def test_too_many_aliases_run_nothing(api):
    user = await api.user()
    gql = Gql(user)
    query = "mutation { " + " ".join(f"p{i}: {CREATE_PAT}" for i in range(MAX_ALIASES + 1)) + " }"
    response = await gql(query)
    err = error(response, "validation_error")
    assert "aliases" in err["message"]
    assert not await PersonalAccessToken.filter(user_id=user.user_id).exists()


async def test_too_many_tokens_run_nothing(api):
    user = await api.user()
    gql = Gql(user)
    padding = " ".join(["__typename"] * MAX_TOKENS)
    query = f"mutation {{ createPersonalAccessToken {{ token {padding} }} }}"
    response = await gql(query)
    err = error(response, "validation_error")
    assert "token" in err["message"].lower()
    assert not await PersonalAccessToken.filter(user_id=user.user_id).exists()


async def test_fragments_do_not_hide_aliases_or_depth(api):
    gql, worker_id = await _pat_user(api)
    spread = " ".join(f"a{i}: id" for i in range(MAX_ALIASES + 1))
    query = f'{{ worker(id: "{worker_id}") {{ ...F }} }} fragment F on Worker {{ {spread} }}'
    error(await gql(query), "validation_error")
    cyclic = "{ me { ...A } } fragment A on User { ...B } fragment B on User { ...A }"
    error(await gql(cyclic), "validation_error")


async def test_a_mutation_after_a_refused_document_part_never_runs(api):
    # Validation covers the whole document: a bad field anywhere stops every mutation.
    user = await api.user()
    query = f"mutation {{ {CREATE_PAT} deleteWorker(id: 1, nope: 2) }}"
    error(await Gql(user)(query), "validation_error")
    assert not await PersonalAccessToken.filter(user_id=user.user_id).exists()


INTROSPECTION = "{ __schema { queryType { name } } }"
TYPE_QUERY = '{ __type(name: "Agent") { name } }'
TYPO = "{ me { emial } }"


async def test_explorer_on_allows_introspection_and_suggestions(client):
    assert data(await post(client, INTROSPECTION))["__schema"]["queryType"]["name"] == "Query"
    assert "Did you mean 'email'" in error(await post(client, TYPO), "validation_error")["message"]


@pytest.fixture
async def production_app(settings) -> AsyncIterator[Starlette]:
    app = create_app(settings.replace(graphql_explorer=False), auto_migrate=False)
    async with app.router.lifespan_context(app):
        await empty_database()
        yield app


@pytest.fixture
async def production_client(production_app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=production_app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
        yield http


async def test_explorer_off_refuses_introspection_and_suggestions(production_client):
    for query in (INTROSPECTION, TYPE_QUERY):
        response = await post(production_client, query)
        assert response.json()["data"] is None
        for err in response.json()["errors"]:
            assert err["extensions"]["code"] == "validation_error"
            assert "introspection has been disabled" in err["message"]
    message = error(await post(production_client, TYPO), "validation_error")["message"]
    assert "Did you mean" not in message
    # __typename is not introspection: clients rely on it.
    assert data(await post(production_client, "{ __typename }")) == {"__typename": "Query"}


# Misspelled names of each kind, by literal and by variable; graphql-core suggests the right
# one for each (explorer on) unless the schema hides them.
MISSPELLED = [
    ('{ agent(idd: "agt_x") { id } }', None),  # an argument
    ("query($x: Agnt) { me { id } }", None),  # a type
    ("{ me { ... on Usr { id } } }", None),  # a type in a fragment
    ("{ me }", None),  # a selection
    ("mutation { generateInstallToken(type: AGENT_INSTAL) { id } }", None),  # an enum value
    (
        "mutation($t: InstallTokenType!) { generateInstallToken(type: $t) { id } }",
        {"t": "AGENT_INSTAL"},
    ),
    ('mutation { signup(input: {emial: "a@b.c", password: "p"}) { id } }', None),  # a field
    (
        "mutation($i: CredentialsInput!) { signup(input: $i) { id } }",
        {"i": {"emial": "a@b.c", "password": "p"}},
    ),
]


@pytest.mark.parametrize(("query", "variables"), MISSPELLED)
async def test_suggestions_of_every_kind_only_with_the_explorer_on(
    client, production_client, query, variables
):
    with_explorer = (await post(client, query, variables)).json()
    assert any("Did you mean" in e["message"] for e in with_explorer["errors"]), with_explorer
    response = await post(production_client, query, variables)
    body = response.json()
    assert body["data"] is None
    for err in body["errors"]:
        assert err["extensions"]["code"] == "validation_error"
        assert "Did you mean" not in err["message"], err
        assert err["message"].endswith((".", "'")), err


async def test_the_production_profile_turns_the_explorer_off(settings):
    assert settings.replace(profile="production").graphql_explorer_enabled is False
    assert settings.replace(profile="embedded").graphql_explorer_enabled is True


async def test_there_is_no_ide_page(client):
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 405
    assert "unpkg" not in response.text


async def test_parsing_and_validation_are_cached_and_limits_still_apply(api):
    from strawberry.extensions.parser_cache import _get_parse_cache
    from strawberry.extensions.validation_cache import _get_validate_cache

    from gpugo.schema import CACHE_SIZE

    gql, worker_id = await _pat_user(api)
    query = f'{{ worker(id: "{worker_id}") {{ id name }} }}'
    validate = _get_validate_cache(CACHE_SIZE)
    parse = _get_parse_cache(CACHE_SIZE)
    data(await gql(query))
    validated, parsed = validate.cache_info().hits, parse.cache_info().hits
    data(await gql(query))
    assert validate.cache_info().hits == validated + 1
    assert parse.cache_info().hits == parsed + 1
    # A refused document stays refused when it comes from the cache.
    deep = f'{{ worker(id: "{worker_id}") {{ {nested(MAX_DEPTH + 1)} }} }}'
    for _ in range(2):
        error(await gql(deep), "validation_error")
