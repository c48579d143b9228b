"""GraphQL test fixtures: every user-facing test runs once by cookie and once by PAT."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.schema.support import Gql, as_cookie, as_pat
from tests.support import Api

MakeGql = Callable[..., Awaitable[Gql]]


@pytest.fixture(params=["cookie", "pat"])
def gql_user(request: pytest.FixtureRequest, api: Api) -> MakeGql:
    """``await gql_user(plan=...)``: a new user speaking GraphQL by cookie or by PAT."""

    async def make(plan: str = "free", email: str | None = None) -> Gql:
        user = await api.user(email=email, plan=plan)
        return await (as_cookie(user) if request.param == "cookie" else as_pat(user))

    return make
