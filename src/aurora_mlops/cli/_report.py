"""``aurora-mlops report``: combine evaluations, benchmarks and sweeps into one report.

Cheap to import: the report package (pandas, matplotlib) is imported inside the handler only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["cmd_report", "register"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="Combine evaluations, benchmarks and sweeps of every variant and dataset into one "
        "report (JSON, Markdown, HTML, PNG).",
        description="Combine the best trials of every variant across datasets into one report: "
        "headline RMSE/ACC, a scorecard summary against the baselines, events, lead-time "
        "curves side by side, an efficiency table and the sweeps' best trials. Writes "
        "OUT/report.json, OUT/report.md, a self-contained OUT/report.html, "
        "OUT/scorecard_*.png (skill against persistence) and OUT/lead_rmse_*.png.",
    )
    p.add_argument("--out", required=True, help="Output directory.")
    p.add_argument(
        "--entry", action="append", default=[], metavar="VARIANT[:DATASET]=EVAL_DIR[,...]",
        help="One variant on one dataset: VARIANT[:DATASET]=EVAL_DIR[,bench=DIR][,sweep=DIR], "
        "with the --out directories of `evaluate` and `benchmark` and the --work-dir of `tune` "
        "(repeatable; paths without commas).",
    )
    p.add_argument(
        "--from-dir", default=None, metavar="ROOT",
        help="Also take every ROOT/eval/<variant>[-<dataset>]/metrics.json, with "
        "ROOT/bench/<same or variant>/benchmark.json and ROOT/sweeps/<same or variant>/best.json.",
    )
    p.add_argument("--title", default=None, help="Title of the report.")
    p.set_defaults(handler=cmd_report)
    return p


def cmd_report(args: argparse.Namespace) -> int:
    """Handler of ``aurora-mlops report``; returns the exit code."""
    from aurora_mlops.comparison import DEFAULT_TITLE, build_report, discover_entries, parse_entry
    from aurora_mlops.errors import ConfigError

    entries = [parse_entry(text) for text in args.entry]
    notes: list[str] = []
    if args.from_dir is not None:
        found, notes = discover_entries(args.from_dir)
        entries += found
    if not entries:
        raise ConfigError("report needs at least one --entry or --from-dir ROOT")
    for path in build_report(entries, Path(args.out), title=args.title or DEFAULT_TITLE,
                             notes=notes):
        print(path)
    return 0
