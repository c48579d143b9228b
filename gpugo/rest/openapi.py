"""GET /api/v1/openapi.json: every REST route as OpenAPI 3.1, generated from the code.

- Request bodies and query parameters: the pydantic input declarations the
  endpoints validate with (``model_json_schema``).
- Success responses: the status and body shape named in each endpoint's return
  type (``Ok[AgentList]``, ``Created[ShareListItem]``; gpugo/rest/outputs).
- Errors: the contract's body for every status an operation can answer, derived
  from what it does (reads a body, needs a credential, is rate limited, ...).

``OPERATIONS`` holds what the code cannot say by itself (summary, credentials,
inputs, the errors of its rules). tests/hardening/test_openapi.py fails when a
served route has no entry here, or an entry no route.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route

from gpugo.auth.sessions import COOKIE_NAME
from gpugo.inputs.agent_labels import AgentLabelsInput
from gpugo.inputs.agents import RegisterAgentInput, StatusReportInput
from gpugo.inputs.audit import AuditQueryInput
from gpugo.inputs.auth import ChangePasswordInput, LoginInput, SignupInput
from gpugo.inputs.metrics import MetricsReportInput
from gpugo.inputs.releases import ReleaseQuery
from gpugo.inputs.shares import CreateShareInput
from gpugo.inputs.tokens import CreatePatInput, GenerateTokenInput
from gpugo.inputs.webhooks import CreateWebhookInput, UpdateWebhookInput
from gpugo.inputs.workers import CreateWorkerInput, UpdateWorkerInput, WorkerFilterInput
from gpugo.rest.outputs.agents import StatusReportResponse
from gpugo.rest.outputs.common import ErrorBody
from gpugo.rest.outputs.graphql import GraphQLRefusal, GraphQLRequest, GraphQLResponse
from gpugo.rest.outputs.shares import PublicShareInfo
from gpugo.rest.paths import API, IdConvertor
from gpugo.rest.responses import Ok
from gpugo.settings import Settings

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"

# Security schemes.
SESSION = "sessionCookie"
PAT = "personalAccessToken"
AGENT = "agentSecret"
INSTALL = "installToken"
USER = (SESSION, PAT)
# The user's, or an agent secret acting for its owner within its own agent (the shipped
# CLI on a registered host sends it): agents, workers, shares.
OWNER = (SESSION, PAT, AGENT)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A success body that is not JSON: a stream of Server-Sent Events.
EVENT_STREAM = "text/event-stream"

# The contract's codes, by status.
ERROR_CODES: Mapping[int, tuple[str, ...]] = {
    400: ("validation_error",),
    401: ("unauthorized", "token_used", "token_expired"),
    403: ("forbidden", "plan_limit_exceeded", "plan_feature_unavailable"),
    404: ("not_found",),
    409: ("conflict",),
    410: ("gone",),
    413: ("payload_too_large",),
    415: ("unsupported_media_type",),
    429: ("rate_limited",),
    500: ("internal_error",),
    503: ("service_unavailable",),
}
ERROR_DESCRIPTIONS: Mapping[int, str] = {
    400: "Bad JSON, a wrong type or an out-of-range value; `details` lists the fields.",
    401: "No, an unknown, expired or revoked credential, or one of the wrong kind.",
    403: "The credential may not do this (another agent's secret, a cross-site cookie "
    "request, a plan limit or feature).",
    404: "Unknown id, or one owned by another user.",
    409: "Conflicts with the current state.",
    410: "The share link expired or is used up.",
    413: "The request body is over 1 MiB.",
    415: "The request body is not JSON.",
    429: "Too many attempts; `Retry-After` says when to try again.",
    500: "A bug; the body never carries a trace or SQL.",
    503: "The database is not reachable; try again shortly.",
}


@dataclass(frozen=True, slots=True)
class Operation:
    summary: str
    tag: str
    auth: tuple[str, ...] = ()
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    # Statuses of the operation's own rules, beyond those its traits imply.
    errors: tuple[int, ...] = ()
    rate_limited: bool = False
    database: bool = True
    sets_cookie: bool = False
    description: str | None = None
    # For endpoints that are not ``Ok[...]`` functions (the GraphQL view, the dashboard
    # page, the event stream): the status and a body type or a media type.
    response: tuple[int, Any] | None = None
    error_body: Any = ErrorBody


OPERATIONS: Mapping[tuple[str, str], Operation] = {
    ("GET", "/healthz"): Operation(
        "Liveness: 200 while the process serves", "health", database=False
    ),
    ("GET", "/readyz"): Operation("Readiness: 200 once the database answers", "health"),
    ("GET", "/robots.txt"): Operation(
        "Keeps share links and the API out of search engines", "health", database=False
    ),
    ("GET", "/metrics"): Operation(
        "The server's own metrics for operators (Prometheus text format)",
        "health",
        errors=(401, 404),
        response=(200, "text/plain"),
        description="Off (404) unless `GPUGO_METRICS_TOKEN` is set; then it answers only "
        "`Authorization: Bearer <GPUGO_METRICS_TOKEN>` (401 otherwise). Series: "
        "docs/observability.md.",
    ),
    ("GET", f"{API}/metrics/prometheus"): Operation(
        "The latest sample of each of the user's GPUs, hosts and workers as Prometheus "
        "gauges (Team and Pro plans)",
        "metrics",
        auth=USER,
        errors=(403,),
        response=(200, "text/plain"),
        description="For the user's own Prometheus: scrape it with the PAT as bearer token. "
        "403 `plan_feature_unavailable` on Free and Personal.",
    ),
    ("GET", f"{API}/license/public-key"): Operation(
        "The Ed25519 key that verifies licenses offline", "health", database=False
    ),
    ("GET", f"{API}/openapi.json"): Operation("This document", "health", database=False),
    ("GET", "/"): Operation(
        "The dashboard: one HTML page (its assets are static files under /ui/)",
        "dashboard",
        database=False,
        response=(200, "text/html"),
    ),
    ("POST", f"{API}/auth/signup"): Operation(
        "Create an account and sign in",
        "auth",
        body=SignupInput,
        errors=(403, 409),
        rate_limited=True,
        sets_cookie=True,
        description="403 when signup is disabled or the Origin is another site's.",
    ),
    ("POST", f"{API}/auth/login"): Operation(
        "Sign in: a new session cookie",
        "auth",
        body=LoginInput,
        errors=(401, 403),
        rate_limited=True,
        sets_cookie=True,
        description="Rate limited per client address and per account. "
        "403 when the Origin is another site's.",
    ),
    ("POST", f"{API}/auth/logout"): Operation(
        "End the session (revoked on the server)", "auth", auth=USER, sets_cookie=True
    ),
    ("GET", f"{API}/auth/me"): Operation("The signed-in user, plan and usage", "auth", auth=USER),
    ("GET", f"{API}/auth/sessions"): Operation(
        "The signed-in user's sessions (address, user agent, which one asks)", "auth", auth=USER
    ),
    ("DELETE", f"{API}/auth/sessions/{{session_id}}"): Operation(
        "End one of the user's sessions", "auth", auth=USER, errors=(404,)
    ),
    ("POST", f"{API}/auth/password"): Operation(
        "Change the password; ends the user's other sessions",
        "auth",
        auth=USER,
        body=ChangePasswordInput,
        rate_limited=True,
        description="A wrong `current_password` is a 400 `validation_error` naming that field. "
        "The session asking stays; personal access tokens keep working.",
    ),
    ("POST", f"{API}/auth/sessions/revoke-others"): Operation(
        "End every session of the user but the one asking (log out everywhere else)",
        "auth",
        auth=USER,
    ),
    ("GET", f"{API}/audit-events"): Operation(
        "The user's security log, newest first",
        "audit",
        auth=USER,
        query=AuditQueryInput,
        description="Pass `next_before` of a page as `before` for the next one.",
    ),
    ("POST", f"{API}/tokens/generate"): Operation(
        "A 30-minute, single-use agent install token",
        "tokens",
        auth=USER,
        body=GenerateTokenInput,
        rate_limited=True,
    ),
    ("GET", f"{API}/tokens/pat"): Operation(
        "The personal access token's state", "tokens", auth=USER
    ),
    ("POST", f"{API}/tokens/pat"): Operation(
        "Create or regenerate the personal access token (the old one dies at once)",
        "tokens",
        auth=USER,
        body=CreatePatInput,
    ),
    ("DELETE", f"{API}/tokens/pat"): Operation(
        "Delete the personal access token", "tokens", auth=USER
    ),
    ("GET", f"{API}/tokens/{{token_id}}/status"): Operation(
        "An install token's state", "tokens", auth=USER, errors=(404,)
    ),
    ("POST", f"{API}/agents/register"): Operation(
        "Register an agent with an install token",
        "agents",
        auth=(INSTALL,),
        body=RegisterAgentInput,
        errors=(403,),
        rate_limited=True,
        description="401 `token_used` / `token_expired` for a spent token; "
        "403 `plan_limit_exceeded` when the GPUs or the default worker do not fit the plan. "
        "The token is checked before the body: a bad body is a 400 only with a live token. "
        "Every refusal of a known token reaches its owner (`installTokenRefusals`).",
    ),
    ("GET", f"{API}/agents"): Operation("The user's agents", "agents", auth=OWNER),
    ("GET", f"{API}/agents/{{agent_id}}"): Operation(
        "An agent with its GPUs, workers and connections", "agents", auth=OWNER, errors=(404,)
    ),
    ("DELETE", f"{API}/agents/{{agent_id}}"): Operation(
        "Delete an agent (by its owner, or by the agent itself with its secret)",
        "agents",
        auth=OWNER,
        errors=(404,),
    ),
    ("POST", f"{API}/agents/{{agent_id}}/status"): Operation(
        "The agent's status report",
        "agent",
        auth=(AGENT,),
        body=StatusReportInput,
        response=(200, StatusReportResponse),
    ),
    ("GET", f"{API}/agents/{{agent_id}}/config"): Operation(
        "The agent's workers and a fresh license", "agent", auth=(AGENT,)
    ),
    ("POST", f"{API}/agents/{{agent_id}}/metrics"): Operation(
        "GPU and host metrics (Team and Pro plans)",
        "agent",
        auth=(AGENT,),
        body=MetricsReportInput,
        rate_limited=True,
        description="403 `plan_feature_unavailable` on Free and Personal; 429 past "
        "`GPUGO_RATE_LIMIT_METRICS` reports of one agent.",
    ),
    ("GET", f"{API}/agents/{{agent_id}}/labels"): Operation(
        "A machine's display name and tags", "agents", auth=USER, errors=(404,)
    ),
    ("PATCH", f"{API}/agents/{{agent_id}}/labels"): Operation(
        "Set a machine's display name and tags (the hostname stays the agent's)",
        "agents",
        auth=USER,
        body=AgentLabelsInput,
        errors=(404,),
        description="Absent fields stay; `display_name` null or blank removes it, "
        "`tags` [] removes them. At most 16 tags of 1 to 32 letters, digits or . _ : / -.",
    ),
    ("GET", f"{API}/workers"): Operation(
        "The user's workers", "workers", auth=OWNER, query=WorkerFilterInput
    ),
    ("POST", f"{API}/workers"): Operation(
        "Create a worker",
        "workers",
        auth=OWNER,
        body=CreateWorkerInput,
        errors=(404, 409),
        description="400 for a GPU id not on the agent, 403 `plan_limit_exceeded`, "
        "409 when the agent's port is taken.",
    ),
    ("GET", f"{API}/workers/{{worker_id}}"): Operation(
        "A worker with its connections", "workers", auth=OWNER, errors=(404,)
    ),
    ("PATCH", f"{API}/workers/{{worker_id}}"): Operation(
        "Change a worker", "workers", auth=OWNER, body=UpdateWorkerInput, errors=(404, 409)
    ),
    ("DELETE", f"{API}/workers/{{worker_id}}"): Operation(
        "Delete a worker and its shares", "workers", auth=OWNER, errors=(404,)
    ),
    ("GET", f"{API}/shares"): Operation("The user's share links", "shares", auth=OWNER),
    ("POST", f"{API}/shares"): Operation(
        "Create a share link for a worker",
        "shares",
        auth=OWNER,
        body=CreateShareInput,
        errors=(404, 409),
    ),
    ("DELETE", f"{API}/shares/{{share_id}}"): Operation(
        "Delete a share link", "shares", auth=OWNER, errors=(404,)
    ),
    ("GET", "/s/{short_code}"): Operation(
        "Use a share link once",
        "shares",
        errors=(404, 410),
        rate_limited=True,
        description="Misses are rate limited per client address.",
        response=(200, PublicShareInfo),
    ),
    ("HEAD", "/s/{short_code}"): Operation(
        "A share link's state, without using it",
        "shares",
        errors=(404, 410),
        rate_limited=True,
        response=(200, PublicShareInfo),
    ),
    ("GET", f"{API}/agents/{{agent_id}}/events"): Operation(
        "Server-Sent Events: the agent's config_version on connect and on each change",
        "agent",
        auth=(AGENT,),
        response=(200, EVENT_STREAM),
        description='Frames `event: config` with `data: {"config_version": N}`, and '
        "`: keep-alive` comments while idle. The stream stays open.",
    ),
    ("GET", "/api/ecosystem/releases"): Operation(
        "The release catalogue agents download their vGPU libraries from",
        "agent",
        query=ReleaseQuery,
        database=False,
        description="Public. Newest first; `vendor` keeps one vendor's releases (its slug, any "
        "case); `size` is at most 500 (larger reads as 500), 10 when absent. "
        "Served from the operator's manifest and upstream catalogue (docs/agents.md).",
    ),
    ("GET", "/v1/stream"): Operation(
        "Server-Sent Events of the shipped agent's push channel, by the x-sse-topic header",
        "agent",
        errors=(400,),
        database=False,
        response=(200, EVENT_STREAM),
        description="No credential. Topic `<agent id>`: `data: <config_version>` after each "
        "change of the agent's configuration; topic `<agent id>_vgpu_restart`: "
        "`data: <worker id>` for each restart asked; `: keep-alive` comments in between. "
        "A topic naming no agent answers the same, with keep-alives only. "
        "400 without a well-formed topic. The stream stays open.",
    ),
    ("GET", f"{API}/webhooks"): Operation("The user's webhook endpoints", "webhooks", auth=USER),
    ("POST", f"{API}/webhooks"): Operation(
        "Create a webhook endpoint; its signing secret is in this answer only",
        "webhooks",
        auth=USER,
        body=CreateWebhookInput,
        errors=(409,),
        description="400 when the URL is not http(s) or its host resolves to a loopback, "
        "private, link-local or other non-public address (unless the operator allows "
        "them); 409 beyond the endpoints a user may have. docs/webhooks.md.",
    ),
    ("GET", f"{API}/webhooks/{{webhook_id}}"): Operation(
        "A webhook endpoint", "webhooks", auth=USER, errors=(404,)
    ),
    ("PATCH", f"{API}/webhooks/{{webhook_id}}"): Operation(
        "Change a webhook endpoint's URL, events, description or enabled",
        "webhooks",
        auth=USER,
        body=UpdateWebhookInput,
        errors=(404,),
    ),
    ("DELETE", f"{API}/webhooks/{{webhook_id}}"): Operation(
        "Delete a webhook endpoint and its deliveries", "webhooks", auth=USER, errors=(404,)
    ),
    ("POST", f"{API}/webhooks/{{webhook_id}}/test"): Operation(
        "Queue a ping for the endpoint", "webhooks", auth=USER, errors=(404, 409)
    ),
    ("POST", f"{API}/webhooks/{{webhook_id}}/rotate-secret"): Operation(
        "A new signing secret (in this answer only); the old one stops signing",
        "webhooks",
        auth=USER,
        errors=(404,),
    ),
    ("GET", f"{API}/webhooks/{{webhook_id}}/deliveries"): Operation(
        "The endpoint's 50 most recent deliveries, newest first",
        "webhooks",
        auth=USER,
        errors=(404,),
    ),
    ("POST", f"{API}/webhooks/{{webhook_id}}/deliveries/{{delivery_id}}/redeliver"): Operation(
        "Queue a delivery's event again (a new delivery id, the same body data)",
        "webhooks",
        auth=USER,
        errors=(404, 409),
    ),
    ("POST", "/graphql"): Operation(
        "GraphQL (queries and mutations; subscriptions over WebSocket on the same path)",
        "graphql",
        body=None,
        errors=(400, 403, 413, 415),
        database=False,
        response=(200, GraphQLResponse),
        error_body=GraphQLRefusal,
        description="Refusals of the service (not_found, unauthorized, ...) answer 200 with "
        "`errors[].extensions.code`; only refusals before GraphQL runs are HTTP errors.",
    ),
}

# Request bodies of operations that are not pydantic inputs.
_RAW_BODIES: Mapping[tuple[str, str], Any] = {("POST", "/graphql"): GraphQLRequest}
# Request headers an operation reads.
_HEADER_PARAMETERS: Mapping[tuple[str, str], list[dict[str, Any]]] = {
    ("GET", "/v1/stream"): [
        {
            "name": "x-sse-topic",
            "in": "header",
            "required": True,
            "description": "`<agent id>` (configuration) or `<agent id>_vgpu_restart`.",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,45}$"},
        }
    ]
}

PATH_PARAMETERS: Mapping[str, str] = {
    "agent_id": "An agent id (`agt_…`).",
    "worker_id": "A worker id (`wkr_…`).",
    "share_id": "A share id (`shr_…`).",
    "token_id": "An install token id (`tok_…`).",
    "short_code": "A share link's code.",
    "webhook_id": "A webhook endpoint id (`whk_…`).",
    "delivery_id": "A webhook delivery id (`whd_…`).",
}


_CONVERTOR = re.compile(r"{(\w+):\w+}")


def template(route: Route) -> str:
    """The route's path as OpenAPI writes it: ``{agent_id:id}`` -> ``{agent_id}``."""
    return _CONVERTOR.sub(r"{\1}", route.path)


def route_operations(routes: Iterable[BaseRoute]) -> set[tuple[str, str]]:
    """(method, path) of every HTTP operation the routes serve.

    Starlette adds HEAD to every GET route; an ASGI app route (``/graphql``)
    takes any method and is represented by the methods documented for it.
    """
    served: set[tuple[str, str]] = set()
    for route in routes:
        if not isinstance(route, Route):
            continue  # WebSocket routes are outside OpenAPI
        path = template(route)
        if route.methods is None:
            served |= {key for key in OPERATIONS if key[1] == path} or {("*", path)}
            continue
        served |= {(method, path) for method in route.methods}
    return served


def _documented(method: str, path: str) -> Operation | None:
    op = OPERATIONS.get((method, path))
    if op is None and method == "HEAD":
        return OPERATIONS.get(("GET", path))
    return op


def _success(route: Route, op: Operation) -> tuple[int, Any]:
    """The success status and body type, from the endpoint's return type."""
    if op.response is not None:
        return op.response
    hints = typing.get_type_hints(route.endpoint)
    returned = hints["return"]
    candidates = typing.get_args(returned) if typing.get_origin(returned) is typing.Union else ()
    for candidate in (returned, *candidates):
        origin = typing.get_origin(candidate)
        if isinstance(origin, type) and issubclass(origin, Ok):
            return origin.status, typing.get_args(candidate)[0]
        if candidate is PlainTextResponse:
            return 200, PlainTextResponse
    raise TypeError(f"{template(route)}: the endpoint's return type names no Ok[...] body")


def _error_statuses(method: str, route: Route, op: Operation) -> set[int]:
    statuses = {500, *op.errors}
    if any(isinstance(c, IdConvertor) for c in route.param_convertors.values()):
        statuses.add(404)  # an id of another shape matches no route
    if op.database:
        statuses.add(503)
    if op.body is not None:
        statuses |= {400, 413, 415}
    if op.query is not None:
        statuses.add(400)
    if op.auth:
        statuses.add(401)
    if AGENT in op.auth or (SESSION in op.auth and method in UNSAFE_METHODS):
        statuses.add(403)
    if op.rate_limited:
        statuses.add(429)
    return statuses


class _Schemas:
    """Collects the JSON schemas of inputs and outputs into components/schemas."""

    REF = "#/components/schemas/{model}"

    def __init__(self) -> None:
        self.inputs: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}

    def input(self, model: Any) -> dict[str, str]:
        self.inputs[_name(model)] = model
        return {"$ref": self.REF.format(model=_name(model))}

    def output(self, shape: Any) -> dict[str, str]:
        self.outputs[_name(shape)] = shape
        return {"$ref": self.REF.format(model=_name(shape))}

    def components(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for mode, shapes, closed in (
            ("validation", self.inputs, False),
            ("serialization", self.outputs, True),
        ):
            if not shapes:
                continue
            _, definitions = TypeAdapter.json_schemas(
                [(name, mode, TypeAdapter(shape)) for name, shape in shapes.items()],
                ref_template=self.REF,
            )
            for name, schema in definitions.get("$defs", {}).items():
                if closed and schema.get("type") == "object":
                    # Served bodies have exactly the declared fields: an undeclared one is drift.
                    schema.setdefault("additionalProperties", False)
                if name in found and found[name] != schema:
                    raise TypeError(f"two different shapes are both named {name}")
                found[name] = schema
        return dict(sorted(found.items()))


def _name(shape: Any) -> str:
    return shape.__name__


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema["properties"].items():
        # Query values are text: no null; and an empty value counts as absent.
        value = next(
            (a for a in prop.get("anyOf", [prop]) if a.get("type") != "null"), {"type": "string"}
        )
        value = {"anyOf": [value, {"type": "string", "maxLength": 0}]}
        parameters.append(
            {"name": name, "in": "query", "required": name in required, "schema": value}
        )
    return parameters


def _headers(path: str) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}
    headers["X-Content-Type-Options"] = {"$ref": "#/components/headers/X-Content-Type-Options"}
    if path.startswith("/s/"):
        headers["Referrer-Policy"] = {"$ref": "#/components/headers/Referrer-Policy"}
    return headers


def _error_response(
    status: int, path: str, op: Operation, schemas: _Schemas, body: bool
) -> dict[str, Any]:
    headers = _headers(path)
    if status == 401 and op.error_body is ErrorBody:
        headers["WWW-Authenticate"] = {"$ref": "#/components/headers/WWW-Authenticate"}
    if status == 429:
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    response: dict[str, Any] = {"description": ERROR_DESCRIPTIONS[status], "headers": headers}
    if body:
        ref = schemas.output(op.error_body)
        schema: dict[str, Any] = ref
        if op.error_body is ErrorBody:
            # The code is one of the contract's codes for this status.
            codes = {"enum": list(ERROR_CODES[status])}
            schema = {
                "allOf": [ref, {"properties": {"error": {"properties": {"code": codes}}}}],
            }
        response["content"] = {"application/json": {"schema": schema}}
    return response


def _operation(method: str, route: Route, op: Operation, schemas: _Schemas) -> dict[str, Any]:
    path = template(route)
    head = method == "HEAD"
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}{_operation_suffix(path)}",
        "summary": op.summary
        if not head or ("HEAD", path) in OPERATIONS
        else f"{op.summary} (headers only)",
        "tags": [op.tag],
    }
    if op.description:
        operation["description"] = op.description
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": PATH_PARAMETERS.get(name, name),
            "schema": _path_schema(convertor),
        }
        for name, convertor in route.param_convertors.items()
    ]
    if op.query is not None:
        parameters.extend(_query_parameters(op.query))
    parameters.extend(_HEADER_PARAMETERS.get((method, path), ()))
    if parameters:
        operation["parameters"] = parameters
    if op.body is not None or (method, path) in _RAW_BODIES:
        model = op.body if op.body is not None else _RAW_BODIES[(method, path)]
        # An empty body reads as {}: it may be left out when no field is required.
        required = bool(TypeAdapter(model).json_schema().get("required"))
        operation["requestBody"] = {
            "required": required,
            "content": {"application/json": {"schema": schemas.input(model)}},
        }
    operation["security"] = [{scheme: []} for scheme in op.auth] if op.auth else []

    status, shape = _success(route, op)
    success: dict[str, Any] = {"description": "Success.", "headers": _headers(path)}
    if op.sets_cookie:
        success["headers"]["Set-Cookie"] = {"$ref": "#/components/headers/Set-Cookie"}
    if not head:
        if shape is PlainTextResponse:
            success["content"] = {"text/plain": {"schema": {"type": "string"}}}
        elif shape == EVENT_STREAM:
            success["content"] = {EVENT_STREAM: {"schema": _EVENTS[path]}}
        elif isinstance(shape, str):  # another media type: a document, not JSON
            success["content"] = {shape: {"schema": {"type": "string"}}}
        else:
            success["content"] = {"application/json": {"schema": schemas.output(shape)}}
    responses = {str(status): success}
    for error in sorted(_error_statuses(method, route, op)):
        responses[str(error)] = _error_response(error, path, op, schemas, body=not head)
    operation["responses"] = responses
    return operation


def _path_schema(convertor: object) -> dict[str, Any]:
    if isinstance(convertor, IdConvertor):
        # Anything else matches no route: 404 before any database work.
        return {"type": "string", "pattern": f"^{convertor.regex}$"}
    return {"type": "string"}


def _operation_suffix(path: str) -> str:
    """``/api/v1/workers/{worker_id}`` -> ``WorkersByWorkerId``."""
    parts = []
    for segment in path.split("/"):
        if segment in ("", "api", "v1"):
            continue
        prefix = "By" if segment.startswith("{") else ""
        words = segment.strip("{}").replace(".", "_").replace("-", "_").split("_")
        parts.append(prefix + "".join(w[:1].upper() + w[1:] for w in words))
    return "".join(parts)


def build_document(routes: Sequence[BaseRoute], settings: Settings) -> dict[str, Any]:
    """The OpenAPI document of the documented operations these routes serve."""
    schemas = _Schemas()
    schemas.output(ErrorBody)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue
        path = template(route)
        methods = route.methods or {m for m, p in OPERATIONS if p == path}
        for method in sorted(methods):
            op = _documented(method, path)
            if op is None:
                continue  # the test names it
            item = paths.setdefault(path, {})
            item[method.lower()] = _operation(method, route, op, schemas)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "gpugo",
            "version": API_VERSION,
            "description": "Control plane for GPU Go agents. Every status >= 400 answers "
            '`{"error": {"code", "message", "details"?}}`.',
        },
        "servers": [{"url": settings.effective_public_url}],
        "paths": paths,
        "components": {
            "schemas": schemas.components(),
            "securitySchemes": _security_schemes(),
            "headers": _HEADERS,
        },
    }


def _security_schemes() -> dict[str, Any]:
    return {
        SESSION: {
            "type": "apiKey",
            "in": "cookie",
            "name": COOKIE_NAME,
            "description": "The session cookie set by login and signup. Unsafe methods also "
            "need an Origin (or Sec-Fetch-Site: same-origin) of this server.",
        },
        PAT: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "gpgo_pat_…",
            "description": "The user's personal access token.",
        },
        AGENT: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "gpgo_agent_…",
            "description": "The agent secret returned by registration. On the agents, "
            "workers and shares endpoints it acts for the agent's owner within that one "
            "agent (anything else is 404; token and account endpoints answer 403).",
        },
        INSTALL: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "gpgo_inst_…",
            "description": "A 30-minute, single-use install token.",
        },
    }


# One Server-Sent Event of the agent's stream (comments are not events).
_CONFIG_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"const": "config"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                "type": "object",
                "required": ["config_version"],
                "properties": {"config_version": {"type": "integer"}},
            },
        },
    },
}

# One Server-Sent Event of the shipped agent's push channel: a version or a worker id.
_TOPIC_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"type": "string", "pattern": "^([0-9]+|[A-Za-z0-9_]{1,32})$"}},
}
_EVENTS: Mapping[str, dict[str, Any]] = {
    f"{API}/agents/{{agent_id}}/events": _CONFIG_EVENT,
    "/v1/stream": _TOPIC_EVENT,
}

_HEADERS: dict[str, Any] = {
    "X-Request-Id": {
        "description": "The id on the server's log lines for this request.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
    },
    "X-Content-Type-Options": {"required": True, "schema": {"const": "nosniff"}},
    "Referrer-Policy": {
        "description": "Share links are capabilities: never sent on as a Referer.",
        "required": True,
        "schema": {"const": "no-referrer"},
    },
    "WWW-Authenticate": {"required": True, "schema": {"type": "string"}},
    "Retry-After": {
        "description": "Seconds until the limit lets the next attempt through.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"},
    },
    "Set-Cookie": {
        "description": f"The `{COOKIE_NAME}` cookie (HttpOnly, SameSite=Lax).",
        "required": True,
        "schema": {"type": "string"},
    },
}


async def openapi_json(request: Request) -> Ok[dict[str, Any]]:
    state = request.app.state
    document = getattr(state, "openapi", None)
    if document is None:
        document = build_document(request.app.routes, request.app.state.ctx.settings)
        state.openapi = document
    return Ok(document)


routes: list[BaseRoute] = [Route(f"{API}/openapi.json", openapi_json, methods=["GET"])]
