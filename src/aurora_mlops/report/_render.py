"""Render a collected report: lead-time PNGs, Markdown and self-contained HTML.

Every table is built once as header + rows of strings (:func:`tables`) and then written both as
Markdown and as HTML, so the two pages cannot disagree. PNGs are embedded as base64 ``data:``
URIs with the evaluation report's helpers, so ``report.html`` and ``report.md`` are each one
file that Kubeflow Pipelines can render as an artifact.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from aurora_mlops.evaluation._report import _b64, _png, _safe

__all__ = ["Table", "lead_plots", "render_html", "render_markdown", "tables"]


@dataclass(frozen=True, kw_only=True)
class Table:
    """One report section: a heading, a sentence on what it shows, and its cells."""

    title: str
    intro: str
    header: list[str]
    rows: list[list[str]]


def _num(x: float | None, fmt: str = ".4g") -> str:
    return "-" if x is None else format(x, fmt)


def _mib(x: int | None) -> str:
    return "n/a" if x is None else f"{x / 2**20:,.1f}"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:,.2f}"


def _lead(h: float) -> str:
    return f"{h:g}"


def _wins(card: dict[str, Any], metric: str) -> str:
    m = card.get(metric)
    return "-" if m is None else f"{m['wins']}/{m['targets']} ({m['fraction']:.0%})"


def tables(report: dict[str, Any]) -> list[Table]:
    """The report's tables, in page order (entries, scorecard, headline, events, efficiency,
    sweeps)."""
    entries = report["entries"]
    out = [Table(
        title="Entries",
        intro="Each entry is one variant on one test set; the tuned model is the first "
        "forecast of its evaluation.",
        header=["entry", "tuned model", "models scored", "evaluation", "benchmark", "sweep"],
        rows=[[
            e["label"], e["evaluation"]["model"], ", ".join(e["evaluation"]["models"]),
            e["evaluation"]["source"],
            e["efficiency"]["source"] if e["efficiency"] else "not given",
            e["sweep"]["source"] if e["sweep"] else "not given",
        ] for e in entries],
    )]

    refs = report["references"]
    out.append(Table(
        title="Scorecard summary",
        intro="Targets (variable x level x lead) where the tuned model beats each reference: "
        "lower RMSE, higher ACC.",
        header=["entry", *[f"vs {r} ({m})" for r in refs for m in ("RMSE", "ACC")]],
        rows=[[
            e["label"],
            *[_wins(e["evaluation"]["scorecard"].get(r, {}), m) for r in refs
              for m in ("rmse", "acc")],
        ] for e in entries],
    ))

    models = list(dict.fromkeys(m for e in entries for m in e["evaluation"]["models"]))
    out.append(Table(
        title="Headline metrics",
        intro="RMSE and ACC at the first and last lead of each headline variable (level in hPa "
        "after the name).",
        header=["entry", "target", "metric", "lead (h)", *models],
        rows=[[
            e["label"], h["target"], h["metric"].upper(), _lead(h["lead_hours"]),
            *[_num(h["values"].get(m)) for m in models],
        ] for e in entries for h in e["evaluation"]["headline"]],
    ))

    event_rows = [[
        e["label"], ev["model"], ev["quantity"], str(ev["hits"]), str(ev["misses"]),
        str(ev["false_alarms"]), str(ev["correct_negatives"]), _num(ev["f1"], ".3f"),
        _num(ev["csi"], ".3f"),
    ] for e in entries for ev in e["evaluation"]["events"]]
    out.append(Table(
        title="Events",
        intro="Confusion counts summed over all leads, and their F1 and CSI (- where undefined: "
        "no event was forecast or observed).",
        header=["entry", "model", "quantity", "hits", "misses", "false alarms",
                "correct negatives", "F1", "CSI"],
        rows=event_rows,
    ))

    eff_rows = []
    for e in entries:
        f = e["efficiency"]
        if f is None:
            eff_rows.append([e["label"], *["-"] * 10, "no benchmark given"])
            continue
        eff_rows.append([
            e["label"],
            "-" if f["parameters"] is None else f"{f['parameters']:,}",
            _mib(f["checkpoint_bytes"]),
            f["precision"] or "-",
            _ms(f["step_latency_median_s"]),
            _ms(f["step_latency_p95_s"]),
            _num(f["inference_samples_per_s"], ",.2f"),
            _num(f["training_samples_per_s"], ",.2f"),
            _mib(f["cpu_rss_peak_bytes"]),
            _mib(f["cuda_peak_bytes"]),
            f["device"] or "-",
            f"{f['env_id']}: {f['env_summary']}",
        ])
    out.append(Table(
        title="Efficiency",
        intro="From benchmark.json, at the trial's own precision: latency per rollout step at "
        "the smallest batch; samples/s the best over the batch sizes measured; peak memory of the "
        "whole benchmark process.",
        header=["entry", "parameters", "checkpoint (MiB)", "precision", "step median (ms)",
                "step p95 (ms)", "inference samples/s", "training samples/s", "peak RSS (MiB)",
                "peak CUDA (MiB)", "device", "environment"],
        rows=eff_rows,
    ))

    sweep_rows = []
    for e in entries:
        s = e["sweep"]
        if s is None:
            sweep_rows.append([e["label"], "-", "no sweep given", "-", "-", "-"])
            continue
        t = s["trials"]
        sweep_rows.append([
            e["label"],
            s["experiment"] or "-",
            s["best_trial"] or "none",
            _num(s["val_score"]),
            ", ".join(f"{k}={v}" for k, v in s["parameters"].items()) or "-",
            "-" if t is None else f"{t['succeeded']}/{t['total']}",
        ])
    out.append(Table(
        title="Sweeps",
        intro="Best trial of each sweep (best.json) with its parameters and val_score "
        "(minimised); trials succeeded/total from status.json.",
        header=["entry", "experiment", "best trial", "val_score", "parameters", "trials"],
        rows=sweep_rows,
    ))
    return out


def lead_plots(report: dict[str, Any]) -> dict[str, bytes]:
    """One PNG per entry: its headline variables side by side, RMSE against lead, one line per
    model (tuned model and references)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aurora_mlops.variables import VARIABLES

    out: dict[str, bytes] = {}
    for e in report["entries"]:
        targets = e["evaluation"]["headline_targets"]
        if not targets:
            continue
        fig, axes = plt.subplots(1, len(targets), figsize=(3.8 * len(targets), 2.9),
                                 squeeze=False)
        for ax, target in zip(axes[0], targets, strict=True):
            units = ""
            for c in e["evaluation"]["lead_rmse"]:
                if c["target"] == target:
                    style = "-" if c["model"] in e["evaluation"]["forecasts"] else "--"
                    ax.plot(c["lead_hours"], c["rmse"], style, marker="o", ms=3, label=c["model"])
                    spec = VARIABLES.get(("surf" if c["level"] is None else "atmos", c["variable"]))
                    units = f" ({spec.units})" if spec else ""
            ax.set_title(f"{e['label']}: {target} RMSE{units}", fontsize=9)
            ax.set_xlabel("lead (h)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        name = "lead_rmse_" + _safe(e["variant"] + ("" if e["dataset"] is None
                                                    else f"_{e['dataset']}")) + ".png"
        out[name] = _png(fig)
    return out


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any], images: dict[str, bytes]) -> str:
    """The Markdown page (PNGs embedded as ``data:`` URIs)."""
    lines = [
        f"# {report['title']}",
        "",
        f"{len(report['entries'])} entries; written {report['created_utc']} by aurora-mlops "
        f"{report['aurora_mlops']}. All numbers are in `report.json`.",
        "",
    ]
    for t in tables(report):
        lines += [f"## {t.title}", "", t.intro, ""]
        if not t.rows:
            lines += ["None.", ""]
            continue
        lines.append("| " + " | ".join(map(_md_cell, t.header)) + " |")
        lines.append("|" + "|".join("---" for _ in t.header) + "|")
        lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in t.rows]
        lines.append("")
    lines += ["## Lead-time curves", "", "RMSE per lead; dashed: baselines.", ""]
    lines += [f"![{name}]({_b64(data)})\n" for name, data in images.items()] or ["None.", ""]
    lines += ["## Notes", ""]
    lines += [f"- {n}" for n in _all_notes(report)] or ["- none"]
    return "\n".join(lines).rstrip() + "\n"


def _all_notes(report: dict[str, Any]) -> list[str]:
    notes = list(report["notes"])
    for e in report["entries"]:
        notes += [f"{e['label']} evaluation: {n}" for n in e["evaluation"]["notes"]]
    return notes


def render_html(report: dict[str, Any], images: dict[str, bytes]) -> str:
    """The self-contained HTML page (PNGs embedded; no external resource)."""
    esc = html.escape
    body = [
        f"<h1>{esc(report['title'])}</h1>",
        f"<p>{len(report['entries'])} entries; written {esc(report['created_utc'])} by "
        f"aurora-mlops {esc(report['aurora_mlops'])}. All numbers are in report.json.</p>",
    ]
    for t in tables(report):
        body += [f"<h2>{esc(t.title)}</h2>", f"<p>{esc(t.intro)}</p>"]
        if not t.rows:
            body.append("<p>None.</p>")
            continue
        body.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in t.header) + "</tr>")
        body += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in t.rows]
        body.append("</table>")
    body += ["<h2>Lead-time curves</h2><p>RMSE per lead; dashed: baselines.</p>",
             "<div class='plots'>"]
    body += [f'<figure><img alt="{esc(n)}" src="{_b64(d)}"><figcaption>{esc(n)}</figcaption>'
             "</figure>" for n, d in images.items()]
    body += ["</div><h2>Notes</h2><ul>"]
    body += [f"<li>{esc(n)}</li>" for n in _all_notes(report)] or ["<li>none</li>"]
    body.append("</ul>")
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(report['title'])}"
        "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}"
        ".plots{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}img{max-width:100%}"
        "</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )
