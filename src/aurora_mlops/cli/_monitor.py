"""``aurora-mlops monitor run`` and ``monitor report``: watch the champion on new data.

Only :mod:`argparse` is imported at registration; the handlers import the monitoring package.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aurora_mlops.cli._args import positive_int

__all__ = ["cmd_report", "cmd_run", "register"]


def register(subparsers: Any) -> None:
    """Add the ``monitor`` group (``run``, ``report``)."""
    group = subparsers.add_parser(
        "monitor", help="Score the champion on each new window of data, detect drift, alert.")
    sub = group.add_subparsers(dest="monitor_command", required=True, metavar="SUBCOMMAND")
    run = sub.add_parser(
        "run", help="Monitor every complete window not monitored yet; exit 3 on an alarm.",
        description="Load the model (models:/NAME@ALIAS from the registry, or a package folder), "
        "take each complete window of --data since the last monitored one, validate it, roll "
        "the model out, score it against persistence and climatology, check each variable's "
        "distribution against the training split of --reference (W1 distance) and the skill "
        "against persistence with a CUSUM per lead, append the window to OUT/history.parquet "
        "and to one MLflow run in --experiment (a re-run replaces a window), write "
        "OUT/summary.md and OUT/report/. An alarm exits with status 3 and POSTs a JSON alert "
        "to AURORA_MLOPS_MONITOR_WEBHOOK_URL when it is set. No new data: a message, exit 0.")
    run.add_argument("--model", required=True, help="models:/NAME@ALIAS or a package folder.")
    run.add_argument("--data", required=True, help="The dataset new data arrive in.")
    run.add_argument("--reference", default="",
                     help="The model's training dataset: its training split is the drift "
                     "reference and the climatology (default: the one its package records).")
    run.add_argument("--out", required=True, help="Monitoring folder (history, report).")
    run.add_argument("--tracking-uri", default=None,
                     help="MLflow store of the registry and the runs (default: the settings').")
    run.add_argument("--experiment", default="aurora-monitor",
                     help="MLflow experiment of the window runs (default aurora-monitor).")
    run.add_argument("--window-hours", type=positive_int, default=24,
                     help="A window's span of initialisation times (default 24).")
    run.add_argument("--lead-steps", type=positive_int, default=4,
                     help="Lead times scored (default 4).")
    run.add_argument("--since", default=None, help="First window's start when the history is "
                     "empty (ISO 8601; default: only the newest complete window).")
    run.add_argument("--window-start", default=None,
                     help="Re-run exactly the window starting here (replaces its history).")
    run.add_argument("--drift-threshold", type=float, default=None,
                     help="Input-drift alarm: W1 distance in training standard deviations "
                     "(default 0.2).")
    run.add_argument("--exit-zero", action="store_true",
                     help="Exit 0 on an alarm too (the summary still says ALARM; the alert is "
                     "still sent).")
    run.set_defaults(handler=cmd_run)
    report = sub.add_parser("report", help="Write the HTML report of a monitoring history.")
    report.add_argument("history", help="history.parquet written by `monitor run`.")
    report.add_argument("--out", required=True, help="Folder for report.html and its PNGs.")
    report.set_defaults(handler=cmd_report)


def plan_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~aurora_mlops.monitoring.MonitorPlan` of ``monitor run``'s flags."""
    from aurora_mlops.config import get_settings
    from aurora_mlops.errors import ConfigError
    from aurora_mlops.monitoring import DEFAULT_DRIFT_THRESHOLD, MonitorPlan

    s = get_settings()
    uri = args.tracking_uri or s.resolved_tracking_uri()
    if not uri:
        raise ConfigError("monitor run needs an MLflow store: pass --tracking-uri or set "
                          "AURORA_MLOPS_TRACKING_URI")
    hook = s.monitor_webhook_url
    return MonitorPlan(
        dataset=args.data, reference=args.reference, model_uri=args.model, tracking_uri=uri,
        out_dir=Path(args.out), experiment=args.experiment, window_hours=args.window_hours,
        lead_steps=args.lead_steps, since=args.since, window_start=args.window_start,
        drift_threshold=args.drift_threshold or DEFAULT_DRIFT_THRESHOLD,
        webhook_url=hook.get_secret_value() if hook else None)


def cmd_run(args: argparse.Namespace) -> int:
    """Handler of ``monitor run``: the summary on stdout; 3 on an alarm."""
    from aurora_mlops._io import atomic_write
    from aurora_mlops.monitoring import build_monitor_report, monitor

    plan = plan_from_args(args)
    result = monitor(plan, echo=print)
    if result.windows:
        result.report = build_monitor_report(result.history, plan.out_dir / "report",
                                             threshold=plan.drift_threshold)
    text = result.summary_markdown()
    atomic_write(plan.out_dir / "summary.md", text)
    print(text, end="")
    return 0 if args.exit_zero else result.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    """Handler of ``monitor report``."""
    from aurora_mlops.errors import ConfigError
    from aurora_mlops.monitoring import build_monitor_report

    if not Path(args.history).is_file():
        raise ConfigError(f"{args.history}: no such history; `monitor run --out DIR` writes "
                          "DIR/history.parquet")
    print(build_monitor_report(args.history, args.out))
    return 0
