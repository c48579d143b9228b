"""Mutation root: every user action of REST, through the same input declarations and services."""

from __future__ import annotations

from typing import Annotated

import strawberry

from gpugo.auth.cookies import clear_session_cookie, set_session_cookie
from gpugo.inputs.auth import ChangePasswordInput as ChangePasswordModel
from gpugo.inputs.auth import LoginInput, SignupInput
from gpugo.inputs.common import lookup_id, parse_input
from gpugo.inputs.shares import CreateShareInput as CreateShareModel
from gpugo.inputs.shares import ExtendShareInput as ExtendShareModel
from gpugo.inputs.tokens import CreatePatInput, GenerateTokenInput
from gpugo.inputs.workers import CreateWorkerInput as CreateWorkerModel
from gpugo.inputs.workers import UpdateWorkerInput as UpdateWorkerModel
from gpugo.schema.context import GraphQLInfo
from gpugo.schema.fleet import FleetMutations
from gpugo.schema.permissions import IsUser, user
from gpugo.schema.types.inputs import (
    ChangePasswordInput,
    CreateShareInput,
    CreateWorkerInput,
    CredentialsInput,
    ExtendShareInput,
    UpdateWorkerInput,
    parse,
)
from gpugo.schema.types.shares import Share, share_node
from gpugo.schema.types.tokens import (
    InstallTokenType,
    NewInstallToken,
    NewPersonalAccessToken,
    new_install_token_node,
    new_pat_node,
)
from gpugo.schema.types.users import User, user_node
from gpugo.schema.types.workers import Worker, worker_view_node
from gpugo.schema.webhooks import WebhookMutations
from gpugo.services import (
    agents,
    install_tokens,
    pats,
    sessions,
    shares,
    users,
    worker_restarts,
    workers,
)

_USER = [IsUser]


def _set_cookie(info: GraphQLInfo, token: str) -> None:
    response = info.context.response
    if response is not None:
        set_session_cookie(response, token, info.context.settings)


@strawberry.type(
    description="Results are nullable so that each mutation of a document fails on its own."
)
class Mutation(WebhookMutations, FleetMutations):
    @strawberry.mutation(description="Create an account and sign in (sets the session cookie).")
    async def signup(self, info: GraphQLInfo, input: CredentialsInput) -> User | None:
        ctx = info.context
        await ctx.server.rate_limiter.hit("signup", ctx.client_address)
        data = parse(SignupInput, input)
        result = await users.signup(ctx=ctx.server, data=data)
        _set_cookie(info, result.session_token)
        return user_node(result.user)

    @strawberry.mutation(description="Sign in (sets a new session cookie).")
    async def login(self, info: GraphQLInfo, input: CredentialsInput) -> User | None:
        ctx = info.context
        data = parse(LoginInput, input)
        await ctx.server.rate_limiter.hit("login", "address", ctx.client_address)
        await ctx.server.rate_limiter.hit("login", "account", data.email)
        result = await users.login(ctx=ctx.server, data=data)
        _set_cookie(info, result.session_token)
        return user_node(result.user)

    @strawberry.mutation(
        permission_classes=_USER, description="End the session (revoked on the server)."
    )
    async def logout(self, info: GraphQLInfo) -> bool | None:
        await users.logout(principal=await user(info))
        if info.context.response is not None:
            clear_session_cookie(info.context.response, info.context.settings)
        return True

    @strawberry.mutation(permission_classes=_USER, description="End one of the account's sessions.")
    async def revoke_session(self, info: GraphQLInfo, id: strawberry.ID) -> bool | None:
        session_id = lookup_id(id, "session")
        await sessions.revoke(principal=await user(info), session_id=session_id)
        return True

    @strawberry.mutation(
        permission_classes=_USER,
        description="Change the password after checking the current one. Ends every other "
        "session of the account (this one stays); personal access tokens keep working. "
        "How many sessions ended.",
    )
    async def change_password(self, info: GraphQLInfo, input: ChangePasswordInput) -> int | None:
        principal = await user(info)
        data = parse(ChangePasswordModel, input)
        # Guessing the current password here costs what guessing at login does.
        await info.context.server.rate_limiter.hit("login", "account", principal.user_id)
        return await users.change_password(principal=principal, data=data)

    @strawberry.mutation(
        permission_classes=_USER,
        description="End every session of the account but this one; how many ended.",
    )
    async def revoke_other_sessions(self, info: GraphQLInfo) -> int | None:
        return await sessions.revoke_others(principal=await user(info))

    @strawberry.mutation(
        permission_classes=_USER,
        description="A 30-minute, single-use agent install token. `replaces`: an unused "
        "token of yours that stops working now (a new command replaces the old one).",
    )
    async def generate_install_token(
        self,
        info: GraphQLInfo,
        type: InstallTokenType = InstallTokenType.AGENT_INSTALL,
        replaces: strawberry.ID | None = None,
    ) -> NewInstallToken | None:
        principal = await user(info)
        parse_input(GenerateTokenInput, {"type": type.value})
        old = lookup_id(replaces, "install token") if replaces is not None else None
        ctx = info.context.server
        await ctx.rate_limiter.hit("token_generate", principal.user_id)
        if old is not None:
            await install_tokens.revoke(principal=principal, token_id=old)
        return new_install_token_node(await install_tokens.generate(ctx=ctx, principal=principal))

    @strawberry.mutation(
        permission_classes=_USER,
        description="Create or regenerate the personal access token (the old one dies at once).",
    )
    async def create_personal_access_token(
        self,
        info: GraphQLInfo,
        expires_in_days: Annotated[
            int | None,
            strawberry.argument(description="Whole days, 1 to 3650; null for no expiry."),
        ] = None,
    ) -> NewPersonalAccessToken | None:
        principal = await user(info)
        data = parse_input(CreatePatInput, {"expires_in_days": expires_in_days})
        return new_pat_node(await pats.create(principal=principal, data=data))

    @strawberry.mutation(
        permission_classes=_USER, description="False when there was no token to delete."
    )
    async def delete_personal_access_token(self, info: GraphQLInfo) -> bool | None:
        return await pats.delete(principal=await user(info))

    @strawberry.mutation(
        permission_classes=_USER,
        description="Deletes the agent with its GPUs, workers, connections, shares and metrics.",
    )
    async def delete_agent(self, info: GraphQLInfo, id: strawberry.ID) -> bool | None:
        agent_id = lookup_id(id, "agent")
        await agents.delete(ctx=info.context.server, principal=await user(info), agent_id=agent_id)
        return True

    @strawberry.mutation(permission_classes=_USER)
    async def create_worker(self, info: GraphQLInfo, input: CreateWorkerInput) -> Worker | None:
        principal = await user(info)
        data = parse(CreateWorkerModel, input)
        view = await workers.create(ctx=info.context.server, principal=principal, data=data)
        return worker_view_node(view)

    @strawberry.mutation(permission_classes=_USER)
    async def update_worker(
        self, info: GraphQLInfo, id: strawberry.ID, input: UpdateWorkerInput
    ) -> Worker | None:
        worker_id = lookup_id(id, "worker")
        principal = await user(info)
        data = parse(UpdateWorkerModel, input)
        view = await workers.update(
            ctx=info.context.server, principal=principal, worker_id=worker_id, data=data
        )
        return worker_view_node(view)

    @strawberry.mutation(
        permission_classes=_USER, description="Deletes the worker's shares and connections too."
    )
    async def delete_worker(self, info: GraphQLInfo, id: strawberry.ID) -> bool | None:
        worker_id = lookup_id(id, "worker")
        await workers.delete(
            ctx=info.context.server, principal=await user(info), worker_id=worker_id
        )
        return True

    @strawberry.mutation(
        permission_classes=_USER,
        description="Ask the worker's agent to restart it now, over the agent's push channel. "
        "True once asked; at most once: an agent not listening then never hears it (the "
        "worker's restarts count shows it). conflict for a disabled worker.",
    )
    async def restart_worker(self, info: GraphQLInfo, id: strawberry.ID) -> bool | None:
        principal = await user(info)
        worker_id = lookup_id(id, "worker")
        await worker_restarts.request(
            ctx=info.context.server, principal=principal, worker_id=worker_id
        )
        return True

    @strawberry.mutation(permission_classes=_USER)
    async def create_share(self, info: GraphQLInfo, input: CreateShareInput) -> Share | None:
        principal = await user(info)
        data = parse(CreateShareModel, input)
        view = await shares.create(ctx=info.context.server, principal=principal, data=data)
        return share_node(view)

    @strawberry.mutation(
        permission_classes=_USER,
        description="Change a link's expiry and use limit; its code and short link stay.",
    )
    async def extend_share(
        self, info: GraphQLInfo, id: strawberry.ID, input: ExtendShareInput
    ) -> Share | None:
        share_id = lookup_id(id, "share")
        data = parse(ExtendShareModel, input)
        view = await shares.extend(
            ctx=info.context.server, principal=await user(info), share_id=share_id, data=data
        )
        return share_node(view)

    @strawberry.mutation(permission_classes=_USER)
    async def delete_share(self, info: GraphQLInfo, id: strawberry.ID) -> bool | None:
        share_id = lookup_id(id, "share")
        await shares.delete(ctx=info.context.server, principal=await user(info), share_id=share_id)
        return True
