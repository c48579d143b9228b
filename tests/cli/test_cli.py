"""The `gpugo` command as an operator uses it, run as a real process."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import assert_error, moment, out_time, register_agent


def run_cli(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpugo", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        umask=0o022,  # the usual one: files 0644, directories 0755 unless asked otherwise
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"GPUGO_DATABASE_URL": database_url, "GPUGO_DATA_DIR": str(tmp_path)}


async def test_user_create_then_login_over_http(app, client, cli_env):
    result = run_cli(
        "user",
        "create",
        "Operator@Example.com",
        "--plan",
        "team",
        "--password-stdin",
        env=cli_env,
        stdin="s3cret-operator-pw\n",
    )
    assert result.returncode == 0, result.stderr
    assert "operator@example.com" in result.stdout

    response = await client.post(
        "/api/v1/auth/login",
        json={"email": "operator@example.com", "password": "s3cret-operator-pw"},
    )
    assert response.status_code == 200
    assert response.json()["plan"] == "team"


async def test_user_create_twice_fails_with_one_line(app, cli_env):
    args = ("user", "create", "dup@example.com", "--password-stdin")
    assert run_cli(*args, env=cli_env, stdin="password-one\n").returncode == 0
    again = run_cli(*args, env=cli_env, stdin="password-two\n")
    assert again.returncode == 1
    assert again.stderr.strip().count("\n") == 0
    assert "already exists" in again.stderr


async def test_user_create_rejects_a_short_password(app, cli_env):
    result = run_cli(
        "user", "create", "a@example.com", "--password-stdin", env=cli_env, stdin="x\n"
    )
    assert result.returncode == 1
    assert "password" in result.stderr
    assert "Traceback" not in result.stderr


async def test_set_plan_changes_what_me_reports(app, api, cli_env):
    user = await api.user("planned@example.com")
    result = run_cli("user", "set-plan", "planned@example.com", "pro", env=cli_env)
    assert result.returncode == 0, result.stderr
    me = (await user.get("/api/v1/auth/me")).json()
    assert me["plan"] == "pro"
    assert me["limits"]["metrics"] is True


async def test_set_plan_reaches_the_users_agents_through_their_config(app, api, cli_env):
    user = await api.user("upgraded@example.com")
    agent = await register_agent(user, gpus=1)
    held = int(agent.license["plain"].split("|")[2])
    report = {
        "timestamp": out_time(moment()),
        "gpus": [],
        "workers": [],
        "license_expiration": held,
    }
    before = (await agent.report(report)).json()["config_version"]
    assert run_cli("user", "set-plan", user.email, "team", env=cli_env).returncode == 0
    # The license held is good for hours, so the reply carries none: the higher version
    # sends the agent to /config, whose license names the new plan.
    reply = (await agent.report(report)).json()
    assert reply["config_version"] > before and "license" not in reply
    config = (await agent.config()).json()
    assert config["license"]["plain"].split("|")[1] == "team"


async def test_set_plan_for_an_unknown_user(app, cli_env):
    result = run_cli("user", "set-plan", "ghost@example.com", "pro", env=cli_env)
    assert result.returncode == 1
    assert "ghost@example.com" in result.stderr


def test_bad_arguments_exit_2(tmp_path):
    env = {"GPUGO_DATA_DIR": str(tmp_path)}
    assert run_cli("user", "set-plan", "a@example.com", "platinum", env=env).returncode == 2
    assert run_cli("frobnicate", env=env).returncode == 2


def test_a_bad_database_url_is_a_configuration_error(tmp_path):
    env = {"GPUGO_DATA_DIR": str(tmp_path), "GPUGO_DATABASE_URL": "mysql://root@localhost/x"}
    result = run_cli("migrate", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("gpugo: configuration error: GPUGO_DATABASE_URL")
    assert result.stderr.count("\n") == 1


def test_a_bad_trusted_proxy_is_a_configuration_error(tmp_path):
    env = {"GPUGO_DATA_DIR": str(tmp_path), "GPUGO_TRUSTED_PROXIES": "127.0.0.1, proxy.local"}
    result = run_cli("migrate", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("gpugo: configuration error: GPUGO_TRUSTED_PROXIES")
    assert result.stderr.count("\n") == 1


def test_an_unreachable_database_exits_3_with_one_line(tmp_path):
    port = _free_port()
    env = {
        "GPUGO_DATA_DIR": str(tmp_path),
        "GPUGO_DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/gpugo",
    }
    result = run_cli("migrate", env=env)
    assert result.returncode == 3
    assert result.stderr.startswith("gpugo: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_an_older_data_directory_and_database_are_made_private(tmp_path):
    env = {"GPUGO_DATA_DIR": str(tmp_path / "data")}
    assert run_cli("migrate", env=env).returncode == 0
    data_dir, database = tmp_path / "data", tmp_path / "data" / "gpugo.sqlite3"
    # As an older version left them, with the umask's modes.
    data_dir.chmod(0o755)
    database.chmod(0o644)
    assert run_cli("migrate", env=env).returncode == 0
    assert (mode(data_dir), mode(database)) == (0o700, 0o600)


def test_a_database_named_elsewhere_is_created_private_in_the_directory_it_is_in(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    env = {
        "GPUGO_DATA_DIR": str(tmp_path / "data"),
        "GPUGO_DATABASE_URL": f"sqlite://{shared / 'db.sqlite3'}",
    }
    assert run_cli("migrate", env=env).returncode == 0
    # The file is the server's; the directory is the operator's, and is left as it is.
    assert (mode(shared / "db.sqlite3"), mode(shared)) == (0o600, 0o755)
    env["GPUGO_DATABASE_URL"] = f"sqlite://{tmp_path / 'new' / 'db.sqlite3'}"
    assert run_cli("migrate", env=env).returncode == 0
    assert (mode(tmp_path / "new" / "db.sqlite3"), mode(tmp_path / "new")) == (0o600, 0o700)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_runs_on_the_embedded_default_and_stops_on_sigterm(tmp_path):
    """`gpugo serve` with no configuration: SQLite and a key under the data directory."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUGO_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "gpugo", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"{base}/readyz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "server did not start within 30 s"
                time.sleep(0.1)
        assert response.status_code == 200
        assert "server" not in response.headers
        signup = httpx.post(
            f"{base}/api/v1/auth/signup",
            json={"email": "first@example.com", "password": "a long password"},
        )
        assert signup.status_code == 201
        assert_error(httpx.get(f"{base}/api/v1/agents/../nothing"), 404, "not_found")

        data_dir = tmp_path / ".gpugo"
        assert (data_dir / "gpugo.sqlite3").exists()
        key = data_dir / "license_ed25519.pem"
        assert key.stat().st_mode & 0o777 == 0o600
        # Accounts and token hashes: nobody else may list or read them.
        assert mode(data_dir) == 0o700
        database = sorted(data_dir.glob("gpugo.sqlite3*"))
        assert [p.name for p in database] == [f"gpugo.sqlite3{s}" for s in ("", "-shm", "-wal")]
        assert [mode(p) for p in database] == [0o600] * 3
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    # uvicorn drains, then re-raises the signal so the exit status says "terminated".
    assert process.returncode in (0, -signal.SIGTERM)
    stderr = process.stderr.read() if process.stderr else ""
    assert "Traceback" not in stderr
    assert "Application shutdown complete" in stderr


async def test_user_reset_password_from_stdin_ends_every_session(app, client, cli_env, api):
    from gpugo.models import AuditEvent, Session
    from tests.support import PASSWORD

    user = await api.user("forgetful@example.com")
    assert (await user.get("/api/v1/auth/me")).status_code == 200
    result = run_cli(
        "user",
        "reset-password",
        "Forgetful@Example.com",
        "--password-stdin",
        env=cli_env,
        stdin="brand-new-operator-pw\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "password of forgetful@example.com reset; 1 session(s) ended\n"
    # Never printed, never logged.
    assert "brand-new-operator-pw" not in result.stdout + result.stderr
    assert await Session.filter(user_id=user.user_id).count() == 0
    assert (await user.get("/api/v1/auth/me")).status_code == 401
    for password, status in ((PASSWORD, 401), ("brand-new-operator-pw", 200)):
        response = await client.post(
            "/api/v1/auth/login", json={"email": "forgetful@example.com", "password": password}
        )
        assert response.status_code == status
    [row] = await AuditEvent.filter(user_id=user.user_id, kind="password.reset").values(
        "actor_kind", "outcome"
    )
    assert row == {"actor_kind": "operator", "outcome": "success"}


async def test_user_reset_password_generated_is_printed_once(client, cli_env, api):
    await api.user("generated@example.com")
    result = run_cli("user", "reset-password", "generated@example.com", "--generate", env=cli_env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "password of generated@example.com reset; 1 session(s) ended"
    assert lines[1].startswith("new password: ")
    password = lines[1].removeprefix("new password: ")
    assert len(password) == 16
    response = await client.post(
        "/api/v1/auth/login", json={"email": "generated@example.com", "password": password}
    )
    assert response.status_code == 200


async def test_user_reset_password_refusals(client, cli_env, api):
    await api.user("kept@example.com")
    unknown = run_cli(
        "user",
        "reset-password",
        "nobody@example.com",
        "--password-stdin",
        env=cli_env,
        stdin="whatever-long-enough\n",
    )
    assert unknown.returncode == 1
    assert "No account with e-mail nobody@example.com." in unknown.stderr
    short = run_cli(
        "user", "reset-password", "kept@example.com", "--password-stdin", env=cli_env, stdin="x\n"
    )
    assert short.returncode == 1
    assert "password: Must be at least 8 characters long." in short.stderr
    assert "x\n" not in short.stdout
    # No terminal and no --password-stdin: it does not hang on a prompt.
    no_tty = run_cli("user", "reset-password", "kept@example.com", env=cli_env)
    assert no_tty.returncode == 2
    assert "--password-stdin" in no_tty.stderr
