"""The model card: ``MODEL_CARD.md`` and ``model_card.html`` from Jinja2 templates.

Every number on the card is read from the JSON file the card cites (the trial's ``trial.json``,
the evaluation's ``metrics.json``, the benchmark's ``benchmark.json``), formatted by
:func:`fmt`; ``tests/packaging`` parses the card and checks each number against its source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from aurora_mlops._templates import render

__all__ = ["card_context", "f1", "fmt", "metrics_rows", "render_card"]

#: Baselines the card compares against, in column order (those the evaluation scored).
CARD_BASELINES = ("persistence", "climatology", "untuned")


def fmt(value: Any) -> str:
    """A number as the card prints it (4 significant digits); ``-`` for a missing one."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.4g}"


def f1(event: dict[str, Any]) -> float | None:
    """F1 of an event's confusion counts; ``None`` when there was nothing to score."""
    denominator = 2 * event["hits"] + event["misses"] + event["false_alarms"]
    return 2 * event["hits"] / denominator if denominator else None


def _rmse_lookup(rows: Sequence[dict[str, Any]]) -> dict[tuple[Any, ...], float]:
    return {
        (r["model"], r["variable"], r["level"], float(r["lead_hours"])): float(r["value"])
        for r in rows if r["metric"] == "rmse"
    }


def metrics_rows(metrics: dict[str, Any], variant: str) -> list[dict[str, Any]]:
    """The card's metrics table: RMSE of the model and each baseline, per headline variable
    (see :data:`aurora_mlops.comparison.HEADLINE_VARIABLES`) and lead time."""
    from aurora_mlops.comparison import headline_targets

    rows = metrics.get("rows", [])
    rmse = _rmse_lookup(rows)
    baselines = [b for b in CARD_BASELINES if b in metrics.get("models", [])]
    leads = sorted({float(r["lead_hours"]) for r in rows if r["model"] == "model"})
    table = []
    for var, level in headline_targets(variant, rows, "model"):
        for lead in leads:
            model = rmse.get(("model", var, level, lead))
            if model is None:
                continue
            table.append({
                "variable": var, "level": level, "lead_hours": lead, "model": model,
                "baselines": {b: rmse.get((b, var, level, lead)) for b in baselines},
            })
    return table


def _losses(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Per baseline: targets where the model's RMSE is worse (the card says so plainly)."""
    rmse = _rmse_lookup(metrics.get("rows", []))
    out = []
    for base, scores in metrics.get("scorecard", {}).get("model", {}).items():
        card = scores.get("rmse")
        if not card:
            continue
        lost = sorted(
            (k[1], k[2], k[3], v, rmse[(base, *k[1:])])
            for k, v in rmse.items()
            if k[0] == "model" and (base, *k[1:]) in rmse and v > rmse[(base, *k[1:])]
        )
        out.append({
            "baseline": base, "lost": card["targets"] - card["wins"], "wins": card["wins"],
            "targets": card["targets"], "fraction": card["fraction"],
            "examples": [
                {"variable": v, "level": lv, "lead_hours": ld, "model": m, "baseline": b}
                for v, lv, ld, m, b in lost[:5]
            ],
        })
    return out


def _efficiency(bench: dict[str, Any] | None) -> dict[str, Any] | None:
    if bench is None:
        return None
    figures = [f for f in bench.get("figures", []) if "error" not in f]
    return {
        "device": bench.get("device", {}),
        "model": bench.get("model", {}),
        "memory": bench.get("memory", {}),
        "figures": [
            {
                "section": f["section"], "precision": f["precision"],
                "batch_size": f["batch_size"],
                "median_s": f[key]["median"], "p95_s": f[key]["p95"],
                "samples_per_s": f.get("samples_per_s"),
            }
            for f in figures
            for key in ["step_latency_s" if f["section"] == "inference" else "step_time_s"]
        ],
    }


def card_context(sources: Any, info: Any, contract: Any, request_example: str) -> dict[str, Any]:
    """Everything the templates show, read from the package's sources."""
    trial = sources.trained.trial
    spec = sources.trained.variant
    metrics = sources.metrics
    return {
        "info": info,
        "spec": spec,
        "contract": contract,
        "trial": trial,
        "params": trial.get("params", {}),
        "val_score": trial.get("metrics", {}).get("val_score"),
        "metrics": metrics,
        "metrics_table": metrics_rows(metrics, spec.name) if metrics else [],
        "baselines": [b for b in CARD_BASELINES if metrics and b in metrics.get("models", [])],
        "losses": _losses(metrics) if metrics else [],
        "events": metrics.get("events", []) if metrics else [],
        "efficiency": _efficiency(sources.benchmark),
        "request_example": request_example,
    }


def render_card(context: dict[str, Any]) -> tuple[str, str]:
    """``(markdown, html)`` of the model card (templates and stylesheet shared with every page,
    see :mod:`aurora_mlops._templates`)."""
    from markdown_it import MarkdownIt

    filters = {
        "fmt": fmt,
        "f1": f1,
        "target": lambda row: (
            row["variable"] if row["level"] is None else f"{row['variable']}{row['level']}"
        ),
    }
    markdown = render("model_card.md.j2", context, filters=filters)
    # The page is the same text rendered (escaped, raw HTML off), so both say the same.
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    html = render("model_card.html.j2", {**context, "body": body}, filters=filters)
    return markdown, html
