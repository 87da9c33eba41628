"""``aurora-mlops evaluate``: score a model or a forecast file against truth.

Cheap to import: xarray, torch and matplotlib are imported inside the handler only.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aurora_mlops.errors import ConfigError

if TYPE_CHECKING:
    from aurora_mlops.evaluation import EvaluationResult

__all__ = ["cmd_evaluate", "register"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    from aurora_mlops.variants import VARIANTS

    p: argparse.ArgumentParser = subparsers.add_parser(
        "evaluate",
        help="Score a model or a forecast file against truth, with baselines and a report.",
        description="Two forms: --forecast F --truth T (score any WeatherBench2-style forecast "
        "file) or --model CKPT --data PATH (roll the model out over the test split). Both write "
        "metrics.json, metrics.parquet, lead-time plots, a scorecard and HTML/Markdown reports.",
    )
    p.add_argument("--variant", required=True, choices=list(VARIANTS), help="Aurora variant.")
    p.add_argument("--out", required=True, help="Output directory.")
    p.add_argument("--forecast", default=None, help="Forecast file (netCDF or Zarr, WB2 layout).")
    p.add_argument("--truth", default=None, help="Truth dataset (any layout the readers accept).")
    p.add_argument("--model", default=None, help="Checkpoint to roll out (needs --data).")
    p.add_argument("--data", default=None, help="Dataset whose test split is rolled out.")
    p.add_argument(
        "--untuned", default=None,
        help="With --model: weights of the untuned variant to score as a baseline (a local "
        "checkpoint or `hub`; default: the checkpoint the trial started from, if any).",
    )
    p.add_argument(
        "--lead-steps", type=int, default=4,
        help="With --model: rollout steps (lead times) per initialisation (default 4).",
    )
    p.add_argument(
        "--max-inits", type=int, default=None,
        help="With --model: at most this many initialisations, evenly spaced over the test split.",
    )
    p.add_argument(
        "--ensemble", type=int, default=1, metavar="K",
        help="With --model SWEEP_DIR: score the sweep's top-K ensemble (the members `package "
        "--ensemble K` picks; an ensemble package as --model needs no K): CRPS, spread and "
        "spread/skill, and the best member as the reference best_member.",
    )
    p.add_argument(
        "--climatology-from", default=None,
        help="Dataset whose training split gives the climatology (default: truth before the "
        "first initialisation time).",
    )
    p.add_argument(
        "--baseline", action="append", choices=["persistence", "climatology"], default=None,
        help="Baseline to score (repeatable; default both).",
    )
    p.set_defaults(handler=cmd_evaluate)
    return p


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Handler of ``aurora-mlops evaluate``; returns the exit code.

    ``--model`` runs :func:`aurora_mlops.evaluation.evaluate_checkpoint` (the pipeline's
    evaluate step runs it too); ``--forecast`` scores the file with
    :func:`aurora_mlops.evaluation.evaluate_forecasts`.
    """
    import aurora_mlops.evaluation as ev

    baselines = tuple(args.baseline or ev.BASELINES)
    if args.model is not None:
        result = _evaluate_model(args, baselines)
        if "untuned" not in result.models:
            print("note: no untuned baseline: the trial trained from scratch (pass --untuned "
                  "CKPT)")
    else:
        _check_file_args(args)
        result = ev.evaluate_forecasts(
            {"model": args.forecast}, args.truth, variant=args.variant, out_dir=Path(args.out),
            climatology=ev.training_climatology(args.climatology_from), baselines=baselines,
        )
    card = result.scorecard.get("model", {})
    for ref, m in card.items():
        if "rmse" in m:
            r = m["rmse"]
            print(f"model beats {ref} on RMSE in {r['wins']}/{r['targets']} targets "
                  f"({r['fraction']:.0%})")
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {len(result.files)} files to {args.out}")
    return 0


def _evaluate_model(args: argparse.Namespace,
                    baselines: tuple[str, ...]) -> EvaluationResult:
    """``--model CKPT --data PATH``: the trial (or ``--ensemble K`` of a sweep, or an ensemble
    package) rolled out and scored."""
    import aurora_mlops.evaluation as ev

    if args.data is None or args.forecast is not None:
        raise ConfigError("--model needs --data and excludes --forecast")
    from aurora_mlops.cli._profile import require_model_data_profile

    require_model_data_profile(args.data, args.model, "evaluate")
    members = None
    if args.ensemble != 1 or (Path(args.model) / "artifacts" / "ensemble.json").is_file():
        from aurora_mlops.packaging import ensemble_forecasts

        members = functools.partial(ensemble_forecasts, args.model, args.ensemble)
    return ev.evaluate_checkpoint(
        args.model, args.data, variant=args.variant, out_dir=args.out,
        lead_steps=args.lead_steps, max_inits=args.max_inits, untuned=args.untuned,
        truth=args.truth, climatology_from=args.climatology_from, baselines=baselines,
        members=members,
    )


def _check_file_args(args: argparse.Namespace) -> None:
    """``--forecast F --truth T``: both given, and no flag that needs ``--model``."""
    if args.forecast is None or args.truth is None:
        raise ConfigError("evaluate needs --forecast F --truth T, or --model CKPT --data PATH")
    if args.untuned is not None:
        raise ConfigError("--untuned needs --model (score an untuned forecast file with a "
                          "second evaluate run)")
