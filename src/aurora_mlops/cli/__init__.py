"""The ``aurora-mlops`` command line: one entry point, one subcommand per step.

Handlers live in ``aurora_mlops.cli._<group>`` modules and are imported only when their
subcommand runs, so ``aurora-mlops --help`` and ``aurora-mlops data validate`` never import
torch, aurora or mlflow. Errors a user can cause print one sentence on stderr and exit 1; bad
usage exits 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from aurora_mlops._version import __version__
from aurora_mlops.errors import AuroraMLOpsError
from aurora_mlops.variants import VARIANTS

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def _lazy(module: str, func: str) -> Handler:
    """A handler that imports ``aurora_mlops.cli.<module>`` only when called."""

    def run(args: argparse.Namespace) -> int:
        handler: Handler = getattr(importlib.import_module(f"aurora_mlops.cli.{module}"), func)
        return handler(args)

    return run


def _grid(text: str) -> tuple[int, int]:
    try:
        h, w = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"grid must look like 32x64, got {text!r}") from None
    if h < 2 or w < 2:
        raise argparse.ArgumentTypeError(f"grid needs at least 2x2 points, got {text!r}")
    return h, w


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_variant(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variant", required=True, choices=list(VARIANTS), help="Aurora variant.")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (cheap: no heavy imports)."""
    parser = argparse.ArgumentParser(
        prog="aurora-mlops",
        description="Tune, judge and ship Microsoft's Aurora weather foundation model.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="More logging.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # data ----------------------------------------------------------------------------------
    data = sub.add_parser("data", help="Synthesise, convert and validate datasets.")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    synth = dsub.add_parser(
        "synth", help="Write a synthetic dataset with learnable dynamics for a variant."
    )
    _add_variant(synth)
    synth.add_argument("--out", required=True, help="Output file (.nc) or Zarr store (.zarr).")
    synth.add_argument("--seed", type=int, default=0, help="Random seed (default 0).")
    synth.add_argument(
        "--times", type=_positive_int, default=None,
        help="Number of time steps (default: about four weeks of the variant's timestep).",
    )
    synth.add_argument(
        "--grid", type=_grid, default=None, help="Grid as LATxLON (default: the smoke grid)."
    )
    synth.add_argument(
        "--profile", choices=["smoke", "production"], default="smoke",
        help="Pressure levels of the smoke (3) or production (13) model (default smoke).",
    )
    synth.add_argument("--start", default="2024-01-01T00:00", help="First time (ISO 8601).")
    synth.set_defaults(handler=_lazy("_data", "cmd_synth"))

    validate = dsub.add_parser(
        "validate", help="Check a dataset against a variant's needs; exit 1 if invalid."
    )
    validate.add_argument("path", help="netCDF file, Zarr store or GRIB file.")
    _add_variant(validate)
    validate.add_argument("--report", default=None, help="Directory for the audit report.")
    validate.add_argument(
        "--max-nan-fraction", type=float, default=0.0,
        help="Largest tolerated fraction of NaN values per variable (default 0).",
    )
    validate.set_defaults(handler=_lazy("_data", "cmd_validate"))

    convert = dsub.add_parser(
        "convert", help="Read CDS/WeatherBench2/GRIB data and write the canonical layout."
    )
    convert.add_argument("path", help="netCDF file, Zarr store or GRIB file.")
    convert.add_argument("--out", required=True, help="Output file (.nc) or Zarr store (.zarr).")
    convert.add_argument(
        "--member", type=int, default=0,
        help="Ensemble member to take when the file has several (default 0).",
    )
    convert.add_argument(
        "--regrid", default=None,
        help="For curvilinear grids (e.g. NCEP Stage IV): `auto` or a resolution in degrees; "
        "nearest-neighbour onto a regular lat/lon grid.",
    )
    convert.set_defaults(handler=_lazy("_data", "cmd_convert"))

    # train-trial ------------------------------------------------------------------------------
    trial = sub.add_parser(
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
        "--profile", choices=["smoke", "production"], default="production",
        help="smoke: CPU-sized model and budget; production: the published configuration.",
    )
    trial.add_argument("--init", default=None, help="Checkpoint to start from (path or `hub`).")
    trial.add_argument(
        "--from-sweep", default=None, metavar="WORKDIR",
        help="Start from the best parameters of a local sweep (its best.json); --NAME=VALUE "
        "given here override them. The final fit after a short-budget sweep.",
    )
    trial.add_argument("--no-tracking", action="store_true", help="Do not log to MLflow.")
    trial.add_argument("--tracking-uri", default=None, help="MLflow tracking URI.")
    trial.set_defaults(
        handler=_lazy("_train", "cmd_train_trial"), accepts_params=True, subparser=trial
    )

    # katib, tune, evaluate: each module's register() imports only argparse-level things ----
    for module in ("_katib", "_tune", "_evaluate", "_benchmark", "_report", "_package", "_publish",
                   "_pipeline"):
        importlib.import_module(f"aurora_mlops.cli.{module}").register(sub)

    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 bad input or failed check, 2 bad usage)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_params", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.params = extra
    _configure_logging(args.verbose)
    try:
        code: int = args.handler(args)
    except AuroraMLOpsError as e:
        print(f"aurora-mlops: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("aurora-mlops: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
