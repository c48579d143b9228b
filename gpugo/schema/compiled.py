"""Compiled completion: a selection turned once into plain Python that builds the answer.

graphql-core completes a value field by field: for each of the ~1,400 values of a
dashboard page it builds an info object, runs the resolver wrappers, checks for
awaitables, and walks the type (non-null, list, leaf or object) again. The work
depends only on the document and the schema, so for a selection whose whole subtree
allows it, this module compiles it once into nested closures that read the
attributes, call the synchronous resolvers and coerce the leaves directly.

A subtree compiles when every field in it is a plain attribute or a synchronous
resolver without arguments, permissions or field extensions, every type is an object
type without ``is_type_of``, a list, a scalar or an enum, and the document carries no
directives (so the plan cannot depend on variables). Anything else, and at run time
anything unusual (an awaitable, a null where the schema says non-null, a value that
does not coerce, an exception), abandons the compiled run: graphql-core completes the
same value its own way, with its own errors and paths. Compiled runs only read, so
running a subtree again is safe; an abandoned coroutine is closed.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLString,
    is_leaf_type,
)
from graphql.language import FieldNode, FragmentDefinitionNode, OperationDefinitionNode
from graphql.pyutils import Path, Undefined
from strawberry.types.field import StrawberryField
from strawberry.types.info import Info

_BACKREF = "strawberry-definition"
# Compiled subtrees kept per process: a few per distinct document, bounded like the
# parser and validation caches.
MAX_PLANS = 1024
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1

# (value, path) -> completed value, or raises Abandon. During a compiled run a path is
# a plain tuple (prev, key, typename), made into a graphql Path only when a resolver
# asks its info for more than the context.
Completer = Callable[[Any, Any], Any]


def to_path(chain: Any) -> Path | None:
    if chain is None or isinstance(chain, Path):
        return chain
    prev, key, typename = chain
    return Path(to_path(prev), key, typename)


class Abandon(Exception):
    """This value needs graphql-core's own completion."""


class NotCompilable(Exception):
    """This selection has something only graphql-core's completion handles."""


_ABANDON = Abandon()


class LazyInfo:
    """What a compiled resolver call gets as ``info``: the context at once, anything
    else (path, selections...) from a real Info built on first use."""

    __slots__ = ("_executor", "_field", "_field_def", "_nodes", "_parent", "_path", "_real")

    def __init__(
        self,
        executor: Any,
        field: StrawberryField,
        field_def: GraphQLField,
        nodes: list[FieldNode],
        parent: GraphQLObjectType,
        path: Any,
    ) -> None:
        self._executor = executor
        self._field = field
        self._field_def = field_def
        self._nodes = nodes
        self._parent = parent
        self._path = path
        self._real: Info | None = None

    @property
    def context(self) -> Any:
        return self._executor.context_value

    def __getattr__(self, name: str) -> Any:
        real = self._real
        if real is None:
            raw: GraphQLResolveInfo = self._executor.build_resolve_info(
                self._field_def, self._nodes, self._parent, to_path(self._path)
            )
            real = self._real = Info(_raw_info=raw, _field=self._field)
        return getattr(real, name)


def _has_directives(node: Any) -> bool:
    if getattr(node, "directives", None):
        return True
    selection_set = getattr(node, "selection_set", None)
    return selection_set is not None and any(
        _has_directives(selection) for selection in selection_set.selections
    )


_OPERATIONS: dict[int, tuple[OperationDefinitionNode, bool]] = {}


def operation_compilable(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> bool:
    """No directive anywhere (skip/include would make a plan depend on variables)."""
    entry = _OPERATIONS.get(id(operation))
    if entry is not None and entry[0] is operation:
        return entry[1]
    ok = not _has_directives(operation) and not any(map(_has_directives, fragments.values()))
    if len(_OPERATIONS) >= MAX_PLANS:
        _OPERATIONS.clear()
    _OPERATIONS[id(operation)] = (operation, ok)
    return ok


def _leaf(named: Any) -> Completer:
    """Coerce a non-null leaf; the built-in scalars' own types pass as they are."""
    coerce = named.coerce_output_value
    exact: type | None = None
    if named is GraphQLString or named is GraphQLID:
        exact = str
    elif named is GraphQLBoolean:
        exact = bool

    def complete(value: Any, path: Any) -> Any:
        if value.__class__ is exact:
            return value
        coerced = coerce(value)
        if coerced is Undefined or coerced is None:
            raise _ABANDON
        return coerced

    def complete_int(value: Any, path: Any) -> Any:
        if value.__class__ is int and _INT_MIN <= value <= _INT_MAX:
            return value
        return complete(value, path)

    return complete_int if named is GraphQLInt else complete


class Compiler:
    """Compiles subtrees for one schema, with the executor's field collection."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.schema = executor.schema

    def value(self, type_: Any, field_details_list: Any) -> Completer:
        if isinstance(type_, GraphQLNonNull):
            inner = self.value(type_.of_type, field_details_list)

            def complete_non_null(value: Any, path: Any) -> Any:
                if value is None:
                    raise _ABANDON
                completed = inner(value, path)
                if completed is None:
                    raise _ABANDON
                return completed

            return complete_non_null
        if isinstance(type_, GraphQLList):
            item = self.value(type_.of_type, field_details_list)

            def complete_list(value: Any, path: Any) -> Any:
                if value is None:
                    return None
                if value.__class__ is not list and value.__class__ is not tuple:
                    raise _ABANDON
                return [
                    None if entry is None else item(entry, (path, index, None))
                    for index, entry in enumerate(value)
                ]

            return complete_list
        if is_leaf_type(type_):
            leaf = _leaf(type_)

            def complete_leaf(value: Any, path: Any) -> Any:
                return None if value is None else leaf(value, path)

            return complete_leaf
        if isinstance(type_, GraphQLObjectType) and type_.is_type_of is None:
            return self.object(type_, field_details_list)
        raise NotCompilable

    def object(self, type_: GraphQLObjectType, field_details_list: Any) -> Completer:
        grouped, defer_usages, forbidden = self.executor.collect_subfields(
            type_, field_details_list
        )
        if defer_usages or forbidden:
            raise NotCompilable
        type_name = type_.name
        steps: list[tuple[str, Completer]] = []
        for response_name, details in grouped.items():
            node = details[0].node
            if node.arguments:
                raise NotCompilable
            field_name = node.name.value
            if field_name == "__typename":
                steps.append((response_name, lambda source, path: type_name))
                continue
            field_def = self.schema.get_field(type_, field_name)
            if field_def is None:
                continue
            steps.append((response_name, self.field(type_, field_def, details, response_name)))

        def complete_object(source: Any, path: Any) -> Any:
            if source is None:
                return None
            return {name: step(source, path) for name, step in steps}

        return complete_object

    def field(
        self,
        parent: GraphQLObjectType,
        field_def: GraphQLField,
        details: Any,
        response_name: str,
    ) -> Completer:
        field = (field_def.extensions or {}).get(_BACKREF)
        if not isinstance(field, StrawberryField) or field.extensions:
            raise NotCompilable
        complete = self.value(field_def.type, details)
        resolver = field.base_resolver
        parent_name = parent.name
        if resolver is None:
            resolve = field_def.resolve
            if getattr(resolve, "__name__", "") != "_get_basic_result":
                raise NotCompilable
            name = field.python_name
            read = field.default_resolver

            def basic(source: Any, path: Any) -> Any:
                return complete(read(source, name), (path, response_name, parent_name))

            return basic
        if resolver.is_async or field.arguments or resolver.parent_parameter:
            raise NotCompilable
        if resolver.root_parameter or not resolver.self_parameter:
            raise NotCompilable
        call = resolver.wrapped_func
        info_parameter = resolver.info_parameter
        if info_parameter is None:

            def resolved(source: Any, path: Any) -> Any:
                return complete(_settled(call(source)), (path, response_name, parent_name))

            return resolved
        info_name = info_parameter.name
        executor = self.executor
        nodes = [detail.node for detail in details]

        def resolved_with_info(source: Any, path: Any) -> Any:
            field_path = (path, response_name, parent_name)
            info = LazyInfo(executor, field, field_def, nodes, parent, field_path)
            return complete(_settled(call(source, **{info_name: info})), field_path)

        return resolved_with_info


def _settled(value: Any) -> Any:
    if not hasattr(value, "__await__"):
        return value
    if isinstance(value, Coroutine):
        # Never started, so closing runs nothing; graphql-core calls the resolver again
        # (a DataLoader answers the repeated load from its cache).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            value.close()
    raise _ABANDON


_PLANS: OrderedDict[tuple[int, ...], tuple[Any, list[FieldNode], Completer | None]] = OrderedDict()


def _same(kept: list[FieldNode], nodes: list[FieldNode]) -> bool:
    # Identity, not equality: Node.__eq__ compares whole trees.
    return len(kept) == len(nodes) and all(a is b for a, b in zip(kept, nodes, strict=True))


def plan_for(executor: Any, return_type: Any, field_details_list: Any) -> Completer | None:
    """The compiled completer of this subtree, or None when it does not compile."""
    nodes = [detail.node for detail in field_details_list]
    key = (id(return_type), *map(id, nodes))
    entry = _PLANS.get(key)
    if entry is not None and entry[0] is return_type and _same(entry[1], nodes):
        return entry[2]
    plan: Completer | None
    try:
        plan = Compiler(executor).value(return_type, field_details_list)
    except NotCompilable:
        plan = None
    _PLANS[key] = (return_type, nodes, plan)
    if len(_PLANS) > MAX_PLANS:
        _PLANS.popitem(last=False)
    return plan
