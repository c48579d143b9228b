"""Restarting a worker: a user asks, the worker's agent restarts it.

The request travels on the agent's push channel (the ``<agent id>_vgpu_restart``
topic of ``GET /v1/stream``) as a bus event; nothing is stored. Like every live event
it is at most once: an agent that is not listening at that moment never hears it,
and the worker's ``restarts`` count in its next status report shows whether it did.
"""

from __future__ import annotations

from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.errors import Conflict, NotFound
from gpugo.events import Event, EventKind
from gpugo.models import Worker
from gpugo.services import scope


async def request(*, ctx: ServerContext, principal: Principal, worker_id: str) -> None:
    """Publish the restart of the caller's worker; 404 for anyone else's, 409 when disabled."""
    rows = await Worker.filter(scope.workers(principal), id=worker_id).values("agent_id", "enabled")
    if not rows:
        raise NotFound("No such worker.")
    if not rows[0]["enabled"]:
        # The agent runs enabled workers only: it would drop the request.
        raise Conflict("The worker is disabled; enable it to start it.")
    await ctx.events.publish(
        Event(
            kind=EventKind.WORKER_RESTART_REQUESTED,
            user_id=principal.user_id,
            agent_id=rows[0]["agent_id"],
            resource_id=worker_id,
        )
    )
