"""The GraphQL executor: compiled completion where a selection allows it.

See compiled.py: a subtree that compiles is completed by generated code; anything
else, and any value the compiled run gives up on, takes graphql-core's own way, so
answers and errors are unchanged.
"""

from __future__ import annotations

from typing import Any

from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gpugo.schema.compiled import operation_compilable, plan_for


class GpugoExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        middleware = self.middleware_manager
        # Field middleware (an extension's resolve hook) must see every field: no plans.
        no_middleware = middleware is None or not middleware.middlewares
        self._abandoned: set[Any] = set()
        self._compiling = no_middleware and operation_compilable(
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
