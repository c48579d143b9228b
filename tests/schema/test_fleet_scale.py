"""The overview's fleet query over 1,000 machines of 8 GPUs: every kind of page the page
asks for (the first, a state, an order, a search, the last) answers right, and costs the
same number of SQL statements as for a fleet of one machine.

How long a page takes is measured apart, not asserted: ``python -m bench.fleet_pages``
(docs/decisions.md, "The fleet overview")."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.schema.support import Gql
from tests.sql_counter import count_sql
from tests.support import seed_fleet

MACHINES = 1000
GPUS = 8
PAGE = 50
VIEWS = Path(__file__).resolve().parents[2] / "gpugo" / "web" / "static" / "js" / "views"


def _overview_query() -> str:
    """The query the overview page sends, read from its script (so this test follows it),
    with the user fields it takes from auth.js."""
    page = (VIEWS / "overview.js").read_text(encoding="utf-8")
    auth = (VIEWS / "auth.js").read_text(encoding="utf-8")
    query = re.search(r"const QUERY = `(.*?)`;", page, re.DOTALL)
    user = re.search(r"const USER = '(.*?)';", auth)
    assert query and user, "the overview's query or the user fields moved"
    return query.group(1).replace("${USER_FIELDS}", user.group(1))


OVERVIEW = _overview_query()
# The pages the overview asks for, as its controls set them.
PAGES: dict[str, dict[str, Any]] = {
    "first": {},
    "state": {"state": "OFFLINE"},
    "sort": {"sort": "UTILIZATION"},
    "search": {"search": "node-99"},
    "last": {"offset": MACHINES - PAGE},
}


def variables(**chosen: Any) -> dict[str, Any]:
    return {"search": "", "state": None, "sort": "NAME", "first": PAGE, "offset": 0, **chosen}


async def fleet_page(gql: Gql, **chosen: Any) -> tuple[int, dict[str, Any]]:
    """One page of the overview and the SQL statements it cost."""
    with count_sql() as statements:
        data = await gql.data(OVERVIEW, variables(**chosen))
    return len(statements), data["fleet"]


async def test_pages_of_1000_machines_answer_right_in_as_many_statements_as_one(api):
    small = Gql(await api.user(plan="pro"))
    await seed_fleet(small.user.user_id, 1, gpus=GPUS, readings=True)
    large = Gql(await api.user(plan="pro"))
    await seed_fleet(large.user.user_id, MACHINES, gpus=GPUS, readings=True)

    one, page = await fleet_page(small)
    assert page["matching"] == 1 and page["machines"][0]["gpusInUse"] == GPUS

    costs = {}
    pages = {}
    for name, chosen in PAGES.items():
        costs[name], pages[name] = await fleet_page(large, **chosen)
    # The session, me, its plan's usage (GPUs, workers), the machines and their newest
    # readings: however many machines, whichever page.
    assert set(costs.values()) == {one}, (one, costs)
    assert one == 6, one

    summary = pages["first"]["summary"]
    online, offline, pending = 334, 333, 333  # node-000 online, node-001 offline, ...
    assert (summary["machines"], summary["online"], summary["offline"], summary["pending"]) == (
        MACHINES,
        online,
        offline,
        pending,
    )
    assert summary["gpusTotal"] == MACHINES * GPUS
    assert (summary["gpusInUse"], summary["gpusIdle"]) == (online * GPUS, 0)
    assert summary["gpusUnreachable"] == (offline + pending) * GPUS
    assert summary["gpuModels"] == [
        {"model": "NVIDIA A100 80GB", "count": MACHINES // 2 * GPUS},
        {"model": "NVIDIA GeForce RTX 4090", "count": MACHINES // 2 * GPUS},
    ]
    # Every page carries the same summary of the whole fleet.
    assert all(p["summary"] == summary for p in pages.values())

    def names(name: str) -> list[str]:
        return [m["name"] for m in pages[name]["machines"]]

    assert pages["first"]["matching"] == MACHINES
    assert names("first") == [f"node-{i:03d}" for i in range(PAGE)]
    first = pages["first"]["machines"][0]
    assert (first["agent"]["gpuCount"], first["gpusInUse"], first["utilization"]) == (8, 8, 0.0)

    assert pages["state"]["matching"] == offline
    assert names("state") == [f"node-{i:03d}" for i in range(1, 3 * PAGE, 3)]
    for machine in pages["state"]["machines"]:
        assert machine["agent"]["status"] == "OFFLINE"
        assert machine["lastKnownAt"] == machine["agent"]["lastSeenAt"] is not None
        assert (machine["gpusInUse"], machine["utilization"]) == (GPUS, None)

    # Busiest first: the online machines (every third) by their i % 100, ties by name.
    busiest = sorted(range(0, MACHINES, 3), key=lambda i: (-(i % 100), i))[:PAGE]
    assert pages["sort"]["matching"] == MACHINES
    assert names("sort") == [f"node-{i:03d}" for i in busiest]
    assert names("sort")[:4] == ["node-099", "node-399", "node-699", "node-999"]
    assert [m["utilization"] for m in pages["sort"]["machines"]] == [
        float(i % 100) for i in busiest
    ]

    assert pages["search"]["matching"] == 10
    assert names("search") == [f"node-{i}" for i in range(990, 1000)]

    assert pages["last"]["matching"] == MACHINES
    assert names("last") == [f"node-{i}" for i in range(MACHINES - PAGE, MACHINES)]
