"""The comparison report's pages: ``report.md`` and ``report.html`` from Jinja2 templates
(``comparison.md.j2``, ``comparison.html.j2``; shared stylesheet, see
:mod:`aurora_mlops._templates`). Pictures come first (scorecards, lead-time curves), tables
below; PNGs are embedded as ``data:`` URIs, so each page is one file."""

from __future__ import annotations

from typing import Any

from aurora_mlops._templates import Picture, render, tidy_markdown
from aurora_mlops.comparison._tables import tables

__all__ = ["render_html", "render_markdown"]


def _all_notes(report: dict[str, Any]) -> list[str]:
    notes = list(report["notes"])
    for e in report["entries"]:
        notes += [f"{e['label']} evaluation: {n}" for n in e["evaluation"]["notes"]]
    return notes


def _context(report: dict[str, Any], images: dict[str, bytes]) -> dict[str, Any]:
    def pictures(prefix: str) -> list[Picture]:
        return [Picture(name=n, caption=n, png=d) for n, d in images.items()
                if n.startswith(prefix)]

    return {
        "report": report,
        "scorecards": pictures("scorecard_"),
        "curves": pictures("lead_rmse_"),
        "tables": tables(report),
        "notes": _all_notes(report),
    }


def render_markdown(report: dict[str, Any], images: dict[str, bytes]) -> str:
    """The Markdown page (PNGs embedded as ``data:`` URIs)."""
    return tidy_markdown(render("comparison.md.j2", _context(report, images)))


def render_html(report: dict[str, Any], images: dict[str, bytes]) -> str:
    """The self-contained HTML page (PNGs embedded; no external resource)."""
    return render("comparison.html.j2", _context(report, images))
