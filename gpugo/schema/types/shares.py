from __future__ import annotations

from datetime import datetime

import strawberry

from gpugo.schema.context import GraphQLInfo
from gpugo.schema.types.workers import Worker, worker_node
from gpugo.services import shares


@strawberry.type(description="A short link through which others reach a worker.")
class Share:
    id: strawberry.ID
    short_code: str
    short_link: str
    worker_id: strawberry.ID
    hardware_vendor: str
    connection_url: str
    expires_at: datetime | None
    max_uses: int | None
    used_count: int
    created_at: datetime

    @strawberry.field
    async def worker(self, info: GraphQLInfo) -> Worker | None:
        row = await info.context.loaders.worker.load(self.worker_id)
        return worker_node(row) if row else None


def share_node(view: shares.ShareView) -> Share:
    return Share(
        id=strawberry.ID(view.share_id),
        short_code=view.short_code,
        short_link=view.short_link,
        worker_id=strawberry.ID(view.worker_id),
        hardware_vendor=view.hardware_vendor,
        connection_url=view.connection_url,
        expires_at=view.expires_at,
        max_uses=view.max_uses,
        used_count=view.used_count,
        created_at=view.created_at,
    )
