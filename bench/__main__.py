"""``python -m bench``: seed, run the scenarios against their baselines, or a sustained run.

    .venv/bin/python -m bench seed [--agents 10000]
    .venv/bin/python -m bench run [status] [share] [graphql] [--runs 3] [--duration 15]
    .venv/bin/python -m bench sustained [--agents 100000] [--period 30] [--duration 300]
    .venv/bin/python -m bench fanout [--users 50] [--tabs 20] [--hold 300]

See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from bench import graphql, seed
from bench.servers import (
    Server,
    gpugo_server,
    no_sweeper,
    other_trees,
    postgraphile_server,
    raw_server,
)

HERE = Path(__file__).resolve().parent
LUA = HERE / "bench.lua"
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_WORKDIR = HERE / ".work"
# Offsets from --port-base (two runs at once need different bases).
PORTS = {"gpugo": 0, "raw": 1, "postgraphile": 2}


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, env=env)


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Measurement:
    system: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    wrk_cpu: float  # share of one core
    server_cpu: float  # share of one core
    machine_busy: float  # share of all cores

    def line(self) -> str:
        return (
            f"  {self.system:13s} {self.rps:9.1f} req/s  p50 {self.p50_ms:7.2f} ms  "
            f"p99 {self.p99_ms:7.2f} ms  errors {self.errors}  wrk cpu {self.wrk_cpu:4.0%}  "
            f"server cpu {self.server_cpu:4.0%}  machine {self.machine_busy:4.0%}"
        )


def run_wrk(
    server: Server, lua_args: list[str], *, duration: float, connections: int
) -> Measurement:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        server.url,
        "--",
        *lua_args,
    ]
    cpu_before, server_before, busy_before = children_cpu(), server.cpu_seconds(), machine_busy()
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120)
    wall = time.monotonic() - started
    cpu_after, server_after, busy_after = children_cpu(), server.cpu_seconds(), machine_busy()
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_JSON ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    stats = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    errors = sum(
        stats[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return Measurement(
        system=server.name,
        rps=stats["requests"] / (stats["duration_us"] / 1e6),
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        errors=errors,
        wrk_cpu=(cpu_after - cpu_before) / wall,
        server_cpu=(server_after - server_before) / wall,
        machine_busy=(busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1]),
    )


def http(
    url: str, *, method: str = "GET", body: bytes | None = None, auth: str | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = auth
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


# --- scenarios -------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    baseline: str
    # system -> wrk script arguments
    lua_args: dict[str, list[str]]
    target: float


def scenarios(workdir: Path) -> dict[str, Scenario]:
    dashboard = json.loads((workdir / "dashboard.json").read_text())
    (workdir / "graphql-gpugo.json").write_bytes(graphql.gpugo_body())
    (workdir / "graphql-postgraphile.json").write_bytes(
        graphql.postgraphile_body(dashboard["user_id"])
    )
    agents = str(workdir / "agents.tsv")
    codes = str(workdir / "codes.txt")
    return {
        "status": Scenario(
            "status",
            "raw",
            {"gpugo": ["status", agents], "raw": ["status", agents]},
            # The fleet's target: a report with its metrics at twice the plain way's rate.
            target=2.0,
        ),
        "share": Scenario(
            "share",
            "raw",
            {"gpugo": ["get", codes, "/s/"], "raw": ["get", codes, "/s/"]},
            target=1.0,
        ),
        "graphql": Scenario(
            "graphql",
            "postgraphile",
            {
                "gpugo": [
                    "post",
                    "/graphql",
                    str(workdir / "graphql-gpugo.json"),
                    f"Bearer {dashboard['pat']}",
                ],
                "postgraphile": [
                    "post",
                    "/graphql",
                    str(workdir / "graphql-postgraphile.json"),
                ],
            },
            target=1.0,
        ),
    }


T = TypeVar("T")


def on_database(database_url: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """``work(connection)`` on a connection of its own to the bench database, closed after."""
    import asyncio

    import asyncpg

    async def run() -> T:
        conn = await asyncpg.connect(database_url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


def gpu_users(database_url: str, agent_id: str) -> list[list[str | None]]:
    """The agent's GPUs and the worker each is used by, as stored."""

    async def read(conn: Any) -> list[list[str | None]]:
        rows = await conn.fetch(
            "SELECT gpu_id, used_by_worker_id FROM gpus WHERE agent_id = $1 ORDER BY gpu_id",
            agent_id,
        )
        return [[row[0], row[1]] for row in rows]

    return on_database(database_url, read)


def check_same_answers(
    name: str, servers: dict[str, Server], workdir: Path, database_url: str
) -> None:
    """Both systems answer the scenario's request alike before anything is timed."""
    if name == "status":
        agent_id, secret, body = (workdir / "agents.tsv").open().readline().rstrip("\n").split("\t")
        answers = {}
        stored = {}
        for system, server in servers.items():
            status, answer = http(
                f"{server.url}/api/v1/agents/{agent_id}/status",
                method="POST",
                body=body.encode(),
                auth=f"Bearer {secret}",
            )
            assert status == 200, (system, status, answer)
            # What each leaves in the shared tables must be alike too: a baseline storing
            # another state would turn every report of the other system into a change.
            stored[system] = gpu_users(database_url, agent_id)
            answers[system] = (
                answer["success"],
                answer["config_version"],
                answer.get("license", {}).get("plain", "").rsplit("|", 1)[0],
            )
        # gpugo sends a license only when the one held is about to expire; the raw
        # baseline signs one every time: their GPUs and plan must agree when both do.
        licenses = {lic for _, _, lic in answers.values() if lic}
        assert len({a[:2] for a in answers.values()}) == 1 and len(licenses) <= 1, answers
        assert len({json.dumps(users) for users in stored.values()}) == 1, stored
    elif name == "share":
        code = (workdir / "codes.txt").open().readline().strip()
        answers = {}
        for system, server in servers.items():
            status, answer = http(f"{server.url}/s/{code}")
            assert status == 200, (system, status, answer)
            answers[system] = json.dumps(answer, sort_keys=True)
        assert len(set(answers.values())) == 1, answers
    else:
        dashboard = json.loads((workdir / "dashboard.json").read_text())
        ours = graphql.normalise_gpugo(
            graphql.post(
                servers["gpugo"].url + "/graphql",
                graphql.gpugo_body(),
                f"Bearer {dashboard['pat']}",
            )
        )
        theirs = graphql.normalise_postgraphile(
            graphql.post(
                servers["postgraphile"].url + "/graphql",
                graphql.postgraphile_body(dashboard["user_id"]),
            )
        )
        if ours != theirs:
            (workdir / "graphql-gpugo.normalised.json").write_text(json.dumps(ours, indent=1))
            (workdir / "graphql-postgraphile.normalised.json").write_text(
                json.dumps(theirs, indent=1)
            )
            raise AssertionError(f"the GraphQL answers differ: see {workdir}/*.normalised.json")
        assert len(ours["agents"]) == graphql.AGENTS, len(ours["agents"])
        print(
            f"  same data in both answers: {len(ours['agents'])} agents, "
            f"{graphql.count_leaves(ours)} values"
        )


def fleet_online(args: argparse.Namespace, spread_seconds: int = 20) -> None:
    """Every agent reported within the last 20 s: the steady state of a fleet reporting
    every 30 s (otherwise the first report of each agent brings it online, a write)."""
    import asyncpg

    async def refresh(conn: Any) -> None:
        # A running server's last_seen_at flush locks rows in id order, this UPDATE
        # in its own: PostgreSQL may pick it as a deadlock's victim. Again, then.
        for attempt in range(5):
            try:
                await conn.execute(
                    "UPDATE agents SET last_seen_at = now() - random() * $1::interval,"
                    " shut_down_at = NULL, offline_notified = false",
                    timedelta(seconds=spread_seconds),
                )
                break
            except asyncpg.DeadlockDetectedError:
                if attempt == 4:
                    raise
        # The dead row versions of that UPDATE would otherwise be autovacuumed mid-run.
        await conn.execute("VACUUM (ANALYZE) agents")

    on_database(seed.db_url(args.server, args.db), refresh)


def prime_status(server: Server, args: argparse.Namespace) -> str:
    """One status report of every agent, 32 at a time; what it took."""
    import asyncio

    import httpx

    lines = (args.workdir / "agents.tsv").read_text().splitlines()

    async def send_all() -> int:
        queue = [line.split("\t", 2) for line in lines if line]
        failed = 0

        async def sender(http: httpx.AsyncClient) -> None:
            nonlocal failed
            while queue:
                agent_id, secret, body = queue.pop()
                answer = await http.post(
                    f"/api/v1/agents/{agent_id}/status",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {secret}",
                        "Content-Type": "application/json",
                    },
                )
                failed += answer.status_code != 200

        limits = httpx.Limits(max_connections=args.connections)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as http:
            await asyncio.gather(*(sender(http) for _ in range(args.connections)))
        return failed

    started = time.monotonic()
    failed = asyncio.run(send_all())
    if failed:
        raise RuntimeError(f"{failed} of {len(lines)} priming reports were refused")
    return f"{len(lines)} agents reported once in {time.monotonic() - started:.1f}s"


def _add_also(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="also measure the gpugo package in DIR (another commit) under LABEL",
    )


def start_servers(name: str, scenario: Scenario, args: argparse.Namespace) -> dict[str, Server]:
    url = seed.db_url(args.server, args.db)
    workdir: Path = args.workdir
    gpugo_url = url + (f"?{args.gpugo_db_query}" if args.gpugo_db_query else "")
    base = args.port_base
    servers = {
        "gpugo": gpugo_server(database_url=gpugo_url, port=base + PORTS["gpugo"], workdir=workdir)
    }
    for n, (label, src) in enumerate(other_trees(args.also)):
        servers[label] = gpugo_server(
            database_url=gpugo_url,
            port=base + PORTS["postgraphile"] + 1 + n,
            workdir=workdir,
            name=label,
            src=src,
        )
    if scenario.baseline == "raw":
        servers["raw"] = raw_server(database_url=url, port=base + PORTS["raw"], workdir=workdir)
    else:
        dashboard = json.loads((workdir / "dashboard.json").read_text())
        servers["postgraphile"] = postgraphile_server(
            database_url=url,
            port=base + PORTS["postgraphile"],
            workdir=workdir,
            probe=graphql.postgraphile_body(dashboard["user_id"]),
        )
    return servers


def run_scenario(name: str, scenario: Scenario, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== {name}: gpugo vs {scenario.baseline} ==")
    vacuum_written_tables(args)
    # No measured server runs the installation's periodic work (servers.no_sweeper).
    with no_sweeper(seed.db_url(args.server, args.db)):
        return _measure(name, scenario, args)


# What the scenarios update in place (the raw status baseline replaces every agent's
# connections per report, a share use rewrites its row).
WRITTEN_TABLES = ("agents", "gpus", "workers", "worker_connections", "shares")


def vacuum_written_tables(args: argparse.Namespace) -> None:
    """Earlier scenarios' dead row versions cleared before this one: otherwise the
    dashboard query, say, walks half a million dead connections left by the status runs
    until autovacuum happens to come by, at a moment no run chose."""
    statement = f"VACUUM (ANALYZE) {', '.join(WRITTEN_TABLES)}"
    on_database(seed.db_url(args.server, args.db), lambda conn: conn.execute(statement))


def _measure(name: str, scenario: Scenario, args: argparse.Namespace) -> dict[str, Any]:
    servers = start_servers(name, scenario, args)
    for label in servers:
        scenario.lua_args.setdefault(label, scenario.lua_args["gpugo"])
    started: list[Server] = []
    try:
        for server in servers.values():
            server.start()
            started.append(server)
        check_same_answers(name, servers, args.workdir, seed.db_url(args.server, args.db))
        order = list(servers)
        for system in order:
            if name == "status":
                fleet_online(args)
                if args.prime:
                    # Every agent's first report in this server's life reads its state from
                    # the database; a fleet that reports every 30 s is past that.
                    print(f"  primed {system}: {prime_status(servers[system], args)}", flush=True)
            if args.warmup > 0:
                run_wrk(
                    servers[system],
                    scenario.lua_args[system],
                    duration=args.warmup,
                    connections=args.connections,
                )
        runs: dict[str, list[Measurement]] = {system: [] for system in order}
        for round_ in range(args.runs):
            # Alternate who goes first, so a drift of the machine's speed hits both alike.
            for system in order if round_ % 2 == 0 else reversed(order):
                if name == "status":
                    fleet_online(args)
                m = run_wrk(
                    servers[system],
                    scenario.lua_args[system],
                    duration=args.duration,
                    connections=args.connections,
                )
                runs[system].append(m)
                print(m.line(), flush=True)
        peaks = {system: servers[system].peak_rss_mb() for system in order}
    finally:
        for server in started:
            server.stop()
    summary: dict[str, Any] = {"scenario": name, "baseline": scenario.baseline, "systems": {}}
    for system, ms in runs.items():
        summary["systems"][system] = {
            "rps": statistics.median(m.rps for m in ms),
            "p50_ms": statistics.median(m.p50_ms for m in ms),
            "p99_ms": statistics.median(m.p99_ms for m in ms),
            "errors": sum(m.errors for m in ms),
            "peak_rss_mb": peaks[system],
            "wrk_cpu": statistics.median(m.wrk_cpu for m in ms),
            "server_cpu": statistics.median(m.server_cpu for m in ms),
            "machine_busy": statistics.median(m.machine_busy for m in ms),
            "runs": [m.__dict__ for m in ms],
        }
    ours = summary["systems"]["gpugo"]["rps"]
    theirs = summary["systems"][scenario.baseline]["rps"]
    summary["ratio"] = ours / theirs
    summary["ratios"] = {
        system: s["rps"] / theirs
        for system, s in summary["systems"].items()
        if system != scenario.baseline
    }
    summary["target"] = scenario.target
    return summary


def print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\nmedian of {args.runs} x {args.duration:g}s, wrk -t1 -c{args.connections}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    header = (
        f"{'scenario':9s} {'system':13s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} "
        f"{'peak RSS':>9s} {'wrk cpu':>8s} {'srv cpu':>8s} {'errors':>7s}"
    )
    print(header)
    for result in results:
        for system, s in result["systems"].items():
            print(
                f"{result['scenario']:9s} {system:13s} {s['rps']:9.1f} {s['p50_ms']:8.2f} "
                f"{s['p99_ms']:8.2f} {s['peak_rss_mb']:7.0f}MB {s['wrk_cpu']:8.0%} "
                f"{s['server_cpu']:8.0%} {s['errors']:7d}"
            )
        verdict = "meets" if result["ratio"] >= result["target"] else "BELOW"
        print(
            f"{result['scenario']:9s} ratio gpugo/{result['baseline']}: {result['ratio']:.2f}x "
            f"(target >= {result['target']:.1f}x: {verdict})"
        )
        for system, ratio in result["ratios"].items():
            if system != "gpugo":
                print(f"{result['scenario']:9s} ratio {system}/{result['baseline']}: {ratio:.2f}x")


def command_run(args: argparse.Namespace) -> int:
    ensure_wrk()
    if not (args.workdir / "agents.tsv").exists():
        print("no seeded data: run `python -m bench seed` first", file=sys.stderr)
        return 2
    all_scenarios = scenarios(args.workdir)
    names = args.scenarios or list(all_scenarios)
    unknown = set(names) - set(all_scenarios)
    if unknown:
        print(f"unknown scenarios: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    results = [run_scenario(name, all_scenarios[name], args) for name in names]
    print_table(results, args)
    out = args.workdir / "results.jsonl"
    with out.open("a") as f:
        for result in results:
            result["at"] = datetime.now(UTC).isoformat()
            result["settings"] = {
                "runs": args.runs,
                "duration": args.duration,
                "connections": args.connections,
                "gpugo_db_query": args.gpugo_db_query,
            }
            f.write(json.dumps(result) + "\n")
    return 0


def command_seed(args: argparse.Namespace) -> int:
    seed.main_seed(args.server, args.db, args.agents, args.workdir)
    return 0


def command_sustained(args: argparse.Namespace) -> int:
    from bench import sustained

    return sustained.main(args)


def command_metrics_history(args: argparse.Namespace) -> int:
    from bench import metrics_history

    if args.db == "gpugo_bench":
        args.db = "gpugo_bench_history"
    return metrics_history.main(args)


def command_fanout(args: argparse.Namespace) -> int:
    from bench import fanout

    return fanout.main(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="PostgreSQL server URL")
    parser.add_argument("--db", default="gpugo_bench", help="database name (dropped, recreated)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    commands = parser.add_subparsers(dest="command", required=True)
    seed_cmd = commands.add_parser("seed", help="drop, recreate and fill the bench database")
    seed_cmd.add_argument("--agents", type=int, default=10_000)
    run = commands.add_parser("run", help="scenarios against their baselines")
    run.add_argument("scenarios", nargs="*", help="status, share, graphql (default: all)")
    run.add_argument("--runs", type=int, default=3)
    run.add_argument("--duration", type=float, default=15)
    run.add_argument("--warmup", type=float, default=3)
    run.add_argument("--connections", type=int, default=32)
    run.add_argument(
        "--prime",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="status: one report of every agent before the warm-up (the fleet's steady state)",
    )
    run.add_argument("--port-base", type=int, default=18080, help="gpugo's port; +1, +2...")
    run.add_argument(
        "--gpugo-db-query", default="", help="query string for gpugo's database URL (pool size)"
    )
    _add_also(run)
    sus = commands.add_parser("sustained", help="a constant rate of status reports")
    sus.add_argument("--agents", type=int, default=100_000, help="agents reporting")
    sus.add_argument("--period", type=float, default=30, help="seconds between an agent's reports")
    sus.add_argument(
        "--rate",
        type=float,
        default=0,
        help="reports/s instead of --agents (agents: rate x period)",
    )
    sus.add_argument("--port-base", type=int, default=18080, help="gpugo's port")
    sus.add_argument("--duration", type=float, default=300)
    sus.add_argument("--connections", type=int, default=64)
    sus.add_argument("--workers", type=int, default=1, help="gpugo serve --workers")
    sus.add_argument(
        "--without-metrics", action="store_true", help="the reports without their metrics"
    )
    sus.add_argument("--src", type=Path, help="serve the gpugo package in this directory")
    sus.add_argument(
        "--seed",
        choices=("auto", "never"),
        default="auto",
        help="auto: seed (drop and recreate the database) when fewer agents are seeded",
    )
    sus.add_argument("--gpugo-db-query", default="")
    history = commands.add_parser(
        "metrics-history", help="30 days of one 8-GPU agent: the 30-day and 24-hour charts"
    )
    history.add_argument("--runs", type=int, default=50)
    history.add_argument("--port-base", type=int, default=18090, help="gpugo's port; +1, +2...")
    history.add_argument(
        "--rounds", type=int, default=1, help="turns of every server, first one rotating"
    )
    _add_also(history)
    fan = commands.add_parser("fanout", help="dashboard tabs on agentEvents while agents report")
    from bench.fanout import add_arguments

    add_arguments(fan)
    args = parser.parse_args(argv)
    handler = {
        "seed": command_seed,
        "run": command_run,
        "sustained": command_sustained,
        "metrics-history": command_metrics_history,
        "fanout": command_fanout,
    }
    return handler[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
