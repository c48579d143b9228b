"""Who a request is, once its credential has been checked."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CredentialKind(StrEnum):
    SESSION = "session"
    PAT = "pat"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: CredentialKind
    user_id: str
    plan: str
    # The agent itself, for agent-secret principals.
    agent_id: str | None = None
    # The session row, for session principals (logout revokes it).
    session_id: str | None = None
    # The token row, for PAT principals (the audit log names it).
    pat_id: str | None = None

    @property
    def is_user(self) -> bool:
        return self.kind in (CredentialKind.SESSION, CredentialKind.PAT)
