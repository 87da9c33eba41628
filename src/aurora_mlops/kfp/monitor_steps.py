"""What the ``aurora-monitor`` components run: plain library calls over paths (no kfp import).

:func:`watch` is ``aurora-mlops monitor run`` for a pipeline step (the same
:func:`aurora_mlops.monitoring.monitor`, its report and summary); :func:`submit_retraining`
starts ``aurora-tune-and-publish`` on the KFP host when an alarm asks for it.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any

from aurora_mlops._io import atomic_write
from aurora_mlops.errors import ConfigError
from aurora_mlops.kfp._tune import ARTIFACTS_ROOT

__all__ = ["monitor_dir_for", "submit_retraining", "watch"]

log = logging.getLogger(__name__)


def monitor_dir_for(model_uri: str, artifacts_root: str = ARTIFACTS_ROOT) -> Path:
    """Where a model's monitoring history lives on the artifacts volume by default:
    ``<artifacts_root>/monitor/<name>`` (one history per registered model and alias)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_uri.removeprefix("models:/")).strip("_")
    return Path(artifacts_root) / "monitor" / (name or "model")


def watch(*, model_uri: str, dataset_uri: str, reference_uri: str, tracking_uri: str,
          experiment: str, monitor_dir: str, window_hours: int, lead_steps: int, since: str,
          window_start: str, drift_threshold: float, artifacts_root: str = ARTIFACTS_ROOT
          ) -> dict[str, Any]:
    """Monitor every new window; write the report and the summary beside the history.

    Returns:
        ``alarm`` (bool), ``windows`` (how many were scored), ``summary`` and ``report``
        (paths; ``report`` is ``None`` when no window was new), ``history`` (path) and
        ``metrics`` (figures for the KFP UI: windows, alarms, the newest window's skill per
        lead and largest drift).
    """
    from aurora_mlops.config import get_settings
    from aurora_mlops.monitoring import MonitorPlan, build_monitor_report, monitor

    s = get_settings()
    uri = tracking_uri or s.resolved_tracking_uri()
    if not uri:
        raise ConfigError("tracking_uri is empty and no tracking URI is configured: pass the "
                          "pipeline parameter tracking_uri")
    if not dataset_uri:
        raise ConfigError("dataset_uri is empty: pass the dataset new data arrive in")
    out = Path(monitor_dir) if monitor_dir else monitor_dir_for(model_uri, artifacts_root)
    hook = s.monitor_webhook_url
    plan = MonitorPlan(dataset=dataset_uri, reference=reference_uri, model_uri=model_uri,
                       tracking_uri=uri, out_dir=out, experiment=experiment,
                       window_hours=window_hours, lead_steps=lead_steps, since=since or None,
                       window_start=window_start or None, drift_threshold=drift_threshold,
                       webhook_url=hook.get_secret_value() if hook else None)
    result = monitor(plan, echo=lambda line: log.warning("%s", line))
    if result.windows:
        result.report = build_monitor_report(result.history, out / "report",
                                             threshold=drift_threshold)
    summary = atomic_write(out / "summary.md", result.summary_markdown())
    metrics: dict[str, float] = {"windows": float(len(result.windows)),
                                 "alarms": float(sum(w.alarm for w in result.windows))}
    if result.windows:
        newest = result.windows[-1]
        metrics.update({f"skill_lead_{lead:g}h": v for lead, v in newest.skill.items()})
        metrics["max_drift_sd"] = newest.max_drift[0]
    return {"alarm": result.alarm, "windows": len(result.windows), "summary": str(summary),
            "report": None if result.report is None else str(result.report),
            "history": str(result.history), "metrics": metrics}


def submit_retraining(*, variant: str, dataset_uri: str, params: str) -> str:
    """Start ``aurora-tune-and-publish`` for ``variant`` on the settings' KFP host.

    The pipeline is compiled here (the image carries the package, not the compiled YAML), so
    the retraining runs the code of this very image.

    Args:
        variant: The variant to retrain.
        dataset_uri: Its dataset (the newest data, drift included).
        params: More ``key=value`` pipeline arguments, space-separated.

    Returns:
        The run's URL.

    Raises:
        ConfigError: No KFP host or credential is configured.
    """
    from aurora_mlops.kfp._yaml import compiled_text
    from aurora_mlops.kfp.tune_and_publish import NAME, tune_and_publish
    from aurora_mlops.submit import SubmitRequest, submit_pipeline

    with tempfile.TemporaryDirectory(prefix="aurora-retrain-") as tmp:
        path = atomic_write(Path(tmp) / f"{NAME}.yaml", compiled_text(tune_and_publish))
        request = SubmitRequest(pipeline=str(path), experiment="aurora-retrain",
                                params=[f"variant={variant}", f"dataset_uri={dataset_uri}",
                                        *params.split()])
        return submit_pipeline(request).url
