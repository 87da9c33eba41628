"""Read the evaluation, benchmark and sweep outputs of every entry and combine their numbers.

Numbers are copied, never recomputed, from the source files: a value in ``report.json`` is the
value in ``metrics.json`` (the same table as ``metrics.parquet``), ``benchmark.json`` or
``best.json``. The one derivation is F1 and CSI of events over all leads, computed from the
summed confusion counts by :func:`aurora_mlops.evaluation.event_scores` (the evaluation's own
definition).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aurora_mlops._version import __version__
from aurora_mlops.comparison._entries import BENCH_FILE, EVAL_FILE, ReportEntry
from aurora_mlops.errors import ConfigError
from aurora_mlops.variants import VARIANTS

__all__ = ["HEADLINE_VARIABLES", "SCHEMA", "collect_report", "headline_targets"]

logger = logging.getLogger(__name__)

SCHEMA = "aurora-mlops/report/v1"

#: Headline (variable, level hPa or None) per variant, in display order: what the lead-time
#: curves and the headline table show. A level the evaluation lacks is replaced by the nearest
#: one it has; a variant none of whose headline variables were scored falls back to the first
#: three targets of its table.
#: Each is the variant's :attr:`~aurora_mlops.variants.VariantSpec.headline`.
HEADLINE_VARIABLES: dict[str, tuple[tuple[str, int | None], ...]] = {
    name: spec.headline for name, spec in VARIANTS.items()
}

_MADE_BY = {
    EVAL_FILE: "aurora-mlops evaluate --out DIR",
    BENCH_FILE: "aurora-mlops benchmark --out DIR",
}

Target = tuple[str, int | None]


def _read(directory: Path, name: str) -> tuple[Path, dict[str, Any]]:
    """``directory/name`` parsed as a JSON object, or a :class:`ConfigError` naming the path."""
    path = directory / name
    if not path.is_file():
        raise ConfigError(
            f"{directory} holds no {name}: pass a directory written by `{_MADE_BY[name]}`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(
            f"{path} is not readable JSON ({e}): re-run `{_MADE_BY[name]}` into {directory}"
        ) from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a JSON object: re-run `{_MADE_BY[name]}` into "
                          f"{directory}")
    return path, data


def _require(data: dict[str, Any], keys: Sequence[str], path: Path) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise ConfigError(
            f"{path} lacks {', '.join(missing)}: it was not written by "
            f"`{_MADE_BY[path.name]}` (or by an older version); re-run that command"
        )


def target_name(variable: str, level: int | None) -> str:
    """``2t``, ``z500``, ``go3 850``: how tables and plots name a variable at a level (a space
    where the name ends in a digit)."""
    if level is None:
        return variable
    return f"{variable} {level}" if variable[-1:].isdigit() else f"{variable}{level}"


def headline_targets(variant: str, rows: Sequence[dict[str, Any]], model: str) -> list[Target]:
    """The headline (variable, level) targets of ``variant`` that ``model`` has RMSE rows for.

    See :data:`HEADLINE_VARIABLES` for the choice and the fallbacks.
    """
    have: dict[str, list[int | None]] = {}
    for r in rows:
        if r["model"] == model and r["metric"] == "rmse":
            levels = have.setdefault(r["variable"], [])
            if r["level"] not in levels:
                levels.append(r["level"])
    out: list[Target] = []
    for var, level in VARIANTS[variant].headline if variant in VARIANTS else ():
        levels = have.get(var, [])
        numeric = [lv for lv in levels if lv is not None]
        if level in levels:
            out.append((var, level))
        elif level is not None and numeric:
            out.append((var, min(numeric, key=lambda lv: (abs(lv - level), lv))))
    if not out:
        seen = [(v, lv) for v, levels in have.items() for lv in levels]
        out = ([t for t in seen if t[1] is None] + [t for t in seen if t[1] is not None])[:3]
    return out


def _index(rows: Sequence[dict[str, Any]]) -> dict[tuple[Any, ...], float]:
    return {
        (r["model"], r["metric"], r["variable"], r["level"], float(r["lead_hours"])): r["value"]
        for r in rows
    }


def _evaluation(entry: ReportEntry) -> tuple[dict[str, Any], list[str]]:
    path, m = _read(entry.eval_dir, EVAL_FILE)
    _require(m, ("variant", "models", "scorecard", "events", "rows"), path)
    if m["variant"] != entry.variant:
        raise ConfigError(
            f"{path} is an evaluation of {m['variant']}, not {entry.variant}: fix the entry "
            f"{entry.label}"
        )
    models: list[str] = list(m["models"])
    forecasts = list(m["scorecard"]) or models[:1]
    if not forecasts:
        raise ConfigError(f"{path} scored no model: re-run `{_MADE_BY[EVAL_FILE]}`")
    primary = forecasts[0]
    rows = m["rows"]
    at = _index(rows)
    targets = headline_targets(entry.variant, rows, primary)
    notes: list[str] = []
    if not targets:
        notes.append(f"{entry.label}: {path} has no RMSE of {primary}; no curve or headline row.")

    curves: list[dict[str, Any]] = []
    headline: list[dict[str, Any]] = []
    for var, level in targets:
        for model in models:
            leads = sorted(k[4] for k in at if k[:4] == (model, "rmse", var, level))
            if leads:
                curves.append({
                    "target": target_name(var, level), "variable": var, "level": level,
                    "model": model, "lead_hours": leads,
                    "rmse": [at[(model, "rmse", var, level, h)] for h in leads],
                })
        leads = sorted(k[4] for k in at if k[:4] == (primary, "rmse", var, level))
        for metric in ("rmse", "acc"):
            for lead in dict.fromkeys((leads[0], leads[-1])):
                values = {model: at.get((model, metric, var, level, lead)) for model in models}
                if any(v is not None for v in values.values()):
                    headline.append({
                        "target": target_name(var, level), "variable": var, "level": level,
                        "metric": metric, "lead_hours": lead, "values": values,
                    })

    events = _events(m["events"])
    return {
        "source": str(path),
        "models": models,
        "forecasts": forecasts,
        "model": primary,
        "pairs": m.get("pairs", {}),
        "climatology": m.get("climatology"),
        "notes": list(m.get("notes", [])),
        "headline_targets": [target_name(v, lv) for v, lv in targets],
        "lead_rmse": curves,
        "headline": headline,
        "scorecard": m["scorecard"].get(primary, {}),
        "skill": _skill(rows, primary, list(m["scorecard"].get(primary, {}))),
        "events": events,
    }, notes


def _skill(rows: Sequence[dict[str, Any]], model: str,
           references: list[str]) -> dict[str, Any] | None:
    """``model``'s ``rmse_skill_vs_<reference>`` rows as a grid, targets x lead times (what the
    scorecard heatmap shows): against persistence when it was scored, else the first reference.
    ``None`` when there is no reference."""
    if not references:
        return None
    ref = "persistence" if "persistence" in references else references[0]
    metric = f"rmse_skill_vs_{ref}"
    at = {(target_name(r["variable"], r["level"]), float(r["lead_hours"])): r["value"]
          for r in rows if r["model"] == model and r["metric"] == metric}
    targets = list(dict.fromkeys(t for t, _ in at))
    leads = sorted({h for _, h in at})
    return {
        "reference": ref,
        "metric": metric,
        "targets": targets,
        "lead_hours": leads,
        "skill": [[at.get((t, h)) for h in leads] for t in targets],
    }


def _events(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Summed confusion counts per model and quantity, with F1 and CSI over all leads."""
    if not events:
        return []
    import xarray as xr

    from aurora_mlops.evaluation import event_scores

    keys = ("hits", "misses", "false_alarms", "correct_negatives")
    out = []
    for e in events:
        scores = event_scores(xr.Dataset({k: xr.DataArray(int(e[k])) for k in keys}))
        row = {"model": e["model"], "quantity": e["quantity"], **{k: int(e[k]) for k in keys}}
        for k in ("f1", "csi"):
            v = float(scores[k])
            row[k] = v if math.isfinite(v) else None
        out.append(row)
    return out


def _by_batch(figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(figures, key=lambda f: int(f["batch_size"]))


def _efficiency(entry: ReportEntry, bench_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """The efficiency row of ``benchmark.json``.

    Precision: the trial's own (``model.trial_amp``) when measured, else the first measured.
    Latency per rollout step: the inference figure of that precision with the smallest batch.
    Samples/s: the highest over that precision's batch sizes, for inference and for training.
    """
    path, b = _read(bench_dir, BENCH_FILE)
    _require(b, ("model", "figures", "memory", "env", "device"), path)
    model, memory, env, device = b["model"], b["memory"], b["env"], b["device"]
    if model.get("variant") != entry.variant:
        raise ConfigError(
            f"{path} is a benchmark of {model.get('variant')}, not {entry.variant}: fix the "
            f"entry {entry.label}"
        )
    ok = [f for f in b["figures"] if "error" not in f]
    notes = [f"{entry.label}: benchmark figure {f['id']} failed ({f['error']})."
             for f in b["figures"] if "error" in f]
    own = "bf16-autocast" if model.get("trial_amp") else "fp32"
    measured = list(dict.fromkeys(f["precision"] for f in ok))
    precision = own if own in measured else (measured[0] if measured else None)
    inference = _by_batch([f for f in ok if f["section"] == "inference"
                           and f["precision"] == precision])
    training = _by_batch([f for f in ok if f["section"] == "training"
                          and f["precision"] == precision])
    best_inf = max(inference, key=lambda f: f["samples_per_s"]) if inference else None
    best_trn = max(training, key=lambda f: f["samples_per_s"]) if training else None
    if not inference:
        notes.append(f"{entry.label}: {path} has no successful inference figure.")
    latency = inference[0] if inference else None
    return {
        "source": str(path),
        "parameters": model.get("parameters_total"),
        "parameters_trainable": model.get("parameters_trainable"),
        "checkpoint_bytes": model.get("checkpoint_bytes"),
        "profile": model.get("profile"),
        "precision": precision,
        "latency_figure": latency["id"] if latency else None,
        "step_latency_median_s": latency["step_latency_s"]["median"] if latency else None,
        "step_latency_p95_s": latency["step_latency_s"]["p95"] if latency else None,
        "inference_figure": best_inf["id"] if best_inf else None,
        "inference_samples_per_s": best_inf["samples_per_s"] if best_inf else None,
        "training_figure": best_trn["id"] if best_trn else None,
        "training_samples_per_s": best_trn["samples_per_s"] if best_trn else None,
        "training_step_median_s": best_trn["step_time_s"]["median"] if best_trn else None,
        "cpu_rss_peak_bytes": memory.get("cpu_rss_peak_bytes"),
        "cuda_peak_bytes": memory.get("cuda_peak_bytes"),
        "device": device.get("type"),
        "device_note": device.get("note"),
        "env_id": env.get("id"),
        "env_summary": env.get("summary"),
    }, notes


def _sweep(entry: ReportEntry, sweep_dir: Path) -> tuple[dict[str, Any], list[str]]:
    from aurora_mlops.tuning import read_best

    best = read_best(sweep_dir)
    trials = None
    status_path = sweep_dir / "status.json"
    if status_path.is_file():
        try:
            status = json.loads(status_path.read_text(encoding="utf-8"))
            trials = {
                "total": status.get("trials"),
                "succeeded": status.get("trialsSucceeded"),
                "failed": status.get("trialsFailed"),
                "early_stopped": status.get("trialsEarlyStopped"),
            }
        except (OSError, ValueError, AttributeError) as e:
            # status.json only adds trial counts; best.json holds what the report needs.
            logger.warning("ignoring %s: %s", status_path, e)
    notes = []
    if best.trial is None:
        notes.append(f"{entry.label}: the sweep in {sweep_dir} has no successful trial "
                     f"({best.reason or 'no reason recorded'}).")
    return {
        "source": str(best.path),
        "experiment": best.experiment,
        "best_trial": best.trial,
        "parameters": dict(best.parameters),
        "metrics": dict(best.metrics),
        "val_score": best.metrics.get("val_score"),
        "checkpoint": str(best.checkpoint) if best.checkpoint else None,
        "trials": trials,
    }, notes


def _entry(e: ReportEntry) -> dict[str, Any]:
    """One entry of ``report.json``: its evaluation, efficiency, sweep and notes."""
    evaluation, notes = _evaluation(e)
    efficiency: dict[str, Any] | None = None
    sweep: dict[str, Any] | None = None
    if e.bench_dir is None:
        notes.append(f"{e.label}: no benchmark given; efficiency not reported.")
    else:
        efficiency, n = _efficiency(e, e.bench_dir)
        notes += n
    if e.sweep_dir is None:
        notes.append(f"{e.label}: no sweep given; best trial not reported.")
    else:
        sweep, n = _sweep(e, e.sweep_dir)
        notes += n
    return {
        "variant": e.variant,
        "dataset": e.dataset,
        "label": e.label,
        "evaluation": evaluation,
        "efficiency": efficiency,
        "sweep": sweep,
        "notes": notes,
    }


def collect_report(
    entries: Sequence[ReportEntry], *, title: str, notes: Sequence[str] = ()
) -> dict[str, Any]:
    """Read every entry's files and combine them into the dict that ``report.json`` holds.

    Args:
        entries: One per variant and dataset; (variant, dataset) pairs must be unique.
        title: Title of the report.
        notes: Extra sentences for the report's notes (e.g. directories discovery skipped).

    Returns:
        ``{"schema", "title", "created_utc", "aurora_mlops", "references", "entries",
        "notes"}``; each entry holds ``variant``, ``dataset``, ``label``, ``evaluation``
        (headline targets, RMSE per lead, headline table, scorecard of the tuned model, events),
        ``efficiency`` and ``sweep`` (``None`` when not given) and its ``notes``.

    Raises:
        ConfigError: No entry, a duplicate entry, a directory without its expected file, a
            file that is not what that command writes, or a variant mismatch.
    """
    if not entries:
        raise ConfigError("no report entry: pass --entry VARIANT[:DATASET]=EVAL_DIR or "
                          "--from-dir ROOT")
    seen: set[tuple[str, str | None]] = set()
    for e in entries:
        key = (e.variant, e.dataset)
        if key in seen:
            raise ConfigError(f"entry {e.label} is given twice: give each variant and dataset "
                              "once")
        seen.add(key)
    out_entries = [_entry(e) for e in entries]
    all_notes = list(notes) + [n for e in out_entries for n in e["notes"]]
    references = list(dict.fromkeys(
        ref for e in out_entries for ref in e["evaluation"]["scorecard"]
    ))
    return {
        "schema": SCHEMA,
        "title": title,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "aurora_mlops": __version__,
        "references": references,
        "entries": out_entries,
        "notes": all_notes,
    }
