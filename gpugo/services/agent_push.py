"""Agent push: an agent learns of a new config_version the moment it exists.

The agent still pulls its configuration (``agent_config.pull``); this only tells
it when. The stream starts with the current version, so a reconnecting agent
(after a restart, a network cut, another instance behind the load balancer)
catches up without any resume token, and later versions follow as the bus
announces them. Live events are at most once: the version is read back from the
database, so a lost or duplicated event costs nothing but a late push.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.errors import Unauthorized
from gpugo.events import EventKind
from gpugo.models import Agent


async def current_version(agent_id: str) -> int | None:
    """The agent's config_version; None once it has been deleted."""
    versions = await Agent.filter(id=agent_id).values_list("config_version", flat=True)
    return versions[0] if versions else None


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
            while True:
                try:
                    async with asyncio.timeout(keepalive):
                        event = await events.get()
                except TimeoutError:
                    yield None
                    continue
                if event is None or event.kind is EventKind.AGENT_DELETED:
                    return  # ended for a newer stream, the server is draining, or deleted
                if event.kind is not EventKind.CONFIG_CHANGED:
                    continue
                version = await current_version(agent_id)
                if version is None:
                    return
                # Several changes may be read as one version; never send one twice or go back.
                if version > sent:
                    sent = version
                    yield version
