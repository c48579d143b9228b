"""The GraphQL executor, with a short cut for plain leaf fields.

A dashboard query resolves over a thousand fields, and nearly all of them are
leaves read straight off a node (``hostname``, ``vramMb``...). graphql-core runs
each through the same machinery as a field with a resolver: an info object, the
resolver wrappers, awaitable checks, value completion. For a field that Strawberry
itself calls "basic" (no resolver, no permission, no extension), with no arguments
and a scalar or enum type, this context reads the attribute and coerces it directly.
Anything else, and every null or uncoercible value (the error paths), takes
graphql-core's own way, so answers and errors are unchanged.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLField, GraphQLObjectType, is_leaf_type, is_non_null_type
from graphql.execution.executor import gather_with_cancel
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gpugo.schema.compiled import operation_compilable, plan_for

_BACKREF = "strawberry-definition"
_NO_PLAN = object()
# id(field definition) -> (that definition, how to read it). The definition is kept and
# compared: a schema built later (tests build one per app) may get a freed id.
_PLANS: dict[int, tuple[GraphQLField, Any]] = {}


def _plan(field_def: GraphQLField) -> Any:
    entry = _PLANS.get(id(field_def))
    if entry is not None and entry[0] is field_def:
        return entry[1]
    plan = _NO_PLAN
    strawberry_field = (field_def.extensions or {}).get(_BACKREF)
    resolve = field_def.resolve
    if (
        strawberry_field is not None
        and strawberry_field.is_basic_field
        and getattr(resolve, "_is_default", False)
        and getattr(resolve, "__name__", "") == "_get_basic_result"
        and not field_def.args
    ):
        type_ = field_def.type
        non_null = is_non_null_type(type_)
        named = type_.of_type if non_null else type_  # type: ignore[union-attr]
        if is_leaf_type(named):
            plan = (strawberry_field.python_name, named, strawberry_field.default_resolver)
    _PLANS[id(field_def)] = (field_def, plan)
    return plan


class GpugoExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        middleware = self.middleware_manager
        self._shortcuts = middleware is None or not middleware.middlewares
        # id(grouped field set) -> (that set, [(response name, field details, plan or
        # None)]); the executor memoises grouped field sets, so list items share one
        # entry. The set is kept (and compared) so that its id cannot be reused meanwhile.
        self._field_plans: dict[int, tuple[Any, Any, list[tuple[str, Any, Any]]]] = {}
        self._abandoned: set[Any] = set()
        self._compiling = self._shortcuts and operation_compilable(
            self.operation, self.fragment_definitions
        )

    def complete_value(
        self,
        return_type: Any,
        field_details_list: Any,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """A compiled plan of this subtree when it has one (see compiled.py), else
        graphql-core's completion (which tries again one level down)."""
        if self._compiling and result is not None and not isinstance(result, Exception):
            plan = plan_for(self, return_type, field_details_list)
            if plan is not None and plan not in self._abandoned:
                try:
                    return plan(result, path)
                except Exception:
                    # Abandon (e.g. a resolver had to load), or a resolver's exception:
                    # graphql-core completes the value again and reports any error with
                    # its path. The list's other items need not try the plan again.
                    self._abandoned.add(plan)
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _plans(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> list[Any]:
        plans = []
        for response_name, field_details_list in grouped_field_set.items():
            plan = None
            node = field_details_list[0].node
            field_def = self.schema.get_field(parent_type, node.name.value)
            if self._shortcuts and field_def is not None and not node.arguments:
                found = _plan(field_def)
                plan = None if found is _NO_PLAN else found
            plans.append((response_name, field_details_list, plan))
        self._field_plans[id(grouped_field_set)] = (grouped_field_set, parent_type, plans)
        return plans

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Any,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        """graphql-core's execute_fields, reading plain leaves without the field machinery."""
        entry = self._field_plans.get(id(grouped_field_set))
        if entry is not None and entry[0] is grouped_field_set and entry[1] is parent_type:
            plans = entry[2]
        else:
            plans = self._plans(parent_type, grouped_field_set)
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list, plan in plans:
                if plan is not None:
                    name, leaf_type, read = plan
                    value = read(source_value, name)
                    if value is not None and not is_awaitable(value):
                        coerced = leaf_type.coerce_output_value(value)
                        if coerced is not Undefined and coerced is not None:
                            results[response_name] = coerced
                            continue
                    # null or not coercible: graphql-core's own path (and its errors)
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                field = awaitable_fields[0]
                results[field] = await results[field]
            else:
                awaited = await gather_with_cancel(*(results[f] for f in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()
