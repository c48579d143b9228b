"""The dashboard's two routes over HTTP: the page, its assets, its headers, and nothing shadowed."""

from __future__ import annotations

import re

from gpugo.web import CSP, STATIC_DIR
from tests.support import PUBLIC_URL


async def test_the_page_is_served_at_the_root_with_a_self_only_csp(client):
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CSP
    assert "default-src 'none'" in CSP and "script-src 'self'" in CSP
    assert response.headers["x-frame-options"] == "DENY"
    # The page knows the public origin (to explain a refused request from another one).
    assert f'content="{PUBLIC_URL}"' in response.text
    assert '<script type="module" src="/ui/js/main.js">' in response.text
    head = await client.head("/")
    assert head.status_code == 200


async def test_assets_are_served_with_types_and_validators(client):
    for path, media in [
        ("/ui/js/main.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ]:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(media), path
        assert response.headers["cache-control"] == "no-cache"
        assert "etag" in response.headers
        again = await client.get(path, headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304
    assert (await client.get("/ui/nope.js")).status_code == 404
    assert (await client.get("/ui/../pyproject.toml")).status_code == 404
    assert (await client.get("/ui/%2e%2e/__init__.py")).status_code == 404


async def test_the_other_doors_are_not_shadowed(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/robots.txt")).text.startswith("User-agent")
    me = await client.get("/api/v1/auth/me")
    assert me.status_code == 401 and me.json()["error"]["code"] == "unauthorized"
    graphql = await client.post("/graphql", json={"query": "{ __typename }"})
    assert graphql.json() == {"data": {"__typename": "Query"}}
    share = await client.get("/s/doesnotexist1")
    assert share.status_code == 404 and share.json()["error"]["code"] == "not_found"
    # Unknown paths stay the API's JSON 404, not the page (routing is in the URL's hash).
    missing = await client.get("/agents/abc")
    assert missing.status_code == 404
    assert "error" in missing.json()


def test_every_module_import_resolves_and_nothing_is_loaded_from_elsewhere():
    imports = re.compile(r"""^\s*import\s[^'"]*?from\s+['"](\.[^'"]+)['"]""", re.M)
    for path in STATIC_DIR.rglob("*.js"):
        text = path.read_text(encoding="utf-8")
        for target in imports.findall(text):
            assert (path.parent / target).resolve().is_file(), f"{path.name} imports {target}"
    for path in STATIC_DIR.rglob("*"):
        if path.suffix not in (".js", ".css", ".html", ".svg"):
            continue
        text = path.read_text(encoding="utf-8")
        urls = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text)
        # The SVG namespace is a name, not a download.
        assert [u for u in urls if "www.w3.org" not in u] == [], path.name
