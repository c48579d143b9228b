from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from gpugo.inputs.agents import GpuId
from gpugo.inputs.common import Input


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("GPU ids must not repeat.")
    return values


Name = Annotated[str, Field(min_length=1, max_length=100)]
GpuIds = Annotated[list[GpuId], Field(min_length=1, max_length=256), AfterValidator(_unique)]
Port = Annotated[int, Field(ge=1024, le=65535)]


class CreateWorkerInput(Input):
    agent_id: Annotated[str, Field(min_length=1, max_length=64)]
    name: Name
    gpu_ids: GpuIds
    listen_port: Port
    enabled: bool = True


class UpdateWorkerInput(Input):
    name: Name | None = None
    gpu_ids: GpuIds | None = None
    listen_port: Port | None = None
    enabled: bool | None = None
