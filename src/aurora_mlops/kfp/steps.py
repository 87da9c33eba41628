"""What each pipeline component runs: one function per step, over plain paths.

The KFP components in :mod:`aurora_mlops.kfp.components` are thin: they turn their artifacts
into paths, call one function here and log the returned figures on their output artifacts.
The dataset, the checkpoints and the package stay on the data and artifacts volumes; the
artifacts between the steps are references to them (:mod:`._refs`).
Everything here is ordinary library code (no kfp import), tested without Kubeflow. Heavy
modules (torch, aurora, mlflow) are imported inside the functions that need them.
"""

from __future__ import annotations

import functools
import json
import logging
import shlex
import shutil
import urllib.request
from pathlib import Path
from typing import Any

from aurora_mlops.errors import ConfigError, DataFileError, ValidationFailed
from aurora_mlops.kfp._exit import failure_summary, reported
from aurora_mlops.kfp._refs import read_ref, run_folder, write_ref
from aurora_mlops.kfp._tune import ARTIFACTS_ROOT, DATA_ROOT, StepFailed, sweep

log = logging.getLogger(__name__)

__all__ = [
    "ARTIFACTS_ROOT",
    "DATA_ROOT",
    "SYNTHETIC",
    "StepFailed",
    "benchmark_model",
    "combine_report",
    "evaluate_model",
    "failure_summary",
    "final_fit",
    "package",
    "prepare_data",
    "publish",
    "read_ref",
    "reported",
    "run_folder",
    "sweep",
    "write_ref",
]

#: ``dataset_uri`` that makes the data step synthesise the variant's smoke dataset.
SYNTHETIC = "synthetic"


def prepare_data(dataset_uri: str, variant: str, *, ref_dir: str | Path,
                 report_dir: str | Path, data_root: str = DATA_ROOT,
                 run_id: str = "") -> dict[str, Any]:
    """Find (or fetch) the dataset, validate it in place and write a reference to it.

    A file on a mounted volume is read where it is, never copied: the steps after this one
    mount the same volume. A source that is not on a volume is fetched once into
    ``data_root/pipeline-runs/<run_id>/<variant>/data/<variant>.nc`` (this run's own folder,
    so no other run's file is replaced).

    Args:
        dataset_uri: ``synthetic`` (the variant's smoke dataset), a path on a mounted volume,
            an ``http(s)://`` URL (downloaded; the pipeline retries this step), an
            object-store URI (``s3://``, ``gs://``, ``abfs://``, ``az://``: a Zarr store or
            netCDF-4), or empty for ``<data_root>/<variant>.nc``.
        variant: Variant registry name.
        ref_dir: The reference artifact's folder (receives ``ref.json``).
        report_dir: Where the audit (``validation.json``, ``validation.md``) goes.
        data_root: Where this pod mounts the data volume.
        run_id: The pipeline run's id (names the folder of fetched sources).

    Returns:
        The reference: ``{"path": str, "variant": str, "source": str}``.

    Raises:
        DataFileError: The source does not exist or cannot be downloaded.
        ValidationFailed: The dataset is not fit for the variant (one problem per line).
    """
    from aurora_mlops.data import synthesize, validate, write_dataset

    uri = dataset_uri or f"{data_root}/{variant}.nc"
    if uri == SYNTHETIC or "://" in uri:
        target = run_folder(data_root, run_id, variant, "data") / f"{variant}.nc"
        target.parent.mkdir(parents=True, exist_ok=True)
    else:
        target = Path(uri)
        if not target.exists():
            raise DataFileError(f"dataset_uri {uri} does not exist; give a path on a mounted "
                                f"volume, an http(s) URL or `{SYNTHETIC}`")
    if uri == SYNTHETIC:
        write_dataset(synthesize(variant, profile="smoke"), target)
    elif uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri, timeout=600) as r, target.open("wb") as f:
                shutil.copyfileobj(r, f)
        except OSError as e:
            raise DataFileError(f"dataset_uri {uri}: download failed ({e})") from e
    elif "://" in uri:
        # Object storage (credentials from the environment): read lazily, written once onto
        # the data volume, where the trials and the model steps read it.
        from aurora_mlops.data import open_dataset

        write_dataset(open_dataset(uri), target)
    report = validate(target, variant, report_dir=report_dir)
    if not report.ok:
        raise ValidationFailed(report.problems)
    return write_ref(ref_dir, target, variant=variant, source=dataset_uri)


def _trial_budget(args: str) -> dict[str, Any]:
    from aurora_mlops.training import parse_param_args

    return parse_param_args(shlex.split(args)) if args.strip() else {}


def final_fit(*, best_dir: str | Path, data: str | Path, variant: str, profile: str,
              out_dir: str | Path, fit_args: str, tracking_uri: str = ""
              ) -> tuple[dict[str, float], Path]:
    """Train the sweep's best parameters again with ``fit_args`` (longer budget).

    An empty ``fit_args`` skips the fit: the best trial's own folder is the model (nothing is
    copied).

    Args:
        out_dir: Where the fit writes (a folder of this run on the artifacts volume).

    Returns:
        The model's metrics (``val_score`` ...) and its folder (``model.ckpt``, ``trial.json``).
    """
    from aurora_mlops.tuning import read_best

    best = read_best(best_dir)
    if best.checkpoint is None:
        raise ConfigError(f"{best.path}: names no checkpoint; the sweep has no best trial")
    if not fit_args.strip():
        return {k: float(v) for k, v in best.metrics.items()}, best.checkpoint.parent
    from aurora_mlops.training import parse_param_args, resolve_params, train_trial
    from aurora_mlops.variants import get_variant

    given = parse_param_args([f"--{k}={v}" for k, v in best.parameters.items()])
    given.update(_trial_budget(fit_args))
    result = train_trial(variant=get_variant(variant), data=data, output_dir=out_dir,
                         params=resolve_params(profile, given), profile=profile,
                         tracking_uri=tracking_uri or None)
    return dict(result.metrics), Path(out_dir)


def _summarise_eval(doc: dict[str, Any], variant: str) -> dict[str, Any]:
    from aurora_mlops.comparison import headline_targets

    rows = doc.get("rows") or []
    figures: dict[str, float] = {}
    for ref, m in (doc.get("scorecard") or {}).get("model", {}).items():
        if "rmse" in m:
            figures[f"rmse_wins_vs_{ref}"] = float(m["rmse"]["fraction"])
    for var, level in headline_targets(variant, rows, "model"):
        for r in rows:
            if (r["model"], r["metric"], r["variable"], r["level"]) == ("model", "rmse", var,
                                                                        level):
                where = var if level is None else f"{var}{level}"
                figures[f"rmse_{where}_{int(r['lead_hours'])}h"] = float(r["value"])
    event = next((e for e in doc.get("events") or [] if e.get("model") == "model"), None)
    return {"figures": figures, "event": event,
            "skill": figures.get("rmse_wins_vs_persistence", 0.0)}


def ensemble_sweep(model_dir: str | Path, ensemble: int) -> Path:
    """The model folder, or for ``ensemble > 1`` the local sweep's work dir the best trial's
    folder ``WORKDIR/trials/NAME`` is in (whose top-``ensemble`` trials are packaged).

    Raises:
        ConfigError: The model is not a local sweep's trial (a final fit, or Katib's volume).
    """
    if ensemble <= 1:
        return Path(model_dir)
    work = Path(model_dir).parent.parent
    if not ((work / "status.json").is_file() or (work / "halving.json").is_file()):
        raise ConfigError(f"ensemble={ensemble}: {model_dir} is not a trial of a local sweep's "
                          "work dir; an ensemble needs backend=local and an empty "
                          "final_fit_args (the sweep's own trials are its members)")
    return work


def evaluate_model(*, model_dir: str | Path, data: str | Path, variant: str,
                   out_dir: str | Path, lead_steps: int = 4, max_inits: int = 0,
                   ensemble: int = 1) -> dict[str, Any]:
    """:func:`aurora_mlops.evaluation.evaluate_checkpoint` (what ``aurora-mlops evaluate
    --model`` runs; ``ensemble > 1``: the sweep's top trials, see :func:`ensemble_sweep`), then
    the figures the pipeline shows and gates on.

    Returns:
        ``figures`` (RMSE wins against each baseline, headline RMSE at each lead), ``event``
        (the model's first event record: hits, misses, false alarms, correct negatives) and
        ``skill`` (fraction of targets where the model beats persistence on RMSE).
    """
    from aurora_mlops.evaluation import evaluate_checkpoint

    members = None
    if ensemble > 1:
        from aurora_mlops.packaging import ensemble_forecasts

        members = functools.partial(ensemble_forecasts, ensemble_sweep(model_dir, ensemble),
                                    ensemble)
    evaluate_checkpoint(model_dir, data, variant=variant, out_dir=out_dir,
                        lead_steps=lead_steps, max_inits=max_inits if max_inits > 0 else None,
                        members=members)
    doc = json.loads((Path(out_dir) / "metrics.json").read_text())
    return _summarise_eval(doc, variant)


def benchmark_model(*, model_dir: str | Path, variant: str, out_dir: str | Path,
                    repeats: int = 3, train_steps: int = 2) -> dict[str, float]:
    """Benchmark the model; returns latency and throughput figures for the KFP UI."""
    from aurora_mlops.benchmark import run_benchmark

    report = run_benchmark(model_dir, variant, out_dir=out_dir, repeats=repeats,
                           train_steps=train_steps, amp_modes=None)
    figures: dict[str, float] = {}
    for f in report["figures"]:
        if "error" in f:
            continue
        key = "step_latency_s" if f["section"] == "inference" else "step_time_s"
        figures[f"{f['id']}_median_ms"] = float(f[key]["median"]) * 1e3
        figures[f"{f['id']}_samples_per_s"] = float(f["samples_per_s"])
    return figures


def package(*, model_dir: str | Path, variant: str, out_dir: str | Path, eval_dir: str | Path,
            bench_dir: str | Path, data: str | Path | None = None,
            tracking_uri: str = "", ensemble: int = 1) -> dict[str, Any]:
    """Package the final model (``ensemble > 1``: the sweep's top trials, see
    :func:`ensemble_sweep`) as an MLflow pyfunc with its evaluation and benchmark.

    Args:
        data: The pipeline's dataset (static fields, grid, input example); default: the one
            the trial records (a local sweep records it relative to the sweep's folder).

    Returns:
        ``variant``, ``checkpoint_sha256`` and ``val_score`` of the package.
    """
    from aurora_mlops.packaging import package_model

    result = package_model(ensemble_sweep(model_dir, ensemble), variant=variant, out=out_dir,
                           eval_dir=eval_dir, bench_dir=bench_dir, data=data,
                           log_to=tracking_uri or None, ensemble=ensemble)
    info = result.info
    return {"variant": info.variant, "checkpoint_sha256": info.checkpoint_sha256,
            "val_score": info.val_score, "path": str(result.path)}


def publish(*, package_dir: str | Path, registry_uri: str, name: str = "", gate: str = "",
            receipt: str | Path | None = None) -> dict[str, Any]:
    """Register the package (challenger; champion when the gate passes).

    Args:
        package_dir: Output of :func:`package`.
        registry_uri: MLflow registry URI (empty: the settings' tracking URI).
        name: Registered model name (empty: the package's default, per variant).
        gate: Promotion rule for ``publish_package`` (empty: its default).
        receipt: Where to write the result as JSON (the pipeline's summary reads it).

    Returns:
        ``name``, ``version``, ``champion_version``, ``gate_passed``, ``created``,
        ``model_uri``.
    """
    from aurora_mlops.config import get_settings
    from aurora_mlops.publishing import publish_package

    uri = registry_uri or get_settings().resolved_tracking_uri()
    if not uri:
        raise ConfigError("registry_uri is empty and no tracking URI is configured: pass the "
                          "pipeline parameter registry_uri")
    r = publish_package(package_dir, registry_uri=uri, name=name or None, gate=gate or None)
    doc = {"name": r.name, "version": str(r.version), "champion_version":
           None if r.champion_version is None else str(r.champion_version),
           "gate_passed": bool(r.gate_passed), "created": bool(r.created),
           "model_uri": r.model_uri, "registry_uri": uri}
    if receipt is not None:
        Path(receipt).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc


def combine_report(*, evals: dict[str, str], benches: dict[str, str], sweeps: dict[str, str],
                   out_dir: str | Path) -> list[Path]:
    """One report over every variant's evaluation, benchmark and best trial.

    Args:
        evals, benches, sweeps: ``{variant: directory}`` of the evaluate, benchmark and tune
            outputs; only ``evals`` is required per variant.
        out_dir: Where ``report.{json,md,html}`` go.

    Raises:
        ConfigError: No evaluation was given.
    """
    from aurora_mlops.comparison import ReportEntry, build_report

    if not evals:
        raise ConfigError("report needs at least one variant's evaluation")
    entries = [ReportEntry(variant=v, dataset=None, eval_dir=Path(e),
                           bench_dir=Path(benches[v]) if v in benches else None,
                           sweep_dir=Path(sweeps[v]) if v in sweeps else None)
               for v, e in sorted(evals.items())]
    return build_report(entries, out_dir)
