"""The comparison report's tables, built once as cells of text (:class:`Table`) from the
collected report, so that the Markdown and the HTML page show the same strings."""

from __future__ import annotations

from typing import Any

from aurora_mlops._templates import Table

__all__ = ["tables"]


def _num(x: float | None, fmt: str = ".4g") -> str:
    return "-" if x is None else format(x, fmt)


def _mib(x: int | None) -> str:
    return "n/a" if x is None else f"{x / 2**20:,.1f}"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:,.2f}"


def _wins(card: dict[str, Any], metric: str) -> str:
    m = card.get(metric)
    return "-" if m is None else f"{m['wins']}/{m['targets']} ({m['fraction']:.0%})"


def tables(report: dict[str, Any]) -> list[Table]:
    """The report's tables, in page order (entries, scorecard, headline, events, efficiency,
    sweeps)."""
    entries = report["entries"]
    return [_entries(entries), _scorecard(entries, report["references"]), _headline(entries),
            _events(entries), _efficiency(entries), _sweeps(entries)]


def _entries(entries: list[dict[str, Any]]) -> Table:
    return Table(
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
    )


def _scorecard(entries: list[dict[str, Any]], refs: list[str]) -> Table:
    return Table(
        title="Scorecard summary",
        intro="Targets (variable x level x lead) where the tuned model beats each reference: "
        "lower RMSE, higher ACC.",
        header=["entry", *[f"vs {r} ({m})" for r in refs for m in ("RMSE", "ACC")]],
        rows=[[
            e["label"],
            *[_wins(e["evaluation"]["scorecard"].get(r, {}), m) for r in refs
              for m in ("rmse", "acc")],
        ] for e in entries],
    )


def _headline(entries: list[dict[str, Any]]) -> Table:
    models = list(dict.fromkeys(m for e in entries for m in e["evaluation"]["models"]))
    return Table(
        title="Headline metrics",
        intro="RMSE and ACC at the first and last lead of each headline variable (level in hPa "
        "after the name).",
        header=["entry", "target", "metric", "lead (h)", *models],
        rows=[[
            e["label"], h["target"], h["metric"].upper(), f"{h['lead_hours']:g}",
            *[_num(h["values"].get(m)) for m in models],
        ] for e in entries for h in e["evaluation"]["headline"]],
    )


def _events(entries: list[dict[str, Any]]) -> Table:
    return Table(
        title="Events",
        intro="Confusion counts summed over all leads, and their F1 and CSI (- where undefined: "
        "no event was forecast or observed).",
        header=["entry", "model", "quantity", "hits", "misses", "false alarms",
                "correct negatives", "F1", "CSI"],
        rows=[[
            e["label"], ev["model"], ev["quantity"], str(ev["hits"]), str(ev["misses"]),
            str(ev["false_alarms"]), str(ev["correct_negatives"]), _num(ev["f1"], ".3f"),
            _num(ev["csi"], ".3f"),
        ] for e in entries for ev in e["evaluation"]["events"]],
    )


def _efficiency_row(label: str, f: dict[str, Any] | None) -> list[str]:
    if f is None:
        return [label, *["-"] * 10, "no benchmark given"]
    return [
        label,
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
    ]


def _efficiency(entries: list[dict[str, Any]]) -> Table:
    return Table(
        title="Efficiency",
        intro="From benchmark.json, at the trial's own precision: latency per rollout step at "
        "the smallest batch; samples/s the best over the batch sizes measured; peak memory of the "
        "whole benchmark process.",
        header=["entry", "parameters", "checkpoint (MiB)", "precision", "step median (ms)",
                "step p95 (ms)", "inference samples/s", "training samples/s", "peak RSS (MiB)",
                "peak CUDA (MiB)", "device", "environment"],
        rows=[_efficiency_row(e["label"], e["efficiency"]) for e in entries],
    )


def _sweep_row(label: str, s: dict[str, Any] | None) -> list[str]:
    if s is None:
        return [label, "-", "no sweep given", "-", "-", "-"]
    t = s["trials"]
    return [
        label,
        s["experiment"] or "-",
        s["best_trial"] or "none",
        _num(s["val_score"]),
        ", ".join(f"{k}={v}" for k, v in s["parameters"].items()) or "-",
        "-" if t is None else f"{t['succeeded']}/{t['total']}",
    ]


def _sweeps(entries: list[dict[str, Any]]) -> Table:
    return Table(
        title="Sweeps",
        intro="Best trial of each sweep (best.json) with its parameters and val_score "
        "(minimised); trials succeeded/total from status.json.",
        header=["entry", "experiment", "best trial", "val_score", "parameters", "trials"],
        rows=[_sweep_row(e["label"], e["sweep"]) for e in entries],
    )
