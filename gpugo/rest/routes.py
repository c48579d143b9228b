"""Every REST route: the spec's /api/v1 and /s, plus the contract's extras and the two
doors the shipped agent expects elsewhere (/api/ecosystem/releases, /v1/stream).

Each rest/ module lists its own routes; this file only puts them in order.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from gpugo.rest import (
    agent_labels,
    agent_status,
    agents,
    audit,
    auth,
    ecosystem,
    health,
    metrics_export,
    openapi,
    push_channel,
    shares,
    tokens,
    webhooks,
    workers,
)

routes: list[BaseRoute] = [
    # The agents' periodic reports: the busiest paths, matched first. No route before
    # them could take their paths (each is a fixed pattern under /api/v1/agents/{id}/).
    *agent_status.routes,
    *agents.hot_routes,
    *health.routes,
    *metrics_export.routes,
    *auth.routes,
    *audit.routes,
    *tokens.routes,
    *agents.routes,
    *agent_labels.routes,
    *workers.routes,
    *shares.routes,
    *webhooks.routes,
    *ecosystem.routes,
    *push_channel.routes,
    *openapi.routes,
]
