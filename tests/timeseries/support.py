"""What the time-series tests share."""

from __future__ import annotations

# The operator's bearer for GET /metrics of the engine's app.
OPERATOR_TOKEN = "vm-test-operator-token"
