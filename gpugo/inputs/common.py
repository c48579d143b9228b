"""Shared pieces of the input declarations (used by REST and GraphQL alike)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

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

from gpugo.errors import FieldError, ValidationFailed


class Input(BaseModel):
    # Strict types (no "1" for 1, no 1.5 for an int); unknown fields are ignored
    # because newer agents send more than the spec lists.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


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
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,32}$")]


def field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def validation_failed(exc: ValidationError) -> ValidationFailed:
    details = []
    for error in exc.errors(include_url=False):
        message = error["msg"]
        if error["type"] == "missing":
            message = "This field is required."
        details.append(FieldError(field_path(error["loc"]), message))
    summary = "; ".join(f"{d.field}: {d.message}" for d in details[:3])
    return ValidationFailed(f"Invalid request: {summary}", details=details)


M = TypeVar("M", bound=BaseModel)


def parse_input(model: type[M], data: bytes | str | dict[str, Any]) -> M:
    """Validate raw JSON (or an already-decoded dict) into ``model``, or raise 400."""
    try:
        if isinstance(data, dict):
            return model.model_validate(data)
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise validation_failed(exc) from None
