"""What a principal may reach, as filters for the queries that fetch it.

A user reaches everything of theirs. An agent secret on the user endpoints (the
shipped CLI on a registered host sends it) acts for the agent's owner within that
one agent: the agent itself, its workers and their share links. Anything else is
simply not found, as for a stranger. The filters go into the queries themselves:
ownership is never checked after fetching.
"""

from __future__ import annotations

from tortoise.expressions import Q

from gpugo.auth.principal import Principal


def agents(principal: Principal) -> Q:
    """On ``Agent``."""
    if principal.agent_id is not None:
        return Q(user_id=principal.user_id, id=principal.agent_id)
    return Q(user_id=principal.user_id)


def workers(principal: Principal) -> Q:
    """On ``Worker``."""
    if principal.agent_id is not None:
        return Q(agent__user_id=principal.user_id, agent_id=principal.agent_id)
    return Q(agent__user_id=principal.user_id)


def shares(principal: Principal) -> Q:
    """On ``Share``."""
    if principal.agent_id is not None:
        return Q(user_id=principal.user_id, worker__agent_id=principal.agent_id)
    return Q(user_id=principal.user_id)
