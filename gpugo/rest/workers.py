"""/api/v1/workers: a user's workers."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
