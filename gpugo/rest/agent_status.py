"""POST /api/v1/agents/{agent_id}/status: the heartbeat every agent sends every 30 s."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from gpugo.auth.resolve import agent_secret_hash, authenticate_agent
from gpugo.context import ServerContext
from gpugo.errors import GpugoError, UnsupportedMediaType, ValidationFailed
from gpugo.observability.metrics import counts_status_reports
from gpugo.rest import asgi
from gpugo.rest.agents import license_json
from gpugo.rest.outputs.agents import StatusReportResponse
from gpugo.rest.paths import API
from gpugo.rest.requests import json_or_empty
from gpugo.services import status_reports


class StatusReportDoor:
    """The status report as a plain ASGI app (no Request or Response objects): the app
    answers it ahead of its router, behind the same middleware as every response
    (``gpugo.app.App``). Its refusals are answered here with the contract's error body.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            answer = asgi.json_answer(await self.handle(scope, receive))
        except GpugoError as error:
            answer = asgi.error_answer(error)
        await asgi.send_answer(send, answer)

    # Counted here, at the door: refusals of the credential's form and of the body too.
    @staticmethod
    @counts_status_reports
    async def handle(scope: Scope, receive: Receive) -> StatusReportResponse:
        ctx: ServerContext = scope["app"].state.ctx
        agent_id: str = scope["path_params"]["agent_id"]
        authorization = asgi.header(scope, b"authorization")
        # The secret is checked in the statement that reads the agent (one round trip).
        secret_hash = agent_secret_hash(authorization)
        try:
            sent = json_or_empty(asgi.header(scope, b"content-type"), await asgi.read_body(receive))
            # The body as sent: most reports repeat the last one, and are answered
            # without being read in full (services/status_reports.py).
            reply = await status_reports.report(
                ctx=ctx, secret_hash=secret_hash, agent_id=agent_id, body=sent
            )
        except (UnsupportedMediaType, ValidationFailed):
            # A bad credential is refused before a bad body, as on every agent endpoint.
            await authenticate_agent(authorization=authorization, agent_id=agent_id)
            raise
        body: StatusReportResponse = {
            "success": True,
            "config_version": reply.config_version,
            "worker_share_codes": reply.worker_share_codes,
        }
        if reply.license is not None:
            body["license"] = license_json(reply.license)
        return body


status_report = StatusReportDoor()
# The app matches status reports against this route before anything else.
status_route = Route(f"{API}/agents/{{agent_id:id}}/status", status_report, methods=["POST"])

routes: list[BaseRoute] = [status_route]
