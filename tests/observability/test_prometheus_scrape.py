"""A real Prometheus (Debian's package) scrapes a live `gpugo serve`: the operator's
GET /metrics and a Team user's GET /api/v1/metrics/prometheus. The series are read back
through Prometheus' HTTP API, and every query of the Grafana dashboard in docs/ answers:
its host selector's ``label_values(...)`` and each panel's, for all hosts and for the one
selected.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import engines
from tests.hardening.live import Database
from tests.live.remote import ServerProcess
from tests.rest.test_status_report_metrics import LIBRARY_IDS, lines
from tests.support import PASSWORD, moment, out_time

TOKEN = "operator-token-for-prometheus"
DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana" / "gpugo-gpus.json"
WAIT = 45.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    # A database of its own: the fleet's series count every agent in it.
    database = Database(tmp_path)
    env = {
        "GPUGO_DATA_DIR": str(tmp_path / "data"),
        "GPUGO_DATABASE_URL": database.url,
        "GPUGO_METRICS_TOKEN": TOKEN,
    }
    process = ServerProcess(tmp_path, env)
    process.start()
    try:
        yield process
    finally:
        process.stop()
        database.drop()


async def team_user_with_a_reporting_agent(server: ServerProcess) -> dict[str, str]:
    """Signs up, becomes Team (`gpugo user set-plan`), registers an agent that reports."""
    email = f"prom-{uuid.uuid4().hex[:10]}@example.com"
    async with httpx.AsyncClient(base_url=server.url) as browser:
        signup = await browser.post(
            "/api/v1/auth/signup", json={"email": email, "password": PASSWORD}
        )
        assert signup.status_code == 201, signup.text
        pat = await browser.post(
            "/api/v1/tokens/pat", json={"expires_in_days": None}, headers={"Origin": server.url}
        )
        assert pat.status_code == 201, pat.text
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gpugo", "user", "set-plan", email, "team"],
        env=server.env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    token = pat.json()["token"]
    async with httpx.AsyncClient(base_url=server.url) as http:
        auth = {"Authorization": f"Bearer {token}"}
        install = await http.post(
            "/api/v1/tokens/generate", json={"type": "agent_install"}, headers=auth
        )
        assert install.status_code == 201, install.text
        registered = await http.post(
            "/api/v1/agents/register",
            json={
                "hostname": "gpu-box-01",
                "os": "linux",
                "arch": "amd64",
                "gpus": [
                    {"gpu_id": g.lower(), "vendor": "NVIDIA", "model": "RTX 4090", "vram_mb": 24564}
                    for g in LIBRARY_IDS
                ],
            },
            headers={"Authorization": f"Bearer {install.json()['token']}"},
        )
        assert registered.status_code == 201, registered.text
        agent = registered.json()
        workers = await http.get("/api/v1/workers", headers=auth)
        worker_id = workers.json()["workers"][0]["worker_id"]
        status = await http.post(
            f"/api/v1/agents/{agent['agent_id']}/status",
            json={
                "timestamp": out_time(moment()),
                "gpus": None,
                "workers": [{"worker_id": worker_id, "status": "running", "gpu_ids": []}],
                "metrics": lines(agent["agent_id"], worker_id, moment()),
            },
            headers={"Authorization": f"Bearer {agent['agent_secret']}"},
        )
        assert status.status_code == 200, status.text
    return {"pat": token, "agent_id": agent["agent_id"]}


def prometheus_config(server: ServerProcess, pat: str) -> str:
    target = server.url.removeprefix("http://")
    return f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: gpugo
    metrics_path: /metrics
    authorization:
      credentials: {TOKEN}
    static_configs:
      - targets: ["{target}"]
  - job_name: gpus
    metrics_path: /api/v1/metrics/prometheus
    authorization:
      credentials: {pat}
    static_configs:
      - targets: ["{target}"]
"""


async def query(http: httpx.AsyncClient, url: str, expr: str) -> list[dict[str, Any]]:
    response = await http.get(f"{url}/api/v1/query", params={"query": expr})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


async def wait_for(http: httpx.AsyncClient, url: str, expr: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT
    while True:
        result = await query(http, url, expr)
        if result:
            return result
        assert time.monotonic() < deadline, f"{expr}: nothing after {WAIT} s"
        await asyncio.sleep(0.5)


# Grafana's query of a variable's values: label_values(<series selector>, <label>).
LABEL_VALUES = re.compile(r"label_values\((?P<selector>.+),\s*(?P<label>\w+)\)")


def dashboard_queries(hostname: str = ".*") -> list[str]:
    """Each panel's query with the host variable set (".*": Grafana's "All")."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10
    return [e.replace("$hostname", hostname) for e in exprs]


def dashboard_variables() -> list[tuple[str, str, str]]:
    """Each query variable of the dashboard: (its name, the series selector and the label
    of its ``label_values``)."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        parsed = LABEL_VALUES.fullmatch(text.strip())
        assert parsed, text
        found.append((variable["name"], parsed["selector"].strip(), parsed["label"]))
    assert found
    return found


async def label_values(http: httpx.AsyncClient, url: str, selector: str, label: str) -> list[str]:
    """What Grafana's label_values(selector, label) asks Prometheus, once it has an answer."""
    deadline = time.monotonic() + WAIT
    while True:
        response = await http.get(
            f"{url}/api/v1/label/{label}/values", params={"match[]": selector}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "success", body
        if body["data"]:
            return body["data"]
        assert time.monotonic() < deadline, f"label_values({selector}, {label}): nothing"
        await asyncio.sleep(0.5)


async def test_prometheus_scrapes_gpugo_and_the_dashboard_answers(server, tmp_path):
    await server.wait_ready()
    user = await team_user_with_a_reporting_agent(server)
    prometheus = engines.prometheus(tmp_path, prometheus_config(server, user["pat"]))
    prometheus.start()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            url = prometheus.url
            up = await wait_for(http, url, 'up{job="gpus"} == 1 and on() up{job="gpugo"} == 1')
            assert up, prometheus.output()
            # The operator's series, read back from Prometheus.
            reports = await wait_for(
                http, url, 'gpugo_status_reports_total{job="gpugo",outcome="accepted"}'
            )
            assert float(reports[0]["value"][1]) >= 1
            routes = await wait_for(
                http,
                url,
                'gpugo_http_requests_total{route="/api/v1/agents/{agent_id}/status",status="200"}',
            )
            assert float(routes[0]["value"][1]) >= 1
            online = await wait_for(http, url, 'gpugo_agents{state="online"}')
            assert float(online[0]["value"][1]) == 1
            # The user's GPUs, labelled by agent, host, GPU and model.
            gpus = await wait_for(http, url, "gpugo_gpu_utilization_percent")
            assert {(g["metric"]["agent_id"], g["metric"]["gpu_id"]) for g in gpus} == {
                (user["agent_id"], g.lower()) for g in LIBRARY_IDS
            }
            assert {g["metric"]["model"] for g in gpus} == {"RTX 4090"}
            # The host selector offers the reporting host.
            [(name, selector, label)] = dashboard_variables()
            assert name == "hostname"
            hosts = await label_values(http, url, selector, label)
            assert hosts == ["gpu-box-01"]
            # Every query of the dashboard has an answer, for all hosts and for the one
            # picked (Grafana puts a single value in as it is).
            for expr in dashboard_queries() + dashboard_queries(hosts[0]):
                assert await wait_for(http, url, expr), expr
            # A host that is not there selects nothing.
            [gpus_of_nobody, *_] = dashboard_queries("no-such-host")
            assert await query(http, url, gpus_of_nobody) == []
    finally:
        prometheus.stop()
