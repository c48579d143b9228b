"""Migration operations of our own, for what Tortoise's would do wrong on one database."""

from __future__ import annotations

from datetime import UTC, datetime
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


async def partition_and_roll_up_metrics(apps: Any, state_editor: Any) -> None:
    """The metrics tiers' storage, for 0008 (a ``RunPython`` step).

    PostgreSQL: the sample and rollup tables become day-partitioned (rows kept), so
    retention drops partitions instead of deleting rows (``gpugo.partitions``).
    SQLite: indexes by time for its retention DELETEs and the rollup passes. Both: the
    rollups of the samples already stored, so charts over them keep their history.
    """
    from gpugo import partitions
    from gpugo.services import metrics_rollups

    client = state_editor.client
    dialect = client.capabilities.dialect
    if dialect == "postgres":
        for spec in (*partitions.RAW, *partitions.ROLLUPS):
            await partitions.convert(client, spec)
        days = set()
        for spec in partitions.RAW:
            rows = await client.execute_query_dict(
                f"SELECT DISTINCT date_trunc('day', recorded_at AT TIME ZONE 'UTC') AS day "  # noqa: S608
                f"FROM {spec.table}"
            )
            days |= {row["day"].date() for row in rows}
        for spec in partitions.ROLLUPS:
            for parent in spec.parents():
                await partitions.ensure_days(client, parent, days)
    else:
        for spec in partitions.RAW:
            await client.execute_script(
                f"CREATE INDEX IF NOT EXISTS {spec.table}_time ON {spec.table} (recorded_at)"
            )
        for spec in partitions.ROLLUPS:
            await client.execute_script(
                f"CREATE INDEX IF NOT EXISTS {spec.table}_width_time "
                f"ON {spec.table} (width, bucket_start)"
            )
    everything = [datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)]
    for width in (metrics_rollups.FIVE_MINUTES, metrics_rollups.HOUR):
        for rollup in metrics_rollups.ROLLUPS:
            await client.execute_query(
                metrics_rollups.upsert_sql(dialect, rollup, width), everything
            )
