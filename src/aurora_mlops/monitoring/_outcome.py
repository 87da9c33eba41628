"""What a monitoring run found: per window its skill, drift and alarms; the run's summary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from aurora_mlops._io import write_json
from aurora_mlops._markdown import markdown_table
from aurora_mlops.monitoring._alerts import post_alert
from aurora_mlops.monitoring._cusum import CusumPoint, SkillCusum

__all__ = ["ALARM_EXIT", "MonitorResult", "WindowOutcome", "send_alert"]

#: Exit status of ``aurora-mlops monitor run`` (and ``pipeline run --local --pipeline
#: aurora-monitor``) when a window raised an alarm: neither success (0) nor bad input (1).
ALARM_EXIT = 3


@dataclass
class WindowOutcome:
    """One monitored window.

    Attributes:
        start, end: The window's initialisation times ``[start, end)``.
        model: ``NAME/VERSION`` scored.
        skill: ``{lead_hours: skill against persistence}`` (mean over variables and levels).
        input_alarms: One phrase per drifted variable and level, the largest drift first.
        skill_alarms: One phrase per lead whose CUSUM crossed its threshold.
        max_drift: The largest W1 distance (training standard deviations) and where.
        replaced: History rows of an earlier run of this window that were replaced.
        run_id: The window's MLflow run.
        alert: ``sent``, ``already sent`` or ``failed: ...`` (empty: no alert due).
    """

    start: pd.Timestamp
    end: pd.Timestamp
    model: str
    skill: dict[float, float]
    input_alarms: list[str]
    skill_alarms: list[str]
    max_drift: tuple[float, str]
    replaced: int = 0
    run_id: str = ""
    alert: str = ""

    @property
    def alarm(self) -> bool:
        return bool(self.input_alarms or self.skill_alarms)

    @classmethod
    def build(cls, w: Any, model: str, skills: pd.DataFrame, drift: pd.DataFrame,
              chart: dict[float, CusumPoint], *, replaced: int, cusum: SkillCusum
              ) -> WindowOutcome:
        per_lead = skills[skills["metric"] == "skill"]
        where = drift.apply(lambda r: r.variable if pd.isna(r.level)
                            else f"{r.variable}@{int(r.level)}", axis=1)
        top = int(drift["wasserstein_sd"].to_numpy().argmax())
        return cls(
            start=w.start, end=w.end, model=model,
            skill={float(k): float(v) for k, v in zip(per_lead["lead_hours"], per_lead["value"],
                                                      strict=True)},
            input_alarms=[f"{n} {d:.2f} sd (mean {m:+.2f})"
                          for n, d, m, a in sorted(zip(where, drift["wasserstein_sd"],
                                                       drift["mean_shift_sd"], drift["alarm"],
                                                       strict=True), key=lambda r: -r[1]) if a],
            skill_alarms=[f"lead {lead:g} h: skill {p.skill:.3f}, CUSUM {p.statistic:.1f} > "
                          f"{cusum.h:g}" for lead, p in chart.items() if p.alarm],
            max_drift=(float(drift["wasserstein_sd"].iloc[top]), str(where.iloc[top])),
            replaced=replaced)

    def alert_body(self) -> dict[str, Any]:
        """The JSON the webhook receives."""
        key = f"{self.model}|{self.start.isoformat()}|{self.end.isoformat()}"
        return {"source": "aurora-mlops monitor", "model": self.model,
                "window_start": self.start.isoformat(), "window_end": self.end.isoformat(),
                "input_drift": self.input_alarms, "skill_drift": self.skill_alarms,
                "skill_by_lead_hours": {f"{k:g}": v for k, v in self.skill.items()},
                "mlflow_run_id": self.run_id, "idempotency_key": key}


def send_alert(url: str, outcome: WindowOutcome, ledger: Path) -> str:
    """POST the window's alert unless the ledger says it was sent; record it once sent.

    A re-run of an alarmed window therefore does not alert twice.
    """
    from aurora_mlops.monitoring._alerts import AlertFailed

    body = outcome.alert_body()
    sent = json.loads(ledger.read_text()) if ledger.is_file() else []
    if body["idempotency_key"] in sent:
        return "already sent"
    try:
        post_alert(url, body)
    except AlertFailed as e:
        return f"failed: {e}"
    write_json(ledger, [*sent, body["idempotency_key"]])
    return "sent"


@dataclass
class MonitorResult:
    """A monitoring run: the windows it scored (none: no new data) and where things are."""

    model: str
    dataset: str
    out_dir: Path
    history: Path
    last_end: pd.Timestamp | None
    windows: list[WindowOutcome] = field(default_factory=list)
    report: Path | None = None

    @property
    def alarm(self) -> bool:
        return any(w.alarm for w in self.windows)

    @property
    def exit_code(self) -> int:
        return ALARM_EXIT if self.alarm else 0

    def summary_markdown(self) -> str:
        """The run's summary: one row per window, then every alarm."""
        if not self.windows:
            since = "" if self.last_end is None else f" since {self.last_end}"
            return (f"# Monitoring {self.model}\n\nNo new complete window in {self.dataset}"
                    f"{since}: nothing to monitor.\n")
        rows = [[f"{w.start:%Y-%m-%d %H:%M}", f"{w.end:%Y-%m-%d %H:%M}", w.model,
                 " ".join(f"{v:.3f}" for v in w.skill.values()),
                 f"{w.max_drift[0]:.2f} ({w.max_drift[1]})",
                 "ALARM" if w.alarm else "quiet"] for w in self.windows]
        lines = [f"# Monitoring {self.model}", "",
                 markdown_table(["window start", "window end", "model",
                                 "skill vs persistence by lead", "max drift (sd)", "state"],
                                rows), ""]
        alarmed = [w for w in self.windows if w.alarm]
        lines.append(f"**ALARM** in {len(alarmed)} of {len(self.windows)} windows." if alarmed
                     else f"No alarm in {len(self.windows)} windows.")
        for w in alarmed:
            parts = ([f"input drift (W1 in training sd): {', '.join(w.input_alarms)}"]
                     if w.input_alarms else []) + [f"skill drift: {a}" for a in w.skill_alarms]
            lines.append(f"- {w.start:%Y-%m-%d %H:%M}: " + "; ".join(parts)
                         + (f" (alert {w.alert})" if w.alert else ""))
        lines += ["", f"History: {self.history}"]
        if self.report is not None:
            lines.append(f"Report: {self.report}")
        return "\n".join(lines) + "\n"
