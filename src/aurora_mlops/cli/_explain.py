"""``aurora-mlops explain``: which inputs and regions a trained model's forecast depends on.

Cheap to import: torch, aurora and Captum are imported inside the handler only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["cmd_explain", "register"]


def _tiles(text: str) -> tuple[int, int]:
    rows, _, cols = text.lower().partition("x")
    try:
        tiles = (int(rows), int(cols))
    except ValueError:
        raise argparse.ArgumentTypeError(f"tiles must look like 4x8, got {text!r}") from None
    if min(tiles) < 1:
        raise argparse.ArgumentTypeError(f"tiles must be at least 1x1, got {text!r}")
    return tiles


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``explain`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    from aurora_mlops.cli._args import add_variant, positive_int

    p: argparse.ArgumentParser = subparsers.add_parser(
        "explain",
        help="Which inputs and regions a forecast depends on (Captum occlusion and saliency).",
        description="Attribute a train-trial model's forecast of one variable (and level) at "
        "one lead to its inputs with Captum: occlusion of each input variable and level, of "
        "tiles and latitude bands, and gradient saliency, averaged over windows of the "
        "dataset's test split. Writes OUT/explanation.json, explanation.md, explanation.html "
        "and PNG maps. Needs the optional extra 'explain' (Captum).",
    )
    p.add_argument("--model", required=True, help="train-trial output directory or its model.ckpt.")
    p.add_argument("--data", required=True, help="Dataset whose test split gives the windows.")
    add_variant(p)
    p.add_argument("--out", required=True, help="Output directory.")
    p.add_argument("--target", default=None, metavar="VAR[@LEVEL]",
                   help="Forecast variable to explain, e.g. 2t or z@500 (default: the "
                   "variant's first headline variable).")
    p.add_argument("--lead", type=positive_int, default=1,
                   help="Lead in model steps (default 1).")
    p.add_argument("--method", choices=["occlusion", "saliency", "both"], default="both",
                   help="Attribution method (default both).")
    p.add_argument("--max-inits", type=positive_int, default=4,
                   help="Test windows explained, evenly spaced, averaged (default 4).")
    p.add_argument("--tiles", type=_tiles, default=(4, 8), metavar="ROWSxCOLS",
                   help="Region occlusion tiles; ROWS latitude bands too (default 4x8).")
    p.set_defaults(handler=cmd_explain)
    return p


def cmd_explain(args: argparse.Namespace) -> int:
    """Handler of ``aurora-mlops explain``; returns the exit code."""
    from aurora_mlops.cli._profile import require_model_data_profile
    from aurora_mlops.explain import explain_model

    require_model_data_profile(args.data, args.model, "explain")
    report = explain_model(
        args.model, args.data, args.variant, out_dir=Path(args.out), target=args.target,
        lead=args.lead, method=args.method, max_inits=args.max_inits, tiles=args.tiles,
    )
    t = report["target"]
    print(f"{t['label']} at +{t['lead_hours']} h, ranked by {report['ranked_by']}:")
    for row in report["inputs"][:5]:
        share = row.get(f"{report['ranked_by']}_share", 0.0)
        print(f"  {row['rank']}. {row['input']}: {share:.1%}")
    print(f"wrote explanation.json, explanation.md and explanation.html to {args.out}")
    return 0
