"""/graphql as the OpenAPI document describes it (the schema itself is GraphQL's own)."""

from __future__ import annotations

from typing import Any, NotRequired

from typing_extensions import TypedDict


class GraphQLRequest(TypedDict):
    query: str
    variables: NotRequired[dict[str, Any] | None]
    operationName: NotRequired[str | None]


class GraphQLFieldError(TypedDict):
    field: str
    message: str


class GraphQLErrorExtensions(TypedDict):
    # The contract's code (unauthorized, not_found, validation_error, ...).
    code: str
    details: NotRequired[list[GraphQLFieldError]]
    retryAfter: NotRequired[int]


class GraphQLLocation(TypedDict):
    line: int
    column: int


class GraphQLError(TypedDict):
    message: str
    locations: NotRequired[list[GraphQLLocation]]
    path: NotRequired[list[str | int]]
    extensions: GraphQLErrorExtensions


class GraphQLResponse(TypedDict):
    data: NotRequired[dict[str, Any] | None]
    errors: NotRequired[list[GraphQLError]]


class GraphQLRefusal(TypedDict):
    """A refusal before any GraphQL work (method, media type, CSRF, body size, bad JSON)."""

    errors: list[GraphQLError]
