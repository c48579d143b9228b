"""Short-lived licenses: ``<gpu ids>|<plan>|<expiry unix ms>`` signed with Ed25519."""

from __future__ import annotations

import base64
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

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
    # Whole seconds: within a second, every agent with the same GPU ids and plan gets the
    # same text, signed once (Ed25519 signatures are deterministic).
    plain = f"{','.join(gpu_ids)}|{plan}|{int(expiry.timestamp()) * 1000}"
    return License(plain=plain, encrypted=_signature(ctx.license_key, plain))


@functools.lru_cache(maxsize=1024)
def _signature(key: Ed25519PrivateKey, plain: str) -> str:
    return base64.b64encode(key.sign(plain.encode())).decode()


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
