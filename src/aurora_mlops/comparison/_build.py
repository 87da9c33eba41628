"""``build_report``: collect, render, and let the folder appear only when every file is written."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from aurora_mlops._io import atomic_dir
from aurora_mlops.comparison._collect import collect_report
from aurora_mlops.comparison._entries import ReportEntry
from aurora_mlops.comparison._pages import render_html, render_markdown
from aurora_mlops.comparison._plots import lead_plots, scorecard_plots
from aurora_mlops.errors import ConfigError

__all__ = ["DEFAULT_TITLE", "build_report"]

logger = logging.getLogger(__name__)

DEFAULT_TITLE = "Aurora comparison report"


def build_report(
    entries: Sequence[ReportEntry],
    out_dir: str | Path,
    *,
    title: str = DEFAULT_TITLE,
    notes: Sequence[str] = (),
) -> list[Path]:
    """Combine the entries' evaluations, benchmarks and sweeps into one report in ``out_dir``.

    Writes ``report.json`` (every number shown, see :func:`collect_report`), ``report.md``,
    a self-contained ``report.html``, one ``scorecard_<variant>[_<dataset>].png`` and one
    ``lead_rmse_<variant>[_<dataset>].png`` per entry. All files are written into a temporary
    folder beside ``out_dir``, which takes ``out_dir``'s place in one step only when every one
    is complete (:func:`aurora_mlops._io.atomic_dir`); on any error nothing is left behind.
    Other files in ``out_dir`` are kept.

    Args:
        entries: One per variant and dataset.
        out_dir: Output directory (created; files of an earlier report are replaced).
        title: Title of the pages.
        notes: Extra sentences for the notes section.

    Returns:
        The paths written, ``report.json`` first.

    Raises:
        ConfigError: See :func:`collect_report`; also ``out_dir`` being a file.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory: pass a directory")
    report = collect_report(entries, title=title, notes=notes)
    with atomic_dir(out) as tmp:
        images = {**scorecard_plots(report), **lead_plots(report)}
        names = ["report.json", "report.md", "report.html", *images]
        report["files"] = names
        for name, data in images.items():
            (tmp / name).write_bytes(data)
        (tmp / "report.md").write_text(render_markdown(report, images), encoding="utf-8")
        (tmp / "report.html").write_text(render_html(report, images), encoding="utf-8")
        (tmp / "report.json").write_text(
            json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
    logger.info("wrote %d files to %s", len(names), out)
    return [out / name for name in names]
