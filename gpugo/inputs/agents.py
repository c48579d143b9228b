from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from gpugo.inputs.common import GpuId, Input, NullableList, Timestamp

WorkerStatus = Literal["pending", "running", "stopping", "stopped"]


def _vendor(value: str) -> str:
    # As the accelerator library spells it ("NVIDIA", "AMD", "Ascend"...), lowercased; a
    # library that names no vendor leaves it "unknown".
    return value.strip().lower() or UNKNOWN_VENDOR


UNKNOWN_VENDOR = "unknown"
Vendor = Annotated[str, Field(max_length=32), AfterValidator(_vendor)]


class GpuInfoInput(Input):
    gpu_id: GpuId
    vendor: Vendor
    model: Annotated[str, Field(min_length=1, max_length=255)]
    vram_mb: Annotated[int, Field(gt=0, le=2**31 - 1)]
    driver_version: Annotated[str, Field(max_length=64)] | None = None
    cuda_version: Annotated[str, Field(max_length=64)] | None = None
    gpu_index: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None


def _distinct_gpu_ids(gpus: list[GpuInfoInput]) -> list[GpuInfoInput]:
    if len({gpu.gpu_id for gpu in gpus}) != len(gpus):
        raise ValueError("Each gpu_id may appear only once.")
    return gpus


class RegisterAgentInput(Input):
    hostname: Annotated[str, Field(min_length=1, max_length=255)]
    os: Annotated[str, Field(min_length=1, max_length=20)]
    arch: Annotated[str, Field(min_length=1, max_length=20)]
    gpus: Annotated[
        # A host without a GPU (a client-only machine) registers with none.
        list[GpuInfoInput],
        Field(max_length=256),
        AfterValidator(_distinct_gpu_ids),
    ]
    network_ips: Annotated[
        list[Annotated[str, Field(max_length=64)]], NullableList, Field(max_length=64)
    ] = []


class GpuStatusInput(Input):
    gpu_id: GpuId
    used_by_worker: Annotated[str, Field(max_length=64)] | None = None


class ConnectionInput(Input):
    client_ip: Annotated[str, Field(min_length=1, max_length=64)]
    connected_at: Timestamp
    client_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    client_pid: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None


class WorkerStatusInput(Input):
    worker_id: Annotated[str, Field(min_length=1, max_length=64)]
    status: WorkerStatus
    pid: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    gpu_ids: Annotated[list[GpuId], NullableList, Field(max_length=256)] = []
    # Absent (or null) keeps the worker's connections; a list replaces them.
    connections: Annotated[list[ConnectionInput], Field(max_length=1024)] | None = None
    restarts: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    # The real agent's change flag. It omits an empty connection list (omitempty), so
    # true without a list means "no connections now"; false means "as before".
    connection_changed: bool | None = None


class ReportReadings(Input):
    """The part of a status report that differs from one heartbeat to the next even when
    nothing changed: what the server reads of every report (services/status_reports.py
    answers a report whose other fields are as before from these alone)."""

    timestamp: Timestamp
    # The expiry (unix ms) of the license the agent holds: a new one is sent only when
    # it is near.
    license_expiration: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    # The agent's metrics, InfluxDB line protocol (stored for Team and Pro plans). Any
    # text is taken: a line that is not line protocol is skipped, never refused.
    metrics: str | None = None

    unstored_text: ClassVar[frozenset[str]] = frozenset({"metrics"})


class StatusReportInput(ReportReadings):
    gpus: Annotated[list[GpuStatusInput], NullableList, Field(max_length=256)]
    workers: Annotated[list[WorkerStatusInput], NullableList, Field(max_length=256)]
    event: Annotated[str, Field(max_length=32)] | None = None

    unstored_text: ClassVar[frozenset[str]] = frozenset({"metrics", "event"})
