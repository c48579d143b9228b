"""The session cookie on the wire: one place for its name and flags (REST and GraphQL)."""

from __future__ import annotations

from starlette.responses import Response

from gpugo.auth.sessions import COOKIE_NAME
from gpugo.settings import Settings


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    """HttpOnly, SameSite=Lax, Secure behind https; lives as long as the session can."""
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=settings.session_absolute_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    # The same attributes as when set, so every browser matches and drops it.
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
