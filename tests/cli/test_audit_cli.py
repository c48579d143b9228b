"""`gpugo audit tail` and the operator's own events, run as a real process."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys

import pytest

from gpugo.models import AuditEvent
from tests.cli.test_cli import run_cli
from tests.support import ORIGIN, PASSWORD


@pytest.fixture
def cli_env(database_url: str, tmp_path) -> dict[str, str]:
    return {"GPUGO_DATABASE_URL": database_url, "GPUGO_DATA_DIR": str(tmp_path)}


async def test_set_plan_is_recorded_for_the_operator(app, api, cli_env):
    user = await api.user("planned@example.com")
    assert run_cli("user", "set-plan", user.email, "team", env=cli_env).returncode == 0
    rows = await AuditEvent.filter(kind="plan.changed").values()
    assert [(r["user_id"], r["actor_kind"], r["detail"]) for r in rows] == [
        (user.user_id, "operator", "team")
    ]


async def test_tail_prints_the_latest_events_oldest_first(app, api, cli_env):
    first = await api.user("first@example.com")
    second = await api.user("second@example.com")
    bad = {"email": second.email, "password": "not the password"}
    assert (await second.http.post("/api/v1/auth/login", json=bad)).status_code == 401
    await app.state.ctx.audit.flush()

    result = run_cli("audit", "tail", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["kind"], e["user"]) for e in lines] == [
        ("signup", first.email),
        ("signup", second.email),
        ("login.failed", second.email),
    ]
    assert lines[-1]["outcome"] == "failure"
    assert lines[-1]["address"] == "127.0.0.1"

    only = run_cli("audit", "tail", "--user", first.email, env=cli_env)
    assert only.returncode == 0, only.stderr
    assert only.stdout.count("\n") == 1
    assert " signup user=first@example.com actor=anonymous address=127.0.0.1" in only.stdout

    assert run_cli("audit", "tail", "-n", "1", env=cli_env).stdout.count("\n") == 1
    ghost = run_cli("audit", "tail", "--user", "ghost@example.com", env=cli_env)
    assert ghost.returncode == 1
    assert "ghost@example.com" in ghost.stderr


def read_line(process: subprocess.Popen[str], seconds: float = 20.0) -> str:
    """The next line the process prints, or a failure after ``seconds`` (never a hang)."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], seconds)
    assert ready, "no line within the time allowed"
    return process.stdout.readline()


async def test_tail_follow_prints_new_events_as_they_are_written(app, api, cli_env):
    user = await api.user("followed@example.com")
    await app.state.ctx.audit.flush()
    # Started, then read with a deadline: the short blocking calls are the test's own.
    process = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "gpugo", "audit", "tail", "--follow", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **cli_env},
    )
    try:
        assert json.loads(read_line(process))["kind"] == "signup"
        response = await user.post("/api/v1/auth/logout", headers=ORIGIN)
        assert response.status_code == 200
        await app.state.ctx.audit.flush()
        event = json.loads(read_line(process))
        assert (event["kind"], event["user"]) == ("logout", user.email)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert PASSWORD not in (process.stderr.read() if process.stderr else "")
