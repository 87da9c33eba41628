"""Comparison reports (``aurora-mlops report``): the best trial of every variant on every test set.

An entry (:class:`ReportEntry`) names a variant, a dataset label and the output directories of
``evaluate`` (required), ``benchmark`` and ``tune`` (optional). :func:`build_report` combines
them into ``report.json``, ``report.md``, a self-contained ``report.html`` and PNGs. The pages
open with pictures (a skill scorecard and lead-time curves per entry), then the tables:
headline RMSE/ACC, a scorecard summary, events, efficiency and the sweeps' best trials.
:func:`discover_entries` finds entries in the ``ROOT/eval``, ``ROOT/bench``, ``ROOT/sweeps``
layout that ``make run`` writes.
"""

from __future__ import annotations

from aurora_mlops.comparison._build import DEFAULT_TITLE, build_report
from aurora_mlops.comparison._collect import (
    HEADLINE_VARIABLES,
    SCHEMA,
    collect_report,
    headline_targets,
)
from aurora_mlops.comparison._entries import (
    ENTRY_SYNTAX,
    ReportEntry,
    discover_entries,
    parse_entry,
)
from aurora_mlops.comparison._floors import MIN_WON, Floors, floors

__all__ = [
    "DEFAULT_TITLE",
    "ENTRY_SYNTAX",
    "HEADLINE_VARIABLES",
    "MIN_WON",
    "SCHEMA",
    "Floors",
    "ReportEntry",
    "build_report",
    "collect_report",
    "discover_entries",
    "floors",
    "headline_targets",
    "parse_entry",
]
