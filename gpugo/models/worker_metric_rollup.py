from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from gpugo.models.agent import Agent


class WorkerMetricRollup(Model):
    # One worker's samples over one bucket of ``width`` seconds.

    id = fields.BigIntField(primary_key=True)
    agent: fields.ForeignKeyRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="worker_metric_rollups", on_delete=fields.CASCADE
    )
    worker_id = fields.CharField(max_length=32)
    width = fields.IntField()
    bucket_start = fields.DatetimeField()
    samples = fields.IntField()
    running_samples = fields.IntField()
    connections_sum = fields.FloatField()
    connections_max = fields.IntField()
    restarts_max = fields.IntField()

    class Meta:
        table = "worker_metric_rollups"
        unique_together = (("agent_id", "width", "bucket_start", "worker_id"),)
