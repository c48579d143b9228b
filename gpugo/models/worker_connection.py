from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from gpugo.models.worker import Worker


class WorkerConnection(Model):
    # A client connected to a worker, as last reported by the agent.

    id = fields.BigIntField(primary_key=True)
    worker: fields.ForeignKeyRelation[Worker] = fields.ForeignKeyField(
        "models.Worker", related_name="connections", on_delete=fields.CASCADE
    )
    client_ip = fields.CharField(max_length=64)
    client_port = fields.IntField(null=True)
    client_pid = fields.IntField(null=True)
    connected_at = fields.DatetimeField()

    class Meta:
        table = "worker_connections"
        # Status reports replace a worker's connections; the cascade from workers too.
        indexes = (("worker_id",),)
