"""``aurora-mlops pipeline compile`` and ``aurora-mlops pipeline run --local``.

Only :mod:`argparse` is imported here: :func:`register` runs on every CLI start, the handlers
import kfp (and through the pipeline's tasks, torch) when they run. Further subcommands
(``submit``, ``schedule``) add themselves to the ``pipeline`` group that :func:`register`
returns the subparsers of.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from aurora_mlops._redact import redact_uri
from aurora_mlops.cli._args import positive_int as _positive_int

__all__ = ["cmd_compile", "cmd_run", "register"]


def register(subparsers: Any) -> Any:
    """Add the ``pipeline`` group; returns its subparsers (for more subcommands)."""
    from aurora_mlops.variants import VARIANTS

    group = subparsers.add_parser(
        "pipeline", help="Compile the Kubeflow pipelines; run them locally through kfp.local.")
    psub = group.add_subparsers(dest="pipeline_command", required=True, metavar="SUBCOMMAND")

    comp = psub.add_parser(
        "compile", help="Write components/<step>.yaml, pipelines/<pipeline>.yaml and "
        "pipelines/dev/ (CPU-only).",
        description="Compile every component and both pipelines (aurora-tune-and-publish, "
        "aurora-all-variants) from aurora_mlops.kfp into OUT_DIR/components and "
        "OUT_DIR/pipelines, and the CPU-only build of both for the dev overlay (no GPU, small "
        "requests, smoke profile on synthetic data by default) into OUT_DIR/pipelines/dev. "
        "Image, node pool, PVCs, Secret and pull secret come from AURORA_MLOPS_* settings, and "
        "the tune step gets the ones it renders the trials with; "
        "AURORA_MLOPS_KFP_SECURITY_CONTEXT=true adds runAsNonRoot to every step (KFP 2.16+).")
    comp.add_argument("--out-dir", default=".", help="Repository root to write under (default .).")
    comp.add_argument("--parallelism", type=_positive_int, default=None,
                      help="Variants at a time in aurora-all-variants (default 4).")
    comp.set_defaults(handler=cmd_compile)

    run = psub.add_parser(
        "run", help="Run aurora-all-variants here through kfp.local (--local).",
        description="Run the real pipeline locally: kfp.local with SubprocessRunner(use_venv="
        "False), the smoke profile, synthetic data, the embedded sweep runner, and one MLflow "
        "store (WORK/mlflow.db) for sweeps, trials, packages and the registry. Ends with a "
        "summary: champion per variant, gate result, reports and model cards, and the commands "
        "that open the MLflow UI and optuna-dashboard.")
    run.add_argument("--local", action="store_true", required=True,
                     help="Run through kfp.local (the only way here; submit to a cluster with "
                     "`kfp run create`).")
    run.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                     metavar="VARIANT",
                     help=f"Variants to run (default all: {' '.join(VARIANTS)}).")
    run.add_argument("--work-dir", default=None, help="Work folder (default: the settings', work).")
    run.add_argument("--parallelism", type=_positive_int, default=1,
                     help="Variants at a time (default 1: on 2 cores each step uses them all).")
    run.add_argument("--algorithm", choices=("halving", "sobol", "random", "tpe", "grid"),
                     default=None,
                     help="The smoke sweep of each variant (katib/smoke/VARIANT-ALGORITHM.yaml; "
                     "default halving: successive halving, one Experiment per rung).")
    run.add_argument("--max-trials", type=_positive_int, default=None, help="Trials per sweep.")
    run.add_argument("--trial-args", default=None,
                     help="Budget of every sweep trial, e.g. '--epochs=2 --steps_per_epoch=6' "
                     "(it replaces make run's '--epochs=18 --steps_per_epoch=50 --patience=18'; "
                     "add --val_lead_steps=4 for a val_score that scores the four leads "
                     "evaluate reports).")
    run.add_argument("--final-fit-args", default=None,
                     help="Budget of the final fit, e.g. '--epochs=4 --steps_per_epoch=25' "
                     "('' skips the final fit: the best trial is evaluated as it is).")
    run.add_argument("--min-skill", type=float, default=None,
                     help="The quality gate before publishing: the fraction of targets on which "
                     "the model must beat persistence (default 0: always publish locally).")
    _register_monitor_run(run)
    run.set_defaults(handler=cmd_run)

    from aurora_mlops.cli._submit import register_submit  # submit, schedule (KFP REST API)

    register_submit(psub)
    return psub


def _register_monitor_run(run: Any) -> None:
    """``--pipeline aurora-monitor`` and its flags (the champion of WORK/mlflow.db)."""
    run.add_argument("--pipeline", choices=("aurora-all-variants", "aurora-monitor"),
                     default="aurora-all-variants",
                     help="Which pipeline (default aurora-all-variants; aurora-monitor scores "
                     "the registry's champion on the new windows of --data and exits 3 on an "
                     "alarm).")
    run.add_argument("--model", default="models:/aurora-medium-res@champion",
                     help="aurora-monitor: the model watched (default "
                     "models:/aurora-medium-res@champion in WORK/mlflow.db).")
    run.add_argument("--data", default=None, help="aurora-monitor: the dataset new data "
                     "arrive in (required).")
    run.add_argument("--reference", default="", help="aurora-monitor: the model's training "
                     "dataset (default: the one its package records).")
    run.add_argument("--since", default="", help="aurora-monitor: the first window's start "
                     "when nothing was monitored yet (ISO 8601).")
    run.add_argument("--window-hours", type=_positive_int, default=24,
                     help="aurora-monitor: a window's span (default 24).")
    run.add_argument("--lead-steps", type=_positive_int, default=4,
                     help="aurora-monitor: lead times scored (default 4).")


def cmd_compile(args: argparse.Namespace) -> int:
    """Handler of ``pipeline compile``: prints the files written."""
    from aurora_mlops.kfp import compile_all

    for path in compile_all(Path(args.out_dir), parallelism=args.parallelism):
        print(path)
    return 0


def _times(run: Any) -> list[str]:
    """Where the time went: the install (``make install`` records it) and each step."""
    from aurora_mlops.errors import ConfigError
    from aurora_mlops.kfp import task_timings

    lines = []
    stamp = Path(sys.prefix) / ".installed"
    recorded = stamp.read_text().strip() if stamp.is_file() else ""
    if recorded.isdigit():
        lines.append(f"install: {recorded} s (make install, recorded in {stamp})")
    per: dict[str, float] = {}
    try:
        for t in task_timings(run.log):
            per[t.task] = per.get(t.task, 0.0) + t.finished - t.queued
    except (ConfigError, OSError):
        return lines
    steps = ", ".join(f"{name} {s:.0f} s" for name, s in sorted(per.items(),
                                                                 key=lambda kv: -kv[1]))
    lines.append(f"time per step, all variants: {steps}")
    return lines


def _summary(run: Any) -> list[str]:
    lines = [f"pipeline finished in {run.wall_s:.0f} s ({run.run_dir})", *_times(run), ""]
    for variant, v in sorted(run.variants.items()):
        pub = v["publish"]
        if pub is None:
            skill = v.get("skill")
            why = ("" if skill is None else f": skill {skill:.3g} < min_skill {run.min_skill:g}, "
                   "the fraction of targets on which it beats persistence")
            lines.append(f"{variant}: not published, the quality gate held it back{why}")
        else:
            champion = pub.get("champion_version") or "none"
            gate = "passed" if pub.get("gate_passed") else "failed"
            lines.append(f"{variant}: {pub['name']} version {pub['version']} registered, gate "
                         f"{gate}, champion version {champion}")
        lines.append(f"  evaluation: {v['evaluation']}")
        lines.append(f"  model card: {v['model_card']}")
        if v.get("floors") is not None:
            lines.append(f"  floors: {v['floors'].line()}")
    lines += ["", f"combined report: {run.report}", "",
              "browse the runs, models and registry:",
              f"  {Path(sys.executable).parent / 'mlflow'} ui --backend-store-uri "
              f"{shlex.quote(redact_uri(run.tracking_uri))}",
              "browse the sweeps:"]
    for variant, v in sorted(run.variants.items()):
        if v["study"] is not None:
            lines.append(f"  {Path(sys.executable).parent / 'optuna-dashboard'} "
                         f"sqlite:///{v['study']}   # {variant}")
    lines.append(f"full log: {run.log}")
    return lines


def cmd_run(args: argparse.Namespace) -> int:
    """Handler of ``pipeline run --local``: run, then print the summary."""
    from dataclasses import replace

    from aurora_mlops.config import get_settings
    from aurora_mlops.kfp import LocalBudget, run_pipeline_locally

    budget = LocalBudget()
    if args.algorithm is not None:
        budget = replace(budget, algorithm=args.algorithm)
    if args.max_trials is not None:
        budget = replace(budget, max_trials=args.max_trials)
    if args.trial_args is not None:
        budget = replace(budget, trial_args=args.trial_args)
    if args.final_fit_args is not None:
        budget = replace(budget, final_fit_args=args.final_fit_args)
    if args.min_skill is not None:
        budget = replace(budget, min_skill=args.min_skill)
    work = Path(args.work_dir) if args.work_dir else get_settings().work_dir
    if args.pipeline == "aurora-monitor":
        return _run_monitor(args, work)
    print(f"running aurora-all-variants locally for {' '.join(args.variants)} in {work} "
          "(kfp.local; the full log goes to pipeline.log there)", flush=True)
    run = run_pipeline_locally(variants=args.variants, work_dir=work, budget=budget,
                               parallelism=args.parallelism)
    print("\n".join(_summary(run)))
    return 0


def _run_monitor(args: argparse.Namespace, work: Path) -> int:
    """``pipeline run --local --pipeline aurora-monitor``: the summary; 3 on an alarm."""
    from aurora_mlops.errors import ConfigError
    from aurora_mlops.kfp import run_monitor_locally
    from aurora_mlops.monitoring import ALARM_EXIT

    if not args.data:
        raise ConfigError("--pipeline aurora-monitor needs --data (the dataset new data arrive "
                          "in, e.g. one written by `aurora-mlops data synth --drift warming`)")
    print(f"running aurora-monitor locally on {args.model} in {work} (kfp.local; the full log "
          "goes to monitor.log there)", flush=True)
    run = run_monitor_locally(work_dir=work, model_uri=args.model, dataset_uri=args.data,
                              reference_uri=args.reference, since=args.since,
                              window_hours=args.window_hours, lead_steps=args.lead_steps)
    print(f"pipeline finished in {run.wall_s:.0f} s ({run.run_dir})\n")
    print(run.summary, end="")
    print(f"full log: {run.log}")
    return ALARM_EXIT if run.alarm else 0
