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


def token_kind(token: str) -> TokenKind | None:
    """The kind of a well-formed token, or None when it is malformed."""
    for kind in TokenKind:
        if token.startswith(kind.value):
            break
    else:
        return None
    if len(token) != len(kind.value) + RANDOM_LENGTH + CHECKSUM_LENGTH:
        return None
    body, checksum = token[:-CHECKSUM_LENGTH], token[-CHECKSUM_LENGTH:]
    random_part = body[len(kind.value) :]
    if any(c not in BASE62 for c in random_part):
        return None
    return kind if _checksum(body) == checksum else None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
