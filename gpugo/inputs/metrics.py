from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from gpugo.inputs.agents import GpuId
from gpugo.inputs.common import Input, NullableList, Timestamp

Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Megabytes = Annotated[int, Field(ge=0, le=2**53)]
# The real agent sends temperature as a JSON float; it is stored rounded.
Temperature = Annotated[
    float, Field(ge=-273, le=1000, allow_inf_nan=False), AfterValidator(lambda v: round(v))
]


class GpuMetricsInput(Input):
    gpu_id: GpuId
    utilization: Percent
    vram_used_mb: Megabytes
    vram_total_mb: Megabytes
    temperature: Temperature
    power_usage_w: Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)]
    pcie_rx_kb: Annotated[int, Field(ge=0, le=2**62)] | None = None
    pcie_tx_kb: Annotated[int, Field(ge=0, le=2**62)] | None = None


class SystemMetricsInput(Input):
    cpu_usage: Percent
    memory_used_mb: Megabytes
    memory_total_mb: Megabytes


class MetricsReportInput(Input):
    timestamp: Timestamp
    system: SystemMetricsInput
    gpus: Annotated[list[GpuMetricsInput], NullableList, Field(max_length=256)]
