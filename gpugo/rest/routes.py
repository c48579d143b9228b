"""Every REST route: the spec's /api/v1 and /s, plus the contract's extras and the
release catalogue the shipped agent expects (/api/ecosystem/releases).

Each rest/ module lists its own routes; this file only puts them in order.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from gpugo.rest import (
    agents,
    auth,
    ecosystem,
    health,
    openapi,
    shares,
    tokens,
    workers,
)

routes: list[BaseRoute] = [
    *health.routes,
    *auth.routes,
    *tokens.routes,
    *agents.routes,
    *workers.routes,
    *shares.routes,
    *ecosystem.routes,
    *openapi.routes,
]
