"""Opaque, unguessable identifiers and random base62 strings."""

from __future__ import annotations

import secrets
import string

BASE62 = string.digits + string.ascii_letters


def random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def new_id(prefix: str) -> str:
    """A public id such as ``agt_3kT9...``: 22 base62 characters carry ~131 random bits."""
    return f"{prefix}_{random_base62(22)}"
