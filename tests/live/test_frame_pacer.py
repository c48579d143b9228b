"""Frames of a big round of events are spread over passes of the event loop, so a
request read meanwhile (an agent's report) is not held up by the whole round."""

from __future__ import annotations

import asyncio

from gpugo.schema.fanout import FramePacer


async def test_at_most_per_pass_turns_a_pass_in_the_order_asked():
    pacer = FramePacer(per_pass=8)
    loop = asyncio.get_running_loop()
    passes = 0
    granted: list[tuple[int, int]] = []  # (pass, sender)

    def count_passes() -> None:
        nonlocal passes
        passes += 1
        if passes < 100:
            loop.call_soon(count_passes)

    async def sender(number: int) -> None:
        await pacer.turn()
        granted.append((passes, number))

    loop.call_soon(count_passes)
    await asyncio.gather(*(sender(n) for n in range(50)))
    per_pass: dict[int, int] = {}
    for at, _ in granted:
        per_pass[at] = per_pass.get(at, 0) + 1
    assert max(per_pass.values()) <= 8
    assert len(per_pass) >= 50 // 8
    assert [number for _, number in granted] == list(range(50))


async def test_a_request_arriving_during_a_round_is_served_before_the_round_ends():
    pacer = FramePacer(per_pass=8)
    sent = 0

    async def frame() -> None:
        nonlocal sent
        await pacer.turn()
        sent += 1

    frames = [asyncio.create_task(frame()) for _ in range(400)]
    await asyncio.sleep(0)  # the round's first pass
    assert sent == 8

    async def request() -> int:
        # A request of a few steps (read, handle, answer), each one pass.
        for _ in range(3):
            await asyncio.sleep(0)
        return sent

    sent_when_answered = await request()
    assert sent_when_answered < 400 / 2
    await asyncio.gather(*frames)
    assert sent == 400


async def test_a_waiter_that_went_away_takes_no_turn():
    pacer = FramePacer(per_pass=1)
    first = asyncio.create_task(pacer.turn())
    gone = asyncio.create_task(pacer.turn())
    last = asyncio.create_task(pacer.turn())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.wait_for(asyncio.gather(first, last), timeout=1)
    assert gone.cancelled()
