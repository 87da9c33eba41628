"""``aurora-mlops package``: a tuned trial as an MLflow pyfunc model with its model card.

Cheap to import: mlflow, torch and aurora are imported inside the handler only.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["cmd_package", "register"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``package`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    from aurora_mlops.variants import VARIANTS

    p: argparse.ArgumentParser = subparsers.add_parser(
        "package",
        help="Package a trial (or a sweep's best trial) as an MLflow pyfunc model.",
        description="Write an MLflow model directory (OUT/MLmodel) from a train-trial output "
        "or a local sweep's work folder: the checkpoint, configs, normalisation statistics, "
        "the evaluation and benchmark of the same checkpoint, a signature with a `steps` "
        "inference parameter, an input example, pinned requirements and the model card "
        "(MODEL_CARD.md and model_card.html).",
    )
    p.add_argument("--model", required=True, help="train-trial output folder or sweep work dir.")
    p.add_argument("--variant", required=True, choices=list(VARIANTS), help="Aurora variant.")
    p.add_argument("--out", required=True, help="Model directory to write (replaced if present).")
    p.add_argument("--eval", default=None, help="`evaluate --model` output of the same checkpoint.")
    p.add_argument("--bench", default=None, help="`benchmark` output of the same checkpoint.")
    p.add_argument(
        "--data", default=None,
        help="Dataset for the static fields, grid and input example (default: the trial's).",
    )
    p.add_argument(
        "--log-to", default=None, metavar="TRACKING_URI",
        help="Also log the model to this MLflow tracking server and print its models:/ URI.",
    )
    p.add_argument(
        "--precision", choices=["fp32", "bf16"], default="fp32",
        help="Rollout precision when a request does not say (params.precision; bf16 autocasts).",
    )
    p.add_argument(
        "--ensemble", type=int, default=1, metavar="K",
        help="Package the sweep's K best trials with a checkpoint as one model (their mean is "
        "the forecast, params.members adds each member's); with a successive-halving work dir, "
        "the K best configurations at the furthest budget each reached. Default 1: the best "
        "trial alone. --eval and --bench must then be of the same ensemble "
        "(`evaluate --ensemble K`).",
    )
    p.set_defaults(handler=cmd_package)
    return p


def cmd_package(args: argparse.Namespace) -> int:
    """Handler of ``aurora-mlops package``; returns the exit code."""
    import os

    from aurora_mlops.packaging import package_model

    # MLflow draws a progress bar per artifact while it checks the input example: noise here.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    result = package_model(
        args.model, variant=args.variant, out=args.out, eval_dir=args.eval,
        bench_dir=args.bench, data=args.data, log_to=args.log_to, precision=args.precision,
        ensemble=args.ensemble,
    )
    info = result.info
    if info.ensemble:
        print(f"packaged {info.variant} ensemble of {len(info.ensemble)} trials ("
              + ", ".join(str(m["trial"]) for m in info.ensemble)
              + f"; ensemble sha256 {info.checkpoint_sha256[:12]}) at {result.path}")
    else:
        print(f"packaged {info.variant} trial {info.trial} (checkpoint sha256 "
              f"{info.checkpoint_sha256[:12]}) at {result.path}")
    print(f"model card: {result.path / 'artifacts' / 'MODEL_CARD.md'}")
    if result.model_uri:
        print(f"logged: {result.model_uri}")
    return 0
