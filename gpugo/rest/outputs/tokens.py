"""/api/v1/tokens bodies."""

from __future__ import annotations

from typing import Literal, NotRequired

from typing_extensions import TypedDict

from gpugo.rest.outputs.common import NullableTimestamp, Timestamp


class GenerateTokenResponse(TypedDict):
    token_id: str
    token: str
    expires_at: Timestamp
    install_command: str


class TokenAgent(TypedDict):
    agent_id: str
    hostname: str


class TokenStatusResponse(TypedDict):
    token_id: str
    status: Literal["active", "used", "expired"]
    expires_at: Timestamp
    used_at: NullableTimestamp
    is_expired: bool
    # Only once the token registered an agent.
    agent: NotRequired[TokenAgent]


class PatInfo(TypedDict):
    exists: bool
    expires_at: NullableTimestamp
    last_used_at: NullableTimestamp
    created_at: NullableTimestamp


class PatResponse(TypedDict):
    token: str
    expires_at: NullableTimestamp
    created_at: Timestamp
