"""Seed a fresh PostgreSQL database for the benchmarks.

Drops and recreates the database (default ``gpugo_bench`` on 127.0.0.1:5432), applies
gpugo's migrations, then COPYs in N agents, each with 4 GPUs, 2 workers (one
connection each) and one share (``max_uses`` null, so it never runs out), owned by
users of 20 agents each. The first user is the dashboard user and gets a PAT.

The raw secrets never enter the database (only their SHA-256); they are written to
the work directory for the load generators:

- ``agents.tsv``: ``agent_id <TAB> secret <TAB> status report body (one JSON line)``,
  the body a real agent would send for the state that was seeded (so a report is a
  steady heartbeat unless a scenario changes it);
- ``codes.txt``: one share code a line;
- ``dashboard.json``: the dashboard user's id and PAT.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from gpugo.auth.tokens import TokenKind, new_token

AGENTS_PER_USER = 20
GPUS_PER_AGENT = 4
GPU_MODEL = "NVIDIA GeForce RTX 4090"
# The moment the seeded connections were first seen (the body repeats it).
CONNECTED_AT = datetime(2026, 11, 25, 17, 37, 33, 123456, tzinfo=UTC)
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _id(prefix: str, rng: random.Random) -> str:
    return prefix + "_" + "".join(rng.choices(BASE62, k=22))


def admin_dsn(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql", path="/postgres", query=""))


def db_url(server: str, name: str) -> str:
    """``postgres://...`` of database ``name`` on the server of ``server``."""
    parts = urlsplit(server)
    return urlunsplit(parts._replace(scheme="postgres", path=f"/{name}", query=""))


async def recreate_database(server: str, name: str) -> None:
    admin = await asyncpg.connect(admin_dsn(server))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


def migrate(url: str, workdir: Path) -> None:
    env = {"GPUGO_DATABASE_URL": url, "GPUGO_DATA_DIR": str(workdir / "gpugo-data")}
    subprocess.run(
        [sys.executable, "-m", "gpugo.cli", "migrate"],
        check=True,
        env={**_base_env(), **env},
        stdout=subprocess.DEVNULL,
    )


def _base_env() -> dict[str, str]:
    return dict(os.environ)


def line_protocol(agent_id: str, workers: list[tuple[str, int, list[int]]], now: datetime) -> str:
    """The metrics the real agent puts in its report (internal/agent/metrics.go): a line per
    GPU, the host, a line per worker; millisecond timestamps."""
    ms = int(now.timestamp() * 1000)
    lines = [
        f"gpu_metrics,agent_id={agent_id},gpu_id=GPU-{index},"
        f"model={GPU_MODEL.replace(' ', chr(92) + ' ')},vendor=nvidia "
        f"utilization={40 + index * 7}.50,vram_used_mb={12000 + index}i,vram_total_mb=24564i,"
        f"temperature=61.0,power_usage_w=250.5,pcie_rx_kb=1024.0,pcie_tx_kb=512.0 {ms}"
        for index in range(GPUS_PER_AGENT)
    ]
    lines.append(
        f"system_metrics,agent_id={agent_id},hostname=gpu-host cpu_usage=12.50,"
        f"memory_used_mb=8192i,memory_total_mb=65536i {ms}"
    )
    lines += [
        f"worker_metrics,agent_id={agent_id},worker_id={worker_id} "
        f"status=1i,connections=1i,restarts=0i {ms}"
        for worker_id, _, _ in workers
    ]
    return "\n".join(lines)


def report_body(
    agent_id: str, workers: list[tuple[str, int, list[int]]], n: int, now: datetime
) -> dict:
    """What the real agent sends for the seeded state: 4 GPUs, 2 workers, its metrics in
    line protocol (~3 KB). Its license is the one registration would have given it."""
    gpus = []
    for index in range(GPUS_PER_AGENT):
        gpus.append(
            {
                "gpu_id": f"GPU-{index}",
                "gpu_index": index,
                # The real agent never names the worker: the server knows it.
                "used_by_worker": None,
                "vendor": "nvidia",
                "model": GPU_MODEL,
                "vram_mb": 24564,
                "driver_version": "550.54.14",
                "cuda_version": "12.4",
                "gpu_changed": False,
            }
        )
    worker_reports = []
    for worker_id, pid, indices in workers:
        worker_reports.append(
            {
                "worker_id": worker_id,
                "status": "running",
                "pid": pid,
                "restarts": 0,
                "gpu_ids": [f"GPU-{i}" for i in indices],
                "gpu_indices": indices,
                "worker_changed": False,
                "gpu_changed": False,
                "connections": [
                    {
                        "client_ip": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
                        "connected_at": CONNECTED_AT.isoformat().replace("+00:00", "Z"),
                        "client_port": 40000 + pid % 20000,
                        "client_pid": pid + 1,
                    }
                ],
            }
        )
    return {
        "timestamp": now.isoformat(),
        "gpus": gpus,
        "workers": worker_reports,
        # Held until 10 minutes before its expiry: seeded for the next two hours of runs.
        "license_expiration": int((now + timedelta(hours=2)).timestamp() * 1000),
        "metrics": line_protocol(agent_id, workers, now),
    }


async def seed(*, server: str, name: str, agents: int, workdir: Path, seed_value: int = 7) -> None:
    started = time.monotonic()
    url = db_url(server, name)
    await recreate_database(server, name)
    migrate(url, workdir)
    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    users, agent_rows, gpu_rows, worker_rows, conn_rows, share_rows = [], [], [], [], [], []
    lines: list[str] = []
    codes: list[str] = []
    user_ids: list[str] = []
    for u in range(-(-agents // AGENTS_PER_USER)):
        user_id = _id("usr", rng)
        user_ids.append(user_id)
        users.append((user_id, f"bench{u}@example.com", "x", "pro", now - timedelta(days=30)))
    for n in range(agents):
        user_id = user_ids[n // AGENTS_PER_USER]
        agent_id = _id("agt", rng)
        secret = new_token(TokenKind.AGENT)
        created = now - timedelta(days=10, seconds=n)
        agent_rows.append(
            (
                agent_id,
                user_id,
                hashlib.sha256(secret.encode()).hexdigest(),
                f"gpu-host-{n:06d}",
                "linux",
                "amd64",
                json.dumps([f"192.0.2.{n % 250 + 1}"]),
                1,
                1,
                created,
                now - timedelta(seconds=n % 30),
                None,
                False,
                created,
                created,
            )
        )
        workers = []
        for w, (port, indices) in enumerate(((9001, [0, 1]), (9002, [2, 3]))):
            worker_id = _id("wkr", rng)
            pid = 10000 + (n * 2 + w) % 50000
            workers.append((worker_id, pid, indices))
            worker_rows.append(
                (
                    worker_id,
                    agent_id,
                    "default" if w == 0 else "second",
                    json.dumps([f"GPU-{i}" for i in indices]),
                    port,
                    True,
                    "running",
                    pid,
                    0,
                    w == 0,
                    None,
                    None,
                    None,
                    created + timedelta(seconds=w),
                    created + timedelta(seconds=w),
                )
            )
        body = report_body(agent_id, workers, n, now)
        for report in body["workers"]:
            for c in report["connections"]:
                conn_rows.append(
                    (report["worker_id"], c["client_ip"], c["client_port"], c["client_pid"])
                )
        for index in range(GPUS_PER_AGENT):
            used_by = next(w for w, _, idx in workers if index in idx)
            gpu_rows.append(
                (
                    _id("gpu", rng),
                    agent_id,
                    f"GPU-{index}",
                    index,
                    "nvidia",
                    GPU_MODEL,
                    24564,
                    "550.54.14",
                    "12.4",
                    used_by,
                )
            )
        code = "".join(rng.choices(BASE62, k=12))
        codes.append(code)
        share_rows.append(
            (
                _id("shr", rng),
                user_id,
                workers[0][0],
                code,
                f"203.0.113.{n % 250 + 1}",
                "nvidia",
                None,
                None,
                0,
                created,
            )
        )
        lines.append(f"{agent_id}\t{secret}\t{json.dumps(body, separators=(',', ':'))}")

    pat = new_token(TokenKind.PAT)
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "users",
                records=users,
                columns=["id", "email", "password_hash", "plan", "created_at"],
            )
            await conn.copy_records_to_table(
                "agents",
                records=agent_rows,
                columns=[
                    "id",
                    "user_id",
                    "secret_hash",
                    "hostname",
                    "os",
                    "arch",
                    "network_ips",
                    "config_version",
                    "fetched_config_version",
                    "config_fetched_at",
                    "last_seen_at",
                    "shut_down_at",
                    "offline_notified",
                    "created_at",
                    "updated_at",
                ],
            )
            await conn.copy_records_to_table(
                "workers",
                records=worker_rows,
                columns=[
                    "id",
                    "agent_id",
                    "name",
                    "gpu_ids",
                    "listen_port",
                    "enabled",
                    "status",
                    "pid",
                    "restarts",
                    "is_default",
                    "vram_mb",
                    "compute_percent",
                    "isolation_mode",
                    "created_at",
                    "updated_at",
                ],
            )
            await conn.copy_records_to_table(
                "gpus",
                records=gpu_rows,
                columns=[
                    "id",
                    "agent_id",
                    "gpu_id",
                    "gpu_index",
                    "vendor",
                    "model",
                    "vram_mb",
                    "driver_version",
                    "cuda_version",
                    "used_by_worker_id",
                ],
            )
            await conn.copy_records_to_table(
                "worker_connections",
                records=[(*row, CONNECTED_AT) for row in conn_rows],
                columns=["worker_id", "client_ip", "client_port", "client_pid", "connected_at"],
            )
            await conn.copy_records_to_table(
                "shares",
                records=share_rows,
                columns=[
                    "id",
                    "user_id",
                    "worker_id",
                    "short_code",
                    "connection_ip",
                    "hardware_vendor",
                    "expires_at",
                    "max_uses",
                    "used_count",
                    "created_at",
                ],
            )
            await conn.execute(
                "INSERT INTO personal_access_tokens (id, user_id, token_hash, created_at)"
                " VALUES ($1, $2, $3, $4)",
                _id("pat", rng),
                user_ids[0],
                hashlib.sha256(pat.encode()).hexdigest(),
                now,
            )
        # PostGraphile names this table's type WorkerConnection, which clashes with its own
        # connection type for workers: a smart comment renames it (gpugo ignores comments).
        await conn.execute("COMMENT ON TABLE worker_connections IS E'@name client_connection'")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    (workdir / "agents.tsv").write_text("\n".join(lines) + "\n")
    (workdir / "codes.txt").write_text("\n".join(codes) + "\n")
    (workdir / "dashboard.json").write_text(
        json.dumps({"user_id": user_ids[0], "pat": pat, "agents": min(agents, AGENTS_PER_USER)})
    )
    for path in ("agents.tsv", "dashboard.json"):
        (workdir / path).chmod(0o600)
    print(
        f"seeded {url}: {agents} agents, {len(gpu_rows)} GPUs, {len(worker_rows)} workers, "
        f"{len(conn_rows)} connections, {len(share_rows)} shares, {len(users)} users "
        f"in {time.monotonic() - started:.1f}s; secrets in {workdir}",
        file=sys.stderr,
    )


def main_seed(server: str, name: str, agents: int, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    asyncio.run(seed(server=server, name=name, agents=agents, workdir=workdir))
