"""``gpugo serve --workers N``: N server processes on one port (PostgreSQL only).

The supervisor binds the port once and hands the listening socket to N children
(``gpugo serve --listen-fd``): the kernel spreads connections among them. Each child
is a whole server (its own database pool, event-bus connection and memory of agent
states, which the bus keeps exact across them); the once-per-installation jobs run
in whichever holds the lead (gpugo/leader.py). Migrations run here, once, before.

SIGTERM or SIGINT: every child gets SIGTERM and drains as a single server does; the
supervisor exits when all have (or kills them after ``STOP_SECONDS``). A child that
dies while serving is started again; one that dies within ``EARLY_SECONDS`` of its
start (a setting it refuses, the database away) stops them all with its exit code.
For prometheus-client's multiprocess mode the children get PROMETHEUS_MULTIPROC_DIR:
a fresh temporary directory, removed at exit, unless the environment sets one.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import FrameType

from prometheus_client import multiprocess

from gpugo.settings import Settings

STOP_SECONDS = 30.0
EARLY_SECONDS = 5.0
RESTART_DELAY_SECONDS = 1.0
BACKLOG = 2048


def _listen(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


class _Child:
    def __init__(self, index: int, fd: int, env: dict[str, str]) -> None:
        self.index = index
        self.started = time.monotonic()
        self.process = subprocess.Popen(  # noqa: S603 (this interpreter, fixed arguments)
            [sys.executable, "-m", "gpugo", "serve", "--listen-fd", str(fd)],
            pass_fds=(fd,),
            env=env,
            # Its own process group: a terminal's Ctrl-C reaches the supervisor only,
            # which stops each child once (a second signal would cut uvicorn's drain).
            process_group=0,
        )


def serve_workers(settings: Settings, workers: int) -> int:
    try:
        sock = _listen(settings)
    except OSError as exc:
        print(f"gpugo: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 3
    env = dict(os.environ)
    own_dir = None
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="gpugo-prometheus-")
        env["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    fd = sock.fileno()
    children = [_Child(index, fd, env) for index in range(workers)]
    print(
        f"gpugo serving on {settings.effective_public_url} with {workers} processes "
        f"({', '.join(str(c.process.pid) for c in children)})",
        file=sys.stderr,
        flush=True,
    )
    code = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for n, child in enumerate(children):
                status = child.process.poll()
                if status is None or stopping:
                    continue
                # Its live gauges (requests in flight...) no longer count in a scrape.
                multiprocess.mark_process_dead(child.process.pid, env["PROMETHEUS_MULTIPROC_DIR"])
                if time.monotonic() - child.started < EARLY_SECONDS:
                    print(
                        f"gpugo: worker {child.process.pid} exited with {status} at its start; "
                        "stopping",
                        file=sys.stderr,
                        flush=True,
                    )
                    code = status or 1
                    stopping = True
                    break
                print(
                    f"gpugo: worker {child.process.pid} exited with {status}; starting another",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(RESTART_DELAY_SECONDS)
                children[n] = _Child(child.index, fd, env)
    finally:
        _stop_all(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)
    return code


def _stop_all(children: list[_Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for child in children:
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
