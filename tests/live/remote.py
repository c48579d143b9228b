"""Driving servers over TCP only: users, agents and `gpugo serve` processes.

For scenarios that span server processes, where the in-process ``api`` helpers
cannot reach. Users act with a PAT (no cookies, so no Origin to match).
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gpugo.keys import LICENSE_KEY_FILE, load_or_create_license_key
from tests.live.support import free_port
from tests.support import PASSWORD, gpu_infos, moment, out_time

# Reports carry the server's now, as an agent with a correct clock sends them.
NOW = out_time(moment())


@dataclass
class RemoteAgent:
    agent_id: str
    secret: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


@dataclass
class RemoteUser:
    http: httpx.AsyncClient
    user_id: str
    pat: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.pat}"}

    async def register_agent(self, base_url: str, *, gpus: int = 1) -> RemoteAgent:
        token = await self.http.post(
            f"{base_url}/api/v1/tokens/generate", json={"type": "agent_install"}, headers=self.auth
        )
        assert token.status_code == 201, token.text
        response = await self.http.post(
            f"{base_url}/api/v1/agents/register",
            json={"hostname": "rig", "os": "linux", "arch": "amd64", "gpus": gpu_infos(gpus)},
            headers={"Authorization": f"Bearer {token.json()['token']}"},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return RemoteAgent(body["agent_id"], body["agent_secret"])

    async def create_worker(self, base_url: str, agent: RemoteAgent, port: int) -> httpx.Response:
        return await self.http.post(
            f"{base_url}/api/v1/workers",
            json={
                "agent_id": agent.agent_id,
                "name": f"w{port}",
                "gpu_ids": ["GPU-0"],
                "listen_port": port,
            },
            headers=self.auth,
        )


async def new_user(http: httpx.AsyncClient, base_url: str, public_url: str) -> RemoteUser:
    """Sign up (a cookie session) and make a PAT, which is used from then on."""
    email = f"live-{uuid.uuid4().hex[:12]}@example.com"
    # Its own client: the session cookie must not ride along with later requests.
    async with httpx.AsyncClient() as browser:
        signup = await browser.post(
            f"{base_url}/api/v1/auth/signup", json={"email": email, "password": PASSWORD}
        )
        assert signup.status_code == 201, signup.text
        pat = await browser.post(
            f"{base_url}/api/v1/tokens/pat",
            json={"expires_in_days": None},
            headers={"Origin": public_url},
        )
        assert pat.status_code == 201, pat.text
    return RemoteUser(http, signup.json()["user_id"], pat.json()["token"])


async def report(
    http: httpx.AsyncClient,
    base_url: str,
    agent: RemoteAgent,
    workers: list[dict[str, Any]] | None = None,
) -> None:
    response = await http.post(
        f"{base_url}/api/v1/agents/{agent.agent_id}/status",
        json={"timestamp": NOW, "gpus": [], "workers": workers or []},
        headers=agent.auth,
    )
    assert response.status_code == 200, response.text


class ServerProcess:
    """`python -m gpugo serve` on a free port; always stopped by ``stop()``."""

    def __init__(
        self, workdir: Path, env: dict[str, str], open_files: tuple[int, int] | None = None
    ) -> None:
        self.port = free_port()
        # (soft, hard) RLIMIT_NOFILE the process starts with; None: this process's own.
        self.open_files = open_files
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"server-{self.port}.log"
        self.env = {
            **os.environ,
            "GPUGO_PUBLIC_URL": self.url,
            "GPUGO_RATE_LIMITS": "off",
            "GPUGO_LOG_LEVEL": "WARNING",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gpugo", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=self._limit_files if self.open_files else None,
            )

    def _limit_files(self) -> None:
        assert self.open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, self.open_files)

    async def wait_ready(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as http:
            while True:
                assert self.process is not None and self.process.poll() is None, self.output()
                try:
                    if (await http.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"not ready in {within} s\n{self.output()}"
                await asyncio.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def server_pair(
    workdir: Path, database_url: str, extra_env: dict[str, str], names: tuple[str, ...] = ("a", "b")
) -> list[ServerProcess]:
    """Instances on one database: their own data directories, the same license key (a's;
    more instances beside a pair already made take other names)."""
    servers = []
    for name in names:
        data_dir = workdir / name
        data_dir.mkdir(parents=True)
        if name == "a":
            load_or_create_license_key(data_dir)
        else:
            shutil.copy(workdir / "a" / LICENSE_KEY_FILE, data_dir / LICENSE_KEY_FILE)
        env = {"GPUGO_DATABASE_URL": database_url, "GPUGO_DATA_DIR": str(data_dir), **extra_env}
        servers.append(ServerProcess(workdir, env))
    return servers


def event_kinds(messages: list[dict[str, Any]]) -> list[str]:
    return [m["payload"]["data"]["agentEvents"]["kind"] for m in messages]
