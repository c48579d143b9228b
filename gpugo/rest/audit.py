"""/api/v1/audit-events (the user's security log) and /api/v1/auth/sessions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from gpugo.errors import ValidationFailed
from gpugo.inputs.audit import AuditQueryInput
from gpugo.inputs.common import parse_input
from gpugo.rest import requests
from gpugo.rest.outputs.audit import (
    AuditEventBody,
    AuditEventList,
    SessionBody,
    SessionList,
    SessionsRevoked,
)
from gpugo.rest.outputs.common import Success
from gpugo.rest.paths import API
from gpugo.rest.responses import SUCCESS, Ok
from gpugo.schema.pagination import decode_cursor, encode_cursor, position, position_time
from gpugo.services import audit, sessions
from gpugo.timefmt import iso


def event_json(event: audit.EventView) -> AuditEventBody:
    return {
        "event_id": event.id,
        "at": iso(event.at),
        "kind": event.kind,
        "actor": event.actor_kind,
        "actor_id": event.actor_id,
        "address": event.address,
        "user_agent": event.user_agent,
        "subject_kind": event.subject_kind,
        "subject_id": event.subject_id,
        "outcome": event.outcome,
        "detail": event.detail,
    }


def session_json(session: sessions.SessionView) -> SessionBody:
    return {
        "session_id": session.id,
        "created_at": iso(session.created_at),
        "last_seen_at": iso(session.last_seen_at),
        "expires_at": iso(session.expires_at),
        "address": session.address,
        "user_agent": session.user_agent,
        "current": session.current,
    }


async def list_events(request: Request) -> Ok[AuditEventList]:
    principal = await requests.user(request)
    params = {
        k: v for k, v in request.query_params.items() if k in ("limit", "before", "kind") and v
    }
    query = parse_input(AuditQueryInput, params)
    before = None
    if query.before is not None:
        try:
            before = position_time(decode_cursor(query.before))
        except ValidationFailed:
            raise ValidationFailed.field("before", "Not a cursor of this list.") from None
    page = await audit.list_events(
        principal=principal, limit=query.limit, before=before, kind=query.kind
    )
    return Ok(
        {
            "events": [event_json(e) for e in page.events],
            "next_before": encode_cursor(position(*page.next_before)) if page.next_before else None,
        }
    )


async def list_sessions(request: Request) -> Ok[SessionList]:
    principal = await requests.user(request)
    found = await sessions.list_sessions(
        principal=principal, settings=requests.server(request).settings
    )
    return Ok({"sessions": [session_json(s) for s in found]})


async def revoke_session(request: Request) -> Ok[Success]:
    principal = await requests.user(request)
    await sessions.revoke(principal=principal, session_id=request.path_params["session_id"])
    return Ok(SUCCESS)


async def revoke_other_sessions(request: Request) -> Ok[SessionsRevoked]:
    principal = await requests.user(request)
    revoked = await sessions.revoke_others(principal=principal)
    return Ok({"success": True, "revoked": revoked})


routes: list[BaseRoute] = [
    Route(f"{API}/audit-events", list_events, methods=["GET"]),
    Route(f"{API}/auth/sessions", list_sessions, methods=["GET"]),
    Route(f"{API}/auth/sessions/revoke-others", revoke_other_sessions, methods=["POST"]),
    Route(f"{API}/auth/sessions/{{session_id:id}}", revoke_session, methods=["DELETE"]),
]
