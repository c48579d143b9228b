"""Decoding a response the way the shipped Go client (NexusGPU/gpu-go) does.

Go's encoding/json ignores unknown fields and leaves a field alone on ``null``, but a
JSON value of the wrong type (a float for an ``int``, a number for a ``string``, a
string for a ``bool``) fails the whole decode. A struct is described as
``{field: (Go type, always sent)}``.
"""

from __future__ import annotations

import re
from typing import Any

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def go_decode(value: Any, go_type: Any, path: str = "$") -> None:
    """Fail the way Go's json.Unmarshal would for this value and type."""
    if value is None:
        return  # Go keeps the zero value
    kind = go_type if isinstance(go_type, str) else go_type[0]
    if kind == "string":
        assert isinstance(value, str), f"{path}: {value!r} is not a string"
    elif kind == "int":
        assert type(value) is int, f"{path}: {value!r} is not an integer"
    elif kind == "bool":
        assert type(value) is bool, f"{path}: {value!r} is not a bool"
    elif kind == "time":
        assert isinstance(value, str) and RFC3339.match(value), f"{path}: {value!r} not RFC 3339"
    elif kind == "slice":
        assert isinstance(value, list), f"{path}: {value!r} is not an array"
        for i, item in enumerate(value):
            go_decode(item, go_type[1], f"{path}[{i}]")
    elif kind == "map":
        assert isinstance(value, dict), f"{path}: {value!r} is not an object"
        for key, item in value.items():
            go_decode(item, go_type[1], f"{path}.{key}")
    elif kind == "struct":
        assert isinstance(value, dict), f"{path}: {value!r} is not an object"
        for name, (field_type, always) in go_type[1].items():
            if always:
                assert name in value, f"{path}.{name} is missing"
            if name in value:
                go_decode(value[name], field_type, f"{path}.{name}")
    else:  # pragma: no cover
        raise AssertionError(f"unknown Go type {go_type!r}")


def decode(response, struct: dict[str, Any], *, ok: tuple[int, ...] = (200,)) -> dict[str, Any]:
    assert response.status_code in ok, response.text
    body = response.json()
    go_decode(body, ("struct", struct))
    return body
