"""The one Markdown-table writer: every report of the project renders its tables through here.

GitHub-flavoured Markdown has no escaping inside a table but ``\\|``; a cell holding a ``|`` or
a line break otherwise splits the row. :func:`markdown_table` escapes each cell, so callers
pass plain values (already formatted numbers, names, code spans) and never build rows by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

__all__ = ["Align", "markdown_cell", "markdown_table"]

Align = Literal["default", "left", "right", "center"]

_RULES: dict[str, str] = {"default": "---", "left": ":---", "right": "---:", "center": ":---:"}


def markdown_cell(value: object, *, missing: str = "-") -> str:
    """One table cell: ``str(value)`` with ``|`` escaped and line breaks made spaces.

    ``None`` becomes ``missing`` (a dash unless told otherwise).
    """
    if value is None:
        return missing
    return str(value).replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]], *,
                   align: Sequence[Align] | None = None, missing: str = "-") -> str:
    """A GitHub-flavoured Markdown table, as lines joined by ``\\n`` (no trailing newline).

    Args:
        header: the column titles (an empty string gives an empty title).
        rows: one sequence of cells per row, each as long as ``header``; a cell is any value,
            written with :func:`markdown_cell`.
        align: per column, ``"default"`` (``---``), ``"left"``, ``"right"`` or ``"center"``;
            all ``"default"`` when omitted.
        missing: what a ``None`` cell shows.

    Raises:
        ValueError: when ``align`` or a row does not have one entry per column.
    """
    width = len(header)
    rules = ["default"] * width if align is None else list(align)
    if len(rules) != width:
        raise ValueError(f"align has {len(rules)} entries for {width} columns")
    lines = [_row([markdown_cell(h, missing="") for h in header]),
             "|" + "|".join(_RULES[r] for r in rules) + "|"]
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"row {i} has {len(row)} cells for {width} columns")
        lines.append(_row([markdown_cell(c, missing=missing) for c in row]))
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    """``| a | b |``; an empty cell is one space (``| | |``), as people write it."""
    return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"
