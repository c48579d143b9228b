from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from gpugo.ids import new_id

if TYPE_CHECKING:
    from gpugo.models.agent import Agent


def _worker_id() -> str:
    return new_id("wkr")


class Worker(Model):
    # Exposes some of an agent's GPUs on a TCP port of that host.

    id = fields.CharField(max_length=32, primary_key=True, default=_worker_id)
    agent: fields.ForeignKeyRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="workers", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=100)
    # The agent's GPU ids (``GPU-0``), in the order the user gave them.
    gpu_ids = fields.JSONField(default=list)
    listen_port = fields.IntField()
    enabled = fields.BooleanField(default=True)
    status = fields.CharField(max_length=16, default="pending")
    pid = fields.IntField(null=True)
    restarts = fields.IntField(null=True)
    is_default = fields.BooleanField(default=False)
    vram_mb = fields.IntField(null=True)
    compute_percent = fields.IntField(null=True)
    isolation_mode = fields.CharField(max_length=16, null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "workers"
        unique_together = (("agent_id", "listen_port"),)
