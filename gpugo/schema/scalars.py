"""GraphQL scalars that follow the contract's wire format."""

from __future__ import annotations

from datetime import datetime
from typing import NewType

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

# A whole series of one value: one GraphQL value, so a chart of thousands of buckets is
# completed and encoded as a few arrays rather than value by value.
MetricColumn = NewType("MetricColumn", list)


def _serialize_column(value: list[float | int | None]) -> list[float | int | None]:
    return value


def _refuse_column(value: object) -> list[float | int | None]:
    raise StrawberryInputCoercionError("MetricColumn is an output type only.")


METRIC_COLUMN: ScalarDefinition = strawberry.scalar(
    name="MetricColumn",
    description=(
        "One value of each bucket of a metrics series, oldest first, as one JSON array of "
        "numbers: the same buckets as the series' points, one entry per point, so the "
        "columns of a series have the same length and entry i of each is point i. A value "
        "the database has none for is null. Bucket starts (`at`) are integer milliseconds "
        "since the Unix epoch (UTC). Output only."
    ),
    serialize=_serialize_column,
    parse_value=_refuse_column,
)

SCALAR_MAP: dict[object, ScalarDefinition] = {datetime: DATETIME, MetricColumn: METRIC_COLUMN}
