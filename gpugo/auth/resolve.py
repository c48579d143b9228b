"""The one place that decides who a request is."""

from __future__ import annotations

from datetime import timedelta

from typing_extensions import TypedDict, Unpack

from gpugo import clock, sql
from gpugo.auth.csrf import check_same_origin
from gpugo.auth.principal import CredentialKind, Principal
from gpugo.auth.sessions import resolve_session
from gpugo.auth.tokens import TokenKind, hash_token, token_kind
from gpugo.errors import Forbidden, Unauthorized
from gpugo.models import Agent, PersonalAccessToken
from gpugo.services import audit
from gpugo.settings import Settings
from gpugo.timefmt import parse_stored

# last_used_at of a PAT is written at most this often.
PAT_TOUCH_INTERVAL = timedelta(seconds=60)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None without one."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Use 'Authorization: Bearer <token>'.")
    return token.strip()


async def authenticate_user(
    *,
    authorization: str | None,
    session_cookie: str | None,
    method: str,
    origin: str | None,
    sec_fetch_site: str | None,
    settings: Settings,
) -> Principal:
    """A user, by PAT bearer or by session cookie (with the CSRF rule for cookies).

    A bearer request ignores cookies entirely. Agent secrets and install tokens
    are never a user.
    """
    token = bearer_token(authorization)
    if token is not None:
        principal = await resolve_pat(token)
        if principal is None:
            raise Unauthorized("Invalid, expired or revoked token.")
        return principal
    if session_cookie:
        principal = await resolve_session(session_cookie, settings)
        if principal is not None:
            check_same_origin(
                method=method,
                origin=origin,
                sec_fetch_site=sec_fetch_site,
                public_origin=settings.public_origin,
            )
            return principal
    raise Unauthorized()


# Every dashboard and integration request resolves its PAT: one hand-written statement.
_PAT = sql.per_dialect(
    "SELECT p.id, p.user_id, p.expires_at, p.last_used_at, u.plan"
    " FROM personal_access_tokens p JOIN users u ON u.id = p.user_id"
    " WHERE p.token_hash = $1"
)


async def resolve_pat(token: str) -> Principal | None:
    if token_kind(token) is not TokenKind.PAT:
        return None
    rows = await sql.fetch(_PAT, [hash_token(token)])
    if not rows:
        return None
    pat = rows[0]
    now = clock.now()
    expires_at = parse_stored(pat["expires_at"])
    if expires_at is not None and now >= expires_at:
        return None
    last_used_at = parse_stored(pat["last_used_at"])
    if last_used_at is None or now - last_used_at >= PAT_TOUCH_INTERVAL:
        await PersonalAccessToken.filter(id=pat["id"]).update(last_used_at=now)
    await audit.note_pat_use(pat_id=pat["id"], user_id=pat["user_id"])
    return Principal(
        kind=CredentialKind.PAT, user_id=pat["user_id"], plan=pat["plan"], pat_id=pat["id"]
    )


AGENT_SCOPE_MESSAGE = (
    "An agent secret acts only on its own agent, its workers and their share links; "
    "use a personal access token or sign in."
)


class Credentials(TypedDict):
    """What a request presents, as ``authenticate_user`` takes it."""

    authorization: str | None
    session_cookie: str | None
    method: str
    origin: str | None
    sec_fetch_site: str | None
    settings: Settings


async def authenticate_account(**credentials: Unpack[Credentials]) -> Principal:
    """A user, for the REST token and account endpoints: a valid agent secret there is
    told it is the wrong credential (403), not that it is unknown."""
    try:
        return await authenticate_user(**credentials)
    except Unauthorized:
        token = bearer_token(credentials["authorization"])
        is_agent = token is not None and token_kind(token) is TokenKind.AGENT
        if is_agent and await resolve_agent_secret(token or "") is not None:
            raise Forbidden(AGENT_SCOPE_MESSAGE) from None
        raise


async def authenticate_owner(**credentials: Unpack[Credentials]) -> Principal:
    """A user, or an agent by its own secret acting for its owner within that agent.

    The shipped CLI on a registered host sends the host's agent secret to the user
    endpoints of agents, workers and shares; services scope such a principal to its
    agent (``services.scope``).
    """
    token = bearer_token(credentials["authorization"])
    if token is not None and token_kind(token) is TokenKind.AGENT:
        principal = await resolve_agent_secret(token)
        if principal is None:
            raise Unauthorized("Unknown agent secret.")
        return principal
    return await authenticate_user(**credentials)


async def resolve_agent_secret(token: str) -> Principal | None:
    """The agent whose secret this is (acting for its owner), or None."""
    rows = await Agent.filter(secret_hash=hash_token(token)).values("id", "user_id", "user__plan")
    if not rows:
        return None
    agent = rows[0]
    return Principal(
        kind=CredentialKind.AGENT,
        user_id=agent["user_id"],
        plan=agent["user__plan"],
        agent_id=agent["id"],
    )


async def authenticate_agent(*, authorization: str | None, agent_id: str) -> Principal:
    """The agent whose secret is presented; 403 when it is another agent's path."""
    token = bearer_token(authorization)
    if token is None or token_kind(token) is not TokenKind.AGENT:
        raise Unauthorized("An agent secret is required.")
    principal = await resolve_agent_secret(token)
    if principal is None:
        refused_agent_secret(agent_id=agent_id, secret_owner=None)
        raise Unauthorized("Unknown agent secret.")
    if principal.agent_id != agent_id:
        refused_agent_secret(agent_id=agent_id, secret_owner=principal)
        raise Forbidden("This agent secret belongs to another agent.")
    return principal


def refused_agent_secret(*, agent_id: str, secret_owner: Principal | None) -> None:
    """Audit a well-formed agent secret refused on an agent's path: another agent's
    (recorded for that agent's owner), or one no agent has (deleted, or never was)."""
    audit.record(
        audit.Kind.AGENT_SECRET_REFUSED,
        user_id=secret_owner.user_id if secret_owner else None,
        actor=audit.Actor.AGENT if secret_owner else audit.Actor.ANONYMOUS,
        actor_id=secret_owner.agent_id if secret_owner else None,
        subject_kind="agent",
        subject_id=agent_id,
        outcome=audit.FAILURE,
        detail="another agent's secret" if secret_owner else "unknown secret",
    )


def agent_secret_hash(authorization: str | None) -> str:
    """The stored hash of a well-formed agent secret (401 otherwise, without a query).

    The status report checks it against the database in the statement that reads the
    agent, so a deleted agent's secret stops working at once.
    """
    token = bearer_token(authorization)
    if token is None or token_kind(token) is not TokenKind.AGENT:
        raise Unauthorized("An agent secret is required.")
    return hash_token(token)


def install_token_hash(authorization: str | None) -> str:
    """The stored hash of a well-formed install token; the register service claims it."""
    token = bearer_token(authorization)
    if token is None or token_kind(token) is not TokenKind.INSTALL:
        raise Unauthorized("An install token is required.")
    return hash_token(token)
