"""The dashboard's GraphQL query for gpugo and for PostGraphile, and the check that both
answers hold the same data."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime
from typing import Any

AGENTS = 20

GPUGO_QUERY = """
query Dashboard($first: Int!) {
  agents(first: $first) {
    totalCount
    edges {
      node {
        id hostname os arch status lastSeenAt createdAt
        gpus { gpuId gpuIndex vendor model vramMb driverVersion cudaVersion usedByWorker }
        workers {
          id name gpuIds listenPort enabled status isDefault pid restarts
          connections { clientIp clientPort clientPid connectedAt }
        }
      }
    }
  }
}
"""

# PostGraphile v5 (Amber preset) over the same tables: the same rows in the same order.
# It has no notion of the caller: the user is a condition (gpugo authenticates a PAT).
POSTGRAPHILE_QUERY = """
query Dashboard($userId: String!, $first: Int!) {
  allAgents(condition: {userId: $userId}, orderBy: [CREATED_AT_DESC, ROW_ID_DESC],
            first: $first) {
    totalCount
    nodes {
      rowId hostname os arch lastSeenAt shutDownAt createdAt
      gpusesByAgentId(orderBy: [GPU_INDEX_ASC, GPU_ID_ASC]) {
        nodes { gpuId gpuIndex vendor model vramMb driverVersion cudaVersion usedByWorkerId }
      }
      workersByAgentId(orderBy: [CREATED_AT_ASC, ROW_ID_ASC]) {
        nodes {
          rowId name gpuIds listenPort enabled status isDefault pid restarts
          clientConnectionsByWorkerId(orderBy: [CONNECTED_AT_ASC, ROW_ID_ASC]) {
            nodes { clientIp clientPort clientPid connectedAt }
          }
        }
      }
    }
  }
}
"""


def gpugo_body() -> bytes:
    return json.dumps({"query": GPUGO_QUERY, "variables": {"first": AGENTS}}).encode()


def postgraphile_body(user_id: str) -> bytes:
    return json.dumps(
        {"query": POSTGRAPHILE_QUERY, "variables": {"userId": user_id, "first": AGENTS}}
    ).encode()


def post(url: str, body: bytes, authorization: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _ts(value: str | None) -> str | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    # gpugo answers in milliseconds; PostgreSQL keeps microseconds.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def normalise_gpugo(answer: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in answer, answer
    data = answer["data"]["agents"]
    agents = []
    for edge in data["edges"]:
        a = edge["node"]
        agents.append(
            {
                "id": a["id"],
                "hostname": a["hostname"],
                "os": a["os"],
                "arch": a["arch"],
                "last_seen_at": _ts(a["lastSeenAt"]),
                "created_at": _ts(a["createdAt"]),
                "gpus": [
                    [
                        g["gpuId"],
                        g["gpuIndex"],
                        g["vendor"],
                        g["model"],
                        g["vramMb"],
                        g["driverVersion"],
                        g["cudaVersion"],
                        g["usedByWorker"],
                    ]
                    for g in a["gpus"]
                ],
                "workers": [
                    [
                        w["id"],
                        w["name"],
                        w["gpuIds"],
                        w["listenPort"],
                        w["enabled"],
                        w["status"].lower(),
                        w["isDefault"],
                        w["pid"],
                        w["restarts"],
                        [
                            [c["clientIp"], c["clientPort"], c["clientPid"], _ts(c["connectedAt"])]
                            for c in w["connections"]
                        ],
                    ]
                    for w in a["workers"]
                ],
            }
        )
    return {"total": data["totalCount"], "agents": agents}


def normalise_postgraphile(answer: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in answer, answer
    data = answer["data"]["allAgents"]
    agents = []
    for a in data["nodes"]:
        agents.append(
            {
                "id": a["rowId"],
                "hostname": a["hostname"],
                "os": a["os"],
                "arch": a["arch"],
                "last_seen_at": _ts(a["lastSeenAt"]),
                "created_at": _ts(a["createdAt"]),
                "gpus": [
                    [
                        g["gpuId"],
                        g["gpuIndex"],
                        g["vendor"],
                        g["model"],
                        g["vramMb"],
                        g["driverVersion"],
                        g["cudaVersion"],
                        g["usedByWorkerId"],
                    ]
                    for g in a["gpusesByAgentId"]["nodes"]
                ],
                "workers": [
                    [
                        w["rowId"],
                        w["name"],
                        w["gpuIds"],
                        w["listenPort"],
                        w["enabled"],
                        w["status"],
                        w["isDefault"],
                        w["pid"],
                        w["restarts"],
                        [
                            [c["clientIp"], c["clientPort"], c["clientPid"], _ts(c["connectedAt"])]
                            for c in w["clientConnectionsByWorkerId"]["nodes"]
                        ],
                    ]
                    for w in a["workersByAgentId"]["nodes"]
                ],
            }
        )
    return {"total": data["totalCount"], "agents": agents}


def count_leaves(value: Any) -> int:
    """Scalar fields in an answer (a rough measure of the work of resolving it)."""
    if isinstance(value, dict):
        return sum(count_leaves(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_leaves(v) for v in value) if value else 1
    return 1
