"""``aurora-mlops katib render`` and ``aurora-mlops katib check``.

Only :mod:`argparse` is imported here: :func:`register` runs on every CLI start, the handlers
import :mod:`aurora_mlops.tuning` (pydantic, yaml) when they run.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["cmd_check", "cmd_render", "register"]


def register(subparsers: Any) -> None:
    """Add ``katib render`` and ``katib check`` to the CLI's subparsers."""
    katib = subparsers.add_parser(
        "katib", help="Render the Katib Experiment specs and check specs before submitting."
    )
    ksub = katib.add_subparsers(dest="katib_command", required=True, metavar="SUBCOMMAND")

    render = ksub.add_parser(
        "render",
        help="Write every Experiment spec from the typed search spaces (katib/).",
        description="Write katib/<variant>/<algorithm>.yaml (production) and "
        "katib/smoke/<variant>-<algorithm>.yaml (CPU smoke sweeps) from aurora_mlops.tuning. "
        "Node pool, image registry and namespace come from AURORA_MLOPS_* settings.",
    )
    render.add_argument("--out", default="katib", help="Output directory (default katib/).")
    render.set_defaults(handler=cmd_render)

    check = ksub.add_parser(
        "check",
        help="Validate Experiment specs as Katib's admission webhook would; exit 1 if invalid.",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="Experiment YAML file(s).")
    check.add_argument("--katib-version", choices=("0.17", "0.18", "0.19"), default="0.19",
                       help="The Katib release the specs go to (default 0.19): warn where its "
                       "suggestion services sample otherwise than the spec says.")
    check.set_defaults(handler=cmd_check)


def cmd_render(args: argparse.Namespace) -> int:
    """Render every spec into ``args.out``; print how many files were written."""
    from aurora_mlops.tuning import render_all

    paths = render_all(args.out)
    print(f"rendered {len(paths)} Katib Experiment specs into {args.out}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Check each file; one line per problem on stderr, ``FILE: ok`` on stdout when valid.

    A valid spec that Katib's suggestion service samples otherwise than the embedded runner
    gets ``FILE: warning: ...`` lines on stderr; warnings alone leave the exit status 0.
    """
    from aurora_mlops.tuning import check_file, spec_warnings

    failed = False
    for name in args.files:
        problems = check_file(name)
        for problem in problems:
            print(f"{name}: {problem}", file=sys.stderr)
        if problems:
            failed = True
            continue
        for warning in spec_warnings(name, katib_version=args.katib_version):
            print(f"{name}: warning: {warning}", file=sys.stderr)
        print(f"{name}: ok")
    return 1 if failed else 0
