"""Katib metric lines: the formatter a trial prints with and the regex Katib collects with.

Katib's StdOut metrics collector scans every line of the trial's output with
:data:`KATIB_METRIC_PATTERN` (its default ``metricsFormat``). This module is the one place
that knows the format: :func:`format_metric_lines` writes what :func:`parse_metric_lines` (and
Katib) reads back, and a test proves they agree.

``val_score`` (minimised) is the objective of every sweep; see :mod:`aurora_mlops.training`
for its definition.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

__all__ = [
    "ADDITIONAL_METRICS",
    "KATIB_METRIC_PATTERN",
    "OBJECTIVE_METRIC",
    "format_metric_lines",
    "parse_metric_lines",
]

#: Katib v1beta1's default StdOut filter (``pkg/metricscollector/v1beta1/common``).
KATIB_METRIC_PATTERN = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
_REGEX = re.compile(KATIB_METRIC_PATTERN)

OBJECTIVE_METRIC = "val_score"
ADDITIONAL_METRICS: tuple[str, ...] = ("val_rmse", "val_event_f1", "train_loss", "epoch")


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"metric value {value!r} is not finite: Katib cannot parse it")
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.8g}"


def format_metric_lines(metrics: Mapping[str, float]) -> list[str]:
    """One ``name=value`` line per metric, in a form Katib's regex parses exactly.

    Raises:
        ValueError: A name has characters Katib's pattern does not accept, or a value is NaN or
            infinite (Katib would drop it silently; a trial must fail instead).
    """
    lines = []
    for name, value in metrics.items():
        if not re.fullmatch(r"[\w|-]+", name):
            raise ValueError(f"metric name {name!r} has characters Katib cannot collect")
        lines.append(f"{name}={_number(float(value))}")
    return lines


def parse_metric_lines(lines: Iterable[str]) -> list[tuple[str, float]]:
    """Every ``(name, value)`` Katib's collector would take from ``lines``, in order."""
    found: list[tuple[str, float]] = []
    for line in lines:
        for match in _REGEX.finditer(line):
            text = match.group(2)
            if text in ("", "+", "-", "."):
                continue
            try:
                found.append((match.group(1), float(text)))
            except ValueError:
                continue
    return found
