"""Webhooks through GraphQL: the same services and rules as /api/v1/webhooks."""

from __future__ import annotations

import asyncio

import pytest

from gpugo import clock
from tests.schema.support import as_cookie, error
from tests.support import eventually
from tests.webhooks.support import TableResolver, docs_verify

CREATE = """mutation($url: String!) {
  createWebhook(input: {url: $url, events: ["agent.offline", "share.expired"],
                        description: "pager"}) {
    secret webhook { id url events enabled disabledReason description createdAt }
  }
}"""


# The operator allows 3 endpoints per account here (GPUGO_WEBHOOKS_MAX_ENDPOINTS).
ALLOWED = 3


@pytest.fixture
def settings(settings):
    return settings.replace(webhooks_allow_private=True, webhooks_max_endpoints=ALLOWED)


async def test_the_life_of_a_webhook(api, receiver):
    gql = await as_cookie(await api.user())
    created = (await gql.data(CREATE, {"url": receiver.url()}))["createWebhook"]
    hook = created["webhook"]
    assert created["secret"].startswith("gpgo_whsec_")
    assert hook["events"] == ["agent.offline", "share.expired"] and hook["enabled"] is True
    assert hook["disabledReason"] is None and hook["description"] == "pager"
    listed = await gql.data("{ webhooks { id url } }")
    assert listed == {"webhooks": [{"id": hook["id"], "url": receiver.url()}]}

    ping = (
        await gql.data(
            'mutation { testWebhook(id: "$ID") { id status } }'.replace("$ID", hook["id"])
        )
    )["testWebhook"]
    [received] = await eventually(lambda: receiver.snapshot())
    assert received.delivery == ping["id"]
    now = clock.now().timestamp()
    assert docs_verify()(created["secret"], received.headers, received.body, now=now)

    async def delivered():
        deliveries = "deliveries { id status responseStatus durationMs attempts }"
        query = '{ webhook(id: "$ID") { ' + deliveries + " } }"
        found = await gql.data(query.replace("$ID", hook["id"]))
        [d] = found["webhook"]["deliveries"]
        return d if d["status"] == "delivered" else None

    delivery = None
    for _ in range(100):
        if delivery := await delivered():
            break
        await asyncio.sleep(0.05)
    assert delivery is not None and delivery["responseStatus"] == 200

    again = await gql.data(
        'mutation { redeliverWebhookDelivery(id: "$ID") { id status } }'.replace("$ID", ping["id"])
    )
    assert again["redeliverWebhookDelivery"]["id"] != ping["id"]
    await eventually(lambda: len(receiver.snapshot()) == 2)

    rotated = await gql.data(
        'mutation { rotateWebhookSecret(id: "$ID") { secret } }'.replace("$ID", hook["id"])
    )
    assert rotated["rotateWebhookSecret"]["secret"] != created["secret"]
    updated = await gql.data(
        'mutation { updateWebhook(id: "$ID", input: {enabled: false}) { enabled } }'.replace(
            "$ID", hook["id"]
        )
    )
    assert updated == {"updateWebhook": {"enabled": False}}
    error(
        await gql('mutation { testWebhook(id: "$ID") { id } }'.replace("$ID", hook["id"])),
        "conflict",
    )
    assert await gql.data('mutation { deleteWebhook(id: "$ID") }'.replace("$ID", hook["id"])) == {
        "deleteWebhook": True
    }
    error(await gql('{ webhook(id: "$ID") { id } }'.replace("$ID", hook["id"])), "not_found")


async def test_refusals_are_the_services(api):
    owner, stranger = await as_cookie(await api.user()), await as_cookie(await api.user())
    bad = await owner(CREATE, {"url": "ftp://example.com/"})
    error(bad, "validation_error")
    hook = (await owner.data(CREATE, {"url": "http://127.0.0.1:9/"}))["createWebhook"]["webhook"]
    error(await stranger('{ webhook(id: "$ID") { id } }'.replace("$ID", hook["id"])), "not_found")


async def test_the_endpoint_limit_is_said_before_it_refuses(api):
    gql = await as_cookie(await api.user())
    assert await gql.data("{ webhookEndpointsAllowed }") == {"webhookEndpointsAllowed": ALLOWED}
    for _ in range(ALLOWED):
        await gql.data(CREATE, {"url": "http://127.0.0.1:9/"})
    refused = error(await gql(CREATE, {"url": "http://127.0.0.1:9/"}), "conflict")
    assert refused["message"] == f"An account may have at most {ALLOWED} webhook endpoints."
    assert len((await gql.data("{ webhooks { id } }"))["webhooks"]) == ALLOWED


async def test_a_host_that_does_not_resolve_is_refused_at_the_url(api, app):
    # A refusal raised while handling the resolver's OSError is the refusal, not an outage.
    app.state.ctx.webhooks.resolver = TableResolver({})
    gql = await as_cookie(await api.user())
    refused = error(await gql(CREATE, {"url": "https://nowhere.example.com/"}), "validation_error")
    assert refused["extensions"]["details"] == [
        {"field": "url", "message": "The URL host 'nowhere.example.com' does not resolve."}
    ]
