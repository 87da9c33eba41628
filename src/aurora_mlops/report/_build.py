"""``build_report``: collect, render, and move every file into place only when all are written."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from aurora_mlops.errors import ConfigError
from aurora_mlops.report._collect import collect_report
from aurora_mlops.report._entries import ReportEntry
from aurora_mlops.report._render import lead_plots, render_html, render_markdown

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
    a self-contained ``report.html`` and one ``lead_rmse_<variant>[_<dataset>].png`` per entry.
    All files are written into a temporary directory beside ``out_dir`` first and moved into
    place (one rename each) only when every one is complete; on any error nothing is left
    behind. Other files in ``out_dir`` are left alone.

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
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        images = lead_plots(report)
        names = ["report.json", "report.md", "report.html", *images]
        report["files"] = names
        for name, data in images.items():
            (tmp / name).write_bytes(data)
        (tmp / "report.md").write_text(render_markdown(report, images), encoding="utf-8")
        (tmp / "report.html").write_text(render_html(report, images), encoding="utf-8")
        (tmp / "report.json").write_text(
            json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("wrote %d files to %s", len(names), out)
    return [out / name for name in names]
