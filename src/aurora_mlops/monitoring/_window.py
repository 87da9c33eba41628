"""One monitored window: which times it covers, the champion's forecasts, their scores.

A window is a span ``[start, end)`` of initialisation times. It is complete once the data hold
the history before its first initialisation and the truth at the last lead after its last
one, so a window is scored against analyses that arrived afterwards, as verification does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from aurora_mlops.errors import ConfigError, DataError

__all__ = ["Forecaster", "Window", "pending_windows", "rollout_window", "skill_rows"]

#: ``forecaster(data)``: forecasts from every initialisation of ``data`` that has its history
#: and leads inside ``data`` (WeatherBench2 layout, as :func:`rollout_window` returns).
Forecaster = Callable[[xr.Dataset], xr.Dataset]


@dataclass(frozen=True)
class Window:
    """Initialisation times ``[start, end)``."""

    start: pd.Timestamp
    end: pd.Timestamp

    def data(self, ds: xr.Dataset, *, step: pd.Timedelta, history: int, leads: int
             ) -> xr.Dataset:
        """The slice of ``ds`` the window needs: its history, its inits, and their leads."""
        first = self.start - (history - 1) * step
        last = self.end - step + leads * step
        return ds.sel(time=slice(first, last))

    def valid(self, ds: xr.Dataset) -> xr.Dataset:
        """The window's own times (what arrived in it), for the input-drift check."""
        return ds.sel(time=slice(self.start, self.end - pd.Timedelta(1, "ns")))


def pending_windows(times: np.ndarray, *, length: pd.Timedelta, step: pd.Timedelta,
                    history: int, leads: int, after: pd.Timestamp | None,
                    since: pd.Timestamp | None, only: pd.Timestamp | None = None
                    ) -> list[Window]:
    """The complete windows to monitor, oldest first.

    Args:
        times: The dataset's times (sorted).
        length: A window's span (a multiple of ``step``).
        step: The data's time step.
        history, leads: Input steps and lead steps of the champion.
        after: The end of the newest window already monitored (continue from there).
        since: The first window's start when nothing was monitored yet (default: only the
            newest complete window).
        only: Monitor exactly the window that starts here (a re-run).

    Raises:
        ConfigError: ``length`` is not a positive multiple of ``step``, or ``only`` is not
            complete in the data.
    """
    if length < step or length % step != pd.Timedelta(0):
        raise ConfigError(f"--window-hours must be a positive multiple of the data's time step "
                          f"({step}), got {length}")
    t = pd.DatetimeIndex(times)
    first_init = t[0] + (history - 1) * step
    last_end = t[-1] - leads * step + step  # the newest end whose last lead is in the data

    def complete(w: Window) -> bool:
        return w.start >= first_init and w.end <= last_end

    if only is not None:
        w = Window(only, only + length)
        if not complete(w):
            raise ConfigError(f"--window-start {only}: the window needs data from "
                              f"{only - (history - 1) * step} to {w.end - step + leads * step}; "
                              f"the dataset covers {t[0]} to {t[-1]}")
        return [w]
    start = after if after is not None else since
    if start is None:
        start = last_end - length
    out = []
    while complete(Window(start, start + length)):
        out.append(Window(start, start + length))
        start = start + length
    return out


def rollout_window(trained: Any, data: xr.Dataset, variant: str, *, leads: int,
                   batch_size: int = 4) -> xr.Dataset:
    """Forecasts of ``trained`` (a loaded trial) from every initialisation in ``data`` whose
    history and leads are in ``data``; the layout ``evaluate --forecast`` scores."""
    from aurora_mlops.data import WindowDataset
    from aurora_mlops.evaluation import extra_statics, forecast_dataset, rollout_arrays
    from aurora_mlops.variables import static_store_name
    from aurora_mlops.variants import get_variant

    spec = get_variant(variant)
    windows = WindowDataset(data, spec, (0, int(data.sizes["time"])), history=trained.history,
                            rollout_steps=leads, levels=list(trained.levels) or None)
    if trained.params.coastal_conditioning:
        windows.static.update(extra_statics(
            trained, np.asarray(data[static_store_name("lsm")].values)))
    times = data["time"].values
    parts = []
    for first in range(0, len(windows), batch_size):
        chunk = list(range(first, min(first + batch_size, len(windows))))
        batch, _ = windows.batch(chunk)
        arrays = rollout_arrays(trained.model, batch, leads)
        parts.append(forecast_dataset(
            arrays, spec, inits=np.asarray([times[windows.init_index(i)] for i in chunk]),
            lat=windows.lat.numpy(), lon=windows.lon.numpy(), levels=windows.levels))
    if not parts:
        raise DataError("the window has no initialisation with its history and leads")
    return xr.concat(parts, dim="time") if len(parts) > 1 else parts[0]


def skill_rows(table: pd.DataFrame) -> pd.DataFrame:
    """RMSE of the model and both baselines, and the model's skill against persistence, per
    variable, level and lead; plus ``skill`` per lead (the mean over variables and levels).

    Args:
        table: The tidy table of :func:`aurora_mlops.evaluation.score_forecasts`.

    Returns:
        Columns ``variable, level, lead_hours, metric, value`` (``variable`` empty for the
        per-lead ``skill``).
    """
    rmse = table[table["metric"] == "rmse"].copy()
    rmse["level"] = rmse["level"].astype(float)
    wide = rmse.pivot_table(index=["variable", "level", "lead_hours"], columns="model",
                            values="value", dropna=False).reset_index()
    if "persistence" not in wide or "model" not in wide:
        raise DataError("the window was not scored against persistence")
    wide["skill_vs_persistence"] = 1.0 - wide["model"] / wide["persistence"]
    renamed = wide.rename(columns={"model": "rmse", "persistence": "rmse_persistence",
                                   "climatology": "rmse_climatology"})
    metrics = [c for c in ("rmse", "rmse_persistence", "rmse_climatology",
                           "skill_vs_persistence") if c in renamed]
    long = renamed.melt(id_vars=["variable", "level", "lead_hours"], value_vars=metrics,
                        var_name="metric", value_name="value")
    per_lead = (wide.groupby("lead_hours")["skill_vs_persistence"].mean().reset_index()
                .rename(columns={"skill_vs_persistence": "value"}))
    per_lead = per_lead.assign(variable="", level=np.nan, metric="skill")
    return pd.concat([long, per_lead], ignore_index=True)
