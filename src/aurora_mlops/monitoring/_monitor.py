"""``monitor``: score the champion on every new window, check drift, keep history, alert.

The one workflow the CLI (``aurora-mlops monitor run``) and the pipeline step
(``aurora-monitor``) both call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from aurora_mlops.errors import ConfigError
from aurora_mlops.monitoring._cusum import CusumPoint, SkillCusum
from aurora_mlops.monitoring._history import History, log_window_run
from aurora_mlops.monitoring._input_drift import (
    DEFAULT_DRIFT_THRESHOLD,
    ReferenceProfile,
    input_drift,
)
from aurora_mlops.monitoring._outcome import MonitorResult, WindowOutcome, send_alert
from aurora_mlops.monitoring._window import Window, pending_windows, skill_rows

__all__ = ["MonitorPlan", "monitor"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class MonitorPlan:
    """What to watch and how.

    Attributes:
        dataset: The dataset new data arrive in (any reader's path or URI).
        reference: The champion's training dataset: its training split is the drift reference
            and the climatology baseline (``""``: the one its package records).
        model_uri: ``models:/NAME@ALIAS`` or a package folder.
        tracking_uri: The MLflow store of the registry and the monitoring runs.
        out_dir: Where the history (``history.parquet``), the cached reference, the alerts
            sent and the report go.
        experiment: The MLflow experiment of the monitoring runs.
        window_hours: A window's span of initialisation times.
        lead_steps: Lead times scored.
        since: The first window's start when nothing was monitored yet (ISO 8601; default:
            the newest complete window only).
        window_start: Re-run exactly the window starting here (replaces its history).
        drift_threshold: Input-drift alarm threshold (W1 in training standard deviations).
        cusum: The skill chart's settings.
        webhook_url: Where alerts go (``None``: no alert is sent).
    """

    dataset: str
    model_uri: str
    tracking_uri: str
    out_dir: Path
    reference: str = ""
    experiment: str = "aurora-monitor"
    window_hours: int = 24
    lead_steps: int = 4
    since: str | None = None
    window_start: str | None = None
    drift_threshold: float = DEFAULT_DRIFT_THRESHOLD
    cusum: SkillCusum = field(default_factory=SkillCusum)
    webhook_url: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.window_hours < 1 or self.lead_steps < 1 or self.drift_threshold <= 0:
            raise ConfigError("monitor: --window-hours and --lead-steps must be at least 1 and "
                              "--drift-threshold above 0")
        for name in ("since", "window_start"):
            value = getattr(self, name)
            if value is not None:
                _timestamp(value, f"--{name.replace('_', '-')}")


def _timestamp(text: str, what: str) -> pd.Timestamp:
    try:
        t = pd.Timestamp(text)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{what} {text!r} is not an ISO 8601 time") from e
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t


@dataclass
class _Context:
    """What every window of one run shares."""

    plan: MonitorPlan
    champion: Any
    ds: xr.Dataset
    step: pd.Timedelta
    profile: ReferenceProfile
    climatology: xr.Dataset
    history: History


def monitor(plan: MonitorPlan, *, champion: Any = None,
            echo: Callable[[str], None] = lambda _: None) -> MonitorResult:
    """Monitor every complete window not monitored yet (or ``plan.window_start``'s).

    Args:
        plan: What to watch.
        champion: A loaded :class:`~aurora_mlops.monitoring.Champion` (default: loaded from
            ``plan.model_uri``).
        echo: Progress lines.

    Returns:
        The :class:`MonitorResult` (``windows`` empty when there was no new data).

    Raises:
        ConfigError: A bad setting, window or model URI.
        ValidationFailed: The dataset is not fit for the champion's variant.
    """
    from aurora_mlops.data import open_dataset, validate
    from aurora_mlops.monitoring._champion import load_champion

    out = Path(plan.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    champ = champion or load_champion(plan.model_uri, tracking_uri=plan.tracking_uri,
                                      cache_dir=out / "models")
    history = History(out / "history.parquet")
    ds = open_dataset(plan.dataset)
    times = ds["time"].values
    if len(times) < 2:
        raise ConfigError(f"{plan.dataset}: needs at least two times to monitor")
    step = pd.Timedelta(times[1] - times[0])
    windows = pending_windows(
        times, length=pd.Timedelta(hours=plan.window_hours), step=step,
        history=champ.trained.history, leads=plan.lead_steps, after=history.last_end(),
        since=None if plan.since is None else _timestamp(plan.since, "--since"),
        only=None if plan.window_start is None else _timestamp(plan.window_start,
                                                               "--window-start"))
    result = MonitorResult(model=champ.label, dataset=plan.dataset, out_dir=out,
                           history=history.path, last_end=history.last_end())
    if not windows:
        return result
    validate(plan.dataset, champ.variant).raise_if_invalid()
    profile, clim = _reference(plan.reference or champ.training_data, champ.variant, out)
    ctx = _Context(plan, champ, ds, step, profile, clim, history)
    for w in windows:
        echo(f"window {w.start} to {w.end}: scoring {champ.label}")
        result.windows.append(_monitor_window(ctx, w))
    return result


def _reference(path: str, variant: str, out: Path) -> tuple[ReferenceProfile, Any]:
    """The drift profile (cached in ``out``) and climatology of the reference's training split.

    Raises:
        ConfigError: No reference was given and the package records none that exists.
    """
    from aurora_mlops.data import is_remote, open_dataset, split_times
    from aurora_mlops.evaluation import compute_climatology
    from aurora_mlops.variables import VARIABLES
    from aurora_mlops.variants import get_variant

    if not path or not (is_remote(path) or Path(path).exists()):
        raise ConfigError(f"--reference: the model's package records no training dataset that "
                          f"exists here ({path or 'none'}); pass the dataset it was trained on")
    ref = open_dataset(path)
    train = split_times(int(ref.sizes["time"])).train
    part = ref.isel(time=slice(*train))
    source = (f"{path} training split {pd.Timestamp(part.time.values[0])} to "
              f"{pd.Timestamp(part.time.values[-1])}")
    cached = out / "reference.json"
    profile = ReferenceProfile.load(cached) if cached.is_file() else None
    if profile is None or profile.source != source:
        names = [v.store_name for v in get_variant(variant).variables() if v.kind != "static"]
        profile = ReferenceProfile.from_dataset(part, variables=names, source=source)
        profile.save(cached)
    angles = [v.store_name for v in VARIABLES.values() if v.angle]
    return profile, compute_climatology(part, angles=angles)


def _monitor_window(ctx: _Context, w: Window) -> WindowOutcome:
    """Score, check drift, chart skill, write history and the MLflow run, alert."""
    from aurora_mlops.evaluation import score_forecasts

    plan, champ = ctx.plan, ctx.champion
    data = w.data(ctx.ds, step=ctx.step, history=champ.trained.history,
                  leads=plan.lead_steps).load()
    drift = input_drift(w.valid(data), ctx.profile, threshold=plan.drift_threshold)
    scored = score_forecasts({"model": champ.forecast(data, plan.lead_steps)}, data,
                             variant=champ.variant, climatology=ctx.climatology)
    skills = skill_rows(scored.table)
    chart = _chart(ctx.history.read(), champ.label, w, skills, plan.cusum)
    rows = _rows(w, champ.label, skills, drift, chart)
    replaced = ctx.history.replace_window(rows)
    outcome = WindowOutcome.build(w, champ.label, skills, drift, chart, replaced=replaced,
                                  cusum=plan.cusum)
    outcome.run_id = log_window_run(rows, tracking_uri=plan.tracking_uri,
                                    experiment=plan.experiment,
                                    tags={"model": champ.label, "dataset": plan.dataset,
                                          "alarm": str(outcome.alarm).lower()})
    if outcome.alarm and plan.webhook_url:
        outcome.alert = send_alert(plan.webhook_url, outcome, plan.out_dir / "alerts.json")
    return outcome


def _chart(history: pd.DataFrame, model: str, w: Window, skills: pd.DataFrame,
           cusum: SkillCusum) -> dict[float, CusumPoint]:
    """The CUSUM point of this window per lead, over the model's earlier windows."""
    before = history[(history["metric"] == "skill") & (history["model_version"] == model)
                     & (history["window_start"] < w.start)]
    now = skills[skills["metric"] == "skill"]
    out = {}
    for lead, value in zip(now["lead_hours"], now["value"], strict=True):
        past = before[before["lead_hours"] == lead].sort_values("window_start")["value"]
        out[float(lead)] = cusum.run([*past.tolist(), float(value)])[-1]
    return out


def _rows(w: Window, model: str, skills: pd.DataFrame, drift: pd.DataFrame,
          chart: dict[float, CusumPoint]) -> pd.DataFrame:
    """The window's history rows."""
    drift_long = drift.melt(id_vars=["variable", "level"],
                            value_vars=["wasserstein_sd", "psi", "mean_shift_sd"],
                            var_name="metric", value_name="value").assign(lead_hours=np.nan)
    cusum = pd.DataFrame([{"variable": "", "level": np.nan, "lead_hours": lead,
                           "metric": m, "value": v}
                          for lead, p in chart.items()
                          for m, v in (("cusum", p.statistic), ("skill_alarm", float(p.alarm)))])
    flag = pd.DataFrame([{"variable": "", "level": np.nan, "lead_hours": np.nan,
                          "metric": "input_alarm", "value": float(drift["alarm"].any())}])
    rows = pd.concat([skills, drift_long, cusum, flag], ignore_index=True)
    rows["level"] = rows["level"].astype(float)
    rows["lead_hours"] = rows["lead_hours"].astype(float)
    rows["value"] = rows["value"].astype(float)
    return rows.assign(window_start=w.start, window_end=w.end, model_version=model)
