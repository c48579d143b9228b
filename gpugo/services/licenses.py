"""Short-lived licenses: ``<gpu ids>|<plan>|<expiry unix ms>`` signed with Ed25519."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gpugo import clock
from gpugo.context import ServerContext
from gpugo.keys import public_key_pem

ALGORITHM = "Ed25519"


@dataclass(frozen=True, slots=True)
class License:
    plain: str
    encrypted: str


def issue(*, ctx: ServerContext, gpu_ids: Iterable[str], plan: str) -> License:
    expiry = clock.now() + timedelta(seconds=ctx.settings.license_ttl_seconds)
    plain = f"{','.join(gpu_ids)}|{plan}|{int(expiry.timestamp() * 1000)}"
    signature = ctx.license_key.sign(plain.encode())
    return License(plain=plain, encrypted=base64.b64encode(signature).decode())


def verify(*, public_key: Ed25519PublicKey, license: License) -> bool:
    """True when the signature is the server's and the license has not expired."""
    try:
        public_key.verify(
            base64.b64decode(license.encrypted, validate=True), license.plain.encode()
        )
    except (InvalidSignature, ValueError):
        return False
    try:
        expiry_ms = int(license.plain.split("|")[2])
    except (IndexError, ValueError):
        return False
    return clock.now().timestamp() * 1000 < expiry_ms


def public_key(*, ctx: ServerContext) -> dict[str, str]:
    return {"algorithm": ALGORITHM, "public_key": public_key_pem(ctx.license_key)}
