"""In-process CPU per changing status report: gpugo's app called as an ASGI app over a
copy of the seeded database, ``--agents`` agents at a time each flipping its first
worker between running and stopped (the fan-out scenario's report, with the seeded
report's GPUs, connections and metrics), as rounds of concurrent reports.

    .venv/bin/python -m bench seed
    psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE gpugo_probe TEMPLATE gpugo_bench"
    .venv/bin/python -m bench.status_cpu --db gpugo_probe   # --agents 50 --rounds 40

It changes the workers of the last ``--agents`` seeded agents: run it on a copy, as
above, so that ``bench run status`` keeps its steady agents.

Prints the server's CPU per report (``time.process_time``) and the round's wall time.
``--profile`` loops for py-spy instead (``py-spy record -f raw -p PID``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time
from pathlib import Path
from typing import Any

import orjson
import uvloop

from bench import seed
from bench.__main__ import DEFAULT_SERVER
from bench.share_cpu import DEFAULT_WORKDIR, _lifespans, gpugo_app


def report_scope(agent_id: str, secret: str, length: int) -> dict[str, Any]:
    path = f"/api/v1/agents/{agent_id}/status"
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 18280),
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:18280"),
            (b"authorization", f"Bearer {secret}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(length).encode()),
        ],
        "state": {},
    }


async def post(app: Any, agent_id: str, secret: str, body: bytes) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(report_scope(agent_id, secret, len(body)), receive, send)
    return status


# --shape: the seeded agent's whole report (GPUs, both workers, connections, metrics;
# a stopped worker frees its GPUs), or the fan-out bench's (no GPUs, one worker).
SHAPES = ("agent", "fanout")


def flipped(body: str, index: int, shape: str) -> bytes:
    """The seeded report, stamped now, its first worker running or stopped by ``index``."""
    report = orjson.loads(body)
    if shape == "fanout":
        first = report["workers"][0]
        report = {
            "gpus": [],
            "workers": [{"worker_id": first["worker_id"], "status": "", "gpu_ids": ["GPU-0"]}],
        }
    report["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    report["workers"][0]["status"] = "stopped" if index % 2 == 0 else "running"
    return orjson.dumps(report)


async def rounds(
    app: Any, agents: list[tuple[str, str, str]], start: int, count: int, shape: str
) -> float:
    """``count`` rounds of one report per agent, all at once; the rounds' mean wall ms."""
    walls = []
    for index in range(start, start + count):
        began = time.perf_counter()
        codes = await asyncio.gather(
            *(post(app, a, s, flipped(b, index, shape)) for a, s, b in agents)
        )
        walls.append((time.perf_counter() - began) * 1000)
        if any(code != 200 for code in codes):
            raise RuntimeError(f"reports answered {sorted(set(codes))}")
        await asyncio.sleep(0.02)  # the round's events and NOTIFYs go out
    return statistics.mean(walls)


async def measure(args: argparse.Namespace) -> None:
    database_url = seed.db_url(args.server, args.db)
    lines = (args.workdir / "agents.tsv").read_text().splitlines()[-args.agents :]
    agents = [tuple(line.split("\t", 2)) for line in lines]
    apps = {"gpugo": gpugo_app(database_url, args.workdir)}
    async with _lifespans(apps):
        app = apps["gpugo"]
        await rounds(app, agents, 0, 6, args.shape)  # warm: pools filled, statements prepared
        gc.collect()
        gc.freeze()
        if args.profile:
            print(f"profiling in pid {os.getpid()}", flush=True)
            deadline, start = time.monotonic() + args.profile, 6
            while time.monotonic() < deadline:
                await rounds(app, agents, start, 10, args.shape)
                start += 10
            return
        per_report, walls, start = [], [], 6
        for _ in range(args.repeats):
            began = time.process_time()
            walls.append(await rounds(app, agents, start, args.rounds, args.shape))
            spent = time.process_time() - began
            per_report.append(spent / (args.rounds * len(agents)) * 1e6)
            start += args.rounds
        shown = " / ".join(f"{f:.0f}" for f in per_report)
        print(f"{statistics.median(per_report):.0f} us per report (median; {shown})")
        print(f"round of {len(agents)}: {statistics.median(walls):.1f} ms wall (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=DEFAULT_SERVER)
    parser.add_argument("--db", default="gpugo_bench")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shape", choices=SHAPES, default="fanout")
    parser.add_argument("--profile", type=float, default=0, help="seconds of py-spy loop")
    # As `gpugo serve` runs: on uvloop.
    uvloop.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
