"""What the time-series tests share."""

from __future__ import annotations

from typing import Any

import httpx

from tests import engines

# The operator's bearer for GET /metrics of the engine's app.
OPERATOR_TOKEN = "vm-test-operator-token"


async def engine_api(engine: engines.Engine, path: str, **params: str) -> Any:
    """The ``data`` of one answer of the engine's Prometheus API, asked directly."""
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(f"{engine.url}{path}", params=params)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", body
    return body["data"]
