"""Requests counted by route template, method and status (never by raw path).

Counted by the layer around every request (``gpugo.rest.middleware``). The route is
the one Starlette matched (``scope["route"]``); a path no route matched is counted as
``unmatched``, so a scanner's random paths add no series.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Mount
from starlette.types import Scope

from gpugo.observability import metrics

UNMATCHED = "unmatched"
# Methods are client-chosen strings: any other is one label value.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# "{agent_id:id}" -> "{agent_id}": the parameter's name without its convertor.
_CONVERTOR = re.compile(r"\{(\w+):\w+\}")


# Label values and series children are computed once per route (and per method and
# status): the routes are fixed at start, so these stay small.
# Routes are not hashable (they compare by value): keyed by identity, holding the route
# so that its id cannot be reused by another.
_templates: dict[int, tuple[object, str]] = {}
_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    found = _templates.get(id(route))
    if found is None:
        found = _templates[id(route)] = (route, _template_of(route))
    return found[1]


def _template_of(route: object) -> str:
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    if isinstance(route, Mount):
        # A mounted app (the dashboard's static files) serves whatever lies below it.
        path = f"{path.rstrip('/')}/{{path}}"
    return _CONVERTOR.sub(r"{\1}", path) or "/"


def _children(route: str, method: str, status: int) -> tuple[Any, Any]:
    key = (route, method, status)
    found = _series.get(key)
    if found is None:
        found = _series[key] = (
            metrics.http_requests.labels(route, method, str(status)),
            metrics.http_request_seconds.labels(route, method),
        )
    return found


def count(scope: Scope, status: int, seconds: float) -> None:
    """One HTTP request answered with ``status``, ``seconds`` after it arrived (to the
    start of its response: a stream's answer counts once it begins)."""
    method = scope["method"] if scope["method"] in _METHODS else "other"
    counter, histogram = _children(route_template(scope), method, status)
    counter.inc()
    histogram.observe(seconds)
