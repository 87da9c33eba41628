"""One look for every progress bar of long work (training, sweeps, evaluation): ``rich`` on
stderr, so that stdout keeps what programs read (Katib's metric lines, JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["progress_bar"]


def progress_bar(*, unit: str = "", fields: Sequence[str] = (), enabled: bool = True,
                 terminal_only: bool = False) -> Progress:
    """A ``rich`` progress bar: description, bar, done/total, ``unit``, each of ``fields``
    (a task field shown as it is), elapsed and remaining time.

    ``enabled=False`` or, with ``terminal_only``, a stderr that is not a terminal, gives a bar
    that draws nothing (the work's own log lines are then what a reader sees).
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    columns: list[ProgressColumn | str] = [
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
    if unit:
        columns.append(TextColumn(unit))
    columns += [TextColumn(f"{{task.fields[{name}]}}") for name in fields]
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    draw = enabled and (console.is_terminal or not terminal_only)
    return Progress(*columns, console=console, disable=not draw)
