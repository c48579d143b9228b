"""Fixtures shared by the hardening tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def schemathesis_node_id(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32's lazy schemas (from_fixture) read and rename Node._nodeid,
    # which pytest 9 no longer sets on test items.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
