"""Handlers of ``aurora-mlops data ...``: thin, they call library functions and print."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Literal

from aurora_mlops.cli._args import add_variant, grid_size, positive_int

__all__ = ["cmd_convert", "cmd_synth", "cmd_validate", "register"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``data`` (``synth``, ``validate``, ``convert``) to ``subparsers``."""
    data: argparse.ArgumentParser = subparsers.add_parser(
        "data", help="Synthesise, convert and validate datasets.")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    _register_synth(dsub)
    _register_validate(dsub)
    _register_convert(dsub)
    return data


def _register_synth(dsub: Any) -> None:
    synth = dsub.add_parser(
        "synth", help="Write a synthetic dataset with learnable dynamics for a variant."
    )
    add_variant(synth)
    synth.add_argument("--out", required=True, help="Output file (.nc) or Zarr store (.zarr).")
    synth.add_argument("--seed", type=int, default=0, help="Random seed (default 0).")
    synth.add_argument(
        "--times", type=positive_int, default=None,
        help="Number of time steps (default: about four weeks of the variant's timestep).",
    )
    synth.add_argument(
        "--grid", type=grid_size, default=None, help="Grid as LATxLON (default: the smoke grid)."
    )
    synth.add_argument(
        "--profile", choices=["smoke", "production"], default="smoke",
        help="Pressure levels of the smoke (3) or production (13) model (default smoke); "
        "recorded in the dataset, and train-trial, evaluate and benchmark refuse data of the "
        "other profile.",
    )
    synth.add_argument("--start", default="2024-01-01T00:00", help="First time (ISO 8601).")
    synth.add_argument(
        "--drift", choices=["warming"], default=None,
        help="Lay a drift over the fields from --drift-start on (warming: 2t and t rise by "
        "--drift-rate kelvin per day); the times before it are those without drift.",
    )
    synth.add_argument("--drift-start", default=None, help="When the drift starts (ISO 8601).")
    synth.add_argument("--drift-rate", type=float, default=1.0,
                       help="Drift per day (default 1.0 K/day).")
    synth.set_defaults(handler=cmd_synth)


def _register_validate(dsub: Any) -> None:
    validate = dsub.add_parser(
        "validate", help="Check a dataset against a variant's needs; exit 1 if invalid."
    )
    validate.add_argument("path", help="netCDF file, Zarr store or GRIB file.")
    add_variant(validate)
    validate.add_argument("--report", default=None, help="Directory for the audit report.")
    validate.add_argument(
        "--max-nan-fraction", type=float, default=0.0,
        help="Largest tolerated fraction of NaN values per variable (default 0).",
    )
    validate.set_defaults(handler=cmd_validate)


def _register_convert(dsub: Any) -> None:
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
    convert.set_defaults(handler=cmd_convert)


def cmd_synth(args: argparse.Namespace) -> int:
    from aurora_mlops.data import SynthDrift, synthesize, write_dataset
    from aurora_mlops.errors import ConfigError

    drift = None
    if args.drift is not None:
        if args.drift_start is None:
            raise ConfigError("--drift needs --drift-start (when the drift begins, ISO 8601)")
        drift = SynthDrift(kind=args.drift, start=args.drift_start, rate=args.drift_rate)
    ds = synthesize(
        args.variant,
        times=args.times,
        grid=args.grid,
        seed=args.seed,
        profile=args.profile,
        start=args.start,
        drift=drift,
    )
    out = write_dataset(ds, Path(args.out))
    sizes = dict(ds.sizes)
    print(
        f"wrote {out} ({args.variant}: {sizes.get('time')} times, {sizes.get('level', 0)} "
        f"levels, {sizes.get('lat')}x{sizes.get('lon')} grid)"
    )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from aurora_mlops.data import validate

    report = validate(
        args.path,
        args.variant,
        report_dir=args.report,
        max_nan_fraction=args.max_nan_fraction,
    )
    for problem in report.problems:
        print(problem, file=sys.stderr)
    for path in report.report_files:
        print(f"report: {path}")
    verdict = "valid" if report.ok else f"INVALID ({len(report.problems)} problem(s))"
    print(f"{args.path}: {verdict} for variant {args.variant}")
    return 0 if report.ok else 1


def cmd_convert(args: argparse.Namespace) -> int:
    from aurora_mlops.data import open_dataset, write_dataset
    from aurora_mlops.errors import ConfigError

    regrid: Literal["auto"] | float | None = None if args.regrid is None else "auto"
    if args.regrid is not None and args.regrid != "auto":
        try:
            regrid = float(args.regrid)
        except ValueError:
            raise ConfigError(
                f"--regrid must be `auto` or degrees like 0.05, got {args.regrid!r}"
            ) from None
    ds = open_dataset(args.path, member=args.member, regrid=regrid)
    out = write_dataset(ds, Path(args.out))
    print(f"wrote {out} ({', '.join(sorted(str(v) for v in ds.data_vars))})")
    return 0
