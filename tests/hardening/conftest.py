"""Fixtures shared by the hardening tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hardening.live import Database, LiveServer
from tests.hardening.world import World


@pytest.fixture
def schemathesis_node_id(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32's lazy schemas (from_fixture) read and rename Node._nodeid,
    # which pytest 9 no longer sets on test items.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live `gpugo serve` on a fresh database, one per test module."""
    directory: Path = tmp_path_factory.mktemp("live")
    database = Database(directory)
    # Fuzzed webhook URLs may name any public address: nothing is sent from here.
    server = LiveServer(
        directory, database_url=database.url, env={"GPUGO_WEBHOOKS_SENDER": "false"}
    )
    try:
        yield server.start()
    finally:
        server.stop()
        database.drop()


@pytest.fixture(scope="module")
def world(live: LiveServer) -> Iterator[World]:
    world = World(live).create()
    world.started = time.monotonic()
    yield world
    world.close()
