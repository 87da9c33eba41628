"""The result of scoring: :class:`EvaluationResult` and the tidy table's columns.

Its own module so that the scorer (:mod:`._evaluate`) and the pages and plots that render a
result (:mod:`._page`, :mod:`._plots`) both import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["LOWER_IS_BETTER", "MEAN_ORDER", "TABLE_COLUMNS", "EvaluationResult"]

#: Columns of the tidy metrics table, in order.
TABLE_COLUMNS: tuple[str, ...] = ("model", "metric", "variable", "level", "lead_hours", "value")

#: Metrics where a smaller value is better (the rest: larger is better, bias: closer to 0).
LOWER_IS_BETTER = ("rmse", "mae", "crps")

MEAN_ORDER = (
    "Per initialisation time and lead, each statistic is an area-weighted (cos latitude) spatial "
    "mean over the points where forecast and truth are both finite (weights renormalised). "
    "Then: rmse = sqrt(time mean of MSE); spread = sqrt(time mean of ensemble variance); "
    "mae, bias, crps, acc, pearson = time means of the per-time values."
)


@dataclass(frozen=True)
class EvaluationResult:
    """Everything :func:`score_forecasts` found.

    Attributes:
        variant: The variant scored.
        models: Forecast names then baseline names, in table order.
        table: Tidy table, one row per model, metric, variable, level and lead
            (:data:`TABLE_COLUMNS`; ``level`` is null at the surface).
        scorecard: ``{model: {other: {metric: {"wins", "targets", "fraction"}}}}``: how often
            ``model`` beats ``other`` over the variable x level x lead targets both have.
        events: One dict per model and event quantity with the summed confusion counts.
        notes: Sentences on what could not be scored (missing variables, leads, levels).
        nan_skipped: ``{model: {variable: points skipped because NaN}}``.
        nan_pairs_skipped: ``{model: {variable: {"+24 h": pairs skipped}}}``: (init, lead)
            pairs whose forecast or truth field is NaN at every grid point (missing analyses).
        pairs: ``{model: forecast-truth pairs (initialisation x lead) scored}``.
        climatology_period: Where the climatology came from.
        files: Files written by :func:`evaluate_forecasts` (empty otherwise).
        checkpoint: Which checkpoint made the ``model`` forecast (``path``, ``sha256``,
            ``trial``), when it came from ``evaluate --model``; ``package`` refuses an
            evaluation of another checkpoint.
    """

    variant: str
    models: list[str]
    table: pd.DataFrame
    scorecard: dict[str, Any]
    events: list[dict[str, Any]]
    notes: list[str]
    nan_skipped: dict[str, dict[str, int]]
    pairs: dict[str, int]
    climatology_period: str
    files: list[Path] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    nan_pairs_skipped: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly form (what ``metrics.json`` holds)."""
        rows = [
            {k: (None if (k == "level" and pd.isna(v)) else v) for k, v in r.items()}
            for r in self.table.to_dict(orient="records")
        ]
        for r in rows:
            if r["level"] is not None:
                r["level"] = int(r["level"])
        return {
            "variant": self.variant,
            "models": self.models,
            "mean_order": MEAN_ORDER,
            "climatology": self.climatology_period,
            "pairs": self.pairs,
            "nan_skipped": self.nan_skipped,
            "nan_pairs_skipped": self.nan_pairs_skipped,
            "notes": self.notes,
            "scorecard": self.scorecard,
            "events": self.events,
            "rows": rows,
            "checkpoint": self.checkpoint,
        }
