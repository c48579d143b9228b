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
from gpugo.observability import metrics as telemetry

ALGORITHM = "Ed25519"


class UnsignableLicense(RuntimeError):
    """The text would not read back as what it was built from: a server bug, never signed."""


@dataclass(frozen=True, slots=True)
class License:
    plain: str
    encrypted: str


@dataclass(frozen=True, slots=True)
class Terms:
    """What a license's text says: the fields as a reader (the agent, a worker) splits them."""

    gpu_ids: tuple[str, ...]
    plan: str
    expiry_ms: int


def terms(plain: str) -> Terms:
    """Split a license's text; ValueError unless it has exactly the three fields."""
    ids, plan, expiry = plain.split("|")  # ValueError unless exactly three
    gpu_ids = tuple(ids.split(",")) if ids else ()
    if not all(gpu_ids) or not plan or not (expiry.isascii() and expiry.isdigit()):
        raise ValueError("not a license text")
    return Terms(gpu_ids=gpu_ids, plan=plan, expiry_ms=int(expiry))


def issue(*, ctx: ServerContext, gpu_ids: Iterable[str], plan: str) -> License:
    expiry = clock.now() + timedelta(seconds=ctx.settings.license_ttl_seconds)
    # Whole seconds: within a second, every agent with the same GPU ids and plan gets the
    # same text, signed once (Ed25519 signatures are deterministic).
    wanted = Terms(gpu_ids=tuple(gpu_ids), plan=plan, expiry_ms=int(expiry.timestamp()) * 1000)
    plain = f"{','.join(wanted.gpu_ids)}|{wanted.plan}|{wanted.expiry_ms}"
    # Defence in depth behind the GPU id rule (gpugo.inputs.common.GpuId): a value holding a
    # separator would make the signed text read as other GPUs, another plan or expiry.
    try:
        read_back = terms(plain)
    except ValueError:
        read_back = None
    if read_back != wanted:
        raise UnsignableLicense("license fields hold a separator or are empty; not signed")
    telemetry.licenses_issued.inc()
    return License(plain=plain, encrypted=_signature(ctx.license_key, plain))


@functools.lru_cache(maxsize=1024)
def _signature(key: Ed25519PrivateKey, plain: str) -> str:
    telemetry.license_signatures.inc()
    return base64.b64encode(key.sign(plain.encode())).decode()


def verify(*, public_key: Ed25519PublicKey, license: License) -> bool:
    """True when the signature is the server's and the license has not expired."""
    try:
        public_key.verify(
            base64.b64decode(license.encrypted, validate=True), license.plain.encode()
        )
        expiry_ms = terms(license.plain).expiry_ms
    except (InvalidSignature, ValueError):
        return False
    return clock.now().timestamp() * 1000 < expiry_ms


def public_key(*, ctx: ServerContext) -> dict[str, str]:
    return {"algorithm": ALGORITHM, "public_key": public_key_pem(ctx.license_key)}
