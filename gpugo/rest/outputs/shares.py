"""/api/v1/shares and /s/{short_code} bodies."""

from __future__ import annotations

from typing_extensions import TypedDict

from gpugo.rest.outputs.common import NullableTimestamp, Timestamp


class ShareListItem(TypedDict):
    share_id: str
    short_code: str
    short_link: str
    worker_id: str
    hardware_vendor: str
    connection_url: str
    expires_at: NullableTimestamp
    max_uses: int | None
    used_count: int
    created_at: Timestamp


class ShareList(TypedDict):
    shares: list[ShareListItem]


class PublicShareInfo(TypedDict):
    worker_id: str
    hardware_vendor: str
    connection_url: str
    # The worker's host architecture (amd64, arm64): the client picks its libraries by it.
    agent_arch: str
