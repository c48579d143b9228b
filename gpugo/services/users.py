"""Accounts: signup, login, logout, the current user, password changes, operators' plan
changes and password resets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from gpugo import clock
from gpugo.auth import passwords, sessions
from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from gpugo.events import Event, EventKind, notify_in_transaction
from gpugo.inputs.auth import ChangePasswordInput, LoginInput, SignupInput
from gpugo.inputs.common import parse_input
from gpugo.models import Agent, Session, User
from gpugo.plans import PLANS
from gpugo.services import audit


@dataclass(frozen=True, slots=True)
class UserView:
    id: str
    email: str
    plan: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LoggedIn:
    user: UserView
    session_token: str


def _view(user: User) -> UserView:
    return UserView(id=user.id, email=user.email, plan=user.plan, created_at=user.created_at)


def check_plan(plan: str) -> str:
    if plan not in PLANS:
        raise ValidationFailed.field("plan", f"Unknown plan; use one of {', '.join(PLANS)}.")
    return plan


async def create_user(*, email: str, password: str, plan: str = "free") -> UserView:
    """Create an account (signup and the operator CLI); 409 when the e-mail is taken."""
    data = parse_input(SignupInput, {"email": email, "password": password})
    check_plan(plan)
    password_hash = await passwords.hash_password(data.password)
    try:
        user = await User.create(
            email=data.email, password_hash=password_hash, plan=plan, created_at=clock.now()
        )
    except IntegrityError:
        raise Conflict("An account with this e-mail already exists.") from None
    return _view(user)


async def signup(*, ctx: ServerContext, data: SignupInput) -> LoggedIn:
    if not ctx.settings.signup_enabled:
        raise Forbidden("Signup is disabled on this server.")
    user = await create_user(email=data.email, password=data.password)
    token = await sessions.create_session(user_id=user.id, settings=ctx.settings)
    audit.record(audit.Kind.SIGNUP, user_id=user.id, actor=audit.Actor.ANONYMOUS)
    return LoggedIn(user=user, session_token=token)


async def login(*, ctx: ServerContext, data: LoginInput) -> LoggedIn:
    user = await User.get_or_none(email=data.email)
    # Unknown e-mail and wrong password cost the same and answer the same.
    ok = await passwords.verify_password(user.password_hash if user else None, data.password)
    if user is None or not ok:
        # Recorded for the account when there is one; an unknown e-mail is not kept.
        audit.record(
            audit.Kind.LOGIN_FAILED,
            user_id=user.id if user else None,
            actor=audit.Actor.ANONYMOUS,
            outcome=audit.FAILURE,
        )
        raise Unauthorized("Wrong e-mail or password.")
    token = await sessions.create_session(user_id=user.id, settings=ctx.settings)
    audit.record(audit.Kind.LOGIN_SUCCEEDED, user_id=user.id, actor=audit.Actor.ANONYMOUS)
    return LoggedIn(user=_view(user), session_token=token)


async def logout(*, principal: Principal) -> None:
    if principal.session_id is not None:
        await sessions.revoke_session(principal.session_id)
        audit.record(
            audit.Kind.LOGOUT,
            user_id=principal.user_id,
            actor=principal,
            subject_kind="session",
            subject_id=principal.session_id,
        )


async def get_current(*, principal: Principal) -> UserView:
    user = await User.get_or_none(id=principal.user_id)
    if user is None:
        raise Unauthorized()
    return _view(user)


async def set_plan(*, email: str, plan: str) -> UserView:
    """Change the plan; the user's agents are told to pull their config, whose fresh
    license names the new plan (their status replies send none while theirs is good)."""
    check_plan(plan)
    async with in_transaction():
        updated = await User.filter(email=email.strip().lower()).update(plan=plan)
        if not updated:
            raise NotFound(f"No account with e-mail {email}.")
        user = await User.get(email=email.strip().lower())
        await Agent.filter(user_id=user.id).update(config_version=F("config_version") + 1)
        agent_ids = await Agent.filter(user_id=user.id).values_list("id", flat=True)
        # Run from the command line, away from any server's bus: the NOTIFY commits with
        # the change, so every instance drops what it holds of these agents.
        await notify_in_transaction(
            [Event(EventKind.CONFIG_CHANGED, user.id, str(agent_id)) for agent_id in agent_ids]
        )
    audit.record(audit.Kind.PLAN_CHANGED, user_id=user.id, actor=audit.Actor.OPERATOR, detail=plan)
    return _view(user)


async def change_password(*, principal: Principal, data: ChangePasswordInput) -> int:
    """Set a new password after checking the current one; ends every other session of the
    account (the asking one stays, so the user stays signed in here). Returns how many
    ended. A personal access token keeps working: it is its own credential, regenerated or
    deleted on its own.

    A wrong current password is a 400 on the field (not a 401: the caller is signed in).
    """
    user = await User.get_or_none(id=principal.user_id)
    if user is None:
        raise Unauthorized()
    if not await passwords.verify_password(user.password_hash, data.current_password):
        audit.record(
            audit.Kind.PASSWORD_CHANGE_REFUSED,
            user_id=user.id,
            actor=principal,
            outcome=audit.FAILURE,
        )
        raise ValidationFailed.field("current_password", "The current password is wrong.")
    password_hash = await passwords.hash_password(data.new_password)
    async with in_transaction():
        await User.filter(id=user.id).update(password_hash=password_hash)
        others = Session.filter(user_id=user.id)
        if principal.session_id is not None:
            others = others.exclude(id=principal.session_id)
        ended = await others.delete()
    audit.record(
        audit.Kind.PASSWORD_CHANGED,
        user_id=user.id,
        actor=principal,
        detail=f"{ended} other sessions ended",
    )
    return ended


async def reset_password(*, email: str, password: str) -> tuple[UserView, int]:
    """An operator sets a new password (the user forgot theirs); every session of the
    account ends. Returns the user and how many sessions ended."""
    data = parse_input(SignupInput, {"email": email, "password": password})
    password_hash = await passwords.hash_password(data.password)
    async with in_transaction():
        user = await User.get_or_none(email=data.email)
        if user is None:
            raise NotFound(f"No account with e-mail {data.email}.")
        await User.filter(id=user.id).update(password_hash=password_hash)
        ended = await Session.filter(user_id=user.id).delete()
    audit.record(
        audit.Kind.PASSWORD_RESET,
        user_id=user.id,
        actor=audit.Actor.OPERATOR,
        detail=f"{ended} sessions ended",
    )
    return _view(user), ended
