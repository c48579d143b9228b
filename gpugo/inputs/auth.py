from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field

from gpugo.auth.passwords import MAX_LENGTH, MIN_LENGTH
from gpugo.inputs.common import Input


def _normalise_email(value: str) -> str:
    value = value.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in value):
        raise ValueError("Enter a valid e-mail address.")
    return value


Email = Annotated[str, Field(min_length=3, max_length=320), AfterValidator(_normalise_email)]
Password = Annotated[str, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)]


class SignupInput(Input):
    email: Email
    password: Password


class LoginInput(Input):
    email: Email
    # Any length is checked against the stored hash; the limit only bounds the work.
    password: Annotated[str, Field(min_length=1, max_length=MAX_LENGTH)]


class ChangePasswordInput(Input):
    # Any length is checked against the stored hash; the limit only bounds the work.
    current_password: Annotated[str, Field(min_length=1, max_length=MAX_LENGTH)]
    new_password: Password
    # Only compared with the stored hash, never stored.
    unstored_text: ClassVar[frozenset[str]] = frozenset({"current_password"})
