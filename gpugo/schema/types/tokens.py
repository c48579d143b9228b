from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from gpugo.services import install_tokens, pats


@strawberry.enum
class InstallTokenType(Enum):
    AGENT_INSTALL = "agent_install"


@strawberry.enum
class InstallTokenState(Enum):
    ACTIVE = "active"
    USED = "used"
    EXPIRED = "expired"


@strawberry.type(description="A new install token; `token` is shown only here.")
class NewInstallToken:
    id: strawberry.ID
    token: str
    expires_at: datetime
    install_command: str = strawberry.field(
        description="Shell line that installs the agent and registers it with this server."
    )
    endpoint_warning: str | None = strawberry.field(
        default=None,
        description="Why machines may not reach this server at the command's address "
        "(a loopback public URL), and the setting to change; null when none is known.",
    )


@strawberry.type(description="The agent that registered with an install token.")
class InstallTokenAgent:
    agent_id: strawberry.ID | None = strawberry.field(
        description="Null once the agent has been deleted."
    )
    hostname: str | None


@strawberry.type
class InstallToken:
    id: strawberry.ID
    status: InstallTokenState
    expires_at: datetime
    used_at: datetime | None
    is_expired: bool
    agent: InstallTokenAgent | None = strawberry.field(description="Set once the token is used.")


@strawberry.type(description="The personal access token, without its secret.")
class PersonalAccessTokenInfo:
    exists: bool
    expires_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime | None


@strawberry.type(description="A new personal access token; `token` is shown only here.")
class NewPersonalAccessToken:
    token: str
    expires_at: datetime | None
    created_at: datetime


def new_install_token_node(new: install_tokens.NewInstallToken) -> NewInstallToken:
    return NewInstallToken(
        id=strawberry.ID(new.token_id),
        token=new.token,
        expires_at=new.expires_at,
        install_command=new.install_command,
        endpoint_warning=new.endpoint_warning,
    )


def install_token_node(state: install_tokens.InstallTokenStatus) -> InstallToken:
    agent = None
    if state.agent is not None:
        agent_id = state.agent.agent_id
        agent = InstallTokenAgent(
            agent_id=strawberry.ID(agent_id) if agent_id else None, hostname=state.agent.hostname
        )
    return InstallToken(
        id=strawberry.ID(state.token_id),
        status=InstallTokenState(state.status),
        expires_at=state.expires_at,
        used_at=state.used_at,
        is_expired=state.is_expired,
        agent=agent,
    )


def pat_info_node(info: pats.PatInfo) -> PersonalAccessTokenInfo:
    return PersonalAccessTokenInfo(
        exists=info.exists,
        expires_at=info.expires_at,
        last_used_at=info.last_used_at,
        created_at=info.created_at,
    )


def new_pat_node(new: pats.NewPat) -> NewPersonalAccessToken:
    return NewPersonalAccessToken(
        token=new.token, expires_at=new.expires_at, created_at=new.created_at
    )
