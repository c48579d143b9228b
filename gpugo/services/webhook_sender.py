"""The webhook sender: a task of each instance's lifespan that sends the outbox.

- Claiming: an endpoint with a due delivery is leased to one sender (one conditional
  UPDATE; PostgreSQL skips rows another instance is claiming: ``FOR UPDATE SKIP
  LOCKED``). The lessee sends that endpoint's deliveries one at a time, oldest first,
  renewing its lease before each; so no delivery is sent by two instances at once,
  and each endpoint gets its events in order. A lease outlives a send's timeout; a
  sender that dies (SIGKILL) leaves its lease to run out, and then any instance takes
  the endpoint over and sends again what was not marked delivered: at least once.
- An attempt: the URL is checked again (DNS can change since it was saved) and the
  connection goes to the address checked; 10 s at most; no redirects; at most 64 KiB
  of the answer is read. 2xx delivers; 410 disables the endpoint; anything else
  (or no answer) retries with exponential backoff until the retry window closes,
  then the delivery is marked failed. A failed attempt holds back the endpoint's
  later deliveries (order), never another endpoint's: endpoints are sent in tasks
  of their own, up to ``GPUGO_WEBHOOKS_CONCURRENCY`` per instance.
- A user's deliveries per minute are limited (``GPUGO_RATE_LIMIT_WEBHOOK_DELIVERIES``);
  over it, deliveries wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gpugo import addresses, clock, sql
from gpugo.errors import RateLimited
from gpugo.ids import new_id
from gpugo.models import WebhookDelivery, WebhookEndpoint
from gpugo.ratelimit import RateLimiter
from gpugo.settings import Settings
from gpugo.timefmt import iso
from gpugo.webhook_signing import SecretBox, signature

log = logging.getLogger("gpugo.webhooks")

MAX_RESPONSE_BYTES = 64 * 1024
MAX_ERROR_LENGTH = 300

_CLAIM = sql.per_dialect(
    "UPDATE webhook_endpoints SET lease_owner = $1, lease_until = $2 WHERE id IN ("
    "SELECT e.id FROM webhook_endpoints e WHERE e.enabled = true"
    " AND (e.lease_until IS NULL OR e.lease_until < $3)"
    # Its OLDEST pending delivery is due: deliveries go in order, so a later one that is
    # due waits behind an older one waiting for its retry (claiming the endpoint then
    # would only find the head not due, release it, and claim it again at once).
    " AND (SELECT d.next_attempt_at FROM webhook_deliveries d WHERE d.endpoint_id = e.id"
    " AND d.status = 'pending' ORDER BY d.queued_at, d.id LIMIT 1) <= $4"
    " LIMIT $5 FOR UPDATE SKIP LOCKED)"
    " AND (lease_until IS NULL OR lease_until < $6)"
    " RETURNING id, user_id, url, secret_encrypted"
)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookSender:
    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient,
        rate_limiter: RateLimiter,
        license_key: Ed25519PrivateKey,
    ) -> None:
        self.settings = settings
        self.http = http
        self.rate_limiter = rate_limiter
        self.box = SecretBox(license_key)
        # Where host names are looked up (tests answer from a table of their own).
        self.resolver = addresses.Resolver()
        # This process's name on the leases it holds; each claim adds a number, so a drain
        # whose lease ran out (and was claimed again) cannot renew it.
        self.owner = new_id("snd")
        self._claims = itertools.count(1)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    # --- lifetime --------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            # The first look comes after one poll interval (what waited while no instance
            # ran), not in the middle of start-up.
            self._task = asyncio.get_running_loop().create_task(self._run(), name="webhooks")

    async def stop(self) -> None:
        """Stop sending; an attempt cut short stays pending and is sent again."""
        tasks = [t for t in (self._task, *self._sending) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        self._sending.clear()
        # Hand the endpoints over at once rather than when the leases run out.
        with contextlib.suppress(Exception):
            await WebhookEndpoint.filter(lease_owner__startswith=f"{self.owner}.").update(
                lease_owner=None, lease_until=None
            )

    def wake(self) -> None:
        """Look for due deliveries now (after a commit that queued some)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.webhooks_poll_seconds)
            self._wake.clear()
            try:
                await self.send_due()
            except Exception:
                # A database outage must not end the sender: the next tick retries.
                log.warning("webhook claim failed; retrying", exc_info=True)

    # --- claiming --------------------------------------------------------------------

    def _lease_end(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.webhooks_lease_seconds)

    async def send_due(self) -> int:
        """Claim endpoints with due deliveries (as many as free slots); start sending."""
        free = self.settings.webhooks_concurrency - len(self._sending)
        if free <= 0:
            return 0
        now = clock.now()
        claim = f"{self.owner}.{next(self._claims)}"
        rows = await sql.fetch(_CLAIM, [claim, self._lease_end(now), now, now, free, now])
        for row in rows:
            task = asyncio.get_running_loop().create_task(self._drain(row, claim))
            self._sending.add(task)
            task.add_done_callback(self._done)
        return len(rows)

    def _done(self, task: asyncio.Task[None]) -> None:
        was_full = len(self._sending) >= self.settings.webhooks_concurrency
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("webhook sending failed", exc_info=task.exception())
        # Every slot was taken: other endpoints may have waited for this one. (Waking on
        # every finished drain would spin while an endpoint waits for its retry or its
        # user's rate: the next poll finds those.)
        if was_full:
            self._wake.set()

    async def _renew(self, endpoint_id: str, claim: str) -> bool:
        return bool(
            await WebhookEndpoint.filter(id=endpoint_id, lease_owner=claim).update(
                lease_until=self._lease_end(clock.now())
            )
        )

    async def _release(self, endpoint_id: str, claim: str) -> None:
        await WebhookEndpoint.filter(id=endpoint_id, lease_owner=claim).update(
            lease_owner=None, lease_until=None
        )

    # --- one endpoint ----------------------------------------------------------------

    async def _drain(self, endpoint: dict[str, Any], claim: str) -> None:
        endpoint_id = endpoint["id"]
        secret = self.box.open(endpoint["secret_encrypted"])
        while True:
            now = clock.now()
            head = (
                await WebhookDelivery.filter(endpoint_id=endpoint_id, status="pending")
                .order_by("queued_at", "id")
                .limit(1)
                .values(
                    "id",
                    "event_type",
                    "payload",
                    "created_at",
                    "queued_at",
                    "attempts",
                    "next_attempt_at",
                )
            )
            # The oldest waits for its retry: so do the later ones (order per endpoint).
            if not head or head[0]["next_attempt_at"] > now:
                break
            delivery = head[0]
            try:
                await self.rate_limiter.hit("webhook_deliveries", endpoint["user_id"])
            except RateLimited:
                break  # over the user's rate: the next claim tries again
            if not await self._renew(endpoint_id, claim):
                return  # the lease ran out and another sender has the endpoint
            if secret is None:
                outcome = Outcome(None, "The signing secret is unreadable; rotate it.", 0)
            else:
                outcome = await self.attempt(endpoint["url"], delivery, secret)
            if not await self._settle(endpoint_id, delivery, outcome):
                break
        await self._release(endpoint_id, claim)

    async def _settle(self, endpoint_id: str, delivery: dict[str, Any], outcome: Outcome) -> bool:
        """Record the attempt; True when the next delivery of the endpoint may go now."""
        now = clock.now()
        common: dict[str, Any] = {
            "attempts": delivery["attempts"] + 1,
            "last_attempt_at": now,
            "response_status": outcome.status,
            "duration_ms": outcome.duration_ms,
            "error": outcome.error,
        }
        pending = WebhookDelivery.filter(id=delivery["id"], status="pending")
        if outcome.delivered:
            await pending.update(status="delivered", delivered_at=now, **common)
            return True
        if outcome.status == 410:
            await pending.update(status="failed", **common)
            await WebhookEndpoint.filter(id=endpoint_id).update(
                enabled=False,
                disabled_reason="The endpoint answered 410 Gone.",
                updated_at=now,
            )
            await WebhookDelivery.filter(endpoint_id=endpoint_id, status="pending").update(
                status="failed", error="The endpoint was disabled (it answered 410 Gone)."
            )
            return False
        settings = self.settings
        delay = min(
            settings.webhooks_backoff_seconds * 2 ** delivery["attempts"],
            settings.webhooks_backoff_max_seconds,
        )
        retry_at = now + timedelta(seconds=delay)
        window_end = delivery["queued_at"] + timedelta(
            seconds=settings.webhooks_retry_window_seconds
        )
        if retry_at > window_end:
            await pending.update(status="failed", **common)
            return True
        await pending.update(next_attempt_at=retry_at, **common)
        # This instance looks again when the retry is due (others at their next poll).
        asyncio.get_running_loop().call_later(delay, self.wake)
        return False

    # --- one attempt -----------------------------------------------------------------

    def body(self, delivery: dict[str, Any]) -> bytes:
        return orjson.dumps(
            {
                "id": delivery["id"],
                "type": delivery["event_type"],
                "created_at": iso(delivery["created_at"]),
                "data": delivery["payload"],
            }
        )

    async def attempt(self, url: str, delivery: dict[str, Any], secret: str) -> Outcome:
        started = time.perf_counter()

        def took() -> int:
            return round((time.perf_counter() - started) * 1000)

        try:
            target = await addresses.check(
                url, resolver=self.resolver, allow_private=self.settings.webhooks_allow_private
            )
        except addresses.AddressRefused as exc:
            return Outcome(None, f"The URL {exc}."[:MAX_ERROR_LENGTH], took())
        body = self.body(delivery)
        timestamp = int(clock.now().timestamp())
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "X-Gpugo-Event": delivery["event_type"],
            "X-Gpugo-Delivery": delivery["id"],
            "X-Gpugo-Timestamp": str(timestamp),
            "X-Gpugo-Signature": signature(secret, timestamp, body),
        }
        # TLS checks the certificate against the URL's host, not the address we dial.
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        timeout = self.settings.webhooks_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                async with self.http.stream(
                    "POST",
                    target.connect_url,
                    content=body,
                    headers=headers,
                    timeout=httpx.Timeout(timeout),
                    follow_redirects=False,
                    extensions=extensions,
                ) as response:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= MAX_RESPONSE_BYTES:
                            break
                    status = response.status_code
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(None, f"No answer within {timeout:g} s.", took())
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            return Outcome(None, f"{type(exc).__name__}: {reason}"[:MAX_ERROR_LENGTH], took())
        error = None if 200 <= status < 300 else f"The endpoint answered {status}."
        return Outcome(status, error, took())
