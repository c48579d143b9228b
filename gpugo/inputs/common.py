"""Shared pieces of the input declarations (used by REST and GraphQL alike)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

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
    return value.astimezone(UTC)


def _null_as_empty(value: Any) -> Any:
    # Go marshals an empty slice as null in some places.
    return [] if value is None else value


Timestamp = Annotated[datetime, BeforeValidator(_parse_text), AfterValidator(_as_utc)]
NullableList = BeforeValidator(_null_as_empty)


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
