"""/api/v1/auth: signup, login, logout, me."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gpugo.auth.cookies import clear_session_cookie, set_session_cookie
from gpugo.auth.csrf import check_same_origin
from gpugo.inputs.auth import LoginInput, SignupInput
from gpugo.rest import requests
from gpugo.rest.paths import API
from gpugo.rest.responses import SUCCESS, ok
from gpugo.services import plans, users
from gpugo.timefmt import iso


def user_json(user: users.UserView, usage: plans.Usage | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "user_id": user.id,
        "email": user.email,
        "plan": user.plan,
        "created_at": iso(user.created_at),
    }
    if usage is not None:
        body["limits"] = {
            "max_gpus": usage.limits.max_gpus,
            "max_workers": usage.limits.max_workers,
            "metrics": usage.limits.metrics,
        }
        body["usage"] = {"gpus": usage.gpus_used, "workers": usage.workers_used}
    return body


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


async def signup(request: Request) -> Response:
    ctx = requests.server(request)
    _refuse_cross_site(request)
    await ctx.rate_limiter.hit("signup", requests.client_address(request))
    data = await requests.read_json(request, SignupInput)
    result = await users.signup(ctx=ctx, data=data)
    response = ok(user_json(result.user), status=201)
    set_session_cookie(response, result.session_token, ctx.settings)
    return response


async def login(request: Request) -> Response:
    ctx = requests.server(request)
    _refuse_cross_site(request)
    data = await requests.read_json(request, LoginInput)
    await ctx.rate_limiter.hit("login", "address", requests.client_address(request))
    await ctx.rate_limiter.hit("login", "account", data.email)
    result = await users.login(ctx=ctx, data=data)
    response = ok(user_json(result.user))
    set_session_cookie(response, result.session_token, ctx.settings)
    return response


async def logout(request: Request) -> Response:
    principal = await requests.user(request)
    await users.logout(principal=principal)
    response = ok(SUCCESS)
    clear_session_cookie(response, requests.server(request).settings)
    return response


async def me(request: Request) -> Response:
    ctx = requests.server(request)
    principal = await requests.user(request)
    user = await users.get_current(principal=principal)
    usage = await plans.usage(ctx=ctx, user_id=user.id, plan=user.plan)
    return ok(user_json(user, usage))


routes: list[BaseRoute] = [
    Route(f"{API}/auth/signup", signup, methods=["POST"]),
    Route(f"{API}/auth/login", login, methods=["POST"]),
    Route(f"{API}/auth/logout", logout, methods=["POST"]),
    Route(f"{API}/auth/me", me, methods=["GET"]),
]
