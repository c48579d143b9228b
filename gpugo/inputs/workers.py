from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from gpugo.inputs.common import GpuId, Id, Input, not_nullable_in_schema


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("GPU ids must not repeat.")
    return values


Name = Annotated[str, Field(min_length=1, max_length=100)]
# Limits the agent applies to the worker; none set means none applied.
VramMb = Annotated[int, Field(ge=1, le=2**31 - 1)]
ComputePercent = Annotated[int, Field(ge=1, le=100)]
# The spec's soft/hard and the agent's own shared/soft/partitioned.
IsolationMode = Literal["shared", "soft", "hard", "partitioned"]
LIMIT_FIELDS = ("vram_mb", "compute_percent", "isolation_mode")


def _limits_nullable(schema: dict[str, Any]) -> None:
    not_nullable_in_schema(schema, nullable=LIMIT_FIELDS)


GpuIds = Annotated[list[GpuId], Field(min_length=1, max_length=256), AfterValidator(_unique)]
Port = Annotated[int, Field(ge=1024, le=65535)]
AgentId = Id


class CreateWorkerInput(Input):
    agent_id: AgentId
    name: Name
    gpu_ids: GpuIds
    listen_port: Port
    enabled: bool = True
    vram_mb: VramMb | None = None
    compute_percent: ComputePercent | None = None
    isolation_mode: IsolationMode | None = None


class UpdateWorkerInput(Input):
    # Absent means "leave as is"; an explicit null is refused, except for a limit (null
    # removes it).
    model_config = ConfigDict(json_schema_extra=lambda schema: _limits_nullable(schema))
    name: Name | None = None
    gpu_ids: GpuIds | None = None
    listen_port: Port | None = None
    enabled: bool | None = None
    # null removes the limit.
    vram_mb: VramMb | None = None
    compute_percent: ComputePercent | None = None
    isolation_mode: IsolationMode | None = None

    @field_validator("name", "gpu_ids", "listen_port", "enabled", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("Must not be null; leave the field out to keep its value.")
        return value


class WorkerFilterInput(Input):
    # Query parameters of GET /workers; both optional, combined with AND.
    agent_id: AgentId | None = None
    hostname: Annotated[str, Field(min_length=1, max_length=255)] | None = None
