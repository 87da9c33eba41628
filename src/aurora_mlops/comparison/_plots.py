"""The comparison report's pictures: a skill scorecard and lead-time curves per entry.

Each function returns ``{file name: PNG bytes}`` drawn from the collected report (numbers
copied from the evaluations), through :mod:`aurora_mlops._figures` (no pyplot).
"""

from __future__ import annotations

from typing import Any

from aurora_mlops._figures import lead_axis, new_figure, png_bytes, safe_name, skill_heatmap
from aurora_mlops.variables import VARIABLES

__all__ = ["lead_plots", "scorecard_plots"]


def _stem(entry: dict[str, Any]) -> str:
    return safe_name(entry["variant"] + ("" if entry["dataset"] is None
                                         else f"_{entry['dataset']}"))


def scorecard_plots(report: dict[str, Any]) -> dict[str, bytes]:
    """One heatmap per entry: the tuned model's RMSE skill against its reference (persistence
    when scored) per variable and level (down) and lead time (across)."""
    out: dict[str, bytes] = {}
    for e in report["entries"]:
        skill = e["evaluation"]["skill"]
        if skill is None or not skill["targets"]:
            continue
        model, ref = e["evaluation"]["model"], skill["reference"]
        out[f"scorecard_{_stem(e)}.png"] = skill_heatmap(
            skill["targets"], skill["lead_hours"], skill["skill"],
            title=f"{e['label']}: {model} against {ref} (blue: {model} better)", reference=ref,
        )
    return out


def lead_plots(report: dict[str, Any]) -> dict[str, bytes]:
    """One PNG per entry: its headline variables side by side, RMSE against lead, one line per
    model (tuned model and references)."""
    out: dict[str, bytes] = {}
    for e in report["entries"]:
        targets = e["evaluation"]["headline_targets"]
        if not targets:
            continue
        fig = new_figure(3.8 * len(targets), 2.9)
        axes = fig.subplots(1, len(targets), squeeze=False)
        for ax, target in zip(axes[0], targets, strict=True):
            units = ""
            for c in e["evaluation"]["lead_rmse"]:
                if c["target"] == target:
                    style = "-" if c["model"] in e["evaluation"]["forecasts"] else "--"
                    ax.plot(c["lead_hours"], c["rmse"], style, marker="o", ms=3, label=c["model"])
                    spec = VARIABLES.get(("surf" if c["level"] is None else "atmos", c["variable"]))
                    units = f" ({spec.units})" if spec else ""
            lead_axis(ax, f"{e['label']}: {target} RMSE{units}")
        axes[0][0].legend(fontsize=7)
        out[f"lead_rmse_{_stem(e)}.png"] = png_bytes(fig)
    return out
