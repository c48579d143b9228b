"""The personal access token: one per user, shown once, stored hashed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gpugo import clock
from gpugo.auth.principal import Principal
from gpugo.auth.tokens import TokenKind, hash_token, new_token
from gpugo.inputs.tokens import CreatePatInput
from gpugo.models import PersonalAccessToken
from gpugo.services import audit


@dataclass(frozen=True, slots=True)
class PatInfo:
    exists: bool
    expires_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewPat:
    token: str
    expires_at: datetime | None
    created_at: datetime


async def get_info(*, principal: Principal) -> PatInfo:
    pat = await PersonalAccessToken.get_or_none(user_id=principal.user_id)
    if pat is None:
        return PatInfo(exists=False, expires_at=None, last_used_at=None, created_at=None)
    return PatInfo(
        exists=True,
        expires_at=pat.expires_at,
        last_used_at=pat.last_used_at,
        created_at=pat.created_at,
    )


async def create(*, principal: Principal, data: CreatePatInput) -> NewPat:
    """Create or regenerate: one upsert on the unique user_id, so the old token dies at once
    and concurrent calls leave exactly one row."""
    token = new_token(TokenKind.PAT)
    now = clock.now()
    expires_at = now + timedelta(days=data.expires_in_days) if data.expires_in_days else None
    existed = await PersonalAccessToken.filter(user_id=principal.user_id).exists()
    await PersonalAccessToken.bulk_create(
        [
            PersonalAccessToken(
                user_id=principal.user_id,
                token_hash=hash_token(token),
                created_at=now,
                expires_at=expires_at,
                last_used_at=None,
            )
        ],
        on_conflict=["user_id"],
        update_fields=["token_hash", "created_at", "expires_at", "last_used_at"],
    )
    pat_id = (
        await PersonalAccessToken.filter(user_id=principal.user_id)
        .first()
        .values_list("id", flat=True)
    )
    audit.record(
        audit.Kind.PAT_REGENERATED if existed else audit.Kind.PAT_CREATED,
        user_id=principal.user_id,
        actor=principal,
        subject_kind="pat",
        subject_id=pat_id,
        detail=f"expires in {data.expires_in_days} days" if data.expires_in_days else "no expiry",
    )
    return NewPat(token=token, expires_at=expires_at, created_at=now)


async def delete(*, principal: Principal) -> bool:
    pat_ids = await PersonalAccessToken.filter(user_id=principal.user_id).values_list(
        "id", flat=True
    )
    deleted = bool(await PersonalAccessToken.filter(user_id=principal.user_id).delete())
    if deleted:
        audit.record(
            audit.Kind.PAT_DELETED,
            user_id=principal.user_id,
            actor=principal,
            subject_kind="pat",
            subject_id=pat_ids[0] if pat_ids else None,
        )
    return deleted
