"""/api/v1/agents bodies."""

from __future__ import annotations

from typing import Literal, NotRequired

from typing_extensions import TypedDict

from gpugo.rest.outputs.common import License, NullableTimestamp, Timestamp
from gpugo.rest.outputs.workers import IsolationMode, WorkerDetail, WorkerListItem

AgentStatus = Literal["pending", "online", "offline"]


class AgentRegisterResponse(TypedDict):
    agent_id: str
    agent_secret: str
    license: License


class AgentGpu(TypedDict):
    gpu_id: str
    gpu_index: int | None
    # Lowercased as the accelerator library names it: nvidia, amd, ...
    vendor: str
    model: str
    vram_mb: int
    driver_version: str | None
    cuda_version: str | None
    used_by_worker: str | None
    # Whether the agent is online: false means used_by_worker is only its last word.
    agent_online: bool
    # When that last word was said; null while the agent is online.
    last_known_at: NullableTimestamp


class AgentListItem(TypedDict):
    agent_id: str
    hostname: str
    status: AgentStatus
    os: str
    arch: str
    # camelCase in the spec; the shipped CLI reads gpu_count, gpus and workers.
    gpuCount: int
    gpu_count: int
    gpus: list[AgentGpu]
    workers: list[WorkerListItem]
    last_seen_at: NullableTimestamp
    created_at: Timestamp


class AgentList(TypedDict):
    agents: list[AgentListItem]


class AgentDetail(TypedDict):
    """The spec's agent detail, plus the config sync state and the status's reason."""

    agent_id: str
    hostname: str
    status: AgentStatus
    status_reason: str
    os: str
    arch: str
    network_ips: list[str]
    gpus: list[AgentGpu]
    workers: list[WorkerDetail]
    config_version: int
    fetched_config_version: int | None
    config_fetched_at: NullableTimestamp
    config_in_sync: bool
    last_seen_at: NullableTimestamp
    created_at: Timestamp


class StatusReportResponse(TypedDict):
    success: bool
    config_version: int
    # Left out while the license the agent reported holding is good for 10 minutes more.
    license: NotRequired[License]
    # Worker id -> the short codes of its live share links.
    worker_share_codes: dict[str, list[str]]


class WorkerConfig(TypedDict):
    """Optional limits are left out when unset (the agent's ``omitempty``)."""

    worker_id: str
    gpu_ids: list[str]
    vram_mb: NotRequired[int]
    compute_percent: NotRequired[int]
    isolation_mode: NotRequired[IsolationMode]
    listen_port: int
    enabled: bool
    # The short codes of the worker's live share links (not expired, uses left).
    share_codes: list[str]


class AgentConfigResponse(TypedDict):
    config_version: int
    workers: list[WorkerConfig]
    license: License
