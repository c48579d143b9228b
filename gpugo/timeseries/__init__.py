"""A time-series engine for agents' metric points (large fleets), instead of the SQL tables.

Configured by ``GPUGO_VICTORIA_METRICS_URL`` (one node) or the
``GPUGO_VICTORIA_METRICS_INSERT_URL`` / ``..._SELECT_URL`` pair (a cluster); without
either, ``ServerContext.timeseries`` is None and metric points stay in SQL.
"""

from __future__ import annotations

from gpugo.timeseries.victoria import VictoriaMetrics, engine_for

__all__ = ["VictoriaMetrics", "engine_for"]
