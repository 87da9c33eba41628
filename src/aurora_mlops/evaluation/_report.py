"""Plots (matplotlib, Agg), a scorecard, and self-contained HTML and Markdown reports.

Every PNG is also embedded into ``report.html`` and ``report.md`` as a base64 ``data:`` URI, so
each report is one file that Kubeflow Pipelines can render as an HTML or Markdown artifact.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from aurora_mlops.evaluation._evaluate import EvaluationResult

__all__ = ["write_report"]

logger = logging.getLogger(__name__)

_CURVE_METRICS = ("rmse", "acc", "crps")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _lead_curves(table: pd.DataFrame) -> dict[str, bytes]:
    """One PNG per variable: rows = levels, columns = RMSE/ACC/CRPS, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, bytes] = {}
    for var in sorted(table["variable"].unique()):
        sub = table[(table["variable"] == var) & table["metric"].isin(_CURVE_METRICS)]
        if sub.empty:
            continue
        metrics = [m for m in _CURVE_METRICS if m in set(sub["metric"])]
        levels = sorted(sub["level"].dropna().unique().tolist()) or [None]
        fig, axes = plt.subplots(
            len(levels), len(metrics), figsize=(4.2 * len(metrics), 2.8 * len(levels)),
            squeeze=False,
        )
        for i, lev in enumerate(levels):
            at = sub[sub["level"].isna()] if lev is None else sub[sub["level"] == lev]
            for j, metric in enumerate(metrics):
                ax = axes[i][j]
                for model, g in at[at["metric"] == metric].groupby("model", sort=False):
                    g = g.sort_values("lead_hours")
                    ax.plot(g["lead_hours"], g["value"], marker="o", ms=3, label=str(model))
                title = f"{var}" + (f" {int(lev)} hPa" if lev is not None else "")
                ax.set_title(f"{title}: {metric.upper()}", fontsize=9)
                ax.set_xlabel("lead (h)", fontsize=8)
                ax.tick_params(labelsize=7)
                ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        out[f"lead_{_safe(var)}.png"] = _png(fig)
    return out


def _confusion(result: EvaluationResult) -> dict[str, bytes]:
    """One PNG per event quantity: a 2x2 confusion matrix per model (all leads summed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, bytes] = {}
    quantities = sorted({e["quantity"] for e in result.events})
    for q in quantities:
        rows = [e for e in result.events if e["quantity"] == q]
        fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.0), squeeze=False)
        for ax, e in zip(axes[0], rows, strict=True):
            # Rows: observed yes/no; columns: forecast yes/no.
            mat = np.array([[e["hits"], e["misses"]], [e["false_alarms"], e["correct_negatives"]]])
            ax.imshow(np.log1p(mat), cmap="Blues")
            for (r, c), v in np.ndenumerate(mat):
                ax.text(c, r, str(v), ha="center", va="center", fontsize=9)
            ax.set_xticks([0, 1], ["fc yes", "fc no"], fontsize=8)
            ax.set_yticks([0, 1], ["obs yes", "obs no"], fontsize=8)
            ax.set_title(f"{e['model']}: {q}", fontsize=9)
        out[f"confusion_{_safe(q)}.png"] = _png(fig)
    return out


def _scorecard_png(result: EvaluationResult) -> dict[str, bytes]:
    """Aurora-paper style scorecard: relative RMSE difference, targets x leads, per reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = result.table
    out: dict[str, bytes] = {}
    for model, refs in result.scorecard.items():
        for ref in refs:
            a = t[(t["model"] == model) & (t["metric"] == "rmse")]
            b = t[(t["model"] == ref) & (t["metric"] == "rmse")]
            j = a.merge(b, on=["variable", "level", "lead_hours"], suffixes=("_a", "_b"))
            if j.empty:
                continue
            j["target"] = j["variable"] + j["level"].map(lambda x: "" if pd.isna(x) else f" {x}")
            j["rel"] = (j["value_a"] - j["value_b"]) / j["value_b"].where(j["value_b"] > 0)
            grid = j.pivot_table(index="target", columns="lead_hours", values="rel", sort=True)
            fig, ax = plt.subplots(figsize=(1.0 + 0.5 * grid.shape[1], 0.8 + 0.28 * grid.shape[0]))
            lim = float(np.nanmax(np.abs(grid.values))) if np.isfinite(grid.values).any() else 1.0
            im = ax.imshow(grid.values, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
            ax.set_yticks(range(grid.shape[0]), grid.index.tolist(), fontsize=7)
            ax.set_xticks(range(grid.shape[1]), [f"{h:g}" for h in grid.columns], fontsize=7)
            ax.set_xlabel("lead (h)")
            ax.set_title(f"RMSE {model} vs {ref} (blue: {model} better)", fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.05)
            out[f"scorecard_{_safe(model)}_vs_{_safe(ref)}.png"] = _png(fig)
    return out


def _b64(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _summary_rows(result: EvaluationResult) -> pd.DataFrame:
    t = result.table
    t = t[t["metric"].isin(["rmse", "acc"])]
    if t.empty:
        return t
    return t.pivot_table(
        index=["variable", "level", "lead_hours"], columns=["metric", "model"], values="value",
        dropna=False, sort=True,
    )


def write_report(result: EvaluationResult, out_dir: Path) -> list[Path]:
    """Write the PNGs, ``report.html`` and ``report.md`` into ``out_dir``.

    Returns:
        The paths written.
    """
    images = {**_scorecard_png(result), **_lead_curves(result.table), **_confusion(result)}
    written: list[Path] = []
    for name, data in images.items():
        p = out_dir / name
        p.write_bytes(data)
        written.append(p)

    card_lines = ["| model | reference | RMSE wins | ACC wins |", "|---|---|---|---|"]
    for model, refs in result.scorecard.items():
        for ref, m in refs.items():
            cells = [
                f"{m[k]['wins']}/{m[k]['targets']} ({m[k]['fraction']:.0%})" if k in m else "-"
                for k in ("rmse", "acc")
            ]
            card_lines.append(f"| {model} | {ref} | {cells[0]} | {cells[1]} |")
    pairs = ", ".join(f"{k}: {v}" for k, v in result.pairs.items())
    skipped = [
        f"{m}: {v} = {n}" for m, d in result.nan_skipped.items() for v, n in d.items() if n
    ]
    empty_pairs = [
        f"{m}: {v} at {lead}: {n}"
        for m, d in result.nan_pairs_skipped.items() for v, leads in d.items()
        for lead, n in leads.items()
    ]
    summary = _summary_rows(result)
    event_lines = ["| model | quantity | hits | misses | false alarms | correct negatives |",
                   "|---|---|---|---|---|---|"]
    for e in result.events:
        event_lines.append(
            f"| {e['model']} | {e['quantity']} | {e['hits']} | {e['misses']} | "
            f"{e['false_alarms']} | {e['correct_negatives']} |"
        )

    md = [
        f"# Evaluation: {result.variant}",
        "",
        f"Models: {', '.join(result.models)}. Pairs scored (init x lead): {pairs}.",
        f"Climatology: {result.climatology_period}.",
        "",
        "## Scorecard (fraction of variable x level x lead targets where the model is better)",
        "",
        *card_lines,
        "",
        "## Notes",
        "",
        *([f"- {n}" for n in result.notes] or ["- Everything requested was scored."]),
        "",
        "## NaN points skipped (area weights renormalised)",
        "",
        *([f"- {s}" for s in skipped] or ["- none"]),
        "",
        "## Pairs skipped: a field NaN everywhere (missing analyses; init x lead)",
        "",
        *([f"- {s}" for s in empty_pairs] or ["- none"]),
        "",
        "## Events",
        "",
        *(event_lines if result.events else ["No event could be scored."]),
        "",
        "## RMSE and ACC",
        "",
        summary.to_markdown() if _has_tabulate() and not summary.empty else
        "```\n" + summary.to_string() + "\n```",
        "",
        "## Plots",
        "",
        *[f"![{name}]({_b64(data)})\n" for name, data in images.items()],
    ]
    (out_dir / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    written.append(out_dir / "report.md")

    esc = html.escape
    body = [
        f"<h1>Evaluation: {esc(result.variant)}</h1>",
        f"<p>Models: {esc(', '.join(result.models))}. Pairs scored (init x lead): {esc(pairs)}."
        f"<br>Climatology: {esc(result.climatology_period)}.</p>",
        "<h2>Scorecard</h2><table><tr><th>model</th><th>reference</th><th>RMSE wins</th>"
        "<th>ACC wins</th></tr>",
    ]
    for line in card_lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        body.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    body.append("</table><h2>Notes</h2><ul>")
    body += [f"<li>{esc(n)}</li>" for n in result.notes] or ["<li>Everything was scored.</li>"]
    body.append("</ul><h2>NaN points skipped</h2><ul>")
    body += [f"<li>{esc(s)}</li>" for s in skipped] or ["<li>none</li>"]
    body.append("</ul><h2>Pairs skipped: a field NaN everywhere</h2><ul>")
    body += [f"<li>{esc(s)}</li>" for s in empty_pairs] or ["<li>none</li>"]
    body.append("</ul><h2>Events</h2>")
    body.append(pd.DataFrame(result.events).to_html(index=False) if result.events else
                "<p>No event could be scored.</p>")
    body.append("<h2>RMSE and ACC</h2>")
    body.append(summary.to_html(float_format=lambda x: f"{x:.4g}") if not summary.empty else "")
    body.append("<h2>Plots</h2>")
    body += [f'<figure><img alt="{esc(n)}" src="{_b64(d)}"><figcaption>{esc(n)}</figcaption>'
             "</figure>" for n, d in images.items()]
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Evaluation "
        f"{esc(result.variant)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
        "font-size:12px}img{max-width:100%}</style></head><body>"
        + "\n".join(body) + "</body></html>\n"
    )
    (out_dir / "report.html").write_text(page, encoding="utf-8")
    written.append(out_dir / "report.html")
    return written


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True
