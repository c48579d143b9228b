"""Migration operations of our own, for what Tortoise's would do wrong on one database."""

from __future__ import annotations

from typing import Any

from tortoise.migrations import operations as ops


class WidenCharField(ops.AlterField):
    """A longer ``CharField``: ALTER on PostgreSQL, nothing to do on SQLite.

    SQLite does not enforce VARCHAR lengths, and Tortoise alters a column there by
    rebuilding the table, which drops its composite unique constraints and indexes
    (``unique_together`` on workers and gpus) without a word.
    """

    async def database_forward(
        self, app_label: str, old_state: Any, new_state: Any, state_editor: Any = None
    ) -> None:
        if state_editor is not None and state_editor.DIALECT == "sqlite":
            return
        await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(
        self, app_label: str, old_state: Any, new_state: Any, state_editor: Any = None
    ) -> None:
        if state_editor is not None and state_editor.DIALECT == "sqlite":
            return
        await super().database_backward(app_label, old_state, new_state, state_editor)
