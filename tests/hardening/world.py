"""Real resources on a live server for the fuzzers: a Pro user with a session and a
PAT, a registered agent with two GPUs, its default worker, a second worker, a
share of it and an unused install token. Fuzzed requests may delete or replace
any of them; ``repair`` puts the world back before the next request."""

from __future__ import annotations

from typing import Any

import httpx

from tests.hardening.live import LiveServer
from tests.support import PASSWORD, gpu_infos

EMAIL = "fuzz-owner@example.com"


class World:
    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.url = server.url
        # The session (cookie) client only repairs what fuzzed requests break.
        self.session = httpx.Client(base_url=self.url, headers={"Origin": self.url}, timeout=30)
        self.pat = ""
        self.agent_id = ""
        self.agent_secret = ""
        self.default_worker_id = ""
        self.worker_id = ""
        self.share_id = ""
        self.short_code = ""
        self.token_id = ""
        self.install_token = ""
        # When fuzzing against this world began (for the time budget).
        self.started = 0.0

    def create(self) -> World:
        self.server.cli(
            "user", "create", EMAIL, "--plan", "pro", "--password-stdin", stdin=PASSWORD
        )
        self.login()
        self.new_pat()
        self.new_install_token()
        self.new_agent()
        return self

    def close(self) -> None:
        self.session.close()

    # What a fuzzed request may have destroyed, made again.

    def login(self) -> None:
        self._ok(
            self.session.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        )

    def new_pat(self) -> None:
        body = self._ok(self.session.post("/api/v1/tokens/pat", json={"expires_in_days": None}))
        self.pat = body["token"]

    def new_install_token(self) -> None:
        body = self._ok(
            self.session.post("/api/v1/tokens/generate", json={"type": "agent_install"})
        )
        self.token_id = body["token_id"]
        self.install_token = body["token"]

    def new_agent(self) -> None:
        token = self._ok(
            self.session.post("/api/v1/tokens/generate", json={"type": "agent_install"})
        )["token"]
        registered = self._ok(
            httpx.post(
                f"{self.url}/api/v1/agents/register",
                json={
                    "hostname": "fuzz-host",
                    "os": "linux",
                    "arch": "amd64",
                    "gpus": gpu_infos(2),
                    "network_ips": ["10.1.2.3"],
                },
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        )
        self.agent_id = registered["agent_id"]
        self.agent_secret = registered["agent_secret"]
        detail = self._ok(self.session.get(f"/api/v1/agents/{self.agent_id}"))
        self.default_worker_id = detail["workers"][0]["worker_id"]
        self.new_worker()

    def new_worker(self) -> None:
        worker = self._ok(
            self.session.post(
                "/api/v1/workers",
                json={
                    "agent_id": self.agent_id,
                    "name": "fuzz-worker",
                    "gpu_ids": ["GPU-1"],
                    "listen_port": 9100,
                },
            )
        )
        self.worker_id = worker["worker_id"]
        self.new_share()

    def new_share(self) -> None:
        share = self._ok(
            self.session.post(
                "/api/v1/shares", json={"worker_id": self.worker_id, "connection_ip": "10.1.2.3"}
            )
        )
        self.share_id = share["share_id"]
        self.short_code = share["short_code"]

    def repair(self) -> None:
        """Re-create whatever is gone (each check is one cheap request)."""
        if httpx.get(f"{self.url}/api/v1/auth/me", headers=self.user_auth).status_code == 401:
            self.new_pat()
        if self.session.get(f"/api/v1/agents/{self.agent_id}").status_code == 404:
            self.new_agent()
            return
        if self.session.get(f"/api/v1/workers/{self.worker_id}").status_code == 404:
            self.new_worker()
            return
        shares = self.session.get("/api/v1/shares").json()["shares"]
        if self.share_id not in {s["share_id"] for s in shares}:
            self.new_share()

    def after(self, method: str, path: str, response: httpx.Response | Any) -> None:
        """Undo what a fuzzed request changed that later requests depend on."""
        ok = 200 <= response.status_code < 300
        if path == "/api/v1/agents/register":
            if ok:
                # Keep the plan's room: the next registration may succeed too.
                agent = response.json()
                auth = {"Authorization": f"Bearer {agent['agent_secret']}"}
                httpx.delete(f"{self.url}/api/v1/agents/{agent['agent_id']}", headers=auth)
            if ok or response.status_code == 401:
                self.new_install_token()
        elif path == "/api/v1/tokens/pat" and method == "POST" and ok:
            self.pat = response.json()["token"]
        elif path.startswith("/api/v1/auth/sessions") and method != "GET" and ok:
            # A session revoked (with the PAT, "all but this one" is every one).
            self.login()
        elif path == "/api/v1/workers" and method == "POST" and ok:
            self.session.delete(f"/api/v1/workers/{response.json()['worker_id']}")
        elif method == "DELETE" and ok:
            self.repair()

    # Credentials and ids for the fuzzers.

    @property
    def user_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.pat}"}

    @property
    def agent_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.agent_secret}"}

    @property
    def install_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.install_token}"}

    def real_ids(self) -> dict[str, list[str]]:
        return {
            "agent_id": [self.agent_id],
            "worker_id": [self.worker_id, self.default_worker_id],
            "share_id": [self.share_id],
            "token_id": [self.token_id],
            "short_code": [self.short_code],
        }

    @staticmethod
    def _ok(response: httpx.Response) -> Any:
        assert response.status_code in (200, 201), response.text
        return response.json()
