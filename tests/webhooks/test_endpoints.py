"""/api/v1/webhooks through HTTP: the endpoint's life, its limits, and where it may point
(each refused address kind at creation)."""

from __future__ import annotations

import asyncio

import pytest

from gpugo.models import WebhookEndpoint
from tests.support import ISO_MS, assert_error
from tests.webhooks.receiver import Receiver
from tests.webhooks.support import TableResolver

API = "/api/v1/webhooks"
EVENTS = ["agent.offline", "share.used_up"]


@pytest.fixture
def settings(settings):
    # Where the URL points is refused as in production here.
    return settings.replace(webhooks_allow_private=False)


@pytest.fixture
def dns(app) -> TableResolver:
    resolver = TableResolver({"hooks.example.com": ["93.184.215.14"]})
    app.state.ctx.webhooks.resolver = resolver
    return resolver


async def test_create_list_get_update_rotate_delete(api, dns):
    user = await api.user()
    response = await user.post(
        API, json={"url": "https://hooks.example.com/in", "events": EVENTS, "description": "ops"}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created.pop("secret")
    assert secret.startswith("gpgo_whsec_") and len(secret) > 40
    assert created["webhook_id"].startswith("whk_")
    assert created["url"] == "https://hooks.example.com/in"
    assert created["events"] == sorted(EVENTS)
    assert created["enabled"] is True and created["disabled_reason"] is None
    assert created["description"] == "ops"
    assert ISO_MS.match(created["created_at"]) and ISO_MS.match(created["updated_at"])
    # The secret is never stored as given, and never shown again.
    row = await WebhookEndpoint.get(id=created["webhook_id"])
    assert secret not in row.secret_encrypted
    one = f"{API}/{created['webhook_id']}"
    listed = (await user.get(API)).json()
    assert listed == {"webhooks": [created]}
    assert (await user.get(one)).json() == created

    patched = await user.patch(one, json={"enabled": False, "events": ["ping"]})
    assert_error(patched, 400, "validation_error")
    patched = await user.patch(one, json={"enabled": False, "events": ["agent.online"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["enabled"] is False and patched.json()["events"] == ["agent.online"]
    assert_error(await user.post(f"{one}/test"), 409, "conflict")

    rotated = await user.post(f"{one}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in (secret, None)

    assert (await user.delete(one)).json() == {"success": True}
    assert_error(await user.get(one), 404, "not_found")


async def test_another_users_endpoint_is_not_found(api, dns):
    owner, stranger = await api.user(), await api.user()
    created = (
        await owner.post(API, json={"url": "https://hooks.example.com/", "events": EVENTS})
    ).json()
    one = f"{API}/{created['webhook_id']}"
    for method, path in (
        ("GET", one),
        ("PATCH", one),
        ("DELETE", one),
        ("POST", f"{one}/test"),
        ("POST", f"{one}/rotate-secret"),
        ("GET", f"{one}/deliveries"),
    ):
        kwargs = {"json": {"enabled": False}} if method == "PATCH" else {}
        assert_error(await stranger.request(method, path, **kwargs), 404, "not_found")
    assert (await stranger.get(API)).json() == {"webhooks": []}
    assert (await owner.get(one)).json()["enabled"] is True


async def test_at_most_ten_endpoints(api, dns):
    user = await api.user()
    for _ in range(10):
        response = await user.post(
            API, json={"url": "https://hooks.example.com/", "events": EVENTS}
        )
        assert response.status_code == 201
    response = await user.post(API, json={"url": "https://hooks.example.com/", "events": EVENTS})
    assert_error(response, 409, "conflict")


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://hooks.example.com/", "events": EVENTS},
        {"url": "https://user:pw@hooks.example.com/", "events": EVENTS},
        {"url": "https:///nohost", "events": EVENTS},
        {"url": "https://hooks.example.com/", "events": []},
        {"url": "https://hooks.example.com/", "events": ["agent.exploded"]},
        {"url": "https://hooks.example.com/" + "a" * 2048, "events": EVENTS},
        {"events": EVENTS},
    ],
)
async def test_bad_input_is_refused(api, dns, body):
    user = await api.user()
    assert_error(await user.post(API, json=body), 400, "validation_error")


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.20", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "non-public"),
        ("::ffff:127.0.0.1", "loopback"),
    ],
)
async def test_refused_addresses_at_creation(api, dns, address, kind):
    user = await api.user()
    dns.table["inside.example.com"] = [address]
    literal = f"[{address}]" if ":" in address else address
    for url in (f"http://{literal}/hook", "https://inside.example.com/hook"):
        response = await user.post(API, json={"url": url, "events": EVENTS})
        body = assert_error(response, 400, "validation_error")
        assert kind in body["message"], body
    # One private address among public ones is enough to refuse the name.
    dns.table["mixed.example.com"] = ["93.184.215.14", address]
    response = await user.post(API, json={"url": "https://mixed.example.com/", "events": EVENTS})
    assert_error(response, 400, "validation_error")
    assert await WebhookEndpoint.all().count() == 0


async def test_a_name_that_does_not_resolve_is_refused(api, dns):
    user = await api.user()
    response = await user.post(API, json={"url": "https://nowhere.example.com/", "events": EVENTS})
    assert "does not resolve" in assert_error(response, 400, "validation_error")["message"]


async def test_an_agent_secret_may_not_manage_webhooks(api, dns):
    from tests.support import register_agent

    user = await api.user()
    agent = await register_agent(user)
    response = await agent.http.get(API, headers=agent.auth)
    assert_error(response, 403, "forbidden")


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.7", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
    ],
)
async def test_refused_addresses_at_send_time(api, dns, address, kind):
    """The name resolved to a public address when saved; at send time it resolves to a
    refused one (DNS changed, or rebinding): nothing is sent, the attempt says why."""
    receiver = Receiver().start()
    try:
        user = await api.user()
        url = f"http://hooks.example.com:{receiver.port}/hook"
        created = (await user.post(API, json={"url": url, "events": EVENTS})).json()
        one = f"{API}/{created['webhook_id']}"
        dns.table["hooks.example.com"] = [address]
        ping = await user.post(f"{one}/test")
        assert ping.status_code == 200, ping.text

        async def attempted() -> dict | None:
            [delivery] = (await user.get(f"{one}/deliveries")).json()["deliveries"]
            return delivery if delivery["attempts"] else None

        delivery = None
        for _ in range(100):
            if delivery := await attempted():
                break
            await asyncio.sleep(0.05)
        assert delivery is not None
        assert delivery["status"] == "pending"  # retried later: DNS may change back
        assert delivery["response_status"] is None
        assert kind in delivery["error"] and address in delivery["error"]
        assert receiver.snapshot() == []
    finally:
        receiver.stop()
