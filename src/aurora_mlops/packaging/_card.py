"""The model card: ``MODEL_CARD.md`` and ``model_card.html`` from Jinja2 templates.

Every number on the card is read from the JSON file the card cites (the trial's ``trial.json``,
the evaluation's ``metrics.json``, the benchmark's ``benchmark.json``), formatted by
:func:`fmt`; ``tests/packaging`` parses the card and checks each number against its source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aurora_mlops._templates import render

__all__ = ["card_context", "f1", "fmt", "fmt_value", "metrics_rows", "render_card",
           "scorecard_pictures"]

#: Baselines the card compares against, in column order (those the evaluation scored).
CARD_BASELINES = ("persistence", "climatology", "untuned")
#: The evaluation's skill scorecards of the packaged model (``evaluation/_plots.py`` names them).
SCORECARD_GLOB = "scorecard_model_vs_*.png"
#: ``attrs["generator"]`` of a dataset made by ``aurora_mlops.data.synthesize``.
SYNTHETIC_MARK = "aurora_mlops.data.synthesize"


def fmt(value: Any) -> str:
    """A number as the card prints it (4 significant digits); ``-`` for a missing one."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.4g}"


def fmt_value(value: Any) -> str:
    """A parameter value as the card prints it: floats without binary noise (12 significant
    digits, then the shortest form: ``0.043750000000000004`` is ``0.04375``), lists and
    mappings element by element."""
    if isinstance(value, float):
        return repr(float(f"{value:.12g}")) if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple):
        return ", ".join(fmt_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {fmt_value(v)}" for k, v in value.items())
    return str(value)


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


def scorecard_pictures(sources: Any) -> list[Path]:
    """The evaluation's skill scorecard PNGs of the packaged model, the card's baselines first
    (none without an evaluation); the package ships them beside the card."""
    if sources.metrics_path is None:
        return []
    found = {p.name: p for p in Path(sources.metrics_path).parent.glob(SCORECARD_GLOB)}
    first = [f"scorecard_model_vs_{b}.png" for b in CARD_BASELINES]
    return [found[n] for n in first if n in found] + [
        found[n] for n in sorted(found) if n not in first]


def _origin(data: Path) -> str:
    """What the training data are: synthetic (and its seed) or real, from the dataset's own
    attributes (the synthetic generator marks what it writes)."""
    from aurora_mlops.data import open_dataset

    ds = open_dataset(data)
    try:
        attrs = dict(ds.attrs)
    finally:
        ds.close()
    if not str(attrs.get("generator", "")).startswith(SYNTHETIC_MARK):
        return "real data (not made by aurora-mlops' synthetic generator)"
    seed = f", seed {int(attrs['seed'])}" if "seed" in attrs else ""
    return f"synthetic data (aurora-mlops' generator{seed})"


def _weights(trial: dict[str, Any], spec: Any) -> str:
    """Where training began (``trial.json`` ``init``: a resumed trial keeps its first rung's)."""
    init = trial.get("init")
    if init is None:
        return ("random weights (trained from scratch, not from the published checkpoint "
                f"`{spec.checkpoint_name}`)")
    if init == "hub":
        return f"the published checkpoint `{spec.checkpoint_name}` ({spec.description.rstrip('.')})"
    return f"the checkpoint `{init}`"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _budget(trial: dict[str, Any]) -> str:
    """Optimiser steps, all rungs of a resumed chain included (``total_train_steps``)."""
    params, timings = trial.get("params", {}), trial.get("timings", {})
    total = timings.get("total_train_steps", timings.get("train_steps"))
    epochs = len(trial.get("history", []))
    batch = f"batch {params.get('batch_size')}"
    if params.get("accumulation_steps", 1) > 1:
        batch += f" x {params['accumulation_steps']} accumulated"
    per_epoch = params.get("steps_per_epoch")
    text = f"{total} optimiser steps ({_count(epochs, 'epoch')} of {per_epoch} steps, {batch})"
    if epochs < params.get("epochs", epochs):
        text += f", stopped early after {epochs} of {params['epochs']} epochs"
    if trial.get("best_epoch", -1) >= 0:
        text += f"; the packaged weights are epoch {trial['best_epoch'] + 1}'s"
    resumed = trial.get("resumed_from")
    if resumed:
        earlier = total - timings.get("train_steps", 0)
        text += (f"; resumed from `{resumed['path']}` after its "
                 f"{_count(resumed['epochs'], 'epoch')}, whose {earlier} steps are counted")
    return text


def _about(sources: Any, trial: dict[str, Any], spec: Any, info: Any) -> dict[str, Any]:
    """What the model is, what it learnt from, from which weights and with what budget."""
    config = ("a smoke-profile (CPU-sized) configuration" if info.profile == "smoke"
              else "the published configuration")
    origin, weights, budget = _origin(sources.data), _weights(trial, spec), _budget(trial)
    splits = trial.get("data", {}).get("splits", {})
    params = trial.get("params", {})
    unset = sorted(k for k, v in params.items() if v is None or v == {} or v == [])
    return {
        "summary": (f"The {spec.name} variant's Aurora `{spec.aurora_class}` in {config} on a "
                    f"{info.grid[0]} x {info.grid[1]} grid, trained on {origin} starting from "
                    f"{weights}, for {budget}."),
        # The description's subject; its resolution and data are the published checkpoint's.
        "domain": spec.description.split(" at ")[0].lower(),
        "origin": origin, "weights": weights, "budget": budget,
        "splits": ", ".join(f"{k} [{splits[k][0]}, {splits[k][1]})"
                            for k in ("train", "val", "test") if k in splits),
        "params": [(k, fmt_value(v)) for k, v in sorted(params.items()) if k not in unset],
        "unset": unset,
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
        "about": _about(sources, trial, spec, info),
        "pictures": [{"file": p.name, "against": p.stem.removeprefix("scorecard_model_vs_")}
                     for p in scorecard_pictures(sources)],
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
