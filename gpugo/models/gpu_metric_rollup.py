from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from gpugo.models.agent import Agent


class GpuMetricRollup(Model):
    # One GPU's samples over one bucket of ``width`` seconds (300 or 3600): count, sums
    # (averages over any span of buckets are sum / count) and maxima.

    id = fields.BigIntField(primary_key=True)
    agent: fields.ForeignKeyRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="gpu_metric_rollups", on_delete=fields.CASCADE
    )
    gpu_id = fields.CharField(max_length=128)
    width = fields.IntField()
    bucket_start = fields.DatetimeField()
    samples = fields.IntField()
    utilization_sum = fields.FloatField()
    utilization_max = fields.FloatField()
    vram_used_mb_sum = fields.FloatField()
    vram_used_mb_max = fields.IntField()
    vram_total_mb = fields.IntField()
    temperature_sum = fields.FloatField()
    temperature_max = fields.IntField()
    power_usage_w_sum = fields.FloatField()
    power_usage_w_max = fields.FloatField()

    class Meta:
        table = "gpu_metric_rollups"
        # The flush adds to a bucket's row (ON CONFLICT); reads go by agent, width and time.
        unique_together = (("agent_id", "width", "bucket_start", "gpu_id"),)
