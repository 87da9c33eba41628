"""The ``aurora-mlops`` command line: one entry point, one subcommand per step.

Each subcommand lives in an ``aurora_mlops.cli._<group>`` module whose ``register`` adds its
parser; handlers import heavy modules only when their subcommand runs, so
``aurora-mlops --help`` and ``aurora-mlops data validate`` never import torch, aurora or
mlflow. Errors a user can cause print one sentence on stderr and exit 1; bad usage exits 2
(argparse's convention).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from aurora_mlops._version import __version__
from aurora_mlops.errors import AuroraMLOpsError

__all__ = ["build_parser", "main"]

#: The modules whose ``register(subparsers)`` adds their subcommand, in ``--help`` order.
#: Each imports only argparse-level things at module level (handlers import the heavy ones).
SUBCOMMANDS = ("_data", "_train", "_katib", "_tune", "_evaluate", "_benchmark", "_explain",
               "_report", "_package", "_publish", "_deploy", "_monitor", "_pipeline", "_cluster")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (cheap: no heavy imports)."""
    parser = argparse.ArgumentParser(
        prog="aurora-mlops",
        description="Tune, judge and ship Microsoft's Aurora weather foundation model.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="More logging.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
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
    except KeyboardInterrupt as e:  # Ctrl-C (130), or SIGTERM turned into one (its own code)
        print(f"aurora-mlops: interrupted{f' ({e})' if str(e) else ''}", file=sys.stderr)
        return int(getattr(e, "exit_code", 130))
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
