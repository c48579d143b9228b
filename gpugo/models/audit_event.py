from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from gpugo.ids import new_id


def _audit_event_id() -> str:
    return new_id("aud")


class AuditEvent(Model):
    # One security-relevant event (services/audit.py). Written in batches from memory, so
    # user_id and the subject are plain ids, not foreign keys: a row may arrive after its
    # user, agent or token is gone, and must neither fail the batch nor vanish with it.

    id = fields.CharField(max_length=32, primary_key=True, default=_audit_event_id)
    at = fields.DatetimeField()
    kind = fields.CharField(max_length=40)
    # The account it belongs to; null when none is known (a login with an unknown e-mail).
    user_id = fields.CharField(max_length=32, null=True)
    actor_kind = fields.CharField(max_length=16)
    actor_id = fields.CharField(max_length=32, null=True)
    address = fields.CharField(max_length=64, null=True)
    user_agent = fields.CharField(max_length=256, null=True)
    subject_kind = fields.CharField(max_length=16, null=True)
    subject_id = fields.CharField(max_length=160, null=True)
    outcome = fields.CharField(max_length=16)
    # A short, never secret, note: the rule of a rate limit, a share code's prefix.
    detail = fields.CharField(max_length=128, null=True)

    class Meta:
        table = "audit_events"
        indexes = (
            Index(fields=("user_id", "at")),
            Index(fields=("at",)),
            Index(fields=("subject_id", "kind")),
        )
