from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from gpugo.models.agent import Agent


class GpuMetricSample(Model):
    # One GPU's reading in one metrics report.

    id = fields.BigIntField(primary_key=True)
    agent: fields.ForeignKeyRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="gpu_metric_samples", on_delete=fields.CASCADE
    )
    gpu_id = fields.CharField(max_length=128)
    recorded_at = fields.DatetimeField()
    utilization = fields.FloatField()
    vram_used_mb = fields.IntField()
    vram_total_mb = fields.IntField()
    temperature = fields.IntField()
    power_usage_w = fields.FloatField()
    pcie_rx_kb = fields.BigIntField(null=True)
    pcie_tx_kb = fields.BigIntField(null=True)

    class Meta:
        table = "gpu_metric_samples"
        # Serves both the per-agent time range read and the per-agent retention delete.
        indexes = (("agent_id", "recorded_at"),)
