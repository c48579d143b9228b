from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from gpugo.models.agent import Agent


class WorkerMetricSample(Model):
    # One worker's state in one report: status, clients and restarts over time.

    id = fields.BigIntField(primary_key=True)
    agent: fields.ForeignKeyRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="worker_metric_samples", on_delete=fields.CASCADE
    )
    # Not a foreign key: the samples of a deleted worker stay for the retention window.
    worker_id = fields.CharField(max_length=32)
    recorded_at = fields.DatetimeField()
    # The agent's code: running 1, pending 2, stopping 3, stopped 0 (-1 unknown).
    status = fields.SmallIntField()
    connections = fields.IntField()
    restarts = fields.IntField()

    class Meta:
        table = "worker_metric_samples"
        indexes = (("agent_id", "recorded_at"),)
