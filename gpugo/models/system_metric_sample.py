from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from gpugo.models.agent import Agent


class SystemMetricSample(Model):
    # The host's CPU and memory reading in one metrics report.

    id = fields.BigIntField(primary_key=True)
    agent: fields.ForeignKeyRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="system_metric_samples", on_delete=fields.CASCADE
    )
    recorded_at = fields.DatetimeField()
    cpu_usage = fields.FloatField()
    memory_used_mb = fields.BigIntField()
    memory_total_mb = fields.BigIntField()

    class Meta:
        table = "system_metric_samples"
        indexes = (("agent_id", "recorded_at"),)
