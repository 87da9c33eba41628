"""Argument types shared by the subcommands' parsers (argparse only: cheap to import)."""

from __future__ import annotations

import argparse

from aurora_mlops.variants import VARIANTS

__all__ = ["add_variant", "grid_size", "positive_int"]


def grid_size(text: str) -> tuple[int, int]:
    """``32x64`` -> ``(32, 64)``; at least 2x2 points."""
    try:
        h, w = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"grid must look like 32x64, got {text!r}") from None
    if h < 2 or w < 2:
        raise argparse.ArgumentTypeError(f"grid needs at least 2x2 points, got {text!r}")
    return h, w


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_variant(p: argparse.ArgumentParser) -> None:
    """The required ``--variant`` (one of the registry's names)."""
    p.add_argument("--variant", required=True, choices=list(VARIANTS), help="Aurora variant.")
