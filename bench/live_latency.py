"""Live-update latency: from a worker mutation to the agent's Server-Sent Event.

    .venv/bin/python bench/live_latency.py                       # every mode below
    .venv/bin/python bench/live_latency.py --modes one-sqlite --mutations 50
    .venv/bin/python bench/live_latency.py --postgres postgres://postgres@127.0.0.1:5432/postgres

Modes (each starts its own `gpugo serve` processes on 127.0.0.1 and stops them):

- ``one-sqlite``: one process, embedded SQLite, the in-process bus;
- ``one-postgres``: one process on PostgreSQL (its own NOTIFY comes back to it);
- ``two-postgres``: two processes on one PostgreSQL database; the worker is created
  through A while the agent's stream is held on B, so every event crosses NOTIFY.

For each of ``--mutations`` workers: t0 before ``POST /api/v1/workers`` (on A), t1
when its 201 is read, t2 when the stream (on B) delivers the new config_version.
Reported: the median, 90th percentile and maximum of t2 - t0 (mutation to push), of
t1 - t0 (the POST alone) and of t2 - t1 (what the push adds after the response; it
can be negative: the event is published before the response is written). On a busy
machine the first two move together with the load; the third is the event path.

PostgreSQL modes use a throwaway database (created and dropped) on the server given
by ``--postgres`` (default: 127.0.0.1:5432, as the test suite). Bounded: every wait
has a timeout, and the servers are always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

MODES = ("one-sqlite", "one-postgres", "two-postgres")
PASSWORD = "correct horse battery"
LICENSE_KEY_FILE = "license_ed25519.pem"
GPU = {"gpu_id": "GPU-0", "vendor": "nvidia", "model": "RTX 4090", "vram_mb": 24564}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def start_server(data_dir: Path, env: dict[str, str], *, src: str = "", workers: int = 1) -> Server:
    """``gpugo serve`` on a free port (``workers`` processes); with ``src``, the gpugo
    package of that directory (run from it: ``python -m`` looks in the working directory
    before PYTHONPATH)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = data_dir / "server.log"
    full_env = {
        **os.environ,
        "GPUGO_DATA_DIR": str(data_dir),
        "GPUGO_PUBLIC_URL": url,
        "GPUGO_RATE_LIMITS": "off",
        "GPUGO_LOG_LEVEL": "WARNING",
        **env,
    }
    if src:
        full_env["PYTHONPATH"] = src
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "gpugo", "serve", "--port", str(port)),
                *(("--workers", str(workers)) if workers != 1 else ()),
            ],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=src or None,
        )
    return Server(url, process, log)


def stop_server(server: Server) -> None:
    if server.process.poll() is not None:
        return
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=5)


async def wait_ready(http: httpx.AsyncClient, server: Server, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited:\n{server.log.read_text(errors='replace')}")
        with contextlib.suppress(httpx.TransportError):
            if (await http.get(f"{server.url}/readyz")).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{server.url} not ready in {within} s")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def throwaway_database(server_url: str) -> AsyncIterator[str]:
    parts = urlsplit(server_url)
    name = f"gpugo_live_bench_{secrets.token_hex(4)}"
    admin_dsn = urlunsplit(parts._replace(scheme="postgresql"))
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield urlunsplit(parts._replace(scheme="postgres", path=f"/{name}"))
    finally:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.contextmanager
def servers(mode: str, workdir: Path, database_url: str) -> Iterator[list[Server]]:
    count = 2 if mode == "two-postgres" else 1
    env = {"GPUGO_DATABASE_URL": database_url} if database_url else {}
    started: list[Server] = []
    try:
        for index in range(count):
            data_dir = workdir / f"instance-{index}"
            data_dir.mkdir()
            if index > 0:
                # Every instance signs licenses with the same key.
                first = workdir / "instance-0" / LICENSE_KEY_FILE
                shutil.copy(first, data_dir / LICENSE_KEY_FILE)
            started.append(start_server(data_dir, env))
            if index == 0 and count > 1:
                # The first instance creates the key (and migrates) before the next starts.
                deadline = time.monotonic() + 60
                while not (data_dir / LICENSE_KEY_FILE).exists():
                    if time.monotonic() > deadline:
                        raise TimeoutError("the first instance made no license key")
                    time.sleep(0.05)
        yield started
    finally:
        for server in started:
            stop_server(server)


def set_plan(email: str, plan: str, server: Server, database_url: str) -> None:
    """``gpugo user set-plan``, the operators' CLI, against the instance's database."""
    env = {**os.environ, "GPUGO_DATA_DIR": str(server.log.parent)}
    if database_url:
        env["GPUGO_DATABASE_URL"] = database_url
    subprocess.run(
        [sys.executable, "-m", "gpugo", "user", "set-plan", email, plan],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


async def prepare(
    http: httpx.AsyncClient, a: Server, database_url: str
) -> tuple[dict[str, str], str, str]:
    """A Pro user (room for the workers) with a PAT, and a registered agent."""
    email = f"bench-{secrets.token_hex(6)}@example.com"
    async with httpx.AsyncClient() as browser:
        signup = await browser.post(
            f"{a.url}/api/v1/auth/signup", json={"email": email, "password": PASSWORD}
        )
        signup.raise_for_status()
        pat = await browser.post(
            f"{a.url}/api/v1/tokens/pat",
            json={"expires_in_days": None},
            headers={"Origin": a.url},
        )
        pat.raise_for_status()
    set_plan(email, "pro", a, database_url)
    auth = {"Authorization": f"Bearer {pat.json()['token']}"}
    token = await http.post(
        f"{a.url}/api/v1/tokens/generate", json={"type": "agent_install"}, headers=auth
    )
    token.raise_for_status()
    registered = await http.post(
        f"{a.url}/api/v1/agents/register",
        json={"hostname": "bench-rig", "os": "linux", "arch": "amd64", "gpus": [GPU]},
        headers={"Authorization": f"Bearer {token.json()['token']}"},
    )
    registered.raise_for_status()
    body = registered.json()
    return auth, body["agent_id"], body["agent_secret"]


async def read_versions(response: httpx.Response, arrivals: dict[int, float]) -> None:
    """Record when each config_version frame arrives."""
    event = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == "config":
            version = json.loads(line.removeprefix("data: "))["config_version"]
            arrivals.setdefault(version, time.perf_counter())
        elif line == "":
            event = None


async def measure(mode: str, mutations: int, workdir: Path, database_url: str) -> dict:
    limits = httpx.Limits(max_keepalive_connections=4)
    with servers(mode, workdir, database_url) as started:
        a, b = started[0], started[-1]
        async with httpx.AsyncClient(limits=limits, timeout=30) as http:
            await asyncio.gather(*(wait_ready(http, s) for s in started))
            auth, agent_id, secret = await prepare(http, a, database_url)
            arrivals: dict[int, float] = {}
            url = f"{b.url}/api/v1/agents/{agent_id}/events"
            headers = {"Authorization": f"Bearer {secret}"}
            async with (
                httpx.AsyncClient(timeout=None) as stream_client,
                stream_client.stream("GET", url, headers=headers) as response,
            ):
                response.raise_for_status()
                reader = asyncio.create_task(read_versions(response, arrivals))
                try:
                    push, post, after = await _mutate(http, a, auth, agent_id, mutations, arrivals)
                finally:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reader
    return {
        "mode": mode,
        "mutations": mutations,
        "push": summary(push),
        "post": summary(post),
        "after_post": summary(after),
    }


async def _mutate(
    http: httpx.AsyncClient,
    a: Server,
    auth: dict[str, str],
    agent_id: str,
    mutations: int,
    arrivals: dict[int, float],
) -> tuple[list[float], list[float], list[float]]:
    deadline = time.monotonic() + 10
    while 1 not in arrivals:  # the stream's first frame: the current version
        if time.monotonic() > deadline:
            raise TimeoutError("no first frame on the stream")
        await asyncio.sleep(0.005)
    push: list[float] = []
    post: list[float] = []
    after: list[float] = []
    for index in range(mutations):
        version = index + 2
        started = time.perf_counter()
        response = await http.post(
            f"{a.url}/api/v1/workers",
            json={
                "agent_id": agent_id,
                "name": f"w{index}",
                "gpu_ids": ["GPU-0"],
                "listen_port": 10000 + index,
            },
            headers=auth,
        )
        returned = time.perf_counter()
        response.raise_for_status()
        deadline = time.monotonic() + 10
        while version not in arrivals:
            if time.monotonic() > deadline:
                raise TimeoutError(f"config_version {version} never pushed")
            await asyncio.sleep(0.0005)
        push.append(arrivals[version] - started)
        post.append(returned - started)
        after.append(arrivals[version] - returned)
    return push, post, after


def summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "median_ms": round(statistics.median(ms), 2),
        "p90_ms": round(ms[int(len(ms) * 0.9) - 1], 2),
        "max_ms": round(ms[-1], 2),
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--mutations", type=int, default=50)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("GPUGO_TEST_DATABASE_URL")
        or "postgres://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server URL (a throwaway database is created on it)",
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown or not 1 <= args.mutations <= 90:
        parser.error(f"modes are {', '.join(MODES)}; --mutations 1..90")
    results = []
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="gpugo-live-bench-") as tmp:
            async with asyncio.timeout(300):
                if mode.endswith("postgres"):
                    async with throwaway_database(args.postgres) as url:
                        result = await measure(mode, args.mutations, Path(tmp), url)
                else:
                    result = await measure(mode, args.mutations, Path(tmp), "")
        results.append(result)
        push, post, after = result["push"], result["post"], result["after_post"]
        print(
            f"{mode:13} mutation->SSE median {push['median_ms']:6.2f} ms  p90 "
            f"{push['p90_ms']:6.2f}  max {push['max_ms']:6.2f}  |  POST alone median "
            f"{post['median_ms']:6.2f} ms  |  push after the response median "
            f"{after['median_ms']:5.2f} ms",
            flush=True,
        )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
