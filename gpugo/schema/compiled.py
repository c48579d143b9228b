"""Compiled completion: a selection turned once into plain Python that builds the answer.

graphql-core completes a value field by field: for each of the ~1,400 values of a
dashboard page it builds an info object, runs the resolver wrappers, checks for
awaitables, and walks the type (non-null, list, leaf or object) again. The work
depends only on the document and the schema, so for a selection whose whole subtree
allows it, this module compiles it once into Python functions (one generated per
object selection, closures for lists) that read the attributes, call the synchronous
resolvers and coerce the leaves directly.

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
from enum import Enum
from keyword import iskeyword
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLField,
    GraphQLFloat,
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
# The name of an object's path in generated code (no field's own line contains it).
_PATH = "object_path"


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


def _leaf(named: Any) -> Callable[[Any], Any]:
    """Coerce a non-null leaf value, or abandon."""
    coerce = named.coerce_output_value
    wrapped = getattr(named, "wrapped_cls", None)  # a Strawberry enum's Python class
    names = (
        {
            member: name
            for name, value in named.values.items()
            for member in wrapped
            if member.value == value.value
        }
        if isinstance(wrapped, type) and issubclass(wrapped, Enum)
        else {}
    )

    def complete(value: Any) -> Any:
        if value.__class__ is wrapped:
            name = names.get(value)
            if name is not None:
                return name
        coerced = coerce(value)
        if coerced is Undefined or coerced is None:
            raise _ABANDON
        return coerced

    return complete


def _passes(named: Any, var: str) -> str:
    """A test that the value is already its own output (no coercion needed)."""
    if named is GraphQLString or named is GraphQLID:
        return f"{var}.__class__ is str"
    if named is GraphQLBoolean:
        return f"{var}.__class__ is bool"
    if named is GraphQLInt:
        return f"({var}.__class__ is int and {_INT_MIN} <= {var} <= {_INT_MAX})"
    if named is GraphQLFloat:
        # Finite: x - x is NaN for an infinity or NaN (which the coercion refuses).
        return f"({var}.__class__ is float and {var} - {var} == 0.0)"
    return "False"


def _unwrap(type_: Any) -> tuple[bool, Any]:
    if isinstance(type_, GraphQLNonNull):
        return True, type_.of_type
    return False, type_


class Compiler:
    """Compiles subtrees for one schema, with the executor's field collection.

    Each object selection becomes one generated function (attribute reads, resolver
    calls, inline checks for the built-in scalars, one dict display), like the
    ``__init__`` that dataclasses generate; lists are closures around their item's.
    """

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.schema = executor.schema

    def value(self, type_: Any, field_details_list: Any) -> Completer:
        non_null, named = _unwrap(type_)
        complete = self._nullable(named, field_details_list)
        if not non_null:
            return complete

        def complete_non_null(value: Any, path: Any) -> Any:
            if value is None:
                raise _ABANDON
            return complete(value, path)

        return complete_non_null

    def _nullable(self, type_: Any, field_details_list: Any) -> Completer:
        if isinstance(type_, GraphQLList):
            return self._list(type_.of_type, field_details_list)
        if is_leaf_type(type_):
            leaf = _leaf(type_)
            return lambda value, path: None if value is None else leaf(value)
        if isinstance(type_, GraphQLObjectType) and type_.is_type_of is None:
            return self.object(type_, field_details_list)
        raise NotCompilable

    def _list(self, item_type: Any, field_details_list: Any) -> Completer:
        non_null, named = _unwrap(item_type)
        if is_leaf_type(named):
            leaf = _leaf(named)
            namespace = {"ABANDON": _ABANDON, "leaf": leaf}
            test = _passes(named, "x")
            missing = "raise ABANDON" if non_null else "out.append(None)"
            source = f"""
def complete_list(value, path):
    if value is None:
        return None
    if value.__class__ is not list and value.__class__ is not tuple:
        raise ABANDON
    out = []
    for x in value:
        if x is None:
            {missing}
        else:
            out.append(x if {test} else leaf(x))
    return out
"""
            return _generated(source, namespace, "complete_list")
        if isinstance(named, GraphQLObjectType) and named.is_type_of is None:
            return self._object_list(named, non_null, field_details_list)
        item = self._nullable(named, field_details_list)

        def complete_list(value: Any, path: Any) -> Any:
            if value is None:
                return None
            if value.__class__ is not list and value.__class__ is not tuple:
                raise _ABANDON
            out = []
            for index, entry in enumerate(value):
                if entry is None:
                    if non_null:
                        raise _ABANDON
                    out.append(None)
                else:
                    out.append(item(entry, (path, index, None)))
            return out

        return complete_list

    def object(self, type_: GraphQLObjectType, field_details_list: Any) -> Completer:
        body, entries, namespace = self._object_parts(type_, field_details_list)
        lines = "\n".join(f"    {line}" for line in body)
        source = f"""
def complete_object(source, {_PATH}):
    if source is None:
        return None
{lines}
    return {{{", ".join(entries)}}}
"""
        return _generated(source, namespace, "complete_object")

    def _object_list(
        self, type_: GraphQLObjectType, non_null: bool, field_details_list: Any
    ) -> Completer:
        """A list of objects completed in one loop: the object's body inline, so an item
        costs no call, and its path is built only if a field needs it (a series of
        thousands of chart points is read attribute by attribute, nothing else)."""
        body, entries, namespace = self._object_parts(type_, field_details_list)
        uses_path = any(_PATH in line for line in body)
        item_path = f"{_PATH} = (path, index, None)" if uses_path else "pass"
        lines = "\n".join(f"            {line}" for line in body)
        missing = "raise ABANDON" if non_null else "append(None)"
        source = f"""
def complete_list(value, path):
    if value is None:
        return None
    if value.__class__ is not list and value.__class__ is not tuple:
        raise ABANDON
    out = []
    append = out.append
    for index, source in enumerate(value):
        if source is None:
            {missing}
        else:
            {item_path}
{lines}
            append({{{", ".join(entries)}}})
    return out
"""
        return _generated(source, namespace, "complete_list")

    def _object_parts(
        self, type_: GraphQLObjectType, field_details_list: Any
    ) -> tuple[list[str], list[str], dict[str, Any]]:
        """The lines that read and complete each field of ``source`` (its path is named
        ``_PATH``), the entries of the answer's dict display, and their namespace."""
        grouped, defer_usages, forbidden = self.executor.collect_subfields(
            type_, field_details_list
        )
        if defer_usages or forbidden:
            raise NotCompilable
        type_name = type_.name
        namespace: dict[str, Any] = {
            "ABANDON": _ABANDON,
            "settled": _settled,
            "LazyInfo": LazyInfo,
            "running": _RUNNING,
            "parent": type_,
        }
        body: list[str] = []
        entries: list[str] = []
        for index, (response_name, details) in enumerate(grouped.items()):
            node = details[0].node
            if node.arguments:
                raise NotCompilable
            if node.name.value == "__typename":
                entries.append(f"{response_name!r}: {type_name!r}")
                continue
            field_def = self.schema.get_field(type_, node.name.value)
            if field_def is None:
                continue
            var = f"v{index}"
            path = f"({_PATH}, {response_name!r}, {type_name!r})"
            body.append(self._read(var, field_def, details, path, namespace))
            body.extend(self._complete(var, field_def.type, details, path, namespace))
            entries.append(f"{response_name!r}: {var}")
        return body, entries, namespace

    def _read(
        self, var: str, field_def: GraphQLField, details: Any, path: str, namespace: dict[str, Any]
    ) -> str:
        """The line that reads the field's raw value into ``var``."""
        field = (field_def.extensions or {}).get(_BACKREF)
        if not isinstance(field, StrawberryField) or field.extensions:
            raise NotCompilable
        resolver = field.base_resolver
        if resolver is None:
            if getattr(field_def.resolve, "__name__", "") != "_get_basic_result":
                raise NotCompilable
            name = field.python_name
            if field.default_resolver is getattr and name.isidentifier() and not iskeyword(name):
                return f"{var} = source.{name}"
            namespace[f"read_{var}"] = field.default_resolver
            return f"{var} = read_{var}(source, {name!r})"
        if resolver.is_async or field.arguments or resolver.parent_parameter:
            raise NotCompilable
        if resolver.root_parameter or not resolver.self_parameter:
            raise NotCompilable
        namespace[f"call_{var}"] = resolver.wrapped_func
        info_parameter = resolver.info_parameter
        if info_parameter is None:
            return f"{var} = settled(call_{var}(source))"
        namespace[f"field_{var}"] = field
        namespace[f"def_{var}"] = field_def
        namespace[f"nodes_{var}"] = [detail.node for detail in details]
        info = f"LazyInfo(running[0], field_{var}, def_{var}, nodes_{var}, parent, {path})"
        return f"{var} = settled(call_{var}(source, {info_parameter.name}={info}))"

    def _complete(
        self, var: str, type_: Any, details: Any, path: str, namespace: dict[str, Any]
    ) -> list[str]:
        """The lines that turn ``var`` into its output value."""
        non_null, named = _unwrap(type_)
        lines = [f"if {var} is None: raise ABANDON"] if non_null else []
        if is_leaf_type(named):
            namespace[f"leaf_{var}"] = _leaf(named)
            test = f"not {_passes(named, var)}"
            if not non_null:
                test = f"{var} is not None and {test}"
            lines.append(f"if {test}: {var} = leaf_{var}({var})")
            return lines
        namespace[f"sub_{var}"] = self._nullable(named, details)
        lines.append(f"{var} = sub_{var}({var}, {path})")
        return lines


def _generated(source: str, namespace: dict[str, Any], name: str) -> Completer:
    # The source is built from this module's templates; names and response keys enter
    # it only through repr() or as identifiers checked above.
    exec(compile(source, f"<gpugo.schema.compiled {name}>", "exec"), namespace)  # noqa: S102
    return namespace[name]


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


# The executor of the plan running now. Plans are kept across requests, so what a
# resolver's ``info`` reads (its context: the request's user) must come from the request
# running the plan, never from the one that compiled it. A plan runs to its end without
# awaiting anything, so one slot serves the process.
_RUNNING: list[Any] = [None]


def run(plan: Completer, executor: Any, value: Any, path: Any) -> Any:
    """``plan`` over ``value`` for ``executor``'s request."""
    before = _RUNNING[0]
    _RUNNING[0] = executor
    try:
        return plan(value, path)
    finally:
        _RUNNING[0] = before


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
