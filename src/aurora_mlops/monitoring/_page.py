"""The monitoring report: rolling skill by lead, a drift heatmap, the alarms, over the history.

Written from the Parquet history alone (``aurora-mlops monitor report``), so it can be rebuilt
anywhere the history is: ``report.html`` (one self-contained page), ``report.md`` and the two
PNGs beside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aurora_mlops._figures import new_figure, png_bytes
from aurora_mlops._io import atomic_write
from aurora_mlops._templates import Picture, Table, render, tidy_markdown
from aurora_mlops.errors import ConfigError

__all__ = ["build_monitor_report"]


def _skill_plot(h: pd.DataFrame) -> bytes:
    """Skill against persistence per lead over windows; skill alarms as red crosses, input
    alarms as shaded windows."""
    fig = new_figure(7.5, 3.2)
    ax = fig.add_subplot()
    skill = h[h["metric"] == "skill"].pivot_table(index="window_start", columns="lead_hours",
                                                   values="value")
    alarm = h[h["metric"] == "skill_alarm"].pivot_table(index="window_start",
                                                        columns="lead_hours", values="value")
    labelled = False
    for lead in skill.columns:
        ax.plot(skill.index, skill[lead], marker=".", lw=1.2, label=f"+{lead:g} h")
        hit = alarm.get(lead, pd.Series(dtype=float)).reindex(skill.index).fillna(0) > 0
        if hit.any():
            ax.scatter(skill.index[hit], skill[lead][hit], marker="x", s=60, color="red",
                       zorder=3, label=None if labelled else "skill alarm")
            labelled = True
    drift = h[(h["metric"] == "input_alarm") & (h["value"] > 0)]
    for i, (_, row) in enumerate(drift.iterrows()):
        ax.axvspan(row["window_start"], row["window_end"], color="orange", alpha=0.15, lw=0,
                   label="input-drift alarm" if i == 0 else None)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_ylabel("RMSE skill vs persistence", fontsize=8)
    ax.set_title("Rolling skill by lead (1 - RMSE / RMSE persistence, mean over variables)",
                 fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    fig.autofmt_xdate()
    return png_bytes(fig)


def _drift_plot(h: pd.DataFrame, threshold: float) -> bytes:
    """W1 distance (training standard deviations), variable x window; alarms outlined."""
    d = h[h["metric"] == "wasserstein_sd"].copy()
    d["target"] = [v if np.isnan(lv) else f"{v}@{int(lv)}" for v, lv in zip(d["variable"],
                                                                            d["level"],
                                                                            strict=True)]
    grid = d.pivot_table(index="target", columns="window_start", values="value")
    fig = new_figure(1.8 + 0.3 * grid.shape[1], 1.2 + 0.25 * grid.shape[0])
    ax = fig.add_subplot()
    im = ax.imshow(grid.to_numpy(), cmap="viridis", vmin=0.0, vmax=max(3 * threshold,
                                                                       float(np.nanmax(grid))),
                   aspect="auto")
    for (r, c), v in np.ndenumerate(grid.to_numpy()):
        if v > threshold:
            ax.add_patch(_box(c, r))
    ax.set_yticks(range(grid.shape[0]), list(grid.index), fontsize=7)
    ax.set_xticks(range(grid.shape[1]), [f"{pd.Timestamp(t):%m-%d %H}" for t in grid.columns],
                  fontsize=6, rotation=90)
    ax.set_title(f"Input drift: W1 / training sd (red boxes: above {threshold:g})", fontsize=9)
    bar = fig.colorbar(im, ax=ax, fraction=0.04)
    bar.ax.tick_params(labelsize=7)
    return png_bytes(fig)


def _box(c: int, r: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="red", lw=1.2)


def _window_table(h: pd.DataFrame) -> Table:
    """One row per window: the model, its skill by lead, the largest drift, the state."""
    rows = []
    for (start, model), g in h.groupby(["window_start", "model_version"], sort=True):
        skill = g[g["metric"] == "skill"].sort_values("lead_hours")
        drift = g[g["metric"] == "wasserstein_sd"]
        top = drift.loc[drift["value"].idxmax()] if not drift.empty else None
        alarmed = (g[g["metric"].isin(["input_alarm", "skill_alarm"])]["value"] > 0).any()
        rows.append([f"{pd.Timestamp(start):%Y-%m-%d %H:%M}", str(model),
                     " ".join(f"{v:+.3f}" for v in skill["value"]),
                     "" if top is None else f"{top['value']:.2f} ({top['variable']})",
                     "ALARM" if alarmed else "quiet"])
    leads = ", ".join(f"+{x:g} h" for x in sorted(h.loc[h["metric"] == "skill",
                                                        "lead_hours"].unique()))
    return Table(title="Windows", intro=f"Skill against persistence at {leads}; the largest "
                 "input drift (W1 in training standard deviations).",
                 header=["window", "model", "skill by lead", "largest drift", "state"],
                 rows=rows)


def _alarm_table(h: pd.DataFrame) -> Table:
    rows = []
    for (start, model), g in h.groupby(["window_start", "model_version"], sort=True):
        drifted = g[(g["metric"] == "wasserstein_sd")]
        skill = g[(g["metric"] == "skill_alarm") & (g["value"] > 0)]
        if g[g["metric"] == "input_alarm"]["value"].max() > 0 or not skill.empty:
            top = drifted.loc[drifted["value"].idxmax()]
            rows.append([f"{pd.Timestamp(start):%Y-%m-%d %H:%M}", str(model),
                         f"{top['value']:.2f} ({top['variable']})",
                         ", ".join(f"+{x:g} h" for x in skill["lead_hours"]) or "none"])
    return Table(title="Alarms", intro="Windows with an input-drift or a skill alarm: the "
                 "largest drift (W1 in training standard deviations) and the leads whose CUSUM "
                 "crossed its threshold.", header=["window", "model", "largest drift",
                                                    "skill alarm at"],
                 rows=rows, empty="No alarm in the history.")


def build_monitor_report(history: pd.DataFrame | str | Path, out_dir: str | Path, *,
                         threshold: float = 0.2) -> Path:
    """Write ``report.html``, ``report.md``, ``skill.png`` and ``drift.png`` into ``out_dir``.

    Returns:
        The HTML page's path.

    Raises:
        ConfigError: The history is empty.
    """
    h = history if isinstance(history, pd.DataFrame) else pd.read_parquet(history)
    if h.empty:
        raise ConfigError("the monitoring history is empty: run `aurora-mlops monitor run` "
                          "first")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pictures = [Picture(name="skill.png", caption="Rolling skill by lead", png=_skill_plot(h)),
                Picture(name="drift.png", caption="Input drift by variable and window",
                        png=_drift_plot(h, threshold))]
    for p in pictures:
        atomic_write(out / p.name, p.png)
    windows = h["window_start"].nunique()
    context = {"models": sorted(h["model_version"].unique()), "windows": windows,
               "first": f"{h['window_start'].min():%Y-%m-%d %H:%M}",
               "last": f"{h['window_end'].max():%Y-%m-%d %H:%M}",
               "pictures": pictures, "alarms": _alarm_table(h), "windows_table": _window_table(h)}
    atomic_write(out / "report.md", tidy_markdown(render("monitor.md.j2", context)))
    return atomic_write(out / "report.html", render("monitor.html.j2", context))
