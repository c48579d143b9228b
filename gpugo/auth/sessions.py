"""Server-side sessions: the cookie holds a random secret, the database its hash."""

from __future__ import annotations

from datetime import timedelta

from gpugo import clock
from gpugo.auth.principal import CredentialKind, Principal
from gpugo.auth.tokens import TokenKind, hash_token, new_token, token_kind
from gpugo.models import Session
from gpugo.services import audit
from gpugo.settings import Settings

COOKIE_NAME = "gpugo_session"
# Idle-expiry bookkeeping is written at most this often per session.
TOUCH_INTERVAL = timedelta(seconds=60)


async def create_session(*, user_id: str, settings: Settings) -> str:
    """A fresh session for the user; returns the cookie value (shown only here)."""
    token = new_token(TokenKind.SESSION)
    now = clock.now()
    await Session.create(
        user_id=user_id,
        token_hash=hash_token(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=settings.session_absolute_seconds),
        address=audit.client_address(),
        user_agent=audit.client_user_agent(),
    )
    return token


async def revoke_session(session_id: str) -> None:
    await Session.filter(id=session_id).delete()


async def resolve_session(cookie: str, settings: Settings) -> Principal | None:
    if token_kind(cookie) is not TokenKind.SESSION:
        return None
    row = await Session.filter(token_hash=hash_token(cookie)).values(
        "id", "user_id", "last_seen_at", "expires_at", "user__plan"
    )
    if not row:
        return None
    session = row[0]
    now = clock.now()
    idle_deadline = session["last_seen_at"] + timedelta(seconds=settings.session_idle_seconds)
    if now >= session["expires_at"] or now >= idle_deadline:
        if await Session.filter(id=session["id"]).delete():
            audit.record(
                audit.Kind.SESSION_EXPIRED,
                user_id=session["user_id"],
                actor=audit.Actor.SYSTEM,
                subject_kind="session",
                subject_id=session["id"],
            )
        return None
    if now - session["last_seen_at"] >= TOUCH_INTERVAL:
        await Session.filter(id=session["id"]).update(last_seen_at=now)
    return Principal(
        kind=CredentialKind.SESSION,
        user_id=session["user_id"],
        plan=session["user__plan"],
        session_id=session["id"],
    )
