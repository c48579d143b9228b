"""SIGTERM with metric points accepted and not yet written: `gpugo serve` writes every
acknowledged point before it exits (its periodic flush is far away, so only the
shutdown can have written them)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx

from gpugo.app import create_app
from gpugo.models import GpuMetricSample, SystemMetricSample
from gpugo.settings import Settings
from tests.live.remote import RemoteUser, ServerProcess
from tests.support import PASSWORD, empty_database, moment, out_time

REPORTS = 25


def report_lines(index: int) -> str:
    ms = int(moment(-timedelta(seconds=REPORTS - index)).timestamp() * 1000)
    return (
        f"gpu_metrics,gpu_id=GPU-0 utilization={index}.0,vram_used_mb=1i,vram_total_mb=2i,"
        f"temperature=50i,power_usage_w=100.0 {ms}\n"
        f"system_metrics cpu_usage={index}.0,memory_used_mb=1i,memory_total_mb=2i {ms}"
    )


async def test_sigterm_writes_every_acknowledged_point(
    database_url: str, tmp_path: Path, data_dir: Path
):
    settings = Settings(database_url=database_url, data_dir=data_dir)
    # An emptied database, as the other tests start from.
    emptied = create_app(settings, auto_migrate=False)
    async with emptied.router.lifespan_context(emptied):
        await empty_database()
    env = {
        "GPUGO_DATABASE_URL": database_url,
        "GPUGO_DATA_DIR": str(tmp_path / "data"),
        "GPUGO_METRICS_FLUSH_SECONDS": "3600",
    }
    server = ServerProcess(tmp_path, env)
    email = "metrics-shutdown@example.com"
    command = [sys.executable, "-m", "gpugo", "user", "create", email, "--plan", "team"]
    created = await asyncio.to_thread(
        subprocess.run,
        [*command, "--password-stdin"],
        input=PASSWORD.encode(),
        env=server.env,
        capture_output=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr.decode()
    server.start()
    try:
        async with asyncio.timeout(60), httpx.AsyncClient(timeout=30) as http:
            await server.wait_ready()
            login = await http.post(
                f"{server.url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}
            )
            assert login.status_code == 200, login.text
            pat = await http.post(
                f"{server.url}/api/v1/tokens/pat",
                json={"expires_in_days": None},
                headers={"Origin": server.url},
            )
            assert pat.status_code == 201, pat.text
            http.cookies.clear()
            user = RemoteUser(http, login.json()["user_id"], pat.json()["token"])
            agent = await user.register_agent(server.url)
            for index in range(REPORTS):
                response = await http.post(
                    f"{server.url}/api/v1/agents/{agent.agent_id}/status",
                    json={
                        "timestamp": out_time(moment()),
                        "gpus": [],
                        "workers": [],
                        "metrics": report_lines(index),
                    },
                    headers=agent.auth,
                )
                assert response.status_code == 200, response.text
            await asyncio.to_thread(server.stop)
        # uvicorn ends a graceful shutdown by raising the signal it caught again.
        assert server.process is not None and server.process.returncode == -15, server.output()
    finally:
        server.stop()
    reader = create_app(settings, auto_migrate=False)
    async with reader.router.lifespan_context(reader):
        gpus = await GpuMetricSample.filter(agent_id=agent.agent_id).count()
        systems = await SystemMetricSample.filter(agent_id=agent.agent_id).count()
        await empty_database()
    assert (gpus, systems) == (REPORTS, REPORTS)
