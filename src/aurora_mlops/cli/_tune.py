"""``aurora-mlops tune SPEC --backend local|katib``: run a Katib Experiment here or on a cluster.

Cheap to import: optuna, yaml, mlflow and kubernetes are imported by the handler only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["cmd_tune", "register"]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``tune`` subcommand to the CLI's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "tune",
        help="Run a Katib Experiment: locally on Optuna, or on a cluster through Katib.",
        description="Run a Katib Experiment YAML (katib/<spec>.yaml). --backend local runs it "
        "on this machine with a Katib-compatible Optuna runner (re-run the same command to "
        "resume); --backend katib creates it on the cluster and waits for the best trial.",
    )
    p.add_argument("spec", help="Katib Experiment YAML (kubeflow.org/v1beta1).")
    p.add_argument("--backend", choices=["local", "katib"], default="local",
                   help="Where the trials run (default local).")
    p.add_argument("--work-dir", default=None,
                   help="Local: study, trials, status.json and best.json (default "
                   "<settings work dir>/tune/<experiment name>).")
    p.add_argument("--data-dir", default=None,
                   help="Local: linked as WORKDIR/data, where the trial command's data/... "
                   "paths point.")
    p.add_argument("--timeout", type=_seconds, default=None,
                   help="Seconds for the whole sweep (katib: to wait; default 24 h).")
    p.add_argument("--trial-timeout", type=_seconds, default=None,
                   help="Local: seconds per trial before it is killed and failed.")
    p.add_argument("--namespace", default=None,
                   help="Katib: namespace (default: the spec's, else the settings').")
    p.set_defaults(handler=cmd_tune)
    return p


def cmd_tune(args: argparse.Namespace) -> int:
    from aurora_mlops.config import get_settings
    from aurora_mlops.tuning._experiment import load_experiment

    exp = load_experiment(args.spec)
    settings = get_settings()
    if args.backend == "katib":
        from aurora_mlops.tuning._katib_client import run_katib

        k = run_katib(exp, namespace=args.namespace or exp.namespace or settings.namespace,
                      timeout=args.timeout or 24 * 3600.0)
        payload: dict[str, Any] = {
            "experiment": k.experiment, "namespace": k.namespace, "condition": k.condition,
            "bestTrialName": k.best_trial, "parameters": k.parameters, "metrics": k.metrics,
            "checkpoint": k.checkpoint,
        }
    else:
        from aurora_mlops.tuning._local import run_local

        work = Path(args.work_dir) if args.work_dir else settings.work_dir / "tune" / exp.name
        r = run_local(exp, work_dir=work, data_dir=args.data_dir, timeout=args.timeout,
                      trial_timeout=args.trial_timeout)
        payload = {
            "experiment": r.experiment, "workDir": str(r.work_dir), "reason": r.reason,
            "bestTrialName": r.best_trial, "parameters": r.parameters, "metrics": r.metrics,
            "checkpoint": str(r.checkpoint) if r.checkpoint else None,
            "trialsSucceeded": r.status.get("trialsSucceeded"),
            "trialsFailed": r.status.get("trialsFailed"),
            "trialsEarlyStopped": r.status.get("trialsEarlyStopped"),
            "dashboard": f"optuna-dashboard sqlite:///{r.work_dir / 'study.db'}",
        }
    print(json.dumps(payload, indent=2))
    if payload["bestTrialName"] is None:
        import sys

        where = ("the Experiment's status" if args.backend == "katib"
                 else Path(payload["workDir"]) / "status.json")
        print(f"aurora-mlops: error: no trial of {exp.name} succeeded; see the failures in "
              f"{where}", file=sys.stderr)
        return 1
    return 0
