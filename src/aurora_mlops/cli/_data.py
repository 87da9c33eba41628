"""Handlers of ``aurora-mlops data ...``: thin, they call library functions and print."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_synth(args: argparse.Namespace) -> int:
    from aurora_mlops.data import synthesize, write_dataset

    ds = synthesize(
        args.variant,
        times=args.times,
        grid=args.grid,
        seed=args.seed,
        profile=args.profile,
        start=args.start,
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

    regrid: str | float | None = args.regrid
    if regrid is not None and regrid != "auto":
        try:
            regrid = float(regrid)
        except ValueError:
            raise ConfigError(
                f"--regrid must be `auto` or degrees like 0.05, got {regrid!r}"
            ) from None
    ds = open_dataset(args.path, member=args.member, regrid=regrid)
    out = write_dataset(ds, Path(args.out))
    print(f"wrote {out} ({', '.join(sorted(str(v) for v in ds.data_vars))})")
    return 0
