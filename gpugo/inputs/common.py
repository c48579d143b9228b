"""Shared pieces of the input declarations (used by REST and GraphQL alike)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    TypeAdapter,
    ValidationError,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from gpugo.errors import FieldError, NotFound, ValidationFailed


class Input(BaseModel):
    # Strict types (no "1" for 1, no 1.5 for an int); unknown fields are ignored
    # because newer agents send more than the spec lists.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    # Fields whose text is read, never stored: they may hold U+0000 (see parse_input).
    unstored_text: ClassVar[frozenset[str]] = frozenset()


_DATETIME_TEXT = TypeAdapter(datetime)


def _parse_text(value: Any) -> Any:
    # A value under a BeforeValidator (NullableList) is validated in Python mode, where
    # strict datetimes refuse text; read text the way JSON mode does.
    if not isinstance(value, str):
        return value
    try:
        return _DATETIME_TEXT.validate_strings(value, strict=True)
    except ValidationError:
        raise PydanticCustomError(
            "datetime_parsing", "Input should be an RFC 3339 / ISO 8601 timestamp."
        ) from None


def _as_utc(value: datetime) -> datetime:
    # A timestamp without an offset is read as UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+01:00 is before the first representable UTC instant.
        raise PydanticCustomError("datetime_range", "The timestamp is out of range.") from None


def _null_as_empty(value: Any) -> Any:
    # Go marshals an empty slice as null in some places.
    return [] if value is None else value


@dataclass(frozen=True, slots=True)
class _NullAsEmptyList:
    """Reads null as []; the published JSON schema says null is accepted, as it is."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_before_validator_function(_null_as_empty, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"anyOf": [handler(schema), {"type": "null"}]}


def not_nullable_in_schema(schema: dict[str, Any], *, nullable: tuple[str, ...] = ()) -> None:
    """``json_schema_extra`` for inputs whose optional fields may be absent but never null
    (except those named ``nullable``)."""
    for name, prop in schema.get("properties", {}).items():
        if name in nullable:
            continue
        alternatives = prop.pop("anyOf", None)
        if alternatives is not None:
            prop.update(next(a for a in alternatives if a.get("type") != "null"))
        prop.pop("default", None)


Timestamp = Annotated[datetime, BeforeValidator(_parse_text), AfterValidator(_as_utc)]
NullableList = _NullAsEmptyList()
# A public id (``agt_`` and 22 base62 characters): anything else can name no row, and is
# refused before it reaches the database (whose columns hold at most 32 characters).
ID_REGEX = "[A-Za-z0-9_]{1,32}"
Id = Annotated[str, Field(pattern=f"^{ID_REGEX}$")]
_ID = re.compile(ID_REGEX)


def lookup_id(value: str, what: str) -> str:
    """The id of a row to look up (a GraphQL ``ID`` argument), checked as REST checks a path
    id: one that cannot name a row is not found, before the database or a log sees it."""
    if _ID.fullmatch(value) is None:
        raise NotFound(f"No such {what}.")
    return value


# GPU ids are the agent's own names (GPU-0, GPU-<uuid>, MIG ids with "/"). A license joins
# them with "," and its fields with "|" (see services/licenses.py): an id holding either, or
# whitespace or a control character, could make a signed license read as another one.
_GPU_ID = re.compile(r"[^\s,|]{1,128}")
GPU_ID_RULE = "1 to 128 printable characters, never whitespace, ',' or '|'."


def _gpu_id(value: str) -> str:
    if _GPU_ID.fullmatch(value) is None or not value.isprintable():
        raise PydanticCustomError("gpu_id", f"A GPU id is {GPU_ID_RULE}")
    return value


GpuId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        description=f"The agent's name for the GPU: {GPU_ID_RULE}",
        # Documents the separators; "printable" (no control or format character) is
        # checked too, and is beyond what a JSON Schema pattern can say portably.
        json_schema_extra={"pattern": r"^[^\s,|]+$"},
    ),
    AfterValidator(_gpu_id),
]


def field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def _count(n: Any, one: str) -> str:
    return f"{n} {one}" if n == 1 else f"{n} {one}s"


# Pydantic's own messages ("Input should be a valid integer", "String should have at least 1
# character") in plain words, by error type; ``ctx`` holds the limit a rule names.
_PLAIN: dict[str, Callable[[dict[str, Any]], str]] = {
    "missing": lambda ctx: "This field is required.",
    "string_too_short": lambda ctx: (
        "Must not be empty."
        if ctx["min_length"] == 1
        else f"Must be at least {_count(ctx['min_length'], 'character')} long."
    ),
    "string_too_long": lambda ctx: (
        f"Must be at most {_count(ctx['max_length'], 'character')} long."
    ),
    "too_short": lambda ctx: f"Must hold at least {_count(ctx['min_length'], 'item')}.",
    "too_long": lambda ctx: f"Must hold at most {_count(ctx['max_length'], 'item')}.",
    "int_type": lambda ctx: "Must be a whole number.",
    "int_parsing": lambda ctx: "Must be a whole number.",
    "int_from_float": lambda ctx: "Must be a whole number.",
    "float_type": lambda ctx: "Must be a number.",
    "float_parsing": lambda ctx: "Must be a number.",
    "bool_type": lambda ctx: "Must be true or false.",
    "bool_parsing": lambda ctx: "Must be true or false.",
    "string_type": lambda ctx: "Must be text.",
    "list_type": lambda ctx: "Must be a list.",
    "dict_type": lambda ctx: "Must be a JSON object.",
    "model_type": lambda ctx: "Must be a JSON object.",
    "model_attributes_type": lambda ctx: "Must be a JSON object.",
    "greater_than_equal": lambda ctx: f"Must be at least {ctx['ge']}.",
    "less_than_equal": lambda ctx: f"Must be at most {ctx['le']}.",
    "greater_than": lambda ctx: f"Must be more than {ctx['gt']}.",
    "less_than": lambda ctx: f"Must be less than {ctx['lt']}.",
    "literal_error": lambda ctx: f"Must be one of {ctx['expected']}.",
    "enum": lambda ctx: f"Must be one of {ctx['expected']}.",
    "string_pattern_mismatch": lambda ctx: (
        "Is not an id this server gives out."
        if ctx.get("pattern") == f"^{ID_REGEX}$"
        else "Contains characters that are not allowed here."
    ),
    "datetime_type": lambda ctx: "Must be an RFC 3339 / ISO 8601 timestamp.",
    "datetime_from_date_parsing": lambda ctx: "Must be an RFC 3339 / ISO 8601 timestamp.",
    "json_invalid": lambda ctx: f"The body is not valid JSON ({ctx.get('error', 'unreadable')}).",
    # A rule of ours raised ValueError/AssertionError: its own sentence, without the prefix.
    "value_error": lambda ctx: str(ctx["error"]),
    "assertion_error": lambda ctx: str(ctx["error"]),
}


def plain_message(error: Mapping[str, Any]) -> str:
    """One pydantic error in plain words (the project's own messages pass unchanged)."""
    plain = _PLAIN.get(error["type"])
    if plain is not None:
        try:
            return plain(error.get("ctx") or {})
        except (KeyError, TypeError):
            pass
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def validation_failed(exc: ValidationError) -> ValidationFailed:
    """Every field's error at once (``details``), each in plain words."""
    details = [
        FieldError(field_path(error["loc"]), plain_message(error))
        for error in exc.errors(include_url=False)
    ]
    summary = "; ".join(f"{d.field}: {d.message}" for d in details)
    return ValidationFailed(f"Invalid request: {summary}", details=details)


M = TypeVar("M", bound=BaseModel)


def parse_input(model: type[M], data: bytes | str | dict[str, Any]) -> M:
    """Validate raw JSON (or an already-decoded dict) into ``model``, or raise 400.

    No stored text may hold U+0000: PostgreSQL's text cannot, and SQLite would keep it
    where PostgreSQL refuses it. JSON can only spell it ``\u0000``, so raw bodies are
    walked only when that appears (never on the hot paths' ordinary bodies).
    """
    try:
        if isinstance(data, dict):
            parsed = model.model_validate(data)
        else:
            parsed = model.model_validate_json(data)
    except ValidationError as exc:
        raise validation_failed(exc) from None
    if isinstance(data, dict) or _NUL_ESCAPE in (
        data if isinstance(data, bytes) else data.encode()
    ):
        details = [
            FieldError(path, "Must not contain the NUL character.")
            for path in _nul_fields(parsed, "")
        ]
        if details:
            raise ValidationFailed(
                "; ".join(f"{d.field}: {d.message}" for d in details[:3]), details=details
            )
    return parsed


_NUL_ESCAPE = b"\\u0000"


def _nul_fields(value: Any, path: str) -> list[str]:
    """Paths of the stored strings under ``value`` that hold U+0000."""
    if isinstance(value, str):
        return [path or "body"] if "\x00" in value else []
    if isinstance(value, Input):
        found = []
        for name in type(value).model_fields:
            if name not in value.unstored_text:
                found += _nul_fields(getattr(value, name), f"{path}.{name}" if path else name)
        return found
    if isinstance(value, list | tuple):
        return [p for i, item in enumerate(value) for p in _nul_fields(item, f"{path}[{i}]")]
    return []
