"""What live connections keep making is frozen out of the collector's full passes too,
not only what existed when they were set up (gpugo/gcwatch.py)."""

from __future__ import annotations

import asyncio
import gc
import time

from gpugo import gcwatch


async def test_objects_made_after_the_set_up_are_frozen_on_the_next_round(monkeypatch):
    monkeypatch.setattr(gcwatch, "FREEZE_DELAY", 0.05)
    monkeypatch.setattr(gcwatch, "REFREEZE_SECONDS", 0.6)
    frozen_before = gc.get_freeze_count()
    freezer = gcwatch._Freezer()
    freezer.enabled = True
    kept: list[list[int]] = []
    try:
        freezer.soon()  # a socket set itself up
        await asyncio.sleep(0.2)
        after_set_up = gc.get_freeze_count()
        assert after_set_up > frozen_before
        # What the open sockets make afterwards, and keep: no new set-up asks for it.
        kept.extend([i] for i in range(20_000))
        await asyncio.sleep(0.1)
        assert gc.get_freeze_count() < after_set_up + 20_000
        await asyncio.sleep(0.6)
        assert gc.get_freeze_count() >= after_set_up + 20_000
    finally:
        for handle in (freezer._pending, freezer._periodic):
            if handle is not None:
                handle.cancel()
        # The suite's collector as it was (nothing else in a test process freezes).
        gc.unfreeze()
        if frozen_before:
            gc.freeze()


async def test_what_survives_a_full_pass_is_frozen_so_the_next_one_skips_it():
    frozen_before = gc.get_freeze_count()
    watch = gcwatch._Watch()
    gc.callbacks.append(watch)
    enabled = gcwatch._freezer.enabled
    gcwatch._freezer.enabled = True
    try:
        kept = [[i] for i in range(20_000)]
        gc.collect(1)
        assert gc.get_freeze_count() < frozen_before + 20_000  # a young pass freezes nothing
        gc.collect()
        assert gc.get_freeze_count() >= frozen_before + 20_000
        # Garbage of the pass itself is collected, not frozen.
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        after_first = gc.get_freeze_count()
        assert gc.collect() >= 1
        assert gc.get_freeze_count() - after_first < 1_000
        assert len(kept) == 20_000
    finally:
        gcwatch._freezer.enabled = enabled
        gc.callbacks.remove(watch)
        gc.unfreeze()
        if frozen_before:
            gc.freeze()


async def test_full_passes_wait_for_a_moment_without_requests(monkeypatch):
    monkeypatch.setattr(gcwatch, "FULL_PASS_SECONDS", 0.05)
    monkeypatch.setattr(gcwatch, "IDLE_WAIT_SECONDS", 0.6)
    full_passes: list[float] = []

    def count(phase: str, info: dict) -> None:
        # When a pass starts: over a whole test process's heap a pass itself takes long.
        if phase == "start" and info["generation"] == 2:
            full_passes.append(time.monotonic())

    thresholds = gc.get_threshold()
    busy = True
    gc.callbacks.append(count)
    try:
        gcwatch._BetweenRequests(lambda: not busy).start()
        assert gc.get_threshold()[2] > 10**6  # no full pass counted by allocations
        assert gc.get_threshold()[0] == gcwatch.YOUNG_THRESHOLD  # request garbage dies first
        waste = [[i] for i in range(50_000)]  # what would have made one
        del waste
        await asyncio.sleep(0.3)
        assert full_passes == []  # requests kept waiting: no pass yet
        busy = False
        idle_at = time.monotonic()
        await asyncio.sleep(0.2)
        assert len(full_passes) >= 1 and full_passes[0] - idle_at < 0.15
        busy = True
        waited_from = time.monotonic()
        full_passes.clear()
        await asyncio.sleep(1.0)
        # Never idle: a pass comes anyway once it has waited its bound.
        assert full_passes and full_passes[0] - waited_from >= 0.5
        # Quiet with no burst seen since the pass fell due: the quiet may be the one just
        # before a burst; the end of the next burst is taken instead, or else the bound.
        busy = False
        await asyncio.sleep(0.1)
        full_passes.clear()
        await asyncio.sleep(0.3)
        assert full_passes == []
        busy = True
        await asyncio.sleep(0.05)
        busy = False
        burst_end = time.monotonic()
        await asyncio.sleep(0.15)
        assert full_passes and 0 <= full_passes[0] - burst_end < 0.1
        full_passes.clear()
        quiet_from = time.monotonic()
        await asyncio.sleep(1.0)
        assert full_passes and full_passes[0] - quiet_from >= 0.5
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*thresholds)
