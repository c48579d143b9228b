"""GET /api/ecosystem/releases: the release catalogue, as the shipped agent decodes it.

``ggo agent register`` fetches it first (``GetReleases(ctx, "", 500)``) and dies on
anything but a 200; the answer is decoded into the typed structs of
``internal/api/types.go``, so every field is checked for its Go type. The upstream
catalogue is a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from gpugo.app import create_app
from gpugo.settings import Settings, SettingsError
from tests.conftest import make_client
from tests.go_client import decode
from tests.support import assert_error, moment, out_time

# --- the agent's structs (internal/api/types.go): field -> (Go type, always sent) ---------

VENDOR_INFO = {"slug": ("string", True), "name": ("string", True)}
RELEASE_ARTIFACT = {
    "cpuArch": ("string", True),
    "os": ("string", True),
    "url": ("string", True),
    "sha256": ("string", True),
    "metadata": (("map", "string"), True),
}
RELEASE_REQUIREMENTS = {
    "minTensorFusionVersion": ("string", False),
    "minDriverVersion": ("string", False),
}
RELEASE_INFO = {
    "id": ("string", True),
    "vendor": (("struct", VENDOR_INFO), True),
    "version": ("string", True),
    "releaseType": ("string", True),
    "releaseDate": ("time", True),
    "artifacts": (("slice", ("struct", RELEASE_ARTIFACT)), True),
    "requirements": (("struct", RELEASE_REQUIREMENTS), True),
    "isLatest": ("bool", True),
}
RELEASES_RESPONSE = {
    "releases": (("slice", ("struct", RELEASE_INFO)), True),
    "count": ("int", True),
}
URL = "/api/ecosystem/releases"
SHA = "ab" * 32


def release(
    release_id: str,
    *,
    vendor: str = "nvidia",
    days_ago: int = 0,
    version: str = "1.0.0",
    artifacts: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": release_id,
        "vendor": {"slug": vendor, "name": vendor.upper()},
        "version": version,
        "releaseType": "stable",
        "releaseDate": out_time(moment(-timedelta(days=days_ago))),
        "artifacts": artifacts if artifacts is not None else [],
        **extra,
    }


def artifact(name: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "cpuArch": "amd64",
        "os": "linux",
        "url": f"https://mirror.example.com/gpugo/{name}",
        "sha256": SHA,
        "metadata": {"type": kind, "size": "1048576"},
        **extra,
    }


def write_manifest(path: Path, releases: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"releases": releases}), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with these settings, started and stopped like `gpugo serve` does."""
    app = create_app(settings, auto_migrate=False)
    async with app.router.lifespan_context(app), make_client(app) as client:
        yield client


def ids(response: httpx.Response) -> list[str]:
    body = decode(response, RELEASES_RESPONSE)
    assert body["count"] == len(body["releases"])
    return [r["id"] for r in body["releases"]]


# --- a catalogue upstream on 127.0.0.1 ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Upstream:
    """A catalogue server whose answer a test changes as it goes; it counts requests."""

    def __init__(self, releases: list[dict[str, Any]]) -> None:
        self.status = 200
        self.body = json.dumps({"releases": releases, "count": len(releases)}).encode()
        self.delay = 0.0
        self.requests: list[str] = []
        self._asked = asyncio.Condition()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/ecosystem/releases?size=500&key=s3cr3t"

    def serve(self, releases: list[dict[str, Any]]) -> None:
        self.status = 200
        self.body = json.dumps({"releases": releases, "count": len(releases)}).encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.requests.append(f"{scope['path']}?{scope['query_string'].decode()}")
        async with self._asked:
            self._asked.notify_all()
        if self.delay:
            await asyncio.sleep(self.delay)
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": self.body})

    async def tried_again(self, times: int = 2, within: float = 5.0) -> None:
        """Until the server asked ``times`` more times (its refreshes ran, and ended)."""
        target = len(self.requests) + times
        async with asyncio.timeout(within), self._asked:
            await self._asked.wait_for(lambda: len(self.requests) >= target)
        await asyncio.sleep(self.delay + 0.1)


@contextlib.asynccontextmanager
async def upstream_server(releases: list[dict[str, Any]]) -> AsyncIterator[Upstream]:
    upstream = Upstream(releases)
    config = uvicorn.Config(
        upstream, host="127.0.0.1", port=upstream.port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield upstream
    finally:
        server.should_exit = True
        await task


# --- the default, and the manifest file ----------------------------------------------------


async def test_with_no_catalogue_configured_the_agent_gets_an_empty_list(settings, caplog):
    """`ggo agent register` goes on with an empty list (it registers, downloading nothing)."""
    async with serving(settings) as client:
        with caplog.at_level(logging.WARNING, logger="gpugo.releases"):
            response = await client.get(URL, params={"size": 500})
            again = await client.get(URL)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert decode(response, RELEASES_RESPONSE) == {"releases": [], "count": 0}
    assert again.json() == {"releases": [], "count": 0}
    # The operator learns once why GPU hosts come up without GPUs.
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "GPUGO_RELEASES_FILE" in caplog.records[0].message


async def test_the_manifest_is_served_in_the_agents_shape(settings, tmp_path):
    releases = [
        release(
            "rel-old",
            days_ago=30,
            version="1.4.0",
            artifacts=[artifact("libaccel_nvidia.so", "vgpu-library")],
        ),
        release(
            "rel-new",
            days_ago=1,
            version="1.5.0",
            isLatest=True,
            requirements={"minDriverVersion": "535.0", "somethingElse": "ignored"},
            artifacts=[
                artifact(
                    "libaccel_nvidia.so",
                    "vgpu-library",
                    sha256=SHA.upper(),
                    unknownField=1,
                ),
                artifact("remote-gpu-worker", "remote-gpu-worker", cpuArch="arm64"),
            ],
        ),
    ]
    manifest = write_manifest(tmp_path / "releases.json", releases)
    async with serving(settings.replace(releases_file=str(manifest))) as client:
        response = await client.get(URL, params={"size": 500})
    body = decode(response, RELEASES_RESPONSE)
    assert body["count"] == 2
    newest, oldest = body["releases"]
    # Newest first: the agent takes the first match as the latest.
    assert (newest["id"], oldest["id"]) == ("rel-new", "rel-old")
    assert newest == {
        "id": "rel-new",
        "vendor": {"slug": "nvidia", "name": "NVIDIA"},
        "version": "1.5.0",
        "releaseType": "stable",
        "releaseDate": releases[1]["releaseDate"],
        "artifacts": [
            {
                "cpuArch": "amd64",
                "os": "linux",
                "url": "https://mirror.example.com/gpugo/libaccel_nvidia.so",
                "sha256": SHA,  # lowercased: the agent compares with its own hex digest
                "metadata": {"type": "vgpu-library", "size": "1048576"},
            },
            {
                "cpuArch": "arm64",
                "os": "linux",
                "url": "https://mirror.example.com/gpugo/remote-gpu-worker",
                "sha256": SHA,
                "metadata": {"type": "remote-gpu-worker", "size": "1048576"},
            },
        ],
        "requirements": {"minDriverVersion": "535.0"},
        "isLatest": True,
    }
    # Unset requirements are absent (omitempty), never null.
    assert oldest["requirements"] == {}
    assert oldest["isLatest"] is False


async def test_vendor_and_size_filter(settings, tmp_path):
    # Distinct dates: the order is newest first, whatever the clock's milliseconds.
    releases = [release(f"nv-{i}", vendor="nvidia", days_ago=2 * i) for i in range(12)] + [
        release("amd-0", vendor="amd", days_ago=5),
        release("stub-0", vendor="stub", days_ago=1),
    ]
    manifest = write_manifest(tmp_path / "releases.json", releases)
    async with serving(settings.replace(releases_file=str(manifest))) as client:
        # No size: 10, as the hosted catalogue answers.
        assert len(ids(await client.get(URL))) == 10
        assert ids(await client.get(URL, params={"size": "3"})) == ["nv-0", "stub-0", "nv-1"]
        everything = ids(await client.get(URL, params={"size": "500"}))
        assert len(everything) == 14 and everything[:2] == ["nv-0", "stub-0"]
        # A vendor is its slug, in any case; absent or empty means every vendor.
        assert ids(await client.get(URL, params={"vendor": "AMD"})) == ["amd-0"]
        nvidia = ids(await client.get(URL, params={"vendor": "nvidia", "size": 500}))
        assert nvidia == [f"nv-{i}" for i in range(12)]
        assert ids(await client.get(URL, params={"vendor": "intel"})) == []
        assert len(ids(await client.get(URL, params={"vendor": "", "size": ""}))) == 10
        for size in ("0", "-1", "ten", "1.5"):
            response = await client.get(URL, params={"size": size})
            error = assert_error(response, 400, "validation_error")
            assert error["details"][0]["field"] == "size"
        assert_error(await client.get(URL, params={"vendor": "x" * 65}), 400, "validation_error")


async def test_size_is_at_most_500(settings, tmp_path):
    manifest = write_manifest(tmp_path / "r.json", [release(f"r{i}") for i in range(501)])
    async with serving(settings.replace(releases_file=str(manifest))) as client:
        assert len(ids(await client.get(URL, params={"size": "100000"}))) == 500


async def test_the_file_is_read_again_when_it_changes(settings, tmp_path, caplog):
    manifest = write_manifest(tmp_path / "releases.json", [release("first")])
    async with serving(settings.replace(releases_file=str(manifest))) as client:
        assert ids(await client.get(URL)) == ["first"]
        write_manifest(manifest, [release("second"), release("third", days_ago=1)])
        os.utime(manifest, ns=(1, 2_000_000_000))  # a new stamp, even within one clock tick
        assert ids(await client.get(URL)) == ["second", "third"]
        # An invalid edit is logged, and the previous content stays.
        with caplog.at_level(logging.WARNING, logger="gpugo.releases"):
            manifest.write_text('{"releases": [{"id": "broken"}]}', encoding="utf-8")
            os.utime(manifest, ns=(1, 3_000_000_000))
            assert ids(await client.get(URL)) == ["second", "third"]
            manifest.unlink()
            assert ids(await client.get(URL)) == ["second", "third"]
        messages = " ".join(r.message for r in caplog.records)
        assert "releases[0].vendor" in messages and "is gone" in messages


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"releases": [{"id": "a"}]}',
        # A number where the agent decodes a string would break its whole decode.
        json.dumps(
            {"releases": [release("a", artifacts=[artifact("x.so", "vgpu-library")])]}
        ).replace('"1048576"', "1048576"),
    ],
)
async def test_a_server_with_an_invalid_manifest_does_not_start(settings, tmp_path, content):
    manifest = tmp_path / "releases.json"
    manifest.write_text(content, encoding="utf-8")
    with pytest.raises(SettingsError, match="GPUGO_RELEASES_FILE"):
        create_app(settings.replace(releases_file=str(manifest)), auto_migrate=False)
    with pytest.raises(SettingsError, match="GPUGO_RELEASES_FILE"):
        create_app(settings.replace(releases_file=str(tmp_path / "absent.json")))


# --- an upstream catalogue -----------------------------------------------------------------


async def test_the_upstream_is_fetched_merged_and_refreshed(settings, tmp_path):
    upstream_releases = [
        release("up-1", days_ago=2),
        release("shared", days_ago=5, version="1.0.0"),
    ]
    # The operator's file replaces the upstream's release of the same id.
    manifest = write_manifest(
        tmp_path / "releases.json", [release("shared", days_ago=5, version="9.9.9")]
    )
    async with upstream_server(upstream_releases) as upstream:
        upstream.delay = 0.3  # the first request waits for the first fetch
        configured = settings.replace(
            releases_upstream_url=upstream.url,
            releases_file=str(manifest),
            releases_refresh_seconds=0.2,
        )
        async with serving(configured) as client:
            response = await client.get(URL, params={"size": 500})
            body = decode(response, RELEASES_RESPONSE)
            assert [(r["id"], r["version"]) for r in body["releases"]] == [
                ("up-1", "1.0.0"),
                ("shared", "9.9.9"),
            ]
            # The URL is fetched as configured.
            assert upstream.requests[0] == "/api/ecosystem/releases?size=500&key=s3cr3t"
            upstream.delay = 0.0
            upstream.serve([release("up-2", days_ago=1)])
            await upstream.tried_again()
            assert ids(await client.get(URL)) == ["up-2", "shared"]


async def test_a_failing_upstream_leaves_the_last_good_copy(settings, caplog):
    good = [release("good-1"), release("good-2", days_ago=1)]
    async with upstream_server(good) as upstream:
        configured = settings.replace(
            releases_upstream_url=upstream.url,
            releases_refresh_seconds=0.2,
            releases_upstream_timeout_seconds=0.5,
            releases_max_bytes=4096,
        )
        async with serving(configured) as client:
            assert ids(await client.get(URL)) == ["good-1", "good-2"]
            with caplog.at_level(logging.WARNING, logger="gpugo.releases"):
                failures = [
                    (503, b'{"error": "down"}', 0.0),
                    (200, b'{"releases": [{"id": 1}]}', 0.0),  # not a catalogue
                    (200, b"[" + b" " * 5000 + b"]", 0.0),  # over releases_max_bytes
                    (200, upstream.body, 1.0),  # slower than the timeout
                ]
                for status, body, delay in failures:
                    upstream.status, upstream.body, upstream.delay = status, body, delay
                    await upstream.tried_again()
                    assert ids(await client.get(URL)) == ["good-1", "good-2"]
            messages = [r.getMessage() for r in caplog.records]
            assert any("answered 503" in m for m in messages)
            assert any("larger than 4096 bytes" in m for m in messages)
            assert any("TimeoutError" in m for m in messages)
            assert all("last good copy (2 releases)" in m for m in messages)
            # The URL's query (it may hold a key) never reaches the log.
            assert not any("s3cr3t" in m for m in messages)


async def test_an_unreachable_upstream_still_answers_200(settings, tmp_path):
    manifest = write_manifest(tmp_path / "releases.json", [release("local")])
    configured = settings.replace(
        releases_upstream_url=f"http://127.0.0.1:{free_port()}/catalogue",
        releases_file=str(manifest),
        releases_upstream_timeout_seconds=2.0,
    )
    async with serving(configured) as client:
        assert ids(await client.get(URL)) == ["local"]
    async with serving(configured.replace(releases_file="")) as client:
        assert ids(await client.get(URL)) == []
