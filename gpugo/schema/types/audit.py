"""The security log and the user's sessions."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gpugo.services import audit, sessions


@strawberry.type(description="One security-relevant event of the account (the audit log).")
class AuditEvent:
    id: strawberry.ID
    at: datetime
    kind: str = strawberry.field(description="E.g. `login.failed`, `pat.created` (docs/audit.md).")
    actor: str = strawberry.field(
        description="user, pat, agent, install_token, operator, anonymous or system."
    )
    actor_id: str | None
    address: str | None = strawberry.field(description="The client's address.")
    user_agent: str | None
    subject_kind: str | None
    subject_id: str | None
    outcome: str = strawberry.field(description="success or failure.")
    detail: str | None


def audit_event_node(view: audit.EventView) -> AuditEvent:
    return AuditEvent(
        id=strawberry.ID(view.id),
        at=view.at,
        kind=view.kind,
        actor=view.actor_kind,
        actor_id=view.actor_id,
        address=view.address,
        user_agent=view.user_agent,
        subject_kind=view.subject_kind,
        subject_id=view.subject_id,
        outcome=view.outcome,
        detail=view.detail,
    )


@strawberry.type(description="A signed-in browser of the user.")
class UserSession:
    id: strawberry.ID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    address: str | None
    user_agent: str | None
    current: bool = strawberry.field(description="The session of this request.")


def session_node(view: sessions.SessionView) -> UserSession:
    return UserSession(
        id=strawberry.ID(view.id),
        created_at=view.created_at,
        last_seen_at=view.last_seen_at,
        expires_at=view.expires_at,
        address=view.address,
        user_agent=view.user_agent,
        current=view.current,
    )
