"""/api/v1/audit-events and /api/v1/auth/sessions bodies."""

from __future__ import annotations

from typing_extensions import TypedDict

from gpugo.rest.outputs.common import Timestamp


class AuditEventBody(TypedDict):
    event_id: str
    at: Timestamp
    kind: str
    actor: str
    actor_id: str | None
    address: str | None
    user_agent: str | None
    subject_kind: str | None
    subject_id: str | None
    outcome: str
    detail: str | None


class AuditEventList(TypedDict):
    events: list[AuditEventBody]
    next_before: str | None


class SessionBody(TypedDict):
    session_id: str
    created_at: Timestamp
    last_seen_at: Timestamp
    expires_at: Timestamp
    address: str | None
    user_agent: str | None
    current: bool


class SessionList(TypedDict):
    sessions: list[SessionBody]


class SessionsRevoked(TypedDict):
    success: bool
    revoked: int
