"""Evaluation: WeatherBench2-style scores of forecasts and baselines against truth.

Metrics are pure functions over xarray (:mod:`._metrics`); event thresholds are one table
(:mod:`._events`); forecasts follow the WeatherBench2 layout (:mod:`._forecast`); baselines are
forecasts built from the truth (:mod:`._baselines`); :func:`evaluate_forecasts` streams over
initialisation times and writes ``metrics.json``, ``metrics.parquet``, plots and reports;
:func:`evaluate_checkpoint` is the ``evaluate --model`` workflow (load, roll out, score) that the
CLI and the pipeline's evaluate step share.
"""

from __future__ import annotations

from aurora_mlops.evaluation._baselines import (
    BASELINES,
    climatology_forecast,
    compute_climatology,
    persistence_forecast,
)
from aurora_mlops.evaluation._evaluate import TABLE_COLUMNS, EvaluationResult, score_forecasts
from aurora_mlops.evaluation._events import (
    EVENTS,
    EventSpec,
    confusion_counts,
    event_scores,
    events_for,
)
from aurora_mlops.evaluation._forecast import normalise_forecast, open_forecast, open_truth
from aurora_mlops.evaluation._metrics import (
    acc,
    bias,
    circular_difference,
    crps,
    ensemble_mean,
    ensemble_variance,
    lat_weights,
    mae,
    mse,
    pearson,
    spatial_mean,
)
from aurora_mlops.evaluation._model import (
    DEFAULT_LEAD_STEPS,
    extra_statics,
    forecast_dataset,
    forecast_from_checkpoint,
    rollout_arrays,
    rollout_forecast,
    untuned_forecast,
)
from aurora_mlops.evaluation._workflow import (
    MemberForecasts,
    MemberRollout,
    evaluate_checkpoint,
    evaluate_forecasts,
    training_climatology,
)

__all__ = [
    "BASELINES",
    "DEFAULT_LEAD_STEPS",
    "EVENTS",
    "TABLE_COLUMNS",
    "EvaluationResult",
    "EventSpec",
    "MemberForecasts",
    "MemberRollout",
    "acc",
    "bias",
    "circular_difference",
    "climatology_forecast",
    "compute_climatology",
    "confusion_counts",
    "crps",
    "ensemble_mean",
    "ensemble_variance",
    "evaluate_checkpoint",
    "evaluate_forecasts",
    "event_scores",
    "events_for",
    "extra_statics",
    "forecast_dataset",
    "forecast_from_checkpoint",
    "lat_weights",
    "mae",
    "mse",
    "normalise_forecast",
    "open_forecast",
    "open_truth",
    "pearson",
    "persistence_forecast",
    "rollout_arrays",
    "rollout_forecast",
    "score_forecasts",
    "spatial_mean",
    "training_climatology",
    "untuned_forecast",
]
