"""The evaluation's pages: ``report.html`` and ``report.md``, pictures first, tables below.

Both pages come from Jinja2 templates (``evaluation.html.j2``, ``evaluation.md.j2``) with the
shared stylesheet (see :mod:`aurora_mlops._templates`). Every PNG is written beside the pages
and also embedded as a ``data:`` URI, so each page is one file that Kubeflow Pipelines can
render as an HTML or Markdown artifact and that still works when its folder is moved.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from aurora_mlops._templates import Picture, Table, render, tidy_markdown
from aurora_mlops.evaluation._plots import confusion_plots, lead_curves, scorecard_plots

if TYPE_CHECKING:
    from aurora_mlops.evaluation._result import EvaluationResult

__all__ = ["write_page"]

logger = logging.getLogger(__name__)

_EVENT_KEYS = ("hits", "misses", "false_alarms", "correct_negatives")


def _wins(card: dict[str, Any], metric: str) -> str:
    m = card.get(metric)
    return "-" if m is None else f"{m['wins']}/{m['targets']} ({m['fraction']:.0%})"


def _num(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.4g}"


def _tables(result: EvaluationResult) -> list[Table]:
    """The scorecard wins, the events and the RMSE/ACC table, in page order."""
    card = Table(
        title="Scorecard",
        intro="Fraction of variable x level x lead targets where the model is better (lower "
        "RMSE, higher ACC).",
        header=["model", "reference", "RMSE wins", "ACC wins"],
        rows=[[model, ref, _wins(m, "rmse"), _wins(m, "acc")]
              for model, refs in result.scorecard.items() for ref, m in refs.items()],
    )
    events = Table(
        title="Events",
        intro="Confusion counts summed over all leads.",
        header=["model", "quantity", "hits", "misses", "false alarms", "correct negatives"],
        rows=[[str(e["model"]), str(e["quantity"]), *[str(e[k]) for k in _EVENT_KEYS]]
              for e in result.events],
        empty="No event could be scored.",
    )
    t = result.table[result.table["metric"].isin(["rmse", "acc"])]
    header, rows = ["variable", "level", "lead (h)"], []
    if not t.empty:
        grid = t.pivot_table(index=["variable", "level", "lead_hours"],
                             columns=["metric", "model"], values="value", dropna=False,
                             sort=True)
        header += [f"{metric.upper()} {model}" for metric, model in grid.columns]
        for (var, level, lead), values in grid.iterrows():
            rows.append([str(var), "-" if pd.isna(level) else str(int(level)), f"{lead:g}",
                         *[_num(v) for v in values]])
    summary = Table(title="RMSE and ACC", intro="Per variable, level (hPa) and lead time.",
                    header=header, rows=rows)
    return [card, events, summary]


def _context(result: EvaluationResult, images: dict[str, bytes]) -> dict[str, Any]:
    """What both templates show."""
    scorecards = [Picture(name=n, caption=n, png=d) for n, d in images.items()
                  if n.startswith("scorecard_")]
    curves = [Picture(name=n, caption=n, png=d) for n, d in images.items()
              if n.startswith("lead_")]
    confusion = [Picture(name=n, caption=n, png=d) for n, d in images.items()
                 if n.startswith("confusion_")]
    return {
        "result": result,
        "pairs": ", ".join(f"{k}: {v}" for k, v in result.pairs.items()),
        "scorecards": scorecards,
        "curves": curves,
        "confusion": confusion,
        "tables": _tables(result),
        "skipped": [f"{m}: {v} = {n}" for m, d in result.nan_skipped.items()
                    for v, n in d.items() if n],
        "empty_pairs": [f"{m}: {v} at {lead}: {n}"
                        for m, d in result.nan_pairs_skipped.items() for v, leads in d.items()
                        for lead, n in leads.items()],
    }


def write_page(result: EvaluationResult, out_dir: Path, *,
               explanation: str | None = None) -> list[Path]:
    """Write the PNGs, ``report.html`` and ``report.md`` into ``out_dir``.

    ``out_dir`` is the folder being filled (the caller makes it appear whole, see
    :func:`aurora_mlops._io.atomic_dir`); ``explanation`` is the relative path of an
    ``explain`` page beside the report, which the report then links.

    Returns:
        The paths written.
    """
    images = {**scorecard_plots(result), **lead_curves(result.table), **confusion_plots(result)}
    written: list[Path] = []
    for name, data in images.items():
        (out_dir / name).write_bytes(data)
        written.append(out_dir / name)
    context = {**_context(result, images), "explanation": explanation}
    pages = {"report.md": tidy_markdown(render("evaluation.md.j2", context)),
             "report.html": render("evaluation.html.j2", context)}
    for name, text in pages.items():
        (out_dir / name).write_text(text, encoding="utf-8")
        written.append(out_dir / name)
    return written
