"""The monitoring history: one Parquet table, and one MLflow run per window.

The table has one row per window, model version, variable, level, lead and metric
(:data:`HISTORY_COLUMNS`; ``level`` is NaN at the surface and for window-wide figures,
``lead_hours`` is NaN for input drift). A window is keyed by its start and end: writing it
again replaces its rows and its MLflow run, so a re-run never duplicates history.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aurora_mlops._mlflow_experiment import experiment_id
from aurora_mlops.errors import ConfigError

__all__ = ["HISTORY_COLUMNS", "History", "log_window_run"]

HISTORY_COLUMNS = ("window_start", "window_end", "model_version", "variable", "level",
                   "lead_hours", "metric", "value")


class History:
    """The Parquet history at ``path`` (created on the first write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> pd.DataFrame:
        """Every row, oldest window first (an empty table when there is no file yet).

        Raises:
            ConfigError: The file exists but is not a history table.
        """
        if not self.path.is_file():
            return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in HISTORY_COLUMNS})
        try:
            table = pd.read_parquet(self.path)
        except (OSError, ValueError) as e:
            raise ConfigError(f"{self.path}: not a monitoring history ({e}); move it away to "
                              "start a new history") from e
        missing = [c for c in HISTORY_COLUMNS if c not in table.columns]
        if missing:
            raise ConfigError(f"{self.path}: a monitoring history needs columns {missing}")
        return table.sort_values(["window_start", "metric"], kind="stable").reset_index(drop=True)

    def last_end(self) -> pd.Timestamp | None:
        """The end of the newest window monitored, or ``None``."""
        table = self.read()
        return None if table.empty else pd.Timestamp(table["window_end"].max())

    def replace_window(self, rows: pd.DataFrame) -> int:
        """Write ``rows`` (one window's) in place of that window's old rows; returns how many
        old rows were dropped."""
        start, end = rows["window_start"].iloc[0], rows["window_end"].iloc[0]
        table = self.read()
        same = (table["window_start"] == start) & (table["window_end"] == end)
        table = pd.concat([table[~same], rows[list(HISTORY_COLUMNS)]], ignore_index=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        os.close(fd)
        try:
            table.sort_values(["window_start", "metric"], kind="stable").to_parquet(
                tmp, index=False)
            os.replace(tmp, self.path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return int(same.sum())


def _dtype(column: str) -> str:
    if column in ("window_start", "window_end"):
        return "datetime64[ns]"
    return "float64" if column in ("level", "lead_hours", "value") else "object"


def _metric_key(row: Any) -> str:
    """``metric/variable[_level][/lead_6h]`` as MLflow names a metric."""
    key = str(row.metric)
    if row.variable:
        key += f"/{row.variable}" + ("" if np.isnan(row.level) else f"_{int(row.level)}")
    if not np.isnan(row.lead_hours):
        key += f"/lead_{int(row.lead_hours)}h"
    return key


def log_window_run(rows: pd.DataFrame, *, tracking_uri: str, experiment: str,
                   tags: dict[str, str]) -> str:
    """Log one window as one MLflow run (an earlier run of the same window is deleted first).

    Every metric's step is the window's start in hours since 1970 and its timestamp the
    window's end, so MLflow draws each metric over windows.

    Returns:
        The run's id.
    """
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    exp = experiment_id(client, experiment, tracking_uri)
    start = pd.Timestamp(rows["window_start"].iloc[0])
    end = pd.Timestamp(rows["window_end"].iloc[0])
    for old in client.search_runs([exp], f"tags.window_start = '{start.isoformat()}'"):
        client.delete_run(old.info.run_id)
    run = client.create_run(exp, run_name=f"window {start:%Y-%m-%d %H:%M}", tags={
        **tags, "window_start": start.isoformat(), "window_end": end.isoformat()})
    step = int(start.value // 3_600_000_000_000)
    ts = int(end.value // 1_000_000)
    metrics = [Metric(_metric_key(r), float(r.value), ts, step)
               for r in rows.itertuples() if np.isfinite(r.value)]
    for i in range(0, len(metrics), 1000):  # MLflow's batch limit
        client.log_batch(run.info.run_id, metrics=metrics[i:i + 1000])
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)
