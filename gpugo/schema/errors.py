"""The one place where errors become GraphQL errors with the contract's ``extensions.code``.

- A GpugoError (raised by a service, an input declaration or authentication) keeps
  its message and gets ``extensions.code`` (and ``details`` for validation_error,
  with GraphQL's camelCase field names).
- A request error (syntax, unknown field, wrong variable type, a protection limit)
  keeps graphql-core's message and gets ``validation_error``.
- Anything else is a bug: logged with its trace, answered "Internal server error."
  with ``internal_error`` and nothing more.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext

from gpugo.errors import GpugoError, RateLimited, ServiceUnavailable
from gpugo.logs import loggable
from gpugo.outage import database_unreachable

log = logging.getLogger("gpugo.graphql")

INTERNAL_MESSAGE = "Internal server error."
REQUEST_ERROR_CODE = "validation_error"
_SNAKE = re.compile(r"_([a-z0-9])")


def camel_field(path: str) -> str:
    """``gpu_ids[1]`` -> ``gpuIds[1]``: details name fields as the GraphQL input does."""
    return _SNAKE.sub(lambda m: m.group(1).upper(), path)


def gpugo_error(error: GraphQLError) -> GpugoError | None:
    original = error.original_error
    # A refusal of ours first: one raised while handling an OSError (a webhook host that
    # does not resolve) still carries that OSError as its context, and is no outage.
    if isinstance(original, GpugoError):
        return original
    if original is not None and database_unreachable(original):
        return ServiceUnavailable()  # an outage, not a bug: the client may retry
    return None


def unreadable_literal(error: GraphQLError) -> bool:
    """A value of the document that graphql-core could not convert, e.g. an integer of
    5000 digits (Python refuses to read it): the client's error, found while validating."""
    return (
        error.path is None
        and bool(error.nodes)
        and isinstance(error.original_error, ValueError | OverflowError | RecursionError)
    )


def is_unexpected(error: GraphQLError) -> bool:
    """A bug rather than a refusal: to be logged and masked."""
    if gpugo_error(error) is not None or unreadable_literal(error):
        return False
    original = error.original_error
    if error.path is not None:
        # Raised while resolving a field, and not by our own error types.
        return True
    return original is not None and not isinstance(original, GraphQLError)


def extensions_for(error: GpugoError) -> dict[str, Any]:
    extensions: dict[str, Any] = {"code": error.code}
    if error.details:
        extensions["details"] = [
            {"field": camel_field(d.field), "message": d.message} for d in error.details
        ]
    if isinstance(error, RateLimited):
        extensions["retryAfter"] = error.retry_after
    return extensions


def _with(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message=message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


def to_client(error: GraphQLError) -> GraphQLError:
    """The error as the client sees it: its contract code, and nothing of a bug."""
    known = gpugo_error(error)
    if known is not None:
        return _with(error, known.message, extensions_for(known))
    if is_unexpected(error):
        return _with(error, INTERNAL_MESSAGE, {"code": "internal_error"})
    if unreadable_literal(error):
        # graphql-core's message quotes the whole value and Python's advice on limits.
        return _with(
            error, "A value in the document is out of range.", {"code": REQUEST_ERROR_CODE}
        )
    return _with(error, error.message, {"code": REQUEST_ERROR_CODE, **(error.extensions or {})})


def has_code(error: GraphQLError) -> bool:
    return bool(error.extensions and "code" in error.extensions)


class ErrorCodes(MaskErrors):
    """MaskErrors that masks only bugs and gives every other error its contract code."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return to_client(error)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [error if has_code(error) else to_client(error) for error in errors]

    def _process_result(self, result: object) -> None:
        # MaskErrors asks isinstance() of a runtime-checkable Protocol, slow on every
        # result; an attribute look-up says the same.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]


def log_unexpected(errors: list[GraphQLError], context: ExecutionContext | None) -> None:
    """Strawberry's ``process_errors``: log bugs with their trace, not refusals."""
    for error in errors:
        if not is_unexpected(error):
            continue
        original = error.original_error or error
        log.error(
            "unhandled error in GraphQL operation %s at %s",
            loggable(context.operation_name if context else None),
            loggable(".".join(str(p) for p in error.path or ()) or "-"),
            exc_info=(type(original), original, original.__traceback__),
        )
