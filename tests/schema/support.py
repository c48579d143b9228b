"""GraphQL over HTTP for tests: POST /graphql as a cookie user (with Origin) or a PAT user."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import ORIGIN, PUBLIC_URL, User

GRAPHQL = "/graphql"


async def post(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return await http.post(GRAPHQL, json=body, headers=headers or {})


def data(response: httpx.Response) -> dict[str, Any]:
    """The ``data`` of a successful answer (HTTP 200, no errors)."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def error(response: httpx.Response, code: str, status: int = 200) -> dict[str, Any]:
    """The single error of an answer, checked for its contract code."""
    assert response.status_code == status, response.text
    body = response.json()
    errors = body["errors"]
    assert len(errors) == 1, body
    assert errors[0]["extensions"]["code"] == code, body
    assert isinstance(errors[0]["message"], str) and errors[0]["message"]
    return errors[0]


class Gql:
    """A user speaking GraphQL: by session cookie (sending our Origin) or by PAT."""

    def __init__(self, user: User, *, pat: str | None = None) -> None:
        self.user = user
        self.pat = pat

    @property
    def headers(self) -> dict[str, str]:
        if self.pat is not None:
            return {"Authorization": f"Bearer {self.pat}"}
        return dict(ORIGIN)

    async def __call__(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        if self.pat is not None:
            # A fresh client without the cookie jar: the PAT alone authenticates.
            async with httpx.AsyncClient(
                transport=self.user.http._transport, base_url=PUBLIC_URL
            ) as http:
                return await post(http, query, variables, headers=self.headers)
        return await post(self.user.http, query, variables, headers=self.headers)

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return data(await self(query, variables))


async def as_cookie(user: User) -> Gql:
    return Gql(user)


async def as_pat(user: User) -> Gql:
    return Gql(user, pat=user.pat or await user.create_pat())
