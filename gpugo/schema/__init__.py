"""GraphQL for the dashboard and integrators, over the same services as REST."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLError
from starlette.routing import BaseRoute, Route, WebSocketRoute
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gpugo.context import ServerContext
from gpugo.schema.cost import MetricsBudget, MetricsLimits
from gpugo.schema.errors import ErrorCodes, log_unexpected
from gpugo.schema.execution import GpugoExecutionContext, ResultHooksRunner
from gpugo.schema.mutations import Mutation
from gpugo.schema.queries import Query
from gpugo.schema.scalars import SCALAR_MAP
from gpugo.schema.subscriptions import Subscription
from gpugo.schema.view import GraphQLView
from gpugo.settings import Settings

PATH = "/graphql"
MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000
# Parsed documents and validation results kept per process (LRU).
CACHE_SIZE = 256


# graphql-core's " Did you mean 'x'?" (fields, arguments, types, enum values, input fields)
# and " Did you mean the enum value 'X'?": always at the end of a message or of a clause.
_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")


class GpugoSchema(strawberry.Schema):
    def __init__(self, *args: Any, hide_suggestions: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hide_suggestions = hide_suggestions

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Every error of every request (over HTTP and WebSockets) passes here, before it is
        # answered. With introspection off, the names of arguments, enum values, input fields
        # and types stay unknown too: Strawberry's disable_field_suggestions strips only the
        # suggestions of fields, and graphql-core's rules make the others.
        if self.hide_suggestions:
            for error in errors:
                if "Did you mean" in error.message:
                    error.message = _SUGGESTION.sub("", error.message)
        # Refusals (not_found, validation_error...) are answers, not incidents: only bugs
        # are logged, with their trace.
        log_unexpected(errors, execution_context)

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> ResultHooksRunner:
        return ResultHooksRunner(execution_context, extensions)


Extension = type[SchemaExtension] | Callable[[], SchemaExtension]


def _fixed_rules(*limiters: AddValidationRules) -> Callable[[], SchemaExtension]:
    """A fresh extension per request that adds the limiters' rule classes, built once.

    The depth and alias limiters create a new rule class in ``__init__``; as
    ValidationCache keys on the rules, fresh classes per request would never hit it.
    One extension carries them all (each extension costs hooks on every request).
    """
    rules = [rule for limiter in limiters for rule in limiter.validation_rules]
    return lambda: AddValidationRules(rules)


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema; ``settings.graphql_explorer_enabled`` allows introspection and suggestions."""
    explorer = settings.graphql_explorer_enabled if settings is not None else True
    return _schema(explorer, MetricsLimits.from_settings(settings or Settings()))


# Built once per process for what it depends on (~28 ms a build): it holds no state of
# an app's, so apps of one process with equal settings (tests, mostly) share it.
@lru_cache(maxsize=8)
def _schema(explorer: bool, limits: MetricsLimits) -> strawberry.Schema:
    # Extensions are factories: one instance per request, none shared between requests.
    extensions: list[Extension] = [
        # The token limit is applied while parsing, so an oversized document is never parsed
        # into a tree; the depth, alias and introspection rules run during validation.
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
        _fixed_rules(
            QueryDepthLimiter(max_depth=MAX_DEPTH),
            MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        ),
        # The cost of agentMetrics, from the document and variables, before any resolver.
        lambda: MetricsBudget(limits),
        ErrorCodes,
    ]
    if not explorer:
        extensions.append(DisableIntrospection)
    return GpugoSchema(
        execution_context_class=GpugoExecutionContext,
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        hide_suggestions=not explorer,
    )


def routes(server: ServerContext) -> list[BaseRoute]:
    view = GraphQLView(build_schema(server.settings), server)
    # Route, not Mount: a Mount answers POST /graphql with a 307 to /graphql/.
    return [Route(PATH, view), WebSocketRoute(PATH, view)]


def export_sdl(path: str) -> None:
    """Write the schema in SDL (``gpugo export-schema``); it does not depend on settings."""
    Path(path).write_text(build_schema().as_str() + "\n", encoding="utf-8")
