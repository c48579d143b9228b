from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, Field

from gpugo.inputs.common import Id, Input, Timestamp

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def _ip_or_host(value: str) -> str:
    value = value.strip()
    candidate = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        pass
    # An all-digit last label is a mistyped IPv4 address (300.1.2.3), not a host name.
    if _HOSTNAME.match(value) and not value.rsplit(".", 1)[-1].isdigit():
        return value.lower()
    raise ValueError("Enter an IP address or a host name.")


class CreateShareInput(Input):
    worker_id: Id
    connection_ip: Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_ip_or_host)]
    expires_at: Timestamp | None = None
    max_uses: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


class ExtendShareInput(Input):
    # Absent keeps the value; null removes the limit (no expiry, unlimited uses). The short
    # code never changes: whoever holds the link keeps using it.
    expires_at: Timestamp | None = None
    max_uses: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
