"""Real time-series engines from Debian's packages (``prometheus``, ``victoria-metrics``),
each on a free 127.0.0.1 port with a temporary data directory, bounded in time and
always stopped.

Missing binary: the test is skipped when this is not root (a developer's machine);
as root (CI, where .ci/run installs the packages) it fails, so CI never skips them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def binary(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None
    )
    if path is not None:
        return path
    message = f"{name} is not installed (Debian package {name!r}; .ci/run installs it)"
    if os.geteuid() != 0:
        pytest.skip(message)
    pytest.fail(message)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Engine:
    """One engine process; ``url`` is its HTTP API."""

    def __init__(self, name: str, args: list[str], port: int, ready_path: str, log: Path) -> None:
        self.name = name
        self.args = args
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ready_path = ready_path
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.process.poll() is None, f"{self.name} exited:\n{self.output()}"
            try:
                if httpx.get(self.url + self.ready_path, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{self.name} not ready in {START_TIMEOUT} s:\n{self.output()}")
            time.sleep(0.1)

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def make_searchable(self) -> None:
        """VictoriaMetrics: what it took in becomes searchable within a second; now."""
        assert httpx.get(f"{self.url}/internal/force_flush", timeout=5).status_code == 200

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def victoria_metrics(
    directory: Path, port: int | None = None, *, latency_offset: str | None = "0s"
) -> Engine:
    """A single-node VictoriaMetrics; by default reads see points at once (no 30 s latency
    offset). ``latency_offset=None`` keeps the engine's own default, as in production."""
    port = port or free_port()
    data = directory / "vm-data"
    data.mkdir(parents=True, exist_ok=True)
    args = [
        binary("victoria-metrics"),
        f"-storageDataPath={data}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-retentionPeriod=1",
        "-loggerLevel=ERROR",
    ]
    if latency_offset is not None:
        args.append(f"-search.latencyOffset={latency_offset}")
    return Engine("victoria-metrics", args, port, "/health", directory / "vm.log")


def prometheus(directory: Path, config: str) -> Engine:
    port = free_port()
    (directory / "prometheus.yml").write_text(config)
    data = directory / "prom-data"
    data.mkdir(parents=True, exist_ok=True)
    args = [
        binary("prometheus"),
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    return Engine("prometheus", args, port, "/-/ready", directory / "prometheus.log")
