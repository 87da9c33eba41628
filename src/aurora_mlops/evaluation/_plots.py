"""The evaluation's pictures: skill scorecards, lead-time curves and event confusion matrices.

Each function returns ``{file name: PNG bytes}``; figures go through
:mod:`aurora_mlops._figures` (matplotlib's object API, no pyplot).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aurora_mlops._figures import (
    grid_margins,
    lead_axis,
    new_figure,
    png_bytes,
    safe_name,
    skill_heatmap,
)

if TYPE_CHECKING:
    from aurora_mlops.evaluation._result import EvaluationResult

__all__ = ["confusion_plots", "lead_curves", "scorecard_plots", "target_label"]

_CURVE_METRICS = ("rmse", "acc", "crps")


def target_label(variable: str, level: Any) -> str:
    """``2t``, ``z500``, ``go3 850``: a variable and its level (hPa) as the pictures name
    them (a space where the name ends in a digit, so that ``go3 850`` is not ``go3850``)."""
    if level is None or pd.isna(level):
        return variable
    return f"{variable} {int(level)}" if variable[-1:].isdigit() else f"{variable}{int(level)}"


def scorecard_plots(result: EvaluationResult) -> dict[str, bytes]:
    """One skill heatmap per forecast and reference, from the table's ``rmse_skill_vs_*`` rows
    (variable x level down, lead time across)."""
    t = result.table
    out: dict[str, bytes] = {}
    for model, refs in result.scorecard.items():
        for ref in refs:
            rows = t[(t["model"] == model) & (t["metric"] == f"rmse_skill_vs_{ref}")]
            if rows.empty:
                continue
            rows = rows.assign(target=[target_label(v, lv) for v, lv in
                                       zip(rows["variable"], rows["level"], strict=True)])
            grid = rows.pivot_table(index="target", columns="lead_hours", values="value",
                                    sort=False, dropna=False)
            out[f"scorecard_{safe_name(model)}_vs_{safe_name(ref)}.png"] = skill_heatmap(
                grid.index.tolist(), grid.columns.tolist(),
                [[None if pd.isna(v) else float(v) for v in row] for row in grid.to_numpy()],
                title=f"{result.variant}: {model} against {ref} (blue: {model} better)",
                reference=ref,
            )
    return out


def lead_curves(table: pd.DataFrame) -> dict[str, bytes]:
    """One PNG per variable: rows = levels, columns = RMSE/ACC/CRPS, one line per model."""
    out: dict[str, bytes] = {}
    for var in sorted(table["variable"].unique()):
        sub = table[(table["variable"] == var) & table["metric"].isin(_CURVE_METRICS)]
        if sub.empty:
            continue
        metrics = [m for m in _CURVE_METRICS if m in set(sub["metric"])]
        levels = sorted(sub["level"].dropna().unique().tolist()) or [None]
        fig = new_figure(4.2 * len(metrics), 2.8 * len(levels))
        axes = fig.subplots(len(levels), len(metrics), squeeze=False)
        for i, lev in enumerate(levels):
            at = sub[sub["level"].isna()] if lev is None else sub[sub["level"] == lev]
            for j, metric in enumerate(metrics):
                ax = axes[i][j]
                for model, g in at[at["metric"] == metric].groupby("model", sort=False):
                    g = g.sort_values("lead_hours")
                    ax.plot(g["lead_hours"], g["value"], marker="o", ms=3, label=str(model))
                title = f"{var}" + (f" {int(lev)} hPa" if lev is not None else "")
                lead_axis(ax, f"{title}: {metric.upper()}")
        axes[0][0].legend(fontsize=7)
        grid_margins(fig, len(levels), len(metrics))
        out[f"lead_{safe_name(var)}.png"] = png_bytes(fig, tight=False)
    return out


def confusion_plots(result: EvaluationResult) -> dict[str, bytes]:
    """One PNG per event quantity: a 2x2 confusion matrix per model (all leads summed)."""
    out: dict[str, bytes] = {}
    for q in sorted({e["quantity"] for e in result.events}):
        rows = [e for e in result.events if e["quantity"] == q]
        fig = new_figure(3.2 * len(rows), 3.0)
        axes = fig.subplots(1, len(rows), squeeze=False)
        for ax, e in zip(axes[0], rows, strict=True):
            # Rows: observed yes/no; columns: forecast yes/no.
            mat = np.array([[e["hits"], e["misses"]], [e["false_alarms"], e["correct_negatives"]]])
            ax.imshow(np.log1p(mat), cmap="Blues")
            for (r, c), v in np.ndenumerate(mat):
                ax.text(c, r, str(v), ha="center", va="center", fontsize=9)
            ax.set_xticks([0, 1], ["fc yes", "fc no"], fontsize=8)
            ax.set_yticks([0, 1], ["obs yes", "obs no"], fontsize=8)
            ax.set_title(f"{e['model']}: {q}", fontsize=9)
        out[f"confusion_{safe_name(q)}.png"] = png_bytes(fig)
    return out
