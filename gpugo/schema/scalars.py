"""GraphQL scalars that follow the contract's wire format."""

from __future__ import annotations

from datetime import datetime

import orjson
import strawberry
from pydantic import TypeAdapter, ValidationError
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.types.scalar import ScalarDefinition

from gpugo.inputs.common import Timestamp
from gpugo.timefmt import iso

# The same declaration REST reads timestamps with: any RFC 3339 / ISO 8601 form,
# nanoseconds included; no offset means UTC.
_TIMESTAMP = TypeAdapter(Timestamp)


def _serialize(value: datetime) -> str | None:
    return iso(value)


def _parse(value: object) -> datetime:
    if not isinstance(value, str):
        raise StrawberryInputCoercionError("DateTime must be an RFC 3339 string.")
    try:
        # Validated as the JSON string REST would receive, so both read the same forms.
        return _TIMESTAMP.validate_json(orjson.dumps(value), strict=True)
    except ValidationError:
        raise StrawberryInputCoercionError(f"Not an RFC 3339 timestamp: {value[:64]!r}.") from None


DATETIME: ScalarDefinition = strawberry.scalar(
    name="DateTime",
    description=(
        "RFC 3339 timestamp. Out: UTC with milliseconds and Z (2026-11-25T17:37:33.123Z). "
        "In: any RFC 3339 form; without an offset it is read as UTC."
    ),
    serialize=_serialize,
    parse_value=_parse,
)

SCALAR_MAP: dict[object, ScalarDefinition] = {datetime: DATETIME}
