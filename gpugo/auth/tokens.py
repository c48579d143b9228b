"""The format of every bearer secret: ``<prefix><random base62><checksum>``.

The prefix names the kind (so a leaked token can be recognised and a token of
the wrong kind refused without a database hit); the checksum catches typos and
truncation the same way. Only the SHA-256 of a token is ever stored.
"""

from __future__ import annotations

import hashlib
import zlib
from enum import StrEnum

from gpugo.ids import BASE62, random_base62

RANDOM_LENGTH = 32  # ~190 bits
CHECKSUM_LENGTH = 6


class TokenKind(StrEnum):
    PAT = "gpgo_pat_"
    INSTALL = "gpgo_inst_"
    AGENT = "gpgo_agent_"
    SESSION = "gpgo_sess_"


def _checksum(text: str) -> str:
    value = zlib.crc32(text.encode())
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        value, digit = divmod(value, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits))


def new_token(kind: TokenKind) -> str:
    body = f"{kind.value}{random_base62(RANDOM_LENGTH)}"
    return body + _checksum(body)


# Read on every authenticated request: the enum's members once, as plain pairs.
_KINDS = tuple((kind.value, kind) for kind in TokenKind)


def token_kind(token: str) -> TokenKind | None:
    """The kind of a well-formed token, or None when it is malformed."""
    found = next(((p, k) for p, k in _KINDS if token.startswith(p)), None)
    if found is None:
        return None
    prefix, kind = found
    if len(token) != len(prefix) + RANDOM_LENGTH + CHECKSUM_LENGTH:
        return None
    body, checksum = token[:-CHECKSUM_LENGTH], token[-CHECKSUM_LENGTH:]
    random_part = body[len(prefix) :]
    # ASCII letters and digits: BASE62, in C.
    if not (random_part.isascii() and random_part.isalnum()):
        return None
    return kind if _checksum(body) == checksum else None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
