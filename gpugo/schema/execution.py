"""The GraphQL executor: compiled completion where a selection allows it.

See compiled.py: a subtree that compiles is completed by generated code; anything
else, and any value the compiled run gives up on, takes graphql-core's own way, so
answers and errors are unchanged.
"""

from __future__ import annotations

import contextlib
from typing import Any

from graphql.pyutils import Path
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.extensions.context import StreamResultContextManager
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext
from strawberry.types.execution import StreamExecutionResult
from strawberry.utils.await_maybe import await_maybe

from gpugo.schema.compiled import operation_compilable, plan_for, run


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
                    return run(plan, self, result, path)
                except Exception:
                    # Abandon (e.g. a resolver had to load), or a resolver's exception:
                    # graphql-core completes the value again and reports any error with
                    # its path. The list's other items need not try the plan again.
                    self._abandoned.add(plan)
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )


class ResultHooksRunner(SchemaExtensionsRunner):
    """Strawberry's extension runner without per-result work that cannot change a result.

    Per streamed result (each subscription event) Strawberry builds a context manager
    over every extension, looking each one's hook up again, and asks every extension
    for its results. Here the hooks are looked up once: extensions that do not define
    ``get_results`` are not asked, and ``MaskErrors`` (ErrorCodes) is not called for a
    result without errors, the only results it could change.
    """

    def __init__(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension] | None = None
    ) -> None:
        super().__init__(execution_context, extensions)
        self._reporting = [e for e in self.extensions if _defines(e, "get_results")]
        streaming = [e for e in self.extensions if _defines(e, "on_stream_result")]
        self._on_results = streaming
        self._on_clean_results = [e for e in streaming if not isinstance(e, MaskErrors)]

    def on_stream_result(  # type: ignore[override]
        self, result: StreamExecutionResult
    ) -> StreamResultContextManager | contextlib.nullcontext[None]:
        clean = not getattr(result, "errors", None) and not getattr(result, "incremental", None)
        extensions = self._on_clean_results if clean else self._on_results
        if not extensions:
            return _NOTHING
        return StreamResultContextManager(extensions, result)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in self._reporting:
            data.update(await await_maybe(extension.get_results()))
        data.update(ctx.extensions_results)
        return data


_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()


def _defines(extension: SchemaExtension, hook: str) -> bool:
    return getattr(type(extension), hook) is not getattr(SchemaExtension, hook)
