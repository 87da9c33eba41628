"""Handler of ``aurora-mlops train-trial``."""

from __future__ import annotations

import argparse
import logging
from typing import Any, get_args

from aurora_mlops.config import TrackerName, get_settings
from aurora_mlops.errors import ConfigError
from aurora_mlops.variants import get_variant


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``train-trial`` to ``subparsers`` (from ``add_subparsers``)."""
    from aurora_mlops.variants import VARIANTS

    trial: argparse.ArgumentParser = subparsers.add_parser(
        "train-trial",
        help="Fine-tune one variant with one set of hyperparameters (one Katib trial).",
        description="Fine-tune one variant with one set of hyperparameters (one Katib trial). "
        "Any further --NAME=VALUE is a trial parameter (e.g. --learning_rate=3e-4 "
        "--encoder_depths=6,10,8); `aurora-mlops train-trial --list-params` lists them.",
    )
    trial.add_argument("--variant", choices=list(VARIANTS), help="Aurora variant (required).")
    trial.add_argument("--data", help="Dataset (canonical, CDS, WB2 or GRIB) (required).")
    trial.add_argument("--output", help="The trial's own output directory (required).")
    trial.add_argument(
        "--list-params", action="store_true",
        help="List the trial parameters with their defaults and bounds, then exit.",
    )
    trial.add_argument(
        "--profile", choices=["smoke", "production"], default=None,
        help="smoke: CPU-sized model and budget; production: the published configuration "
        "(default: production, or the profile of the trial that --resume-from names).",
    )
    trial.add_argument("--init", default=None, help="Checkpoint to start from (path or `hub`).")
    trial.add_argument(
        "--from-sweep", default=None, metavar="WORKDIR",
        help="Start from the best parameters of a local sweep (its best.json); --NAME=VALUE "
        "given here override them. The final fit after a short-budget sweep.",
    )
    trial.add_argument(
        "--resume-from", default=None, metavar="DIR",
        help="Continue the finished trial in DIR (its --output) to a larger --epochs, from its "
        "train_state.pt: its parameters, weights, optimiser, schedule, random state and data "
        "order, so the result equals one uninterrupted trial. Only --epochs and knobs that do "
        "not change results (--torch_threads, --num_workers, --prefetch_factor) may be given; "
        "--variant, --data and --profile default to DIR's.",
    )
    trial.add_argument(
        "--save-state", action=argparse.BooleanOptionalAction, default=None,
        help="Write train_state.pt, what --resume-from reads (about 4x the checkpoint's size; "
        "some 20 GB for the published model). Default: for smoke trials only; successive "
        "halving asks for it on the rungs whose trials may be promoted.",
    )
    trial.add_argument("--no-tracking", action="store_true",
                       help="Do not log to MLflow (nor to W&B).")
    trial.add_argument(
        "--tracker", choices=get_args(TrackerName), default=None,
        help="Log to MLflow, to Weights & Biases (the `wandb` extra; W&B's WANDB_* variables "
        "apply, WANDB_MODE=offline keeps the run local) or to both (default: "
        "AURORA_MLOPS_TRACKER, else mlflow).",
    )
    trial.add_argument("--tracking-uri", default=None, help="MLflow tracking URI.")
    trial.set_defaults(handler=cmd_train_trial, accepts_params=True, subparser=trial)
    return trial


def sweep_params(work_dir: str) -> dict[str, Any]:
    """The best trial's parameter assignments of a local sweep, parsed like --NAME=VALUE."""
    from aurora_mlops.training import parse_param_args
    from aurora_mlops.tuning import read_best

    try:
        best = read_best(work_dir)
    except ConfigError as e:
        raise ConfigError(f"--from-sweep: {e}") from e
    if not best.parameters:
        raise ConfigError(f"{best.path}: the sweep has no best trial yet")
    return parse_param_args([f"--{name}={value}" for name, value in best.parameters.items()])


def report_device(profile: str) -> str:
    """Say where training runs: the one image serves GPU node pools and CPU-only nodes alike.

    Without a CUDA device a production trial stops in ``train_trial`` (which says what to
    check); smoke trials are meant for the CPU and only log it. Returns ``"cuda"`` or ``"cpu"``.
    """
    import torch

    if torch.cuda.is_available():
        logging.getLogger(__name__).info("training on %d CUDA device(s): %s",
                                         torch.cuda.device_count(), torch.cuda.get_device_name())
        return "cuda"
    if profile != "production":
        logging.getLogger(__name__).info("no CUDA device visible to torch: training on the CPU")
    return "cpu"


def _resumed(args: argparse.Namespace, given: dict[str, Any]) -> Any:
    """The parameters of a trial that continues ``--resume-from``: the earlier trial's, then
    only the flags given here (no profile defaults: the Katib rung command gives just
    ``--epochs``); ``--variant``, ``--data`` and ``--profile`` left out are the earlier trial's."""
    from aurora_mlops.training import resume_point

    if args.from_sweep is not None:
        raise ConfigError("--from-sweep and --resume-from cannot be combined: a resumed trial "
                          "keeps the parameters of the trial it continues")
    point = resume_point(args.resume_from)
    args.variant = args.variant or point.trial["variant"]
    args.data = args.data or point.trial["data"]["path"]
    args.profile = args.profile or point.trial["profile"]
    params = point.params_with(given)
    point.check(variant=args.variant, profile=args.profile, data=args.data, params=params,
                init=args.init)
    return params


def cmd_train_trial(args: argparse.Namespace) -> int:
    # Parameters are checked before torch and aurora are imported: a typo fails in a second.
    from aurora_mlops.training import describe_params, parse_param_args, resolve_params

    if args.list_params:
        print(describe_params(args.profile or "production"))
        return 0
    required = ("output",) if args.resume_from is not None else ("variant", "data", "output")
    missing = [f"--{n}" for n in required if getattr(args, n) is None]
    if missing:
        args.subparser.error(f"the following arguments are required: {', '.join(missing)}")
    given = parse_param_args(args.params)
    # A bad AURORA_MLOPS_TRACKER (or any setting) fails here, before the data are read.
    tracking = False if args.no_tracking else args.tracker or get_settings().tracker
    if args.resume_from is not None:
        params = _resumed(args, given)
    else:
        if args.from_sweep is not None:
            given = {**sweep_params(args.from_sweep), **given}
        args.profile = args.profile or "production"
        params = resolve_params(args.profile, given)
    from aurora_mlops.cli._profile import require_train_data_profile

    require_train_data_profile(args.data, args.profile)
    from aurora_mlops.training import train_trial

    logging.getLogger("aurora_mlops").setLevel(logging.INFO if args.verbose else logging.WARNING)
    report_device(args.profile)
    result = train_trial(
        variant=get_variant(args.variant),
        data=args.data,
        output_dir=args.output,
        params=params,
        profile=args.profile,
        init=args.init,
        tracking=tracking,
        tracking_uri=args.tracking_uri,
        resume_from=args.resume_from,
        save_state=args.save_state,
    )
    print(f"checkpoint: {result.checkpoint}")
    print(f"trial: {result.trial_json}")
    return 0
