"""Helpers of the webhook tests: waiting for deliveries, a resolver answering from a
table (DNS the test controls), and the docs' signature check."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gpugo.addresses import Resolver

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


class TableResolver(Resolver):
    """Answers host names from a table the test changes (as DNS answers change)."""

    def __init__(self, table: Mapping[str, list[str]]) -> None:
        self.table = dict(table)

    async def resolve(self, host: str, port: int) -> list[str]:
        if host not in self.table:
            raise OSError(f"{host} does not resolve")
        return list(self.table[host])


def docs_verify() -> Callable[..., bool]:
    """The ``verify`` function of docs/webhooks.md's Python snippet, as written there."""
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    namespace: dict[str, Any] = {}
    # The snippet as the docs print it (our own file).
    exec(next(b for b in blocks if "def verify" in b), namespace)
    return namespace["verify"]
