"""/api/v1/shares and the public /s/{short_code}."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
