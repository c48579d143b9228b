from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from gpugo.inputs.common import GpuId, Input, NullableList, Timestamp

Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
# GPU memory is stored in 32-bit columns; host memory in 64-bit ones.
GpuMegabytes = Annotated[int, Field(ge=0, le=2**31 - 1)]
Megabytes = Annotated[int, Field(ge=0, le=2**53)]
# The real agent sends temperature and PCIe throughput as JSON floats; they are
# stored rounded.
Temperature = Annotated[
    float, Field(ge=-273, le=1000, allow_inf_nan=False), AfterValidator(lambda v: round(v))
]
Kilobytes = Annotated[
    float, Field(ge=0, le=2**53, allow_inf_nan=False), AfterValidator(lambda v: round(v))
]


class GpuMetricsInput(Input):
    gpu_id: GpuId
    utilization: Percent
    vram_used_mb: GpuMegabytes
    vram_total_mb: GpuMegabytes
    temperature: Temperature
    power_usage_w: Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)]
    pcie_rx_kb: Kilobytes | None = None
    pcie_tx_kb: Kilobytes | None = None


class WorkerMetricsInput(Input):
    # The agent's status code: running 1, pending 2, stopping 3, stopped 0, unknown -1.
    status: Annotated[int, Field(ge=-1, le=3)]
    connections: Annotated[int, Field(ge=0, le=2**31 - 1)]
    restarts: Annotated[int, Field(ge=0, le=2**31 - 1)]


class SystemMetricsInput(Input):
    cpu_usage: Percent
    memory_used_mb: Megabytes
    memory_total_mb: Megabytes


def _distinct_gpu_ids(gpus: list[GpuMetricsInput]) -> list[GpuMetricsInput]:
    if len({gpu.gpu_id for gpu in gpus}) != len(gpus):
        raise ValueError("Each gpu_id may appear only once.")
    return gpus


class MetricsReportInput(Input):
    timestamp: Timestamp
    system: SystemMetricsInput
    gpus: Annotated[
        list[GpuMetricsInput],
        NullableList,
        Field(max_length=256),
        AfterValidator(_distinct_gpu_ids),
    ]
