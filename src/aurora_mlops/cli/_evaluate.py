"""``aurora-mlops evaluate``: score a model or a forecast file against truth.

Cheap to import: xarray, torch and matplotlib are imported inside the handler only.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

from aurora_mlops.errors import ConfigError

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

    With ``--model`` the forecasts are streamed into Zarr stores in a scratch directory next to
    ``--out`` (memory flat in the length of the test split) and removed after scoring.
    """
    if args.model is None:
        return _evaluate(args, None)
    if args.data is not None:
        from aurora_mlops.cli._profile import require_model_data_profile

        require_model_data_profile(args.data, args.model, "evaluate")
    out = Path(args.out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.forecasts-", dir=out.parent))
    try:
        return _evaluate(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _evaluate(args: argparse.Namespace, scratch: Path | None) -> int:
    import aurora_mlops.evaluation as ev

    if args.model is not None:
        assert scratch is not None
        forecasts, checkpoint, truth = _model_forecasts(args, scratch)
    else:
        forecasts, checkpoint, truth = _file_forecasts(args)
    result = ev.evaluate_forecasts(
        forecasts,
        truth,
        variant=args.variant,
        out_dir=Path(args.out),
        climatology=_climatology(args.climatology_from),
        baselines=tuple(args.baseline or ev.BASELINES),
        checkpoint=checkpoint,
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


Forecasts = tuple[dict[str, Any], "dict[str, Any] | None", Any]


def _model_forecasts(args: argparse.Namespace, scratch: Path) -> Forecasts:
    """``--model``: the trial's and the untuned model's rollouts (streamed into ``scratch``),
    the checkpoint record and the truth."""
    import aurora_mlops.evaluation as ev
    from aurora_mlops.data import open_dataset

    if args.data is None or args.forecast is not None:
        raise ConfigError("--model needs --data and excludes --forecast")
    if args.lead_steps < 1:
        raise ConfigError(f"--lead-steps must be at least 1, got {args.lead_steps}")
    if args.max_inits is not None and args.max_inits < 1:
        raise ConfigError(f"--max-inits must be at least 1, got {args.max_inits}")
    from aurora_mlops.training import checkpoint_record, load_trained

    # Load the trial and open the data once; both rollouts share them.
    data = open_dataset(args.data)
    rollout = {"lead_steps": args.lead_steps, "max_inits": args.max_inits}
    if args.ensemble != 1 or (Path(args.model) / "artifacts" / "ensemble.json").is_file():
        from aurora_mlops.packaging import ensemble_forecasts

        ens = ensemble_forecasts(args.model, args.ensemble, data, args.variant,
                                 scratch=scratch, **rollout)
        trained, forecasts, record = ens.best, dict(ens.forecasts), ens.checkpoint
    else:
        trained = load_trained(args.model, args.variant)
        forecasts = {"model": ev.forecast_from_checkpoint(
            trained, data, args.variant, store=scratch / "model.zarr", **rollout)}
        record = checkpoint_record(trained)
    untuned = ev.untuned_forecast(trained, data, args.variant, init=args.untuned,
                                  store=scratch / "untuned.zarr", **rollout)
    if untuned is not None:
        forecasts["untuned"] = untuned
    else:
        print("note: no untuned baseline: the trial trained from scratch (pass --untuned CKPT)")
    return forecasts, record, args.truth or args.data


def _file_forecasts(args: argparse.Namespace) -> Forecasts:
    """``--forecast F --truth T``: the forecast file as the model, and the truth."""
    if args.forecast is None or args.truth is None:
        raise ConfigError("evaluate needs --forecast F --truth T, or --model CKPT --data PATH")
    if args.untuned is not None:
        raise ConfigError("--untuned needs --model (score an untuned forecast file with a "
                          "second evaluate run)")
    return {"model": args.forecast}, None, args.truth


def _climatology(source: str | None) -> Any:
    """The climatology of ``source``'s training split, or ``None`` (the truth's own)."""
    if source is None:
        return None
    import aurora_mlops.evaluation as ev
    from aurora_mlops.data import open_dataset, split_times
    from aurora_mlops.variables import VARIABLES

    src = open_dataset(source)
    train = split_times(src.sizes["time"]).train
    src = src.isel(time=slice(*train))
    angles = {v.name for v in VARIABLES.values() if v.angle}
    return ev.compute_climatology(src, angles=angles)
