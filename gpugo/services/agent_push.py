"""Agent push: an agent learns of a new config_version the moment it exists.

The agent still pulls its configuration (``agent_config.pull``); this only tells
it when. Two doors share this machinery:

- ``GET /api/v1/agents/{id}/events`` (the agent's secret): the stream starts with
  the current version, so a reconnecting agent (after a restart, a network cut,
  another instance behind the load balancer) catches up without any resume token,
  and later versions follow as the bus announces them.
- ``GET /v1/stream`` keyed by an ``x-sse-topic`` header, the channel the shipped
  agent listens on, which sends no credential: see ``topic_messages``.

Live events are at most once: the version is read back from the database, so a
lost or duplicated event costs nothing but a late push.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass

from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.errors import Unauthorized, ValidationFailed
from gpugo.events import Event, EventKind, Subscription
from gpugo.models import Agent

HEADER = "x-sse-topic"
# The shipped agent's topics: "<agent id>" (config) and "<agent id>_vgpu_restart".
RESTART_SUFFIX = "_vgpu_restart"
_TOPIC = re.compile(rf"^([A-Za-z0-9_]{{1,32}}?)({RESTART_SUFFIX})?$")


async def current_version(agent_id: str) -> int | None:
    """The agent's config_version; None once it has been deleted."""
    versions = await Agent.filter(id=agent_id).values_list("config_version", flat=True)
    return versions[0] if versions else None


async def _events_or_silence(
    events: Subscription, keepalive: float
) -> AsyncGenerator[Event | None, None]:
    """The subscription's events, None after ``keepalive`` seconds without one.

    Ends when the subscription closes (the server drains, or the stream was displaced)
    or the agent is deleted.
    """
    while True:
        try:
            async with asyncio.timeout(keepalive):
                event = await events.get()
        except TimeoutError:
            yield None
            continue
        if event is None or event.kind is EventKind.AGENT_DELETED:
            return
        yield event


async def _later_versions(
    events: Subscription, *, agent_id: str, sent: int | None, keepalive: float
) -> AsyncGenerator[int | None, None]:
    """Each config_version above ``sent`` as the bus announces it; None when idle."""
    async with aclosing(_events_or_silence(events, keepalive)) as stream:
        async for event in stream:
            if event is None:
                yield None
                continue
            if event.kind is not EventKind.CONFIG_CHANGED:
                continue
            version = await current_version(agent_id)
            if version is None:
                return
            # Several changes may be read as one version; never send one twice or go back.
            if sent is None or version > sent:
                sent = version
                yield version


async def config_versions(
    *, ctx: ServerContext, principal: Principal
) -> AsyncGenerator[int | None, None]:
    """The principal agent's config_version now, then each new one, until it is deleted.

    Yields None after ``agent_events_keepalive_seconds`` without news (the caller
    sends a keep-alive). Closing the iterator leaves the bus subscription.
    """
    agent_id = principal.agent_id
    if agent_id is None:
        raise Unauthorized("An agent secret is required.")
    keepalive = ctx.settings.agent_events_keepalive_seconds
    # Subscribed before the first read: a change committed in between is not missed.
    # An agent holds a few streams at most: a new one ends its oldest (closing its
    # subscription ends that stream's loop below).
    async with ctx.events.subscribe(user_id=principal.user_id, agent_id=agent_id) as events:
        with ctx.agent_streams.hold(agent_id, events.close):
            sent = await current_version(agent_id)
            if sent is None:
                return
            yield sent
            later = _later_versions(events, agent_id=agent_id, sent=sent, keepalive=keepalive)
            async with aclosing(later) as versions:
                async for version in versions:
                    yield version


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    agent_id: str
    restarts: bool


def topic(header: str | None) -> Topic:
    """The topic an ``x-sse-topic`` header names; 400 when it cannot name one."""
    match = _TOPIC.match(header or "")
    if match is None:
        raise ValidationFailed.field(
            HEADER, "An agent id, or an agent id followed by _vgpu_restart."
        )
    return Topic(name=match.group(0), agent_id=match.group(1), restarts=bool(match.group(2)))


async def topic_messages(*, ctx: ServerContext, topic: Topic) -> AsyncGenerator[str | None, None]:
    """The data of the shipped agent's push channel: no credential, so nothing but numbers
    and the agent's own worker ids.

    - config topic (``<agent id>``): the new config_version after each change (the agent
      pulls ``/config``), never the current one on connect: a topic that names no agent
      answers exactly like one whose agent has no news, so the stream says nothing of
      which agents exist. A reconnecting agent catches up through its status reports,
      which carry ``config_version``.
    - restart topic (``<agent id>_vgpu_restart``): the id of each worker a user asked
      to restart (``worker_restarts.request``).

    The first item is None (a keep-alive once the subscription exists), then None after
    every ``agent_events_keepalive_seconds`` of silence. At most
    ``push_streams_per_topic`` streams per topic in this process: a new one closes the
    oldest.
    """
    keepalive = ctx.settings.agent_events_keepalive_seconds
    async with ctx.events.subscribe(agent_id=topic.agent_id) as events:
        with ctx.topic_streams.hold(topic.name, events.close):
            if topic.restarts:
                yield None
                async with aclosing(_events_or_silence(events, keepalive)) as stream:
                    async for event in stream:
                        if event is None:
                            yield None
                        elif event.kind is EventKind.WORKER_RESTART_REQUESTED and (
                            event.resource_id
                        ):
                            yield event.resource_id
                return
            sent = await current_version(topic.agent_id)
            yield None
            later = _later_versions(events, agent_id=topic.agent_id, sent=sent, keepalive=keepalive)
            async with aclosing(later) as versions:
                async for version in versions:
                    yield None if version is None else str(version)
