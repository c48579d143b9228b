"""`gpugo serve --workers N`: N processes on one port, one sweeper among them.

A real supervisor with 2 workers on PostgreSQL (each test starts its own and stops it);
SQLite is refused before anything starts.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gpugo.supervisor import EARLY_SECONDS
from tests.live.support import free_port
from tests.support import eventually

LEADS = re.compile(r"process (\d+) leads: it runs the sweeper")


class Supervisor:
    def __init__(self, workdir: Path, database_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "supervisor.log"
        env = {
            **os.environ,
            "GPUGO_DATABASE_URL": database_url,
            "GPUGO_DATA_DIR": str(workdir),
            "GPUGO_RATE_LIMITS": "off",
            "GPUGO_LOG_LEVEL": "INFO",
            "GPUGO_OFFLINE_SWEEP_SECONDS": "0.2",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gpugo",
                    "serve",
                    "--workers",
                    "2",
                    "--port",
                    str(self.port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def leaders(self) -> list[int]:
        return [int(pid) for pid in LEADS.findall(self.output())]

    async def wait_ready(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as http:
            while True:
                assert self.process.poll() is None, self.output()
                try:
                    ready = (await http.get(f"{self.url}/readyz")).status_code == 200
                    if ready and len(self.workers()) == 2:
                        return
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"not ready in {within} s\n{self.output()}"
                await asyncio.sleep(0.1)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode


@pytest.fixture
def supervisor(database_url: str, tmp_path: Path) -> Iterator[Supervisor]:
    if not database_url.startswith("postgres"):
        pytest.skip("--workers serves a PostgreSQL database")
    running = Supervisor(tmp_path, database_url)
    try:
        yield running
    finally:
        running.stop()


def multiprocess_dir(pid: int) -> Path:
    """The PROMETHEUS_MULTIPROC_DIR a process was started with."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    [setting] = [v for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    return Path(setting.split(b"=", 1)[1].decode())


def exists(path: Path) -> bool:
    return path.exists()


def socket_owners(pids: list[int], port: int) -> dict[int, int]:
    """Client port -> the worker process holding the server end of that connection."""
    inodes: dict[int, int] = {}
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes[int(target[8:-1])] = pid
    owners = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        remote_port = int(fields[2].split(":")[1], 16)
        inode = int(fields[9])
        if local_port == port and inode in inodes:
            owners[remote_port] = inodes[inode]
    return owners


async def test_two_workers_serve_one_port_and_one_of_them_sweeps(supervisor):
    async with asyncio.timeout(90):
        await supervisor.wait_ready()
        workers = supervisor.workers()
        # Fresh connections until both workers hold one (the kernel hands each accept
        # to one of them); bounded.
        clients: list[httpx.AsyncClient] = []
        serving: set[int] = set()
        try:
            for _ in range(100):
                client = httpx.AsyncClient()
                clients.append(client)
                assert (await client.get(f"{supervisor.url}/readyz")).status_code == 200
                owners = socket_owners(workers, supervisor.port)
                serving = set(owners.values())
                if serving == set(workers):
                    break
        finally:
            for client in clients:
                await client.aclose()
        assert serving == set(workers), (serving, workers)
        # Sweeps run every 0.2 s: one process leads, the other never does.
        await asyncio.sleep(1.0)
        assert len(supervisor.leaders()) == 1, supervisor.output()
        assert supervisor.leaders()[0] in workers
        # The workers got a fresh directory for prometheus-client's multiprocess mode.
        shared = multiprocess_dir(workers[0])
        assert multiprocess_dir(workers[1]) == shared
        assert exists(shared)
    assert supervisor.stop() == 0, supervisor.output()
    assert not exists(shared)
    assert not [pid for pid in workers if exists(Path(f"/proc/{pid}"))]


async def test_when_the_leader_dies_another_worker_takes_the_sweeper(supervisor):
    async with asyncio.timeout(120):
        await supervisor.wait_ready()
        ready_at = time.monotonic()  # the workers started before
        await eventually(lambda: bool(supervisor.leaders()), within=60)
        [leader] = supervisor.leaders()
        # A worker that dies within its first seconds stops the supervisor (it would
        # only die again): this one has served a while.
        await asyncio.sleep(max(0.0, ready_at + EARLY_SECONDS + 1 - time.monotonic()))
        os.kill(leader, signal.SIGKILL)
        await eventually(lambda: len(supervisor.leaders()) >= 2, within=60)
        successor = supervisor.leaders()[1]
        assert successor != leader
        # The supervisor started another worker in the dead one's place.
        await eventually(
            lambda: len(supervisor.workers()) == 2 and leader not in supervisor.workers(),
            within=60,
        )
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{supervisor.url}/readyz")).status_code == 200
    assert supervisor.stop() == 0, supervisor.output()
    assert "starting another" in supervisor.output()


def test_sqlite_is_refused(tmp_path):
    env = {**os.environ, "GPUGO_DATA_DIR": str(tmp_path)}
    env.pop("GPUGO_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "gpugo", "serve", "--workers", "2", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result
    assert "--workers needs PostgreSQL" in result.stderr
    assert "SQLite" in result.stderr
    # Refused before anything was created.
    assert not list(tmp_path.iterdir())
