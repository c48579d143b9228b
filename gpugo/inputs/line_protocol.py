"""InfluxDB line protocol, as the shipped agent puts its metrics in a status report.

``measurement[,tag=value...] field=value[,field=value...] [timestamp]``, one point a line.
Measurement names, tag keys and values and field keys escape ``,``, `` `` and ``=`` with a
backslash; string field values are double-quoted (``\\"`` inside). Integers end in ``i``
(``u`` for unsigned). A line that does not follow the grammar is skipped and counted,
never fatal: the metrics of a report are a best effort next to its heartbeat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

FieldValue = float | int | str | bool

# A real report holds a few dozen lines; more are not read.
MAX_LINES = 2048
_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
# Python's int() and float() also take "1_000", "nan" and "inf": the grammar does not.
# ASCII digits only (\d alone also takes other scripts' digits, which int() reads).
_INTEGER = re.compile(r"^[+-]?\d{1,19}$", re.ASCII)
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?$", re.ASCII)


class Point(NamedTuple):
    # A tuple: a report's lines are read on the hottest path, and a tuple is built fastest.
    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    # As written (the agent writes milliseconds); None when the line has none.
    timestamp: int | None


@dataclass(frozen=True, slots=True)
class Parsed:
    points: list[Point]
    # Lines that are not line protocol (or past MAX_LINES).
    skipped: int


class _Malformed(ValueError):
    pass


def parse(text: str) -> Parsed:
    points: list[Point] = []
    skipped = 0
    for number, raw in enumerate(text.splitlines()):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if number >= MAX_LINES:
            skipped += 1
            continue
        try:
            points.append(_point(line))
        except _Malformed:
            skipped += 1
    return Parsed(points=points, skipped=skipped)


def _split(text: str, separator: str, *, quotes: bool = False, limit: int = -1) -> list[str]:
    """Split on unescaped ``separator`` (outside double quotes when ``quotes``)."""
    if "\\" not in text and '"' not in text:
        # Nothing escaped or quoted (most lines): the C split.
        return text.split(separator, limit)
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if quotes and char == '"':
            quoted = not quoted
        elif char == separator and not quoted and limit != 0:
            parts.append("".join(current))
            current = []
            limit -= 1
            i += 1
            continue
        current.append(char)
        i += 1
    if quoted:
        raise _Malformed("unterminated string")
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ', ="\\':
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


# Stands in for an escaped space while a line is split by str.split (never in such a line:
# checked first).
_SPACE = "\x01"


def _point(line: str) -> Point:
    if '"' not in line:
        if "\\" not in line:
            return _plain_point(line.split(" "))
        # The agent escapes the spaces of its GPU model (a tag value): with them swapped
        # for a stand-in, such a line splits in C. Any other escape is read the general way.
        swapped = line.replace("\\ ", _SPACE)
        if "\\" not in swapped and _SPACE not in line:
            return _plain_point([part.replace(_SPACE, " ") for part in swapped.split(" ")])
    return _assemble(_split(line, " ", quotes=True))


# A plain line's fields when every value is a decimal or an integer (the agent's lines):
# checked in one match, then read without looking at each value again.
_NUMBER_FIELD = r"[^,=]+=[+-]?(?:\d{1,19}i|\d+\.?\d*|\.\d+)"
_NUMBER_FIELDS = re.compile(rf"{_NUMBER_FIELD}(?:,{_NUMBER_FIELD})*", re.ASCII)


def _plain_point(sections: list[str]) -> Point:
    """``_assemble`` for a line with no escape or quote left: C splits all the way."""
    _check_shape(sections)
    measurement, *tag_pairs = sections[0].split(",")
    if not measurement:
        raise _Malformed("no measurement")
    tags: dict[str, str] = {}
    for pair in tag_pairs:
        key, _, value = pair.partition("=")
        if not key or not value:
            raise _Malformed("expected key=value")
        tags[key] = value
    fields: dict[str, FieldValue] = {}
    if _NUMBER_FIELDS.fullmatch(sections[1]):
        for pair in sections[1].split(","):
            key, _, value = pair.partition("=")
            fields[key] = int(value[:-1]) if value[-1] == "i" else float(value)
    else:
        for pair in sections[1].split(","):
            key, value = _plain_pair(pair)
            fields[key] = _field_value(value)
    return Point(measurement, tags, fields, _timestamp(sections))


def _check_shape(sections: list[str]) -> None:
    if len(sections) not in (2, 3) or not all(sections):
        raise _Malformed("expected: series fields [timestamp]")


def _timestamp(sections: list[str]) -> int | None:
    if len(sections) < 3:
        return None
    if not _INTEGER.match(sections[2]):
        raise _Malformed("timestamp is not an integer")
    return int(sections[2])


def _plain_pair(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    if not key or not value:
        raise _Malformed("expected key=value")
    return key, value


def _pair(text: str, quotes: bool = False) -> tuple[str, str]:
    parts = _split(text, "=", quotes=quotes, limit=1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise _Malformed("expected key=value")
    return _unescape(parts[0]), parts[1] if quotes else _unescape(parts[1])


def _assemble(sections: list[str]) -> Point:
    """``series fields [timestamp]`` read character by character: escapes and quotes."""
    _check_shape(sections)
    series = _split(sections[0], ",")
    measurement = _unescape(series[0])
    if not measurement:
        raise _Malformed("no measurement")
    tags: dict[str, str] = {}
    for pair in series[1:]:
        key, value = _pair(pair)
        tags[key] = value
    fields: dict[str, FieldValue] = {}
    for pair in _split(sections[1], ",", quotes=True):
        key, value = _pair(pair, quotes=True)
        fields[key] = _field_value(value)
    return Point(measurement, tags, fields, _timestamp(sections))


_NUMBER_START = frozenset("0123456789+-.")
_DECIMAL_END = frozenset("0123456789.")


def _field_value(text: str) -> FieldValue:
    # Most values are plain decimals ("40.50"): ASCII, no underscore or exponent, first
    # and last characters a number's, so float() takes exactly what the grammar does.
    last = text[-1]
    if (
        text[0] in _NUMBER_START
        and text.isascii()
        and "_" not in text
        and "e" not in text
        and "E" not in text
    ):
        if last in _DECIMAL_END:
            try:
                return float(text)
            except ValueError:
                raise _Malformed("not a number") from None
        if last in "iu":
            digits = text[1:-1] if text[0] in "+-" else text[:-1]
            if digits.isdigit() and len(digits) <= 19:
                return int(text[:-1])
            raise _Malformed("not an integer")
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise _Malformed("unterminated string")
        return _unescape(text[1:-1])
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if not _FLOAT.match(text):
        raise _Malformed("not a number")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Malformed("not a finite number")
    return value
