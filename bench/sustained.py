"""A constant rate of status reports (open loop): 100,000 agents, each every 30 s.

``python -m bench sustained`` seeds the agents when the work directory holds fewer
(``--seed never`` to refuse instead), marks them all online, starts ``gpugo serve``
(``--workers N`` for N processes) and sends each agent's real report (its metrics in
line protocol: 7 points), stamped with the moment it is sent, once per ``--period``,
i.e. agents / period reports a second.
Afterwards, with the server stopped (so whatever it buffered is written), it counts
the metric rows the run added and compares them with the points of every report that
was answered 200. The last line printed is one JSON object:
``{"agents", "offered_per_s", "achieved_per_s", "p50_ms", "p99_ms", "points_reported",
"points_stored", "server_rss_mb"}`` (RSS: the largest sample, all processes summed).

wrk2 is not packaged by Debian, so this is a small asyncio generator: request k is due
at ``start + k / rate``; it goes out on the first idle keep-alive connection, or waits
in a queue for one. Latency is measured from the moment the request was DUE, so a
server that falls behind shows it in the percentiles (no coordinated omission).

It prints, per 30 s window, the achieved rate, p50/p99 latency and the server's RSS,
then the totals, its own CPU share (it must not be the bottleneck) and the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import seed
from bench.servers import Server, gpugo_server

WINDOW_SECONDS = 30


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


class Client(asyncio.Protocol):
    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.need: int | None = None
        self.status = 0
        self.due = 0.0
        self.points = 0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.generator.lost(self)

    def send(self, request: Request, due: float) -> None:
        self.busy = True
        self.due = due
        request, self.points = request
        assert self.transport is not None
        self.transport.write(stamped(request))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.need is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buffer[:end]).lower()
                self.status = int(head[9:12])
                at = head.find(b"content-length:")
                length = int(head[at + 15 : head.find(b"\r\n", at)]) if at >= 0 else 0
                self.need = end + 4 + length
            if len(self.buffer) < self.need:
                return
            del self.buffer[: self.need]
            self.need = None
            self.busy = False
            self.generator.completed(self, self.status, self.due, self.points)


# The bytes of a request, and the metric points its body carries.
Request = tuple[bytes, int]

# Where a report's time goes, as the agent writes it: its ISO timestamp and the metric
# lines' milliseconds. Replaced by the moment of sending (the same widths), as a real
# agent's reports carry theirs: its points fall in the buckets of the run's own minutes.
_ISO_MARK = b"0000-00-00T00:00:00.000000+00:00"
_MS_MARK = b"0000000000000"


def stamped(request: bytes) -> bytes:
    now = datetime.now(UTC)
    iso = now.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00").encode()  # always _ISO_MARK's width
    return request.replace(_ISO_MARK, iso).replace(_MS_MARK, b"%d" % (now.timestamp() * 1000))


class Generator:
    def __init__(self, requests: list[Request], rate: float, duration: float) -> None:
        self.requests = requests
        self.rate = rate
        self.duration = duration
        self.idle: collections.deque[Client] = collections.deque()
        self.waiting: collections.deque[tuple[Request, float]] = collections.deque()
        self.latencies: list[tuple[float, float]] = []  # (due, latency)
        self.errors = 0
        self.sent = 0
        self.lost_connections = 0
        self.points_acknowledged = 0

    def completed(self, client: Client, status: int, due: float, points: int) -> None:
        now = time.monotonic()
        self.latencies.append((due, now - due))
        if status >= 400:
            self.errors += 1
        else:
            self.points_acknowledged += points
        if self.waiting:
            request, next_due = self.waiting.popleft()
            client.send(request, next_due)
        else:
            self.idle.append(client)

    def lost(self, client: Client) -> None:
        self.lost_connections += 1
        if client in self.idle:
            self.idle.remove(client)

    def dispatch(self, request: Request, due: float) -> None:
        self.sent += 1
        if self.idle:
            self.idle.popleft().send(request, due)
        else:
            self.waiting.append((request, due))

    async def run(self, host: str, port: int, connections: int) -> float:
        loop = asyncio.get_running_loop()
        for _ in range(connections):
            _, client = await loop.create_connection(lambda: Client(self), host, port)
            self.idle.append(client)
        start = time.monotonic() + 0.1
        total = int(self.rate * self.duration)
        k = 0
        while k < total:
            now = time.monotonic()
            due_count = min(total, int((now - start) * self.rate) + 1)
            while k < due_count:
                self.dispatch(self.requests[k % len(self.requests)], start + k / self.rate)
                k += 1
            await asyncio.sleep(0.002)
        # Let the last requests finish (bounded).
        for _ in range(600):
            if len(self.latencies) >= self.sent:
                break
            await asyncio.sleep(0.05)
        return start


def load_requests(
    path: Path, host: str, port: int, limit: int, *, metrics: bool = True
) -> list[Request]:
    requests = []
    with path.open() as f:
        for line in f:
            if len(requests) >= limit:
                break
            agent_id, secret, body = line.rstrip("\n").split("\t")
            report = json.loads(body)
            report["timestamp"] = _ISO_MARK.decode()
            if not metrics:
                report.pop("metrics", None)
            else:
                seeded_ms = report["metrics"].splitlines()[0].rsplit(" ", 1)[1]
                report["metrics"] = report["metrics"].replace(seeded_ms, _MS_MARK.decode())
            payload = json.dumps(report, separators=(",", ":")).encode()
            # Every line of the seeded metrics is stored (Pro accounts, their own GPUs).
            points = len((report.get("metrics") or "").splitlines())
            head = (
                f"POST /api/v1/agents/{agent_id}/status HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\n"
                f"Authorization: Bearer {secret}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            )
            request = head.encode() + payload
            requests.append((request, points))
    return requests


async def sample_rss(
    server: Server, samples: list[tuple[float, float]], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        samples.append((time.monotonic(), server.rss_mb()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=5)


async def drive(args: argparse.Namespace, server: Server) -> dict:
    # Each simulated agent reports once per period: agents / period reports a second.
    requests = load_requests(
        args.workdir / "agents.tsv",
        "127.0.0.1",
        server.port,
        args.agents,
        metrics=not args.without_metrics,
    )
    generator = Generator(requests, args.rate, args.duration)
    rss: list[tuple[float, float]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(server, rss, stop))
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    server_before = server.cpu_seconds()
    wall_before = time.monotonic()
    start = await generator.run("127.0.0.1", server.port, args.connections)
    wall = time.monotonic() - wall_before
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    server_after = server.cpu_seconds()
    stop.set()
    await sampler
    windows = []
    by_window: dict[int, list[float]] = collections.defaultdict(list)
    for due, latency in generator.latencies:
        by_window[int((due - start) // WINDOW_SECONDS)].append(latency)
    for index in sorted(by_window):
        values = by_window[index]
        lo, hi = start + index * WINDOW_SECONDS, start + (index + 1) * WINDOW_SECONDS
        window_rss = [mb for t, mb in rss if lo <= t < hi] or [float("nan")]
        windows.append(
            {
                "from_s": index * WINDOW_SECONDS,
                "rate": len(values) / WINDOW_SECONDS,
                "p50_ms": percentile(values, 50) * 1000,
                "p99_ms": percentile(values, 99) * 1000,
                "max_ms": max(values) * 1000,
                "rss_mb": max(window_rss),
            }
        )
        print(
            f"  {index * WINDOW_SECONDS:4d}s  {len(values) / WINDOW_SECONDS:7.1f} req/s  "
            f"p50 {windows[-1]['p50_ms']:7.2f} ms  p99 {windows[-1]['p99_ms']:8.2f} ms  "
            f"max {windows[-1]['max_ms']:8.1f} ms  rss {windows[-1]['rss_mb']:6.1f} MB",
            flush=True,
        )
    latencies = [latency for _, latency in generator.latencies]
    generator_cpu = (
        self_after.ru_utime + self_after.ru_stime - self_before.ru_utime - self_before.ru_stime
    )
    return {
        "rate_target": args.rate,
        "duration_s": args.duration,
        "agents": len(requests),
        "completed": len(latencies),
        "sent": generator.sent,
        "errors": generator.errors,
        "lost_connections": generator.lost_connections,
        "achieved_rate": len(latencies) / wall,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "p999_ms": percentile(latencies, 99.9) * 1000,
        "max_ms": max(latencies) * 1000 if latencies else float("nan"),
        "generator_cpu": generator_cpu / wall,
        "server_cpu": (server_after - server_before) / wall,
        "rss_first_mb": rss[0][1] if rss else float("nan"),
        "rss_last_mb": rss[-1][1] if rss else float("nan"),
        "rss_median_mb": statistics.median(mb for _, mb in rss) if rss else float("nan"),
        "peak_rss_mb": server.peak_rss_mb(),
        "rss_max_mb": max((mb for _, mb in rss), default=float("nan")),
        "points_acknowledged": generator.points_acknowledged,
        "windows": windows,
    }


METRIC_TABLES = ("gpu_metric_samples", "system_metric_samples", "worker_metric_samples")


async def count_points(url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return sum([await conn.fetchval(f"SELECT count(*) FROM {t}") for t in METRIC_TABLES])
    finally:
        await conn.close()


def seeded_agents(workdir: Path) -> int:
    path = workdir / "agents.tsv"
    if not path.exists():
        return 0
    with path.open() as f:
        return sum(1 for _ in f)


def main(args: argparse.Namespace) -> int:
    if args.rate:
        args.agents = int(args.rate * args.period)
    args.rate = args.agents / args.period
    if seeded_agents(args.workdir) < args.agents:
        if args.seed == "never":
            print(f"fewer than {args.agents} agents seeded in {args.workdir}", file=sys.stderr)
            return 2
        seed.main_seed(args.server, args.db, args.agents, args.workdir)
    plain_url = seed.db_url(args.server, args.db)
    url = plain_url
    if args.gpugo_db_query:
        url += f"?{args.gpugo_db_query}"
    from bench.__main__ import fleet_online

    # The steady state of a fleet reporting every 30 s: every agent seen recently (else
    # each first report is a "came online" write and the sweeper announces silences).
    fleet_online(args, spread_seconds=30)
    points_before = asyncio.run(count_points(plain_url))
    server = gpugo_server(
        database_url=url,
        port=args.port_base,
        workdir=args.workdir,
        workers=args.workers,
        src=args.src,
    )
    server.start()
    try:
        print(
            f"sustained: {args.agents} agents every {args.period:g} s = {args.rate:g} status "
            f"reports/s for {args.duration:g}s over {args.connections} connections, "
            f"{args.workers} server process(es)"
        )
        result = asyncio.run(drive(args, server))
    finally:
        # Stopped first: a server buffering points writes them at shutdown.
        server.stop()
    points_stored = asyncio.run(count_points(plain_url)) - points_before
    print(
        f"total: {result['achieved_rate']:.1f} req/s of {result['rate_target']:g} over "
        f"{result['agents']} agents; p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
        f"p99.9 {result['p999_ms']:.1f} ms, max {result['max_ms']:.1f} ms; errors "
        f"{result['errors']}; RSS {result['rss_first_mb']:.0f} -> {result['rss_last_mb']:.0f} MB "
        f"(peak {result['peak_rss_mb']:.0f}); generator CPU {result['generator_cpu']:.0%}, "
        f"server CPU {result['server_cpu']:.0%}"
    )
    summary = {
        "agents": result["agents"],
        "offered_per_s": round(args.rate, 1),
        "achieved_per_s": round(result["achieved_rate"], 1),
        "p50_ms": round(result["p50_ms"], 2),
        "p99_ms": round(result["p99_ms"], 2),
        "points_reported": result["points_acknowledged"],
        "points_stored": points_stored,
        "server_rss_mb": round(result["rss_max_mb"], 1),
    }
    with (args.workdir / "sustained.jsonl").open("a") as f:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        f.write(json.dumps({"at": at, "workers": args.workers, **result, "summary": summary}))
        f.write("\n")
    if points_stored != result["points_acknowledged"]:
        print(
            f"points: {result['points_acknowledged']} acknowledged, {points_stored} stored",
            file=sys.stderr,
        )
    print(json.dumps(summary), flush=True)
    return 0
