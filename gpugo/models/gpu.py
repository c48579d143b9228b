from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from gpugo.ids import new_id

if TYPE_CHECKING:
    from gpugo.models.agent import Agent
    from gpugo.models.worker import Worker


def _gpu_pk() -> str:
    return new_id("gpu")


class Gpu(Model):
    # A GPU of an agent; ``gpu_id`` is the agent's own name for it (``GPU-0``).

    id = fields.CharField(max_length=32, primary_key=True, default=_gpu_pk)
    agent: fields.ForeignKeyRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="gpus", on_delete=fields.CASCADE
    )
    gpu_id = fields.CharField(max_length=128)
    gpu_index = fields.IntField(null=True)
    # As the agent's accelerator library spells it, lowercased ("nvidia", "amd", ...).
    vendor = fields.CharField(max_length=32)
    model = fields.CharField(max_length=255)
    vram_mb = fields.IntField()
    driver_version = fields.CharField(max_length=64, null=True)
    cuda_version = fields.CharField(max_length=64, null=True)
    used_by_worker: fields.ForeignKeyNullableRelation[Worker] = fields.ForeignKeyField(
        "models.Worker", related_name=False, null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "gpus"
        unique_together = (("agent_id", "gpu_id"),)
        # Deleting a worker nulls used_by_worker_id (ON DELETE SET NULL) without a scan.
        indexes = (("used_by_worker_id",),)
