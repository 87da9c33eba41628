"""``aurora-mlops pipeline run --local --pipeline aurora-monitor``: the real pipeline through
``kfp.local`` on this machine, against the local registry ``WORK/mlflow.db``.

The history stays under ``WORK/volumes/artifacts/monitor/<model>`` (where a cluster run keeps
it on the artifacts volume), so the next night's run continues from the last window.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aurora_mlops.kfp._run_local import PipelineFailed, _run_logged, _stdout_echo

__all__ = ["MonitorRun", "run_monitor_locally"]


@dataclass(frozen=True)
class MonitorRun:
    """What a local ``aurora-monitor`` run produced.

    Attributes:
        run_dir: This run's folder under ``WORK/kfp``.
        log: KFP's full output.
        wall_s: Wall time of the pipeline.
        alarm: Whether a window raised an alarm.
        summary: The monitor step's Markdown summary.
        history: The Parquet history.
        report: The HTML report (``None`` when no window was new).
    """

    run_dir: Path
    log: Path
    wall_s: float
    alarm: bool
    summary: str
    history: Path
    report: Path | None


def run_monitor_locally(*, work_dir: str | Path, model_uri: str, dataset_uri: str,
                        reference_uri: str = "", since: str = "", window_hours: int = 24,
                        lead_steps: int = 4, echo: Callable[[str], None] | None = None
                        ) -> MonitorRun:
    """Run ``aurora-monitor`` through ``kfp.local`` (``SubprocessRunner(use_venv=False)``).

    Raises:
        PipelineFailed: The monitor step failed (the message names it and quotes its error).
    """
    from kfp import local

    from aurora_mlops.kfp.monitor import build

    work = Path(work_dir).resolve()
    root = work / "kfp"
    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    log = work / "monitor.log"
    pipeline = build(artifacts_root=str(work / "volumes" / "artifacts"))
    local.init(local.SubprocessRunner(use_venv=False), pipeline_root=str(root),
               raise_on_error=True)
    before = set(root.iterdir())
    arguments = dict(model_uri=model_uri, dataset_uri=str(dataset_uri),
                     reference_uri=str(reference_uri), tracking_uri=uri, since=since,
                     window_hours=window_hours, lead_steps=lead_steps)
    wall = _run_logged(pipeline, arguments, root=root, log=log, uri=uri,
                       echo=echo or _stdout_echo())
    new = sorted(set(root.iterdir()) - before, key=lambda p: p.stat().st_mtime)
    outputs = sorted(new[-1].glob("monitor/executor_output.json")) if new else []
    if not outputs:
        raise PipelineFailed(f"kfp.local wrote no monitor output under {root}; see {log}")
    step = outputs[0].parent
    alarm = json.loads(outputs[0].read_text())["parameterValues"]["Output"]
    ref = json.loads((step / "history" / "ref.json").read_text())
    history = Path(ref["path"])
    report = history.parent / "report" / "report.html"
    return MonitorRun(run_dir=new[-1], log=log, wall_s=wall, alarm=bool(alarm),
                      summary=(step / "summary").read_text(), history=history,
                      report=report if report.is_file() else None)
