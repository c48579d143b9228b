"""docs/webhooks.md: its event catalogue is the server's, and its Python signature check
accepts a real delivery (and refuses a tampered one)."""

from __future__ import annotations

import re

import pytest

from gpugo import clock
from gpugo.webhook_events import WebhookEvent
from tests.support import eventually
from tests.webhooks.support import DOCS, docs_verify


@pytest.fixture
def settings(settings):
    return settings.replace(webhooks_allow_private=True)


def test_the_catalogue_lists_every_event():
    text = DOCS.read_text(encoding="utf-8")
    catalogue = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+|ping)` \|", text, flags=re.M))
    assert catalogue == {e.value for e in WebhookEvent}


async def test_the_documented_check_accepts_a_real_delivery(api, receiver):
    user = await api.user()
    hook = (
        await user.post(
            "/api/v1/webhooks", json={"url": receiver.url(), "events": ["agent.offline"]}
        )
    ).json()
    await user.post(f"/api/v1/webhooks/{hook['webhook_id']}/test")
    [received] = await eventually(lambda: receiver.snapshot())
    verify = docs_verify()
    now = clock.now().timestamp()
    assert verify(hook["secret"], received.headers, received.body, now=now)
    tampered = received.body.replace(b'"ping"', b'"pong"')
    assert not verify(hook["secret"], received.headers, tampered, now=now)
    assert received.json["type"] == "ping"
    assert received.json["data"]["webhook"]["webhook_id"] == hook["webhook_id"]
