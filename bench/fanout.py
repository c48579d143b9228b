"""Live fan-out: many dashboard tabs on ``agentEvents`` while agents change state.

    .venv/bin/python -m bench fanout --users 50 --tabs 20 --hold 300

Starts ``gpugo serve`` on PostgreSQL (a throwaway database on ``--server``), signs up
``--users`` Pro users, each with a PAT and one agent with one worker. Every user opens
``--tabs`` WebSockets (graphql-transport-ws, permessage-deflate on, as browsers do),
each holding the dashboard's ``agentEvents`` subscription. Then, for ``--hold``
seconds, every agent sends a status report once a second that flips its worker
between running and stopped (all agents in the same second: a round), so each report
is one ``WORKER_STATUS_CHANGED`` event for each of its user's tabs.

The tabs live in ``--clients`` processes of their own (the client must not be the
bottleneck on a small machine). Measured:

- delivery: from the moment the report was sent to the moment a tab read its event
  (the k-th status event of a tab answers its agent's k-th report);
- missed: events a tab should have had (one per report that got its 200) and did not;
- the reports' own latency (``report_p99_ms``): what the agents see while the server
  fans out;
- the server's peak RSS, and its full garbage-collector passes (from its log,
  ``gpugo.gc`` lines: every pass of the oldest generation longer than 20 ms).

The last line printed is one JSON object: ``{"subscriptions", "delivered", "missed",
"delivery_p50_ms", "delivery_p99_ms", "delivery_max_ms", "report_p99_ms",
"server_rss_mb"}``. Bounded: every wait has a timeout, the servers and client
processes are always stopped, and the database is dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import secrets
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.__main__ import machine_busy
from bench.live_latency import (
    GPU,
    PASSWORD,
    Server,
    free_port,
    start_server,
    stop_server,
    throwaway_database,
    wait_ready,
)

# The dashboard's own subscription (gpugo/web/static/js/subs.js).
DOCUMENT = (
    "subscription AgentEvents($agentId: ID) "
    "{ agentEvents(agentId: $agentId) { kind agentId workerId } }"
)
STATUS_EVENT = '"WORKER_STATUS_CHANGED"'
# Handshakes in flight at once per client process while the tabs open.
OPENING = 32
GC_LINE = re.compile(r"full collection took (\d+) ms, (\d+) ms of CPU")


@dataclass
class Rig:
    """One user: their PAT, their agent and its worker."""

    email: str
    pat: str
    agent_id: str
    secret: str
    worker_id: str


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def go_now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S") + f".{now.microsecond // 1000:03d}Z"


# --- set-up ------------------------------------------------------------------------------


async def make_rig(http: httpx.AsyncClient, url: str, index: int) -> Rig:
    email = f"fanout-{index}-{secrets.token_hex(4)}@example.com"
    async with httpx.AsyncClient(base_url=url, timeout=60) as browser:
        signup = await browser.post(
            "/api/v1/auth/signup", json={"email": email, "password": PASSWORD}
        )
        signup.raise_for_status()
        pat = await browser.post(
            "/api/v1/tokens/pat", json={"expires_in_days": None}, headers={"Origin": url}
        )
        pat.raise_for_status()
    token = pat.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    install = await http.post(
        f"{url}/api/v1/tokens/generate", json={"type": "agent_install"}, headers=auth
    )
    install.raise_for_status()
    registered = await http.post(
        f"{url}/api/v1/agents/register",
        json={"hostname": f"rig-{index}", "os": "linux", "arch": "amd64", "gpus": [GPU]},
        headers={"Authorization": f"Bearer {install.json()['token']}"},
    )
    registered.raise_for_status()
    agent = registered.json()
    return Rig(email, token, agent["agent_id"], agent["agent_secret"], "")


async def add_worker(http: httpx.AsyncClient, url: str, rig: Rig) -> None:
    created = await http.post(
        f"{url}/api/v1/workers",
        json={"agent_id": rig.agent_id, "name": "w0", "gpu_ids": ["GPU-0"], "listen_port": 9000},
        headers={"Authorization": f"Bearer {rig.pat}"},
    )
    created.raise_for_status()
    rig.worker_id = created.json()["worker_id"]


async def set_up(url: str, database_url: str, users: int) -> list[Rig]:
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        gate = asyncio.Semaphore(4)  # password hashing is the slow part of a signup

        async def one(index: int) -> Rig:
            async with gate:
                return await make_rig(http, url, index)

        rigs = await asyncio.gather(*(one(i) for i in range(users)))
        # Pro, as `gpugo user set-plan` would make them (one statement instead of a
        # process per user).
        conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
        try:
            await conn.execute(
                "UPDATE users SET plan = 'pro' WHERE email = ANY($1::text[])",
                [rig.email for rig in rigs],
            )
        finally:
            await conn.close()
        for rig in rigs:
            await add_worker(http, url, rig)
    return rigs


# --- the tabs (in client processes) --------------------------------------------------------


def tabs_process(
    url: str, tabs: list[tuple[str, str]], pipe: multiprocessing.connection.Connection
) -> None:
    """Entry point of a client process: ``tabs`` is (PAT, agent id) per tab."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_tabs(url, tabs, pipe))


async def _tabs(
    url: str, tabs: list[tuple[str, str]], pipe: multiprocessing.connection.Connection
) -> None:
    import websockets

    ws_url = url.replace("http://", "ws://") + "/graphql"
    arrivals: list[list[float]] = [[] for _ in tabs]
    closes: dict[str, int] = {}
    others = 0
    opened = 0
    gate = asyncio.Semaphore(OPENING)
    stop = asyncio.Event()
    subscribed = asyncio.Event()

    def settled() -> None:
        """A tab is open, or failed: once every tab is one or the other, say so."""
        if opened + sum(closes.values()) >= len(tabs):
            subscribed.set()

    async def tab(index: int, pat: str) -> None:
        nonlocal others, opened
        times = arrivals[index]
        try:
            async with gate, asyncio.timeout(120):
                ws = await websockets.connect(
                    ws_url,
                    subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                    open_timeout=60,
                    ping_interval=None,
                    max_queue=64,
                )
                await ws.send(
                    json.dumps(
                        {"type": "connection_init", "payload": {"authorization": f"Bearer {pat}"}}
                    )
                )
                ack = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if ack.get("type") != "connection_ack":
                    raise RuntimeError(f"no ack: {ack}")
                await ws.send(
                    json.dumps({"id": "1", "type": "subscribe", "payload": {"query": DOCUMENT}})
                )
            opened += 1
            settled()
            async with ws:
                reader = asyncio.ensure_future(stop.wait())
                while not stop.is_set():
                    receiving = asyncio.ensure_future(ws.recv())
                    done, _ = await asyncio.wait(
                        {receiving, reader}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if receiving not in done:
                        receiving.cancel()
                        break
                    frame = receiving.result()
                    at = time.monotonic()
                    if STATUS_EVENT in frame:
                        times.append(at)
                    elif '"type":"ping"' in frame:
                        await ws.send('{"type":"pong"}')
                    else:
                        others += 1
                reader.cancel()
        except websockets.ConnectionClosed as closed:
            code = str(closed.rcvd.code if closed.rcvd else "none")
            closes[code] = closes.get(code, 0) + 1
        except Exception as error:
            name = type(error).__name__
            closes[name] = closes.get(name, 0) + 1

    tasks = [asyncio.create_task(tab(i, pat)) for i, (pat, _) in enumerate(tabs)]
    loop = asyncio.get_running_loop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(subscribed.wait(), 600)
    pipe.send(("ready", opened, dict(closes)))
    # Wait for the parent's word to stop (a blocking read, off the event loop).
    await loop.run_in_executor(None, pipe.recv)
    stop.set()
    await asyncio.wait(tasks, timeout=60)
    pipe.send(("done", arrivals, dict(closes), others))


# --- the agents and the measurement --------------------------------------------------------


class AgentConnection:
    """One agent's keep-alive HTTP/1.1 connection, as lean as the Go agent's client.

    httpx measures itself here: 50 reports sent at once through one AsyncClient wait for
    its own Python work (50 concurrent GET /healthz: p50 69 ms, p99 228 ms against a
    server that answers them in microseconds), which would be counted as the server's.
    """

    def __init__(self, url: str, rig: Rig) -> None:
        parts = url.removeprefix("http://").split(":")
        self.host, self.port = parts[0], int(parts[1])
        self.rig = rig
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_status(self, status: str) -> int:
        """Send one report (the worker ``status``); the answer's status code."""
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        body = json.dumps(
            {
                "timestamp": go_now(),
                "gpus": [],
                "workers": [
                    {"worker_id": self.rig.worker_id, "status": status, "gpu_ids": ["GPU-0"]}
                ],
            }
        ).encode()
        head = (
            f"POST /api/v1/agents/{self.rig.agent_id}/status HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.rig.secret}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        answer = await self.reader.readuntil(b"\r\n\r\n")
        lines = answer.decode("latin-1").split("\r\n")
        code = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return code

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def agents_rounds(
    url: str,
    rigs: list[Rig],
    hold: float,
    sent: dict[str, list[float]],
    latencies: list[float],
    *,
    spread: bool = False,
) -> int:
    """A status report per agent per second, each flipping its worker; returns failures.

    All agents at the start of each second (a round: the worst case, every change at
    once), or with ``spread`` each agent at its own moment of the second, as agents'
    independent timers fall."""
    failures = 0
    agents = [AgentConnection(url, rig) for rig in rigs]

    async def report(agent: AgentConnection, status: str) -> None:
        nonlocal failures
        started = time.monotonic()
        try:
            async with asyncio.timeout(30):
                code = await agent.post_status(status)
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
            agent.close()
            agent.writer = None
            failures += 1
            return
        latencies.append(time.monotonic() - started)
        if code == 200:
            sent[agent.rig.agent_id].append(started)
        else:
            failures += 1

    try:
        # Online first (its own event kinds), and the worker running: not measured.
        await asyncio.gather(*(report(agent, "running") for agent in agents))
        latencies.clear()
        for rig in rigs:
            sent[rig.agent_id].clear()
        await asyncio.sleep(1)
        start = time.monotonic()
        rounds = int(hold)
        if spread:

            async def on_its_own(offset: float, agent: AgentConnection) -> None:
                for index in range(rounds):
                    await asyncio.sleep(max(0.0, start + index + offset - time.monotonic()))
                    await report(agent, "stopped" if index % 2 == 0 else "running")

            await asyncio.gather(
                *(on_its_own(i / len(agents), agent) for i, agent in enumerate(agents))
            )
            return failures
        for index in range(rounds):
            await asyncio.sleep(max(0.0, start + index - time.monotonic()))
            status = "stopped" if index % 2 == 0 else "running"
            await asyncio.gather(*(report(agent, status) for agent in agents))
    finally:
        for agent in agents:
            agent.close()
    return failures


async def sample_rss(server: Server, peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError):
            peak[0] = max(peak[0], rss_mb(server))  # a read of /proc: no disk involved
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1)


async def measure(args: argparse.Namespace, database_url: str, workdir: Path) -> dict[str, Any]:
    subscriptions = args.users * args.tabs
    env = {
        "GPUGO_DATABASE_URL": database_url,
        "GPUGO_PROFILE": "production",
        "GPUGO_LOG_LEVEL": "INFO",
        # Room for the scenario: every tab of a user stays open, and every socket counts.
        "GPUGO_GRAPHQL_WEBSOCKETS_PER_USER": str(args.tabs + 4),
        # WebSockets get nine tenths of the connections (schema/view.py): all the tabs fit.
        "GPUGO_MAX_CONNECTIONS": str(subscriptions * 10 // 9 + 500),
    }
    # --src: another commit's package
    server = start_server(workdir, env, src=args.src, workers=args.workers)
    clients: list[tuple[Any, multiprocessing.connection.Connection]] = []
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            await wait_ready(http, server)
        rigs = await set_up(server.url, database_url, args.users)
        print(f"set up {len(rigs)} users, each with an agent and a worker", flush=True)
        tabs = [(rig.pat, rig.agent_id) for rig in rigs for _ in range(args.tabs)]
        context = multiprocessing.get_context("spawn")
        for n in range(args.clients):
            parent, child = context.Pipe()
            process = context.Process(
                target=tabs_process, args=(server.url, tabs[n :: args.clients], child)
            )
            process.start()
            clients.append((process, parent))
        opened_at = time.monotonic()
        opened, refused = 0, {}
        for _, pipe in clients:
            if not await asyncio.to_thread(pipe.poll, 900):
                raise TimeoutError("the tabs did not open within 15 minutes")
            _, count, closes = pipe.recv()
            opened += count
            for key, value in closes.items():
                refused[key] = refused.get(key, 0) + value
        print(
            f"{opened} of {subscriptions} subscriptions open in "
            f"{time.monotonic() - opened_at:.1f} s (refused: {refused or 'none'}); "
            f"server RSS {rss_mb(server):.0f} MB",
            flush=True,
        )
        await asyncio.sleep(2)  # the last subscriptions are registered server-side
        gc_before = len(gc_pauses(server))
        sent: dict[str, list[float]] = {rig.agent_id: [] for rig in rigs}
        latencies: list[float] = []
        peak = [rss_mb(server)]
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(server, peak, stop))
        print(f"holding for {args.hold:g} s: {len(rigs)} agents report every second", flush=True)
        cpu_before, machine_before = cpu_seconds(server), machine_busy()
        failures = await agents_rounds(
            server.url, rigs, args.hold, sent, latencies, spread=args.spread
        )
        cpu = cpu_seconds(server) - cpu_before
        machine = machine_busy()
        busy = (machine[0] - machine_before[0]) / max(1, machine[1] - machine_before[1])
        await asyncio.sleep(args.grace)  # the last round's events are on their way
        stop.set()
        await sampler
        for _, pipe in clients:
            pipe.send("stop")
        arrivals: list[list[float]] = []
        closes: dict[str, int] = {}
        others = 0
        for _, pipe in clients:
            if not await asyncio.to_thread(pipe.poll, 120):
                raise TimeoutError("a client process did not report")
            _, got, closed, other = pipe.recv()
            arrivals += got
            others += other
            for key, value in closed.items():
                closes[key] = closes.get(key, 0) + value
        pauses = gc_pauses(server)[gc_before:]
    finally:
        for process, _ in clients:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        stop_server(server)
    # Tabs in the order the clients got them: tab i of client n is tabs[n + i * clients].
    order = [i for n in range(args.clients) for i in range(n, len(tabs), args.clients)]
    delays: list[float] = []
    delivered = missed = 0
    for position, tab_index in enumerate(order):
        reports = sent[tabs[tab_index][1]]
        # Events of the reports before the rounds (online, the worker running) are not
        # measured: the first measured report was sent a second after them.
        got = [at for at in arrivals[position] if reports and at >= reports[0]]
        delivered += min(len(got), len(reports))
        missed += max(0, len(reports) - len(got))
        delays += [at - t0 for at, t0 in zip(got, reports, strict=False)]
    delays_ms = [d * 1000 for d in delays]
    report_ms = [lat * 1000 for lat in latencies]
    return {
        "subscriptions": opened,
        "delivered": delivered,
        "missed": missed,
        "delivery_p50_ms": round(percentile(delays_ms, 50), 1),
        "delivery_p99_ms": round(percentile(delays_ms, 99), 1),
        "delivery_max_ms": round(max(delays_ms, default=float("nan")), 1),
        "report_p99_ms": round(percentile(report_ms, 99), 1),
        "server_rss_mb": round(peak[0], 1),
        "_details": {
            "report_p50_ms": round(percentile(report_ms, 50), 1),
            "report_max_ms": round(max(report_ms, default=float("nan")), 1),
            "report_failures": failures,
            "closed_sockets": closes,
            "other_frames": others,
            "gc_full_passes_over_20ms_ms": pauses,
            "rounds": int(args.hold),
            # The server's CPU time over the rounds, per delivered event: what fan-out
            # costs, less sensitive than latencies to other work on the machine.
            "server_cpu_s": round(cpu, 1),
            "server_cpu_us_per_event": round(cpu * 1e6 / max(delivered, 1)),
            "machine_busy": round(busy, 2),
            "load_average": os.getloadavg(),
        },
    }


# --- the collector's full pass with the tabs open (in-process server) ---------------------


def timed_collections(times: int = 3) -> float:
    """The median of ``times`` full passes, in ms."""
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        gc.collect()
        spent.append((time.perf_counter() - started) * 1000)
    return statistics.median(spent)


async def measure_gc(args: argparse.Namespace, database_url: str, workdir: Path) -> dict[str, Any]:
    """The server in this process: a full pass timed with the tabs open, as the app holds
    them (nothing frozen but start-up), then with their set-up frozen (gpugo serve's way)."""
    import uvicorn

    from gpugo.app import create_app
    from gpugo.settings import Settings

    subscriptions = args.users * args.tabs
    port = free_port()
    settings = Settings.from_env(
        {
            "GPUGO_DATABASE_URL": database_url,
            "GPUGO_DATA_DIR": str(workdir),
            "GPUGO_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "GPUGO_RATE_LIMITS": "off",
            "GPUGO_GRAPHQL_WEBSOCKETS_PER_USER": str(args.tabs + 4),
            "GPUGO_MAX_CONNECTIONS": str(subscriptions * 10 // 9 + 500),
        }
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    clients: list[tuple[Any, multiprocessing.connection.Connection]] = []
    try:
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event)
            await asyncio.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        rigs = await set_up(url, database_url, args.users)
        # As `gpugo serve` after start-up: what exists now is frozen.
        gc.collect()
        gc.freeze()
        objects_before = len(gc.get_objects())
        idle_ms = timed_collections()
        tabs = [(rig.pat, rig.agent_id) for rig in rigs for _ in range(args.tabs)]
        context = multiprocessing.get_context("spawn")
        for n in range(args.clients):
            parent, child = context.Pipe()
            process = context.Process(
                target=tabs_process, args=(url, tabs[n :: args.clients], child)
            )
            process.start()
            clients.append((process, parent))
        opened = 0
        for _, pipe in clients:
            # Waited for off the loop: this loop serves the tabs meanwhile.
            if not await asyncio.to_thread(pipe.poll, 900):
                raise TimeoutError("the tabs did not open within 15 minutes")
            opened += pipe.recv()[1]
        await asyncio.sleep(2)
        objects = len(gc.get_objects())
        open_ms = timed_collections()
        # As `gpugo serve` does after set-ups: frozen; then a few rounds of reports, and
        # what the rounds left in the oldest generation meets the next pass.
        gc.freeze()
        frozen_ms = timed_collections()
        sent: dict[str, list[float]] = {rig.agent_id: [] for rig in rigs}
        await agents_rounds(url, rigs, args.hold, sent, [])
        await asyncio.sleep(args.grace)
        kinds = collections.Counter(type(o).__name__ for o in gc.get_objects(2))
        print("largest kinds unfrozen after the rounds:", kinds.most_common(12), flush=True)
        rounds_ms = timed_collections()
        for _, pipe in clients:
            pipe.send("stop")
        for _, pipe in clients:
            if await asyncio.to_thread(pipe.poll, 120):
                pipe.recv()
    finally:
        for process, _ in clients:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        server.should_exit = True
        await serving
        gc.unfreeze()
    return {
        "subscriptions": opened,
        "tracked_objects_per_subscription": round((objects - objects_before) / max(opened, 1)),
        "full_pass_ms_without_tabs": round(idle_ms, 1),
        "full_pass_ms_tabs_open": round(open_ms, 1),
        "full_pass_ms_tabs_frozen": round(frozen_ms, 1),
        "full_pass_ms_after_rounds": round(rounds_ms, 1),
        "unfrozen_after_rounds": sum(kinds.values()),
    }


def server_pids(server: Server) -> list[int]:
    """The server process and its children (the workers of ``serve --workers``)."""
    pid = server.process.pid
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [pid, *(int(child) for child in f.read().split())]
    except OSError:
        return [pid]


def rss_mb(server: Server) -> float:
    """Resident memory of the server's processes, summed."""
    total, found = 0.0, False
    for pid in server_pids(server):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
                    found = True
    return total if found else float("nan")


def cpu_seconds(server: Server) -> float:
    """User + system CPU time of the server's processes."""
    total = 0.0
    for pid in server_pids(server):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def gc_pauses(server: Server) -> list[tuple[int, int]]:
    """The full-collection pauses the server logged so far: (ms, ms of CPU)."""
    text = server.log.read_text(errors="replace")
    return [(int(m.group(1)), int(m.group(2))) for m in GC_LINE.finditer(text)]


def main(args: argparse.Namespace) -> int:
    if args.users < 1 or args.tabs < 1 or not 1 <= args.hold <= 3600:
        raise SystemExit("--users and --tabs at least 1, --hold 1..3600 s")
    args.src = str(Path(args.src).resolve()) if args.src else ""

    async def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="gpugo-fanout-") as tmp:
            async with throwaway_database(args.server) as url:
                if args.gc_pause:
                    return await measure_gc(args, url, Path(tmp))
                return await measure(args, url, Path(tmp))

    started = datetime.now(UTC)
    if args.gc_pause:
        result = asyncio.run(run())
        print(f"{started:%Y-%m-%d %H:%M} UTC, {args.users} users x {args.tabs} tabs")
        print(json.dumps(result))
        return 0
    result = asyncio.run(run())
    details = result.pop("_details")
    timing = "spread over each second" if args.spread else "in rounds"
    print(
        f"{started:%Y-%m-%d %H:%M} UTC, {args.users} users x {args.tabs} tabs, "
        f"{args.hold:g} s hold, agents {timing}, "
        f"{args.clients} client processes, {args.workers} server process(es), "
        f"load average at the end {details['load_average'][0]:.1f}",
    )
    print(json.dumps(details))
    print(json.dumps(result))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--tabs", type=int, default=20, help="subscriptions (tabs) per user")
    parser.add_argument("--hold", type=float, default=300, help="seconds of agent rounds")
    parser.add_argument("--grace", type=float, default=5, help="seconds for the last events")
    parser.add_argument(
        "--spread",
        action="store_true",
        help="each agent reports at its own moment of the second (default: all at once)",
    )
    parser.add_argument("--clients", type=int, default=2, help="client processes for the tabs")
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes (gpugo serve --workers N)"
    )
    parser.add_argument(
        "--gc-pause",
        action="store_true",
        help="instead: the server in this process, a full collector pass timed with the tabs "
        "open, then with them frozen",
    )
    parser.add_argument(
        "--src", default="", help="serve the gpugo package of this directory (e.g. git archive)"
    )
