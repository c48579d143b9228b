"""Shares over GraphQL: the same service and input declaration as /api/v1/shares."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gpugo import clock
from gpugo.models import Share, Worker
from gpugo.timefmt import iso
from tests.schema.support import error, post
from tests.support import ISO_MS, PUBLIC_URL, register_agent

FIELDS = (
    "id shortCode shortLink workerId hardwareVendor connectionUrl expiresAt maxUses usedCount "
    "createdAt"
)
CREATE = f"mutation($input: CreateShareInput!) {{ createShare(input: $input) {{ {FIELDS} }} }}"
SHARES = f"""query($first: Int! = 100, $after: String) {{
  shares(first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }}
    edges {{ cursor node {{ {FIELDS} worker {{ id name listenPort }} }} }}
  }}
}}"""
DELETE = "mutation($id: ID!) { deleteShare(id: $id) }"


async def _worker(user) -> str:
    agent = await register_agent(user)
    return (await Worker.get(agent_id=agent.agent_id)).id


async def test_create_share(gql_user):
    gql = await gql_user()
    worker_id = await _worker(gql.user)
    expires = iso(clock.now() + timedelta(days=1))
    share = (
        await gql.data(
            CREATE,
            {
                "input": {
                    "workerId": worker_id,
                    "connectionIp": "2001:db8::1",
                    "expiresAt": expires,
                    "maxUses": 3,
                }
            },
        )
    )["createShare"]
    assert len(share["shortCode"]) >= 10
    assert share["shortLink"] == f"{PUBLIC_URL}/s/{share['shortCode']}"
    assert share["connectionUrl"] == "tcp://[2001:db8::1]:9001"
    assert (share["hardwareVendor"], share["maxUses"], share["usedCount"]) == ("nvidia", 3, 0)
    assert share["expiresAt"] == expires
    assert ISO_MS.match(share["createdAt"])
    # The link works.
    public = await gql.user.http.get(f"/s/{share['shortCode']}")
    assert public.json()["connection_url"] == "tcp://[2001:db8::1]:9001"


async def test_list_newest_first_with_pages_and_the_worker(gql_user):
    gql = await gql_user()
    worker_id = await _worker(gql.user)
    ids = []
    for i in range(3):
        ids.append(
            (
                await gql.data(
                    CREATE, {"input": {"workerId": worker_id, "connectionIp": f"10.0.0.{i}"}}
                )
            )["createShare"]["id"]
        )
        clock.advance(timedelta(milliseconds=5))
    first = (await gql.data(SHARES, {"first": 2}))["shares"]
    assert first["totalCount"] == 3 and first["pageInfo"]["hasNextPage"] is True
    second = (await gql.data(SHARES, {"first": 2, "after": first["pageInfo"]["endCursor"]}))[
        "shares"
    ]
    assert second["pageInfo"] == {"hasNextPage": False, "endCursor": second["edges"][0]["cursor"]}
    got = [e["node"]["id"] for e in first["edges"] + second["edges"]]
    assert got == ids[::-1]
    rest = (await gql.user.get("/api/v1/shares")).json()["shares"]
    assert got == [s["share_id"] for s in rest]
    assert first["edges"][0]["node"]["worker"] == {
        "id": worker_id,
        "name": "default",
        "listenPort": 9001,
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"connectionIp": ""}, "connectionIp"),
        ({"connectionIp": "not a host!"}, "connectionIp"),
        ({"maxUses": 0}, "maxUses"),
        ({"expiresAt": "2000-01-01T00:00:00Z"}, "expiresAt"),
    ],
)
async def test_create_validates_like_rest(gql_user, change, field):
    gql = await gql_user()
    worker_id = await _worker(gql.user)
    graphql_input = {"workerId": worker_id, "connectionIp": "1.2.3.4", **change}
    err = error(await gql(CREATE, {"input": graphql_input}), "validation_error")
    assert err["extensions"]["details"][0]["field"] == field
    rest_body = {
        "worker_id": worker_id,
        "connection_ip": graphql_input["connectionIp"],
        "max_uses": graphql_input.get("maxUses"),
        "expires_at": graphql_input.get("expiresAt"),
    }
    rest = (await gql.user.post("/api/v1/shares", json=rest_body)).json()["error"]
    assert [d["message"] for d in err["extensions"]["details"]] == [
        d["message"] for d in rest["details"]
    ]
    assert not await Share.exists()


async def test_a_malformed_timestamp_is_refused(gql_user):
    gql = await gql_user()
    worker_id = await _worker(gql.user)
    variables = {"input": {"workerId": worker_id, "connectionIp": "1.2.3.4", "expiresAt": "soon"}}
    error(await gql(CREATE, variables), "validation_error")
    assert not await Share.exists()


async def test_another_users_worker_and_share_are_not_found(gql_user):
    owner = await gql_user()
    other = await gql_user()
    worker_id = await _worker(owner.user)
    share = (
        await owner.data(CREATE, {"input": {"workerId": worker_id, "connectionIp": "1.2.3.4"}})
    )["createShare"]
    error(
        await other(CREATE, {"input": {"workerId": worker_id, "connectionIp": "1.2.3.4"}}),
        "not_found",
    )
    error(await other(DELETE, {"id": share["id"]}), "not_found")
    assert (await other.data(SHARES))["shares"]["totalCount"] == 0
    assert await Share.filter(worker_id=worker_id).count() == 1


async def test_delete_share(gql_user):
    gql = await gql_user()
    worker_id = await _worker(gql.user)
    share = (await gql.data(CREATE, {"input": {"workerId": worker_id, "connectionIp": "1.2.3.4"}}))[
        "createShare"
    ]
    assert await gql.data(DELETE, {"id": share["id"]}) == {"deleteShare": True}
    error(await gql(DELETE, {"id": share["id"]}), "not_found")
    assert (await gql.user.http.get(f"/s/{share['shortCode']}")).status_code == 404


async def test_shares_need_a_user(client):
    error(await post(client, SHARES), "unauthorized")
    error(await post(client, DELETE, {"id": "shr_x"}), "unauthorized")
