"""Shared subscription runs: an event is executed once for every identical subscription.

A user with many tabs open holds many ``agentEvents`` subscriptions with the same
document and variables. Run one by one, each of them would execute every event's
selection, pass the result through every extension and encode it, for the same answer.
Here the subscriptions of one (document, operation, variables, user) share one run:
one bus subscription, one execution and one JSON encoding per event; each subscriber
only re-checks its own credential and sends the encoded frame on its own socket (where
compression, if negotiated, stays per connection).

What a subscriber sees is unchanged: the same ``next`` payloads (errors masked once,
by the run), its own ``unauthorized`` error when its credential no longer holds, the
run's refusal (``not_found``, a plan refusal, a bad document) as its ``error``, and
``complete`` when the stream ends. A slow socket never holds up the others: each
subscriber has a bounded backlog that drops its oldest frames, like the bus's queues.

Only the pure live streams are shared (``SHARED_FIELDS``): they send nothing but what
happens after the subscription starts, so joining a run already under way misses
nothing that a run of one's own would have sent.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from graphql import FieldNode, GraphQLError, OperationType, get_operation_ast, parse
from starlette.websockets import WebSocketDisconnect
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from gpugo import gcwatch
from gpugo.errors import GpugoError
from gpugo.schema.context import GraphQLContext
from gpugo.schema.errors import to_client
from gpugo.schema.loaders import Loaders

if TYPE_CHECKING:
    from strawberry.schema import BaseSchema

log = logging.getLogger("gpugo.graphql")

# Root fields whose subscriptions may share a run (see the module's docstring).
SHARED_FIELDS = frozenset({"agentEvents", "agentMetrics"})
# Frames waiting for one slow subscriber; past it, its oldest are dropped.
BACKLOG = 256
# The token limit of the schema (schema/__init__.py), for the look at the document here.
MAX_TOKENS = 2000

Key = tuple[str, str | None, bytes, str]
# Frames sent per pass of the event loop, all sockets together. An event for a user with
# 100 tabs open, times the agents that changed in the same second, makes thousands of
# frames at once; sent in one pass they hold up every request read meanwhile. Spread
# over passes, a request read in between is served within a few passes (5,000 tabs, 50
# agents changing each second: their reports' p50/p99 193/458 ms -> 105/285 ms; 32 a
# pass gave 112/310 ms; deliveries unchanged, bench/README.md).
FRAMES_PER_PASS = 8


@functools.lru_cache(maxsize=256)
def shareable(query: str, operation_name: str | None) -> bool:
    """The operation is a subscription to shared fields only (parsed once per document)."""
    try:
        document = parse(query, no_location=True, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return False  # the run of its own reports it
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.SUBSCRIPTION:
        return False
    selections = operation.selection_set.selections
    return all(
        isinstance(node, FieldNode) and node.name.value in SHARED_FIELDS and not node.directives
        for node in selections
    )


class _End:
    """The run is over: ``complete``."""


END = _End()


class Subscriber:
    """One operation of one socket, fed by its run."""

    __slots__ = ("_frames", "_wake")

    def __init__(self) -> None:
        # Encoded payloads (str), a list of errors (the run's refusal), or END.
        self._frames: deque[str | list[GraphQLError] | _End] = deque(maxlen=BACKLOG)
        self._wake = asyncio.Event()

    def push(self, item: str | list[GraphQLError] | _End) -> None:
        self._frames.append(item)
        self._wake.set()

    async def next(self) -> str | list[GraphQLError] | _End:
        while not self._frames:
            self._wake.clear()
            await self._wake.wait()
        return self._frames.popleft()


class FramePacer:
    """Turns to send a frame: at most ``per_pass`` per pass of the event loop, the others
    on the following passes in the order they asked (each waits on a future of its own:
    nothing spins while it waits)."""

    def __init__(self, per_pass: int = FRAMES_PER_PASS) -> None:
        self.per_pass = per_pass
        self._left = per_pass
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._refill_pending = False

    async def turn(self) -> None:
        if self._left > 0 and not self._waiting:
            self._left -= 1
            self._refill_soon()
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        self._refill_soon()
        await turn

    def _refill_soon(self) -> None:
        # call_soon runs on the next pass, after the loop has looked at its sockets.
        if not self._refill_pending:
            self._refill_pending = True
            asyncio.get_running_loop().call_soon(self._refill)

    def _refill(self) -> None:
        self._refill_pending = False
        self._left = self.per_pass
        while self._left > 0 and self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():  # a cancelled waiter (its socket closed) takes no turn
                turn.set_result(None)
                self._left -= 1
        if self._waiting:
            self._refill_soon()


class SharedRun:
    """One subscription execution whose results go to every subscriber of its key."""

    def __init__(self, runs: SharedRuns, key: Key) -> None:
        self._runs = runs
        self.key = key
        self.subscribers: set[Subscriber] = set()
        self.task: asyncio.Task[None] | None = None
        self.results = 0

    def leave(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        if not self.subscribers and self.task is not None:
            # Nobody left: the run ends (its bus subscription with it).
            self._runs.forget(self)
            self.task.cancel()

    async def run(self, schema: BaseSchema, context: GraphQLContext, operation: Operation) -> None:
        try:
            source = await schema.subscribe(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                operation_name=operation.operation_name,
            )
            async with aclosing(source):
                first = True
                async for result in source:
                    if first and isinstance(result, PreExecutionError):
                        self._runs.forget(self)
                        for subscriber in self.subscribers:
                            subscriber.push(list(result.errors or ()))
                        return
                    first = False
                    if not isinstance(result, ExecutionResult):
                        continue  # incremental delivery: subscriptions never produce it
                    payload = _encode_payload(result)
                    self.results += 1
                    for subscriber in self.subscribers:
                        subscriber.push(payload)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("shared subscription run failed")
        finally:
            self._runs.forget(self)
            for subscriber in self.subscribers:
                subscriber.push(END)


def _encode_payload(result: ExecutionResult) -> str:
    """The ``next`` payload as Strawberry's ``Operation.send_next`` builds it, encoded."""
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return orjson.dumps(payload).decode()


class SharedRuns:
    """The runs of one process, by key."""

    def __init__(self) -> None:
        self._runs: dict[Key, SharedRun] = {}
        self.pacer = FramePacer()

    def __len__(self) -> int:
        return len(self._runs)

    def join(
        self, key: Key, subscriber: Subscriber, start: Callable[[SharedRun], asyncio.Task[None]]
    ) -> SharedRun:
        run = self._runs.get(key)
        if run is None:
            run = self._runs[key] = SharedRun(self, key)
            run.subscribers.add(subscriber)
            run.task = start(run)
        else:
            run.subscribers.add(subscriber)
        return run

    def forget(self, run: SharedRun) -> None:
        if self._runs.get(run.key) is run:
            del self._runs[run.key]


class FanOutTransportWSHandler(BaseGraphQLTransportWSHandler[GraphQLContext, None]):
    """graphql-transport-ws with shared runs for the live streams; anything else (queries
    and mutations over the socket, other subscriptions) runs as Strawberry runs it."""

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        gcwatch.freeze_soon()  # the socket is set up and stays: out of the full passes

    async def run_operation(self, operation: Operation[GraphQLContext, None]) -> None:
        key = await self._key(operation)
        if key is None:
            await super().run_operation(operation)
            return
        runs: SharedRuns = self.view.shared_runs  # type: ignore[attr-defined]
        subscriber = Subscriber()
        run = runs.join(key, subscriber, lambda run: self._start(run, operation))
        gcwatch.freeze_soon()
        try:
            await self._forward(operation, subscriber)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the socket went away: its handler cleans up
        finally:
            run.leave(subscriber)

    async def _key(self, operation: Operation[GraphQLContext, None]) -> Key | None:
        if not isinstance(operation.query, str) or not shareable(
            operation.query, operation.operation_name
        ):
            return None
        try:
            principal = await self.context.principal()
        except GpugoError:
            return None  # its own run answers the refusal
        variables = orjson.dumps(operation.variables or {}, option=orjson.OPT_SORT_KEYS)
        return (operation.query, operation.operation_name, variables, principal.user_id)

    def _start(
        self, run: SharedRun, operation: Operation[GraphQLContext, None]
    ) -> asyncio.Task[None]:
        # The run's own context: the subscriber's user, checked when it joined; every
        # subscriber re-checks its own credential before each frame (_forward).
        own = self.context
        context = GraphQLContext(
            server=own.server,
            request=own.request,
            response=None,
            loaders=Loaders(),
            connection_params=own.connection_params,
            _principal=own._principal,
            _resolved_at=time.monotonic(),
            shared=True,
        )
        return asyncio.get_running_loop().create_task(run.run(self.schema, context, operation))

    async def _forward(
        self, operation: Operation[GraphQLContext, None], subscriber: Subscriber
    ) -> None:
        prefix = '{"id":' + orjson.dumps(operation.id).decode() + ',"type":"next","payload":'
        send_text = self.websocket.ws.send_text  # type: ignore[attr-defined]
        pacer = self.view.shared_runs.pacer  # type: ignore[attr-defined]
        while True:
            item = await subscriber.next()
            await pacer.turn()
            if isinstance(item, _End):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
                return
            if isinstance(item, list):
                await operation.send_initial_errors(item)
                return
            try:
                # This socket's credential: a revoked PAT or session ends its flow only.
                await self.context.principal()
            except GpugoError as error:
                refusal = to_client(GraphQLError(error.message, original_error=error))
                await operation.send_next(ExecutionResult(data=None, errors=[refusal]))
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
                return
            if operation.completed:
                return
            await send_text(prefix + item + "}")
