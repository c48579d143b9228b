"""Webhook signing secrets: made, kept encrypted, and used to sign deliveries.

A receiver checks ``X-Gpugo-Signature: sha256=<hex>``, the HMAC-SHA256 keyed with the
secret of ``"<X-Gpugo-Timestamp>.<raw body>"``. HMAC needs the secret itself, so it
cannot be stored as a hash like the bearer tokens: it is encrypted (Fernet: AES-128-CBC
with an HMAC-SHA256 tag) under a key derived (HKDF-SHA256) from the server's license
signing key, which every instance of one deployment already shares. A copy of the
database alone does not reveal the secrets; replacing the license key makes them
unreadable (their endpoints then need ``rotate-secret``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gpugo.ids import random_base62

SECRET_PREFIX = "gpgo_whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_RANDOM_LENGTH = 32  # ~190 bits


def new_secret() -> str:
    return SECRET_PREFIX + random_base62(SECRET_RANDOM_LENGTH)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Gpugo-Signature value of one attempt."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


class SecretBox:
    """Encrypts signing secrets for storage, decrypts them to sign."""

    def __init__(self, license_key: Ed25519PrivateKey) -> None:
        raw = license_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"gpugo webhook secrets v1"
        ).derive(raw)
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str | None:
        """The secret, or None when another key sealed it."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None
