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

from typing import TYPE_CHECKING

from aurora_mlops._lazy import lazy_exports

if TYPE_CHECKING:
    from aurora_mlops.monitoring._alerts import AlertFailed, post_alert
    from aurora_mlops.monitoring._champion import Champion, load_champion
    from aurora_mlops.monitoring._cusum import SkillCusum
    from aurora_mlops.monitoring._history import HISTORY_COLUMNS, History
    from aurora_mlops.monitoring._input_drift import (
        DEFAULT_DRIFT_THRESHOLD,
        ReferenceProfile,
        input_drift,
    )
    from aurora_mlops.monitoring._monitor import MonitorPlan, monitor
    from aurora_mlops.monitoring._outcome import ALARM_EXIT, MonitorResult, WindowOutcome
    from aurora_mlops.monitoring._page import build_monitor_report
    from aurora_mlops.monitoring._window import pending_windows

__getattr__, __dir__, __all__ = lazy_exports(__name__)
