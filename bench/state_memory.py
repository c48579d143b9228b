"""Memory of the status-report state held per process (services/agent_states.py).

    .venv/bin/python -m bench.state_memory [--agents 100000]

Fills an AgentStates with rows shaped as PostgreSQL returns them for the seeded
agents (4 GPUs, 2 workers with one connection each, one share) and prints what
tracemalloc counts for them, in total and per agent.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tracemalloc
from datetime import UTC, datetime

import orjson

from gpugo.events import EventBus
from gpugo.ids import new_id
from gpugo.services.agent_states import AgentStates


def row(agent_id: str, user_id: str) -> tuple[object, ...]:
    workers = [new_id("wkr") for _ in range(2)]
    gpus = [[new_id("gpu"), f"GPU-{i}", i, workers[i // 2]] for i in range(4)]
    # json_agg's spacing: ", " between elements.
    dump = lambda value: orjson.dumps(value).decode().replace(",", ", ")  # noqa: E731
    return (
        agent_id,
        user_id,
        sys.intern("pro"),
        3,
        datetime.now(UTC),
        None,
        False,
        dump(gpus),
        dump(
            [
                [w, "running", 1000 + n, 0, [f"GPU-{2 * n}", f"GPU-{2 * n + 1}"]]
                for n, w in enumerate(workers)
            ]
        ),
        dump([[w, "10.0.0.5", 52000, 4242, "2026-12-04T21:00:00+00:00"] for w in workers]),
        dump([[workers[0], secrets.token_urlsafe(6), None, None, 0]]),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=100_000)
    args = parser.parse_args()
    states = AgentStates(EventBus(), max_entries=args.agents, ttl_seconds=600)
    users = [new_id("usr") for _ in range(max(args.agents // 20, 1))]
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    for n in range(args.agents):
        agent_id = new_id("agt")
        user_id = users[n // 20]
        states.store(
            secrets.token_hex(32),
            agent_id=agent_id,
            user_id=user_id,
            row=row(agent_id, user_id),
            last_seen_at=datetime.now(UTC),
            token=states.begin(),
            # As a steady heartbeat leaves it: with its body's fingerprint.
            unchanged_digest=secrets.token_bytes(16),
        )
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    total = held - before
    print(f"{len(states)} agents held: {total / 1e6:.1f} MB, {total / len(states):.0f} bytes each")


if __name__ == "__main__":
    main()
