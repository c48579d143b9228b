from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from gpugo.models.agent import Agent


class SystemMetricRollup(Model):
    # The host's samples over one bucket of ``width`` seconds: count, sums and maxima.

    id = fields.BigIntField(primary_key=True)
    agent: fields.ForeignKeyRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="system_metric_rollups", on_delete=fields.CASCADE
    )
    width = fields.IntField()
    bucket_start = fields.DatetimeField()
    samples = fields.IntField()
    cpu_usage_sum = fields.FloatField()
    cpu_usage_max = fields.FloatField()
    memory_used_mb_sum = fields.FloatField()
    memory_used_mb_max = fields.BigIntField()
    memory_total_mb = fields.BigIntField()

    class Meta:
        table = "system_metric_rollups"
        unique_together = (("agent_id", "width", "bucket_start"),)
