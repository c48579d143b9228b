"""Who may call a field: a user, by session cookie or PAT (never an agent or install token)."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from gpugo.auth.principal import Principal
from gpugo.schema.context import GraphQLInfo


class IsUser(BasePermission):
    message = "Authentication required."
    error_extensions = {"code": "unauthorized"}

    async def has_permission(self, source: Any, info: GraphQLInfo, **kwargs: Any) -> bool:
        # Raises the precise GpugoError (unauthorized, or forbidden for a cross-site
        # cookie); the principal is cached on the context for the resolver.
        await info.context.principal()
        return True


async def user(info: GraphQLInfo) -> Principal:
    return await info.context.principal()
