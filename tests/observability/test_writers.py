"""Background writers (periodic.BoundedBuffer) are counted in /metrics under their name,
and one built with ``backoff_max`` waits longer after each failed write."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from gpugo.periodic import BoundedBuffer
from gpugo.settings import Settings, SettingsError


def sample(name: str, writer: str) -> float:
    return REGISTRY.get_sample_value(name, {"writer": writer}) or 0.0


async def test_a_buffer_is_counted_under_its_name():
    written: list[list[int]] = []
    failing = True

    async def write(rows: list[int]) -> None:
        if failing:
            raise OSError("the store is away")
        written.append(rows)

    buffer: BoundedBuffer[int] = BoundedBuffer("test writer", 3600.0, 3, write)
    for row in range(5):
        buffer.add(row)
    assert sample("gpugo_writer_queue_depth", "test writer") == 3
    assert sample("gpugo_writer_rows_dropped_total", "test writer") == 2
    assert await buffer.flush() == 0
    assert sample("gpugo_writer_flush_failures_total", "test writer") == 1
    assert sample("gpugo_writer_queue_depth", "test writer") == 3
    failing = False
    assert await buffer.flush() == 3
    assert written == [[2, 3, 4]]
    assert sample("gpugo_writer_rows_written_total", "test writer") == 3
    assert sample("gpugo_writer_queue_depth", "test writer") == 0
    assert sample("gpugo_writer_flush_duration_seconds_count", "test writer") == 2
    await buffer.stop()


async def test_failed_writes_back_off():
    attempts = 0

    async def write(rows: list[int]) -> None:
        nonlocal attempts
        attempts += 1
        raise OSError("the store is away")

    buffer: BoundedBuffer[int] = BoundedBuffer("backoff writer", 60.0, 10, write, backoff_max=600.0)
    buffer.add(1)
    await buffer._tick()  # the periodic's work: the first attempt
    assert attempts == 1
    # Within the backoff (one interval after the first failure) the ticks do not write.
    for _ in range(3):
        await buffer._tick()
    assert attempts == 1
    assert buffer.pending == 1
    # stop() still tries once more (a graceful shutdown sends what waits).
    await buffer.stop()
    assert attempts == 2


async def test_a_write_under_way_is_pending_and_a_stop_during_it_loses_nothing():
    started = asyncio.Event()
    written: list[list[int]] = []

    async def write(rows: list[int]) -> None:
        if not written and not started.is_set():
            started.set()
            await asyncio.sleep(3600)  # a store that hangs until the server stops
        written.append(rows)

    buffer: BoundedBuffer[int] = BoundedBuffer("slow writer", 0.01, 10, write)
    buffer.extend([1, 2, 3])
    await asyncio.wait_for(started.wait(), 5)
    assert buffer.pending == 3
    assert sample("gpugo_writer_queue_depth", "slow writer") == 3
    buffer.add(4)
    assert buffer.pending == 4
    # The shutdown cancels the hung write; its rows go out with the final flush, in order.
    await asyncio.wait_for(buffer.stop(), 5)
    assert written == [[1, 2, 3, 4]]
    assert buffer.pending == 0


@pytest.mark.parametrize(
    "values",
    [
        {"victoria_metrics_url": "victoria:8428"},
        {"victoria_metrics_insert_url": "http://vminsert:8480/insert/0/influx"},
        {
            "victoria_metrics_url": "http://victoria:8428",
            "victoria_metrics_insert_url": "http://vminsert:8480/insert/0/influx",
            "victoria_metrics_select_url": "http://vmselect:8481/select/0/prometheus",
        },
        {"timeseries_buffer_points": 0},
        {"timeseries_flush_seconds": 0},
    ],
)
def test_bad_time_series_settings_are_refused(values):
    with pytest.raises(SettingsError):
        Settings(**values).validate()


def test_time_series_urls():
    assert Settings().timeseries_urls is None
    single = Settings(victoria_metrics_url="http://victoria:8428/")
    assert single.timeseries_urls == ("http://victoria:8428", "http://victoria:8428")
    cluster = Settings(
        victoria_metrics_insert_url="http://vminsert:8480/insert/0/influx",
        victoria_metrics_select_url="http://vmselect:8481/select/0/prometheus",
    )
    assert cluster.timeseries_urls == (
        "http://vminsert:8480/insert/0/influx",
        "http://vmselect:8481/select/0/prometheus",
    )
    # The token never shows in a printed configuration.
    assert "s3cret" not in repr(Settings(metrics_token="s3cret"))
