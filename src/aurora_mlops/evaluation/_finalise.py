"""Finalising: running sums to metrics, the tidy table, skill scores and the scorecard.

Order of means (WeatherBench2's): RMSE and ensemble spread are the square roots of the time-mean
MSE and variance; ACC, Pearson, MAE, bias and CRPS are plain time means of the per-time values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from aurora_mlops.evaluation._accumulate import ModelState
from aurora_mlops.evaluation._events import event_scores
from aurora_mlops.evaluation._forecast import LEAD_DIM
from aurora_mlops.evaluation._result import TABLE_COLUMNS, EvaluationResult

__all__ = ["finalise"]


def _rows(model: str, metric: str, ds: xr.Dataset) -> Iterable[dict[str, Any]]:
    for var in map(str, ds.data_vars):
        da = ds[var]
        levels = da["level"].values if "level" in da.dims else [None]
        for lev in levels:
            x = da.sel(level=lev) if lev is not None else da
            for lead, value in zip(x[LEAD_DIM].values, np.atleast_1d(x.values), strict=True):
                if not np.isfinite(value):
                    continue
                yield {
                    "model": model,
                    "metric": metric,
                    "variable": var,
                    "level": None if lev is None else int(lev),
                    "lead_hours": float(lead / np.timedelta64(1, "h")),
                    "value": float(value),
                }

def finalise(variant: str, models: list[ModelState], notes: list[str],
             clim: str) -> EvaluationResult:
    """The :class:`EvaluationResult` of the running sums in ``models``; ``notes`` and one
    more for each model without a scored pair are its notes."""
    rows: list[dict[str, Any]] = []
    finals: dict[str, dict[str, xr.Dataset]] = {}
    events_out: list[dict[str, Any]] = []
    unscored = [f"{m.name}: no forecast-truth pair could be scored." for m in models
                if not m.sums]
    for m in models:
        if not m.sums:
            continue
        finals[m.name] = _metrics(m)
        for metric, ds in finals[m.name].items():
            rows.extend(_rows(m.name, metric, ds))
        events_out.extend(_event_rows(m, rows))
    forecast_names = [m.name for m in models if m.kind == "forecast"]
    others = [m.name for m in models]
    rows.extend(_skill_rows(finals, forecast_names, others))
    table = _table(rows, others)
    return EvaluationResult(
        variant=variant,
        models=[m.name for m in models],
        table=table,
        scorecard=_scorecard(table, forecast_names, others),
        events=events_out,
        notes=[*notes, *unscored],
        nan_skipped={m.name: dict(sorted(m.skipped.items())) for m in models},
        nan_pairs_skipped={m.name: dict(sorted(m.empty_pairs.items())) for m in models},
        pairs={m.name: m.pairs for m in models},
        climatology_period=clim,
    )


def _metrics(m: ModelState) -> dict[str, xr.Dataset]:
    """Time means of the running sums, and RMSE, spread and spread/skill from them."""
    mean = {k: m.sums[k] / m.counts[k].where(m.counts[k] > 0) for k in m.sums}
    fin: dict[str, xr.Dataset] = {
        "rmse": np.sqrt(mean["mse"]),  # type: ignore[dict-item]
        "mae": mean["mae"],
        "bias": mean["bias"],
    }
    for k in ("acc", "pearson", "crps"):
        if k in mean:
            fin[k] = mean[k]
    if "ens_var" in mean:
        spread = np.sqrt(mean["ens_var"])
        fin["spread"] = spread  # type: ignore[assignment]
        fin["spread_skill"] = spread / fin["rmse"]
    return fin


def _event_rows(m: ModelState, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add the event counts and scores of ``m`` to ``rows``; returns their totals."""
    totals: list[dict[str, Any]] = []
    for quantity, counts in m.events.items():
        scores = event_scores(counts)
        for k in ("hits", "misses", "false_alarms", "correct_negatives"):
            rows.extend(_rows(m.name, f"event_{k}", counts[[k]].rename({k: quantity})))
        for k in map(str, scores.data_vars):
            rows.extend(_rows(m.name, f"event_{k}", scores[[k]].rename({k: quantity})))
        totals.append({
            "model": m.name,
            "quantity": quantity,
            **{k: int(counts[k].sum()) for k in map(str, counts.data_vars)},
        })
    return totals


def _skill_rows(finals: dict[str, dict[str, xr.Dataset]], forecast_names: list[str],
                others: list[str]) -> Iterable[dict[str, Any]]:
    """Skill scores: 1 - RMSE(model) / RMSE(reference)."""
    for a in forecast_names:
        for b in others:
            if a == b or a not in finals or b not in finals:
                continue
            ra, rb = finals[a]["rmse"], finals[b]["rmse"]
            common = [v for v in ra.data_vars if v in rb.data_vars]
            skill = 1.0 - ra[common] / rb[common].where(rb[common] > 0)
            yield from _rows(a, f"rmse_skill_vs_{b}", skill)


def _table(rows: list[dict[str, Any]], others: list[str]) -> pd.DataFrame:
    """The tidy table, ordered by model (as given), metric, variable, level and lead."""
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    table["level"] = table["level"].astype("Int64")
    table["lead_hours"] = table["lead_hours"].astype(np.float64)
    table["value"] = table["value"].astype(np.float64)
    order = {n: i for i, n in enumerate(others)}
    return table.assign(_o=table["model"].map(order)).sort_values(
        ["_o", "metric", "variable", "level", "lead_hours"], na_position="first", kind="stable"
    ).drop(columns="_o").reset_index(drop=True)


def _scorecard(table: pd.DataFrame, forecasts: list[str], others: list[str]) -> dict[str, Any]:
    """Fraction of variable x level x lead targets where each forecast beats each other entry."""
    keys = ["variable", "level", "lead_hours"]
    card: dict[str, Any] = {}
    for a in forecasts:
        card[a] = {}
        for b in others:
            if a == b:
                continue
            card[a][b] = {}
            for metric in ("rmse", "acc"):
                ta = table[(table["model"] == a) & (table["metric"] == metric)]
                tb = table[(table["model"] == b) & (table["metric"] == metric)]
                j = ta.merge(tb, on=keys, suffixes=("_a", "_b"))
                if j.empty:
                    continue
                better = (j["value_a"] < j["value_b"]) if metric == "rmse" else (
                    j["value_a"] > j["value_b"])
                wins, n = int(better.sum()), len(j)
                card[a][b][metric] = {"wins": wins, "targets": n, "fraction": wins / n}
    return card
