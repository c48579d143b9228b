"""The raw baseline: a minimal Starlette app over asyncpg doing the hot paths' SQL work.

Never imported by gpugo. Same tables, same uvicorn settings as ``gpugo serve``, same
response bodies (a status report answers with a freshly signed Ed25519 license),
but no input validation, no middleware and no ORM:

- ``POST /api/v1/agents/{id}/status``: ONE statement (a CTE): the agent by its secret's
  hash (and the path's id), last_seen_at, every reported worker's status/pid/restarts,
  every reported GPU's used_by_worker (one of the agent's workers, or when the agent
  says null, the running worker holding it: what gpugo stores too),
  the reported connection lists replaced (DELETE + INSERT), the metrics' points (line
  protocol split the plain way, one INSERT per kind: GPUs, host, workers, for Team and
  Pro accounts, only the agent's own GPUs and workers), and the agent's
  config_version, plan and GPU ids for the license. It writes everything every time.
- ``GET /s/{code}``: ONE conditional ``UPDATE ... RETURNING`` joined to the worker
  and its agent (for agent_arch); a second SELECT only on a miss, to tell 404 from 410.

Run: ``python -m bench.baseline_raw --port 18081 --dsn postgres://...``. The pool is
idiomatic asyncpg (``create_pool(min_size=max_size=BASELINE_POOL)``, default 10,
asyncpg's reset on release left as it is).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

LICENSE_TTL_MS = 120 * 60 * 1000
CODE_SHAPE = re.compile(r"^[0-9A-Za-z]{10,32}$")

STATUS_SQL = """
WITH a AS (
    SELECT a.id, a.config_version, u.plan
    FROM agents a JOIN users u ON u.id = a.user_id
    WHERE a.secret_hash = $1 AND a.id = $2
), seen AS (
    UPDATE agents SET last_seen_at = now(), shut_down_at = NULL, offline_notified = false
    WHERE id = (SELECT id FROM a)
), w_up AS (
    UPDATE workers w
    SET status = x.status, pid = x.pid, restarts = COALESCE(x.restarts, w.restarts)
    FROM jsonb_to_recordset($3::jsonb) AS x(worker_id text, status text, pid int, restarts int)
    WHERE w.id = x.worker_id AND w.agent_id = (SELECT id FROM a)
), g_up AS (
    UPDATE gpus g
    SET used_by_worker_id = CASE WHEN x.used_by_worker IS NOT NULL THEN (
        SELECT w.id FROM workers w WHERE w.id = x.used_by_worker AND w.agent_id = g.agent_id
    ) ELSE (
        -- null (what the real agent sends): the running worker holding the GPU, oldest id
        -- first, by the statuses of this report.
        SELECT w.id FROM workers w
        LEFT JOIN jsonb_to_recordset($3::jsonb) AS r(worker_id text, status text)
            ON r.worker_id = w.id
        WHERE w.agent_id = g.agent_id AND w.gpu_ids ? g.gpu_id
            AND COALESCE(r.status, w.status) = 'running'
        ORDER BY w.id LIMIT 1
    ) END
    FROM jsonb_to_recordset($4::jsonb) AS x(gpu_id text, used_by_worker text)
    WHERE g.agent_id = (SELECT id FROM a) AND g.gpu_id = x.gpu_id
), c_del AS (
    DELETE FROM worker_connections c USING workers w
    WHERE c.worker_id = w.id AND w.agent_id = (SELECT id FROM a) AND w.id = ANY($6::text[])
), c_ins AS (
    INSERT INTO worker_connections (worker_id, client_ip, client_port, client_pid, connected_at)
    SELECT x.worker_id, x.client_ip, x.client_port, x.client_pid, x.connected_at
    FROM jsonb_to_recordset($5::jsonb)
        AS x(worker_id text, client_ip text, client_port int, client_pid int,
             connected_at timestamptz)
    JOIN workers w ON w.id = x.worker_id AND w.agent_id = (SELECT id FROM a)
), m_gpu AS (
    INSERT INTO gpu_metric_samples (agent_id, gpu_id, recorded_at, utilization, vram_used_mb,
        vram_total_mb, temperature, power_usage_w, pcie_rx_kb, pcie_tx_kb)
    SELECT g.agent_id, g.gpu_id, to_timestamp(x.ms / 1000.0), x.utilization, x.vram_used_mb,
        x.vram_total_mb, round(x.temperature)::int, x.power_usage_w, round(x.pcie_rx_kb)::bigint,
        round(x.pcie_tx_kb)::bigint
    FROM jsonb_to_recordset($7::jsonb) AS x(gpu_id text, ms bigint, utilization float8,
        vram_used_mb int, vram_total_mb int, temperature float8, power_usage_w float8,
        pcie_rx_kb float8, pcie_tx_kb float8)
    JOIN gpus g ON g.agent_id = (SELECT id FROM a) AND g.gpu_id = x.gpu_id
    WHERE (SELECT plan FROM a) IN ('team', 'pro')
), m_system AS (
    INSERT INTO system_metric_samples (agent_id, recorded_at, cpu_usage, memory_used_mb,
        memory_total_mb)
    SELECT a.id, to_timestamp(x.ms / 1000.0), x.cpu_usage, x.memory_used_mb, x.memory_total_mb
    FROM jsonb_to_recordset($8::jsonb) AS x(ms bigint, cpu_usage float8, memory_used_mb bigint,
        memory_total_mb bigint)
    CROSS JOIN a
    WHERE a.plan IN ('team', 'pro')
), m_worker AS (
    INSERT INTO worker_metric_samples (agent_id, worker_id, recorded_at, status, connections,
        restarts)
    SELECT w.agent_id, w.id, to_timestamp(x.ms / 1000.0), x.status, x.connections, x.restarts
    FROM jsonb_to_recordset($9::jsonb) AS x(worker_id text, ms bigint, status int,
        connections int, restarts int)
    JOIN workers w ON w.id = x.worker_id AND w.agent_id = (SELECT id FROM a)
    WHERE (SELECT plan FROM a) IN ('team', 'pro')
)
SELECT a.config_version, a.plan,
    ARRAY(SELECT gpu_id FROM gpus WHERE agent_id = a.id
          ORDER BY gpu_index NULLS LAST, gpu_id) AS gpu_ids
FROM a
"""
# Unescaped spaces and commas split a line-protocol line (tag values escape them).
SPACE = re.compile(r"(?<!\\) ")
COMMA = re.compile(r"(?<!\\),")

REDEEM_SQL = """
UPDATE shares s SET used_count = s.used_count + 1
FROM workers w JOIN agents a ON a.id = w.agent_id
WHERE s.short_code = $1 AND w.id = s.worker_id
  AND (s.max_uses IS NULL OR s.used_count < s.max_uses)
  AND (s.expires_at IS NULL OR s.expires_at > now())
RETURNING s.worker_id, s.hardware_vendor, s.connection_ip, w.listen_port, a.arch
"""

KEY = Ed25519PrivateKey.generate()
POOL: dict[str, asyncpg.Pool] = {}


def json_response(content: object, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def error(status: int, code: str) -> Response:
    return json_response({"error": {"code": code, "message": code}}, status)


def license_for(gpu_ids: list[str], plan: str) -> dict[str, str]:
    expiry = int(time.time() * 1000) + LICENSE_TTL_MS
    plain = f"{','.join(gpu_ids)}|{plan}|{expiry}"
    return {"plain": plain, "encrypted": base64.b64encode(KEY.sign(plain.encode())).decode()}


def number(raw: str) -> float | int:
    return int(raw[:-1]) if raw.endswith("i") else float(raw)


def metric_points(text: str, fallback_ms: int) -> tuple[list[dict], list[dict], list[dict]]:
    """GPU, host and worker points of the report's line protocol, the plain way."""
    gpus: list[dict] = []
    systems: list[dict] = []
    workers: list[dict] = []
    for line in text.splitlines():
        parts = SPACE.split(line.strip())
        if len(parts) < 2:
            continue
        head = COMMA.split(parts[0])
        tags = dict(tag.split("=", 1) for tag in head[1:])
        point: dict = {k: number(v) for k, v in (f.split("=", 1) for f in COMMA.split(parts[1]))}
        point["ms"] = int(parts[2]) if len(parts) > 2 else fallback_ms
        if head[0] == "gpu_metrics":
            gpus.append({**point, "gpu_id": tags.get("gpu_id")})
        elif head[0] == "system_metrics":
            systems.append(point)
        elif head[0] == "worker_metrics":
            workers.append({**point, "worker_id": tags.get("worker_id")})
    return gpus, systems, workers


async def status_report(request: Request) -> Response:
    authorization = request.headers.get("authorization", "")
    if not authorization.startswith("Bearer "):
        return error(401, "unauthorized")
    secret_hash = hashlib.sha256(authorization[7:].strip().encode()).hexdigest()
    body = orjson.loads(await request.body())
    workers, connections, replacing = [], [], []
    for w in body.get("workers") or []:
        workers.append(
            {
                "worker_id": w["worker_id"],
                "status": w["status"],
                "pid": w.get("pid"),
                "restarts": w.get("restarts"),
            }
        )
        conns = w.get("connections")
        if conns is None and w.get("connection_changed"):
            conns = []
        if conns is not None:
            replacing.append(w["worker_id"])
            connections.extend(
                {
                    "worker_id": w["worker_id"],
                    "client_ip": c["client_ip"],
                    "client_port": c.get("client_port"),
                    "client_pid": c.get("client_pid"),
                    "connected_at": c["connected_at"],
                }
                for c in conns
            )
    gpus = [
        {"gpu_id": g["gpu_id"], "used_by_worker": g.get("used_by_worker")}
        for g in body.get("gpus") or []
    ]
    gpu_points, system_points, worker_points = metric_points(
        body.get("metrics") or "", int(time.time() * 1000)
    )
    row = await POOL["pool"].fetchrow(
        STATUS_SQL,
        secret_hash,
        request.path_params["agent_id"],
        orjson.dumps(workers).decode(),
        orjson.dumps(gpus).decode(),
        orjson.dumps(connections).decode(),
        replacing,
        orjson.dumps(gpu_points).decode(),
        orjson.dumps(system_points).decode(),
        orjson.dumps(worker_points).decode(),
    )
    if row is None:
        return error(401, "unauthorized")
    return json_response(
        {
            "success": True,
            "config_version": row["config_version"],
            "license": license_for(row["gpu_ids"], row["plan"]),
        }
    )


async def public_share(request: Request) -> Response:
    code = request.path_params["short_code"]
    if not CODE_SHAPE.match(code):
        return error(404, "not_found")
    row = await POOL["pool"].fetchrow(REDEEM_SQL, code)
    if row is None:
        found = await POOL["pool"].fetchval("SELECT 1 FROM shares WHERE short_code = $1", code)
        return error(410, "gone") if found else error(404, "not_found")
    ip = row["connection_ip"]
    host = f"[{ip}]" if ":" in ip else ip
    return json_response(
        {
            "worker_id": row["worker_id"],
            "hardware_vendor": row["hardware_vendor"],
            "connection_url": f"tcp://{host}:{row['listen_port']}",
            "agent_arch": row["arch"],
        }
    )


async def healthz(_request: Request) -> Response:
    return json_response({"status": "ok"})


def create_app(dsn: str, pool_size: int) -> Starlette:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        POOL["pool"] = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        try:
            yield
        finally:
            await POOL.pop("pool").close()

    return Starlette(
        routes=[
            Route("/api/v1/agents/{agent_id}/status", status_report, methods=["POST"]),
            Route("/s/{short_code}", public_share, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=18081)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--pool", type=int, default=int(os.environ.get("BASELINE_POOL", "10")))
    args = parser.parse_args()
    dsn = args.dsn.replace("postgres://", "postgresql://", 1).split("?")[0]
    # The same server settings as `gpugo serve` (without its logging).
    uvicorn.run(
        create_app(dsn, args.pool),
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
