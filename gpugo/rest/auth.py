"""/api/v1/auth: signup, login, logout, me."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from gpugo.auth.cookies import clear_session_cookie, set_session_cookie
from gpugo.auth.csrf import check_same_origin
from gpugo.inputs.auth import ChangePasswordInput, LoginInput, SignupInput
from gpugo.rest import requests
from gpugo.rest.outputs.auth import MeBody, PasswordChanged, UserBody
from gpugo.rest.outputs.common import Success
from gpugo.rest.paths import API
from gpugo.rest.responses import SUCCESS, Created, Ok
from gpugo.services import plans, users
from gpugo.timefmt import iso


def user_json(user: users.UserView) -> UserBody:
    return {
        "user_id": user.id,
        "email": user.email,
        "plan": user.plan,
        "created_at": iso(user.created_at),
    }


def me_json(user: users.UserView, usage: plans.Usage) -> MeBody:
    return {
        **user_json(user),
        "limits": {
            "max_gpus": usage.limits.max_gpus,
            "max_workers": usage.limits.max_workers,
            "metrics": usage.limits.metrics,
        },
        "usage": {"gpus": usage.gpus_used, "workers": usage.workers_used},
    }


def _refuse_cross_site(request: Request) -> None:
    # Login CSRF: a browser posting from another site carries its Origin.
    origin = request.headers.get("origin")
    if origin is not None:
        check_same_origin(
            method=request.method,
            origin=origin,
            sec_fetch_site=None,
            public_origin=requests.server(request).settings.public_origin,
        )


async def signup(request: Request) -> Created[UserBody]:
    ctx = requests.server(request)
    _refuse_cross_site(request)
    await ctx.rate_limiter.hit("signup", requests.client_address(request))
    data = await requests.read_json(request, SignupInput)
    result = await users.signup(ctx=ctx, data=data)
    response = Created(user_json(result.user))
    set_session_cookie(response, result.session_token, ctx.settings)
    return response


async def login(request: Request) -> Ok[UserBody]:
    ctx = requests.server(request)
    _refuse_cross_site(request)
    data = await requests.read_json(request, LoginInput)
    await ctx.rate_limiter.hit("login", "address", requests.client_address(request))
    await ctx.rate_limiter.hit("login", "account", data.email)
    result = await users.login(ctx=ctx, data=data)
    response = Ok(user_json(result.user))
    set_session_cookie(response, result.session_token, ctx.settings)
    return response


async def logout(request: Request) -> Ok[Success]:
    principal = await requests.user(request)
    await users.logout(principal=principal)
    response = Ok(SUCCESS)
    clear_session_cookie(response, requests.server(request).settings)
    return response


async def me(request: Request) -> Ok[MeBody]:
    ctx = requests.server(request)
    principal = await requests.user(request)
    user = await users.get_current(principal=principal)
    usage = await plans.usage(ctx=ctx, user_id=user.id, plan=user.plan)
    return Ok(me_json(user, usage))


async def change_password(request: Request) -> Ok[PasswordChanged]:
    ctx = requests.server(request)
    principal = await requests.user(request)
    data = await requests.read_json(request, ChangePasswordInput)
    # Guessing the current password through this door costs what guessing at login does.
    await ctx.rate_limiter.hit("login", "account", principal.user_id)
    ended = await users.change_password(principal=principal, data=data)
    return Ok({"success": True, "sessions_ended": ended})


routes: list[BaseRoute] = [
    Route(f"{API}/auth/signup", signup, methods=["POST"]),
    Route(f"{API}/auth/login", login, methods=["POST"]),
    Route(f"{API}/auth/logout", logout, methods=["POST"]),
    Route(f"{API}/auth/me", me, methods=["GET"]),
    Route(f"{API}/auth/password", change_password, methods=["POST"]),
]
