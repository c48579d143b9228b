"""What one GraphQL request may ask the database to aggregate, decided before it runs.

``agentMetrics`` is the one field whose cost grows with its arguments: the database
reads every sample of the range and groups them per GPU and bucket. Aliases let a
document repeat it, so the cost is summed over every ``agentMetrics`` of the
operation (aliases and fragments included) from the document and its variables,
before any resolver runs; over the budget, nothing runs (``validation_error``).

Per ``agentMetrics``: buckets x GPUs x fields, where

- buckets: of the range, but at least one per row the database reads: per
  ``RANGE_UNIT_SECONDS`` from the raw samples (it reads every sample in the range
  whatever the bucket width, so one wide bucket over a day costs like a day of
  10-minute buckets), per rollup width from a rollup tier (``metrics.tier``). Only
  the retention window can hold samples, so a longer range counts as that window;
- GPUs: the most an agent of a plan with metrics may have, plus the host's series
  (the agent's real count would take a query);
- fields: the values the database aggregates per GPU and bucket, selected or not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationType,
    SelectionSetNode,
    get_operation_ast,
)
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.extensions import SchemaExtension

from gpugo.errors import ValidationFailed
from gpugo.schema import metrics
from gpugo.settings import Settings

FIELD = "agentMetrics"
RANGE_UNIT_SECONDS = 600
# Per GPU and bucket: the sample count, 5 averages, 4 maxima and the VRAM total.
AGGREGATED_FIELDS = 11


def metrics_gpus(settings: Settings) -> int:
    """The GPU series one ``agentMetrics`` may return: the largest agent, and its host."""
    gpus = [limits.max_gpus for limits in settings.plan_limits.values() if limits.metrics]
    return max(gpus, default=0) + 1


def agent_metrics_cost(
    *, start: datetime, end: datetime, bucket_seconds: int, gpus: int, retention: timedelta
) -> int:
    """The cost of one ``agentMetrics``; 0 for arguments it refuses without a query."""
    try:
        metrics.window(start=start, end=end, bucket_seconds=bucket_seconds)
    except ValidationFailed:
        return 0
    span = min((end - start).total_seconds(), retention.total_seconds())
    unit = metrics.tier(bucket_seconds) or RANGE_UNIT_SECONDS
    buckets = max(
        math.ceil(span / bucket_seconds),
        math.ceil(span / unit),
    )
    return buckets * gpus * AGGREGATED_FIELDS


def _root_fields(document: DocumentNode, selection_set: SelectionSetNode) -> Iterator[FieldNode]:
    """The root fields of an operation, through fragments, each fragment once (as
    graphql-core collects them). Directives are ignored: a skipped field still counts."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    visited: set[str] = set()
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in visited and name in fragments:
                    visited.add(name)
                    pending.append(fragments[name].selection_set)


def document_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    *,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    gpus: int,
    retention: timedelta,
) -> int:
    """The summed cost of the operation's ``agentMetrics`` fields (0 without any)."""
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return 0
    query = schema.query_type
    if query is None or FIELD not in query.fields:
        return 0
    # Fields with one response key are merged into one execution: counted once.
    nodes: dict[str, FieldNode] = {}
    for node in _root_fields(document, operation.selection_set):
        if node.name.value == FIELD:
            nodes.setdefault((node.alias or node.name).value, node)
    if not nodes:
        return 0
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        return 0  # bad variables: execution refuses them before any resolver
    total = 0
    for node in nodes.values():
        try:
            args = get_argument_values(query.fields[FIELD], node, coerced)
        except GraphQLError:
            continue
        total += agent_metrics_cost(
            start=args["from"],
            end=args["to"],
            bucket_seconds=args["bucket"],
            gpus=gpus,
            retention=retention,
        )
    return total


class MetricsLimits(NamedTuple):
    """What the budget is measured against, worked out once from the settings."""

    budget: int
    gpus: int
    retention: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> MetricsLimits:
        return cls(
            budget=settings.metrics_query_budget,
            gpus=metrics_gpus(settings),
            retention=timedelta(days=settings.metrics_retention_days),
        )


class MetricsBudget(SchemaExtension):
    """Refuses an operation whose ``agentMetrics`` would cost more than the budget."""

    def __init__(self, limits: MetricsLimits) -> None:
        super().__init__()
        self.budget, self.gpus, self.retention = limits

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None:
            cost = document_cost(
                context.schema._schema,
                context.graphql_document,
                operation_name=context.operation_name,
                variables=context.variables,
                gpus=self.gpus,
                retention=self.retention,
            )
            if cost > self.budget:
                raise ValidationFailed(
                    f"This request asks for about {cost:,} metric values; at most "
                    f"{self.budget:,} per request. Ask for fewer agentMetrics at once, a "
                    "shorter range or wider buckets (a range counts at least one bucket "
                    f"per {RANGE_UNIT_SECONDS // 60} minutes)."
                )
        yield
