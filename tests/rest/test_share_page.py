"""A share link opened in a browser: a page about it that uses nothing; API clients
(the ggo CLI sends no Accept header) keep getting JSON and keep counting uses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gpugo import clock
from gpugo.models import Agent, Share
from gpugo.rest.share_page import prefers_html
from tests.rest.test_public_shares import make_share, used_count
from tests.support import PUBLIC_URL, assert_error

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
# What the ggo CLI's HTTP client sends to /s/{code}: no Accept header at all.
CLI_HEADERS = {"User-Agent": "go-resty/2.16.5 (https://github.com/go-resty/resty)"}


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("application/json, text/html", False),
        ("text/html;q=0.5, application/json", False),
        ("text/html;q=0", False),
        ("text/html", True),
        (BROWSER, True),
        ("text/*, application/json;q=0.9", True),
        ("application/json;q=0.1, text/html;q=0.2", True),
        ("text/html;q=bogus, */*", False),
    ],
)
def test_accept_negotiation(accept, html):
    assert prefers_html(accept) is html


async def test_a_browser_gets_a_page_and_uses_nothing_while_the_cli_counts(api, client):
    share = await make_share(api, vendor="amd", max_uses=2)
    path = f"/s/{share['short_code']}"
    for _ in range(3):
        page = await client.get(path, headers={"Accept": BROWSER})
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["vary"] == "accept"
        assert "amd" in page.text
        assert f"ggo use {PUBLIC_URL}/s/{share['short_code']}" in page.text
        assert "<dd id=share-uses-left>2</dd>" in page.text
    assert await used_count(share) == 0

    cli = await client.get(path, headers=CLI_HEADERS)
    assert cli.status_code == 200 and cli.headers["content-type"] == "application/json"
    assert cli.json()["hardware_vendor"] == "amd"
    assert await used_count(share) == 1
    assert (
        "<dd id=share-uses-left>1</dd>"
        in (await client.get(path, headers={"Accept": BROWSER})).text
    )
    # curl and httpx send */*: JSON, and a use.
    assert (await client.get(path, headers={"Accept": "*/*"})).status_code == 200
    assert await used_count(share) == 2

    gone = await client.get(path, headers={"Accept": BROWSER})
    assert gone.status_code == 410 and "used up" in gone.text
    assert_error(await client.get(path, headers=CLI_HEADERS), 410, "gone")


async def test_the_page_escapes_and_says_when_the_machine_is_offline(api, client):
    share = await make_share(api, vendor="<b>x</b>")
    page = await client.get(f"/s/{share['short_code']}", headers={"Accept": BROWSER})
    assert "<b>x</b>" not in page.text and "&lt;b&gt;x&lt;/b&gt;" in page.text
    # Never reported: pending, not online; the page says connecting would fail.
    assert "id=share-offline" in page.text and "pending" in page.text
    await Agent.all().update(last_seen_at=clock.now() - timedelta(hours=1))
    page = await client.get(f"/s/{share['short_code']}", headers={"Accept": BROWSER})
    assert "offline" in page.text
    await Agent.all().update(last_seen_at=clock.now())
    page = await client.get(f"/s/{share['short_code']}", headers={"Accept": BROWSER})
    assert "id=share-offline" not in page.text
    assert await used_count(share) == 0


async def test_unknown_and_expired_links_get_pages_with_their_status(api, client):
    missing = await client.get("/s/ZZZZZZZZZZZZ", headers={"Accept": BROWSER})
    assert missing.status_code == 404 and "No such share link" in missing.text
    share = await make_share(api, expires_at=(clock.now() + timedelta(hours=1)).isoformat())
    await Share.filter(id=share["share_id"]).update(expires_at=clock.now() - timedelta(seconds=1))
    page = await client.get(f"/s/{share['short_code']}", headers={"Accept": BROWSER})
    assert page.status_code == 410 and "expired" in page.text
    head = await client.head(f"/s/{share['short_code']}", headers={"Accept": BROWSER})
    assert head.status_code == 410 and head.content == b""
