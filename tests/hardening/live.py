"""A real `gpugo serve` process on 127.0.0.1 with its own fresh database, for the
hardening tests (fuzzing, log and secret hygiene, signals, database faults).

Everything here is bounded: start-up waits at most ``START_TIMEOUT`` seconds,
stopping sends SIGTERM and kills after ``STOP_TIMEOUT``; databases created for a
server are dropped when it stops.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
POSTGRES_URL = os.environ.get("GPUGO_TEST_DATABASE_URL", "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _admin_url(server_url: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(scheme="postgresql"))


async def _admin(server_url: str, statement: str) -> None:
    admin = await asyncpg.connect(_admin_url(server_url), timeout=10)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


class Database:
    """A fresh database: a SQLite file, or a new database on the test PostgreSQL server."""

    def __init__(self, directory: Path, server_url: str | None = None) -> None:
        self.server_url = POSTGRES_URL if server_url is None else server_url
        self.name = ""
        if self.server_url:
            self.name = f"gpugo_hardening_{os.getpid()}_{secrets.token_hex(3)}"
            asyncio.run(_admin(self.server_url, f'CREATE DATABASE "{self.name}"'))
            parts = urlsplit(self.server_url)
            self.url = urlunsplit(parts._replace(scheme="postgres", path=f"/{self.name}"))
        else:
            self.url = f"sqlite://{directory / 'gpugo.sqlite3'}"

    @property
    def is_postgres(self) -> bool:
        return bool(self.name)

    def drop(self) -> None:
        if self.name:
            statement = f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'
            with suppress(OSError, asyncpg.PostgresError):
                asyncio.run(_admin(self.server_url, statement))


class LiveServer:
    """`python -m gpugo serve` with the given settings; stderr (the log) goes to a file."""

    def __init__(
        self,
        directory: Path,
        *,
        database_url: str,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / f"gpugo-{self.port}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GPUGO_")}
        self.env.update(
            {
                "GPUGO_DATA_DIR": str(directory / "data"),
                "GPUGO_DATABASE_URL": database_url,
                "GPUGO_PUBLIC_URL": self.url,
                "GPUGO_RATE_LIMITS": "off",
            }
        )
        self.env.update(env or {})
        self.process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def start(self) -> LiveServer:
        self._log = self.log_path.open("a", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gpugo", "serve", "--port", str(self.port)],
            cwd=self.directory,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"gpugo serve exited early:\n{self.logs()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gpugo serve did not start in {START_TIMEOUT} s")
            time.sleep(0.1)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            raise

    def stop(self) -> int | None:
        """SIGTERM, then kill after STOP_TIMEOUT; returns the exit status."""
        if self.process is None:
            return None
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                with suppress(subprocess.TimeoutExpired):
                    self.wait()
            return self.process.returncode
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """`python -m gpugo ...` with this server's settings (e.g. `user create`)."""
        return subprocess.run(
            [sys.executable, "-m", "gpugo", *args],
            cwd=self.directory,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
