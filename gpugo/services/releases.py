"""The release catalogue agents take their vGPU libraries from (``GET /api/ecosystem/releases``).

What is served: the releases of the operator's manifest file (``GPUGO_RELEASES_FILE``)
and the last good copy of an upstream catalogue (``GPUGO_RELEASES_UPSTREAM_URL``); a
release of the file replaces the upstream's release of the same id. Neither set: an
empty catalogue, with which an agent registers but downloads nothing. Newest first:
the agent takes the first release that matches as the latest.

The upstream is fetched at start and every ``GPUGO_RELEASES_REFRESH_SECONDS`` in the
background, bounded in time and size. Requests never wait for it, except those of
the first moments after start (at most the fetch's timeout), so that an agent
registering then gets the catalogue. A failed fetch (unreachable, not 200, too
large, not a catalogue) is logged and the last good copy stays. The file is read
again when its size or modification time changes; an invalid edit is logged and
the previous content stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from gpugo.inputs.releases import (
    DEFAULT_SIZE,
    MAX_SIZE,
    ManifestError,
    Release,
    ReleaseQuery,
    load_manifest,
    parse_manifest,
)
from gpugo.periodic import Periodic
from gpugo.settings import Settings, SettingsError

log = logging.getLogger("gpugo.releases")


class _Refused(Exception):
    """The upstream answered, but not with something to serve."""


def _stamp(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_mtime_ns, stat.st_size


def redacted(url: str) -> str:
    """The URL without credentials or query, fit for a log line."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))


def newest_first(*sources: Iterable[Release]) -> tuple[Release, ...]:
    """Releases of later sources replace earlier ones of the same id; newest date first."""
    by_id: dict[str, Release] = {}
    for source in sources:
        for release in source:
            by_id[release.id] = release
    # sorted() is stable: releases of one date keep their manifest order.
    return tuple(sorted(by_id.values(), key=lambda r: r.release_date, reverse=True))


class ReleaseCatalogue:
    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http
        self._url = settings.releases_upstream_url
        self._path = Path(settings.releases_file) if settings.releases_file else None
        self._file: tuple[Release, ...] = ()
        self._file_stamp: tuple[int, int] | None = None
        self._upstream: tuple[Release, ...] = ()
        self._served: tuple[Release, ...] = ()
        self._first_fetch: asyncio.Task[bool] | None = None
        self._refresher: Periodic | None = None
        self._warned_empty = False
        if self._path is not None:
            # A server that cannot serve the operator's manifest does not start.
            try:
                self._file_stamp = _stamp(self._path)
                self._file = tuple(
                    load_manifest(self._path, max_bytes=settings.releases_max_bytes).releases
                )
            except OSError as exc:
                raise SettingsError(f"GPUGO_RELEASES_FILE: {self._path}: {exc.strerror}") from None
            except ManifestError as exc:
                raise SettingsError(f"GPUGO_RELEASES_FILE: {exc}") from None
            self._served = newest_first(self._file)

    async def start(self) -> None:
        if self._url:
            self._first_fetch = asyncio.create_task(self.refresh(), name="gpugo-releases-first")
            self._refresher = Periodic(
                "gpugo-releases-refresh", self._settings.releases_refresh_seconds, self.refresh
            )
            self._refresher.start()

    async def stop(self) -> None:
        if self._refresher is not None:
            await self._refresher.stop()
        if self._first_fetch is not None and not self._first_fetch.done():
            self._first_fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._first_fetch

    async def releases(self, *, query: ReleaseQuery) -> list[Release]:
        """The catalogue, newest first, of one vendor (a slug, any case) if named, at most
        ``size`` (default 10, at most 500) releases."""
        if self._first_fetch is not None and not self._first_fetch.done():
            await asyncio.wait(
                {self._first_fetch}, timeout=self._settings.releases_upstream_timeout_seconds
            )
        await self._reread_file()
        found = self._served
        if not found and not self._warned_empty:
            self._warned_empty = True
            log.warning(
                "the release catalogue is empty: agents register but get no vGPU library "
                "(a GPU host registers without GPUs); set GPUGO_RELEASES_FILE or "
                "GPUGO_RELEASES_UPSTREAM_URL (docs/agents.md)"
            )
        if query.vendor is not None:
            vendor = query.vendor.lower()
            found = tuple(r for r in found if r.vendor.slug.lower() == vendor)
        size = min(query.size or DEFAULT_SIZE, MAX_SIZE)
        return list(found[:size])

    async def refresh(self) -> bool:
        """Fetch the upstream once; True when its copy was replaced."""
        if not self._url:
            return False
        try:
            async with asyncio.timeout(self._settings.releases_upstream_timeout_seconds):
                body = await self._fetch()
            manifest = parse_manifest(body, source="the answer")
        except (httpx.HTTPError, httpx.InvalidURL, TimeoutError, _Refused, ManifestError) as exc:
            reason = str(exc) or type(exc).__name__
            log.warning(
                "release catalogue upstream %s: %s; serving the last good copy (%d releases)",
                redacted(self._url),
                reason,
                len(self._upstream),
            )
            return False
        self._upstream = tuple(manifest.releases)
        self._served = newest_first(self._upstream, self._file)
        return True

    async def _fetch(self) -> bytes:
        limit = self._settings.releases_max_bytes
        headers = {"Accept": "application/json"}
        async with self._http.stream(
            "GET", self._url, headers=headers, follow_redirects=True
        ) as response:
            if response.status_code != 200:
                raise _Refused(f"answered {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _Refused(f"larger than {limit} bytes")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise _Refused(f"larger than {limit} bytes")
            return bytes(body)

    async def _reread_file(self) -> None:
        if self._path is None:
            return
        try:
            stamp: tuple[int, int] | None = _stamp(self._path)
        except OSError:
            stamp = None
        if stamp == self._file_stamp:
            return
        self._file_stamp = stamp
        if stamp is None:
            log.warning("%s is gone; serving its last content", self._path)
            return
        max_bytes = self._settings.releases_max_bytes
        try:
            manifest = await asyncio.to_thread(load_manifest, self._path, max_bytes=max_bytes)
        except ManifestError as exc:
            log.warning("%s; serving its previous content", exc)
            return
        self._file = tuple(manifest.releases)
        self._served = newest_first(self._upstream, self._file)
