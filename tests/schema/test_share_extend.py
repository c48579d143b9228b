"""extendShare: new expiry and use limit, the same code; a used-up link comes back."""

from __future__ import annotations

from datetime import timedelta

from gpugo import clock
from gpugo.models import AuditEvent, Share, Worker
from tests.schema.support import error
from tests.support import moment, out_time, register_agent

CREATE = """mutation($input: CreateShareInput!) {
  createShare(input: $input) { id shortCode shortLink maxUses expiresAt } }"""
EXTEND = """mutation($id: ID!, $input: ExtendShareInput!) {
  extendShare(id: $id, input: $input) { id shortCode shortLink maxUses usedCount expiresAt } }"""


async def test_extend_keeps_the_code_and_revives_a_used_up_link(app, gql_user):
    gql = await gql_user()
    agent = await register_agent(gql.user)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    share = (
        await gql.data(
            CREATE, {"input": {"workerId": worker_id, "connectionIp": "10.0.0.1", "maxUses": 1}}
        )
    )["createShare"]
    link = f"/s/{share['shortCode']}"
    assert (await gql.user.http.get(link)).status_code == 200
    assert (await gql.user.http.get(link)).status_code == 410
    assert (await Share.get(id=share["id"])).withdrawn_at is not None
    config_before = (await agent.config()).json()["config_version"]

    expires = out_time(moment(timedelta(days=2)))
    extended = (
        await gql.data(EXTEND, {"id": share["id"], "input": {"maxUses": 3, "expiresAt": expires}})
    )["extendShare"]
    assert extended["shortCode"] == share["shortCode"]
    assert extended["shortLink"] == share["shortLink"]
    assert (extended["maxUses"], extended["usedCount"], extended["expiresAt"]) == (3, 1, expires)
    # Live again: back in the agent's config, and the link lets someone in.
    config = (await agent.config()).json()
    assert config["config_version"] > config_before
    assert share["shortCode"] in config["workers"][0]["share_codes"]
    assert (await gql.user.http.get(link)).status_code == 200
    # Absent keeps a field; null removes the limit.
    unlimited = (await gql.data(EXTEND, {"id": share["id"], "input": {"maxUses": None}}))[
        "extendShare"
    ]
    assert (unlimited["maxUses"], unlimited["expiresAt"]) == (None, expires)
    await app.state.ctx.audit.flush()
    assert await AuditEvent.filter(kind="share.extended", subject_id=share["id"]).count() == 2


async def test_extend_refuses_the_past_a_limit_below_the_uses_and_others_links(gql_user):
    gql = await gql_user()
    agent = await register_agent(gql.user)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    share = (
        await gql.data(
            CREATE, {"input": {"workerId": worker_id, "connectionIp": "10.0.0.1", "maxUses": 5}}
        )
    )["createShare"]
    for _ in range(2):
        assert (await gql.user.http.get(f"/s/{share['shortCode']}")).status_code == 200
    past = out_time(clock.now() - timedelta(minutes=1))
    bad = error(
        await gql(EXTEND, {"id": share["id"], "input": {"expiresAt": past}}), "validation_error"
    )
    assert bad["extensions"]["details"][0]["field"] == "expiresAt"
    low = error(await gql(EXTEND, {"id": share["id"], "input": {"maxUses": 1}}), "validation_error")
    assert "at least 2" in low["message"]
    zero = error(
        await gql(EXTEND, {"id": share["id"], "input": {"maxUses": 0}}), "validation_error"
    )
    assert zero["extensions"]["details"][0]["field"] == "maxUses"
    assert (await Share.get(id=share["id"])).max_uses == 5

    stranger = await gql_user()
    error(await stranger(EXTEND, {"id": share["id"], "input": {"maxUses": 9}}), "not_found")
    assert (await Share.get(id=share["id"])).max_uses == 5
