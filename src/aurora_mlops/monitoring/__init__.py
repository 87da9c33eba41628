"""Monitoring: score the champion on each new window of data, detect drift, keep history, alert.

- :func:`monitor` (``aurora-mlops monitor run``, the ``aurora-monitor`` pipeline): the workflow;
- :mod:`._input_drift`: each variable's distribution against the training split's (W1);
- :mod:`._cusum`: the skill chart (a clipped one-sided CUSUM per lead);
- :mod:`._history`: the Parquet history and one MLflow run per window;
- :mod:`._alerts`: the webhook;
- :func:`build_monitor_report`: the HTML page over the history.

Public names are imported lazily (pandas, xarray and mlflow load on first use).
"""

from __future__ import annotations

from aurora_mlops._lazy import lazy_exports

__all__ = [
    "ALARM_EXIT",
    "DEFAULT_DRIFT_THRESHOLD",
    "HISTORY_COLUMNS",
    "AlertFailed",
    "Champion",
    "History",
    "MonitorPlan",
    "MonitorResult",
    "ReferenceProfile",
    "SkillCusum",
    "WindowOutcome",
    "build_monitor_report",
    "input_drift",
    "load_champion",
    "monitor",
    "pending_windows",
    "post_alert",
]

_LAZY = {
    "ALARM_EXIT": "_outcome",
    "MonitorResult": "_outcome",
    "WindowOutcome": "_outcome",
    "DEFAULT_DRIFT_THRESHOLD": "_input_drift",
    "ReferenceProfile": "_input_drift",
    "input_drift": "_input_drift",
    "HISTORY_COLUMNS": "_history",
    "History": "_history",
    "AlertFailed": "_alerts",
    "post_alert": "_alerts",
    "Champion": "_champion",
    "load_champion": "_champion",
    "MonitorPlan": "_monitor",
    "monitor": "_monitor",
    "SkillCusum": "_cusum",
    "pending_windows": "_window",
    "build_monitor_report": "_page",
}

__getattr__ = lazy_exports(__name__, _LAZY)
