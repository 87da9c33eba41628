"""What each pipeline component runs: one function per step, over plain paths.

The KFP components in :mod:`aurora_mlops.kfp.components` are thin: they turn their artifacts
into paths, call one function here and log the returned figures on their output artifacts.
Everything here is ordinary library code (no kfp import), tested without Kubeflow. Heavy
modules (torch, aurora, mlflow) are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any

from aurora_mlops._io import write_json
from aurora_mlops.errors import AuroraMLOpsError, ConfigError, DataFileError, ValidationFailed
from aurora_mlops.kfp._exit import failure_summary, reported

log = logging.getLogger(__name__)

__all__ = [
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
    "reported",
    "run_cli",
    "sweep",
]

#: ``dataset_uri`` that makes the data step synthesise the variant's smoke dataset.
SYNTHETIC = "synthetic"
#: Where the data and artifacts volumes are mounted in the pipeline's pods and Katib's trials.
DATA_ROOT = "/mnt/data"
ARTIFACTS_ROOT = "/mnt/artifacts"


class StepFailed(AuroraMLOpsError, RuntimeError):
    """A pipeline step's command failed; its own error was printed just before."""


def run_cli(argv: list[str]) -> None:
    """Run ``aurora-mlops ARGV`` in a child interpreter (the same code and errors as the CLI).

    The child shares this process's stdout, stderr and environment, so its lines land in the
    step's log. A child rather than ``aurora_mlops.cli.main`` in this process: the pipeline
    layer sits below the CLI and does not import it (this process has loaded nothing heavy
    yet, so the child costs an interpreter start, not a second torch import).

    Raises:
        StepFailed: The command exited non-zero (its one-line error is on stderr).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    code = subprocess.run([sys.executable, "-m", "aurora_mlops", *argv], check=False).returncode
    if code != 0:
        raise StepFailed(f"`aurora-mlops {shlex.join(argv)}` failed with exit code {code}")


def prepare_data(dataset_uri: str, variant: str, out_dir: str | Path,
                 report_dir: str | Path) -> dict[str, Any]:
    """Fetch (or synthesise) the dataset into ``out_dir/<variant>.nc`` and validate it.

    Args:
        dataset_uri: ``synthetic`` (the variant's smoke dataset), a local or mounted path, an
            ``http(s)://`` URL (downloaded; the pipeline retries this step), an object-store
            URI (``s3://``, ``gs://``, ``abfs://``, ``az://``: a Zarr store or netCDF-4), or
            empty for
            ``/mnt/data/<variant>.nc`` (the data volume).
        variant: Variant registry name.
        out_dir: Directory that receives ``<variant>.nc`` (what trial commands read as
            ``data/<variant>.nc``).
        report_dir: Where the audit (``validation.json``, ``validation.md``) goes.

    Returns:
        ``{"path": str, "sizes": {...}}`` of the validated file.

    Raises:
        DataFileError: The source does not exist or cannot be downloaded.
        ValidationFailed: The dataset is not fit for the variant (one problem per line).
    """
    from aurora_mlops.data import synthesize, validate, write_dataset

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{variant}.nc"
    dataset_uri = dataset_uri or f"{DATA_ROOT}/{variant}.nc"
    if dataset_uri == SYNTHETIC:
        write_dataset(synthesize(variant, profile="smoke"), target)
    elif dataset_uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(dataset_uri, timeout=600) as r, target.open("wb") as f:
                shutil.copyfileobj(r, f)
        except OSError as e:
            raise DataFileError(f"dataset_uri {dataset_uri}: download failed ({e})") from e
    elif "://" in dataset_uri:
        # Object storage (s3://, gs://, abfs://, az://; credentials from the environment): read
        # lazily and written into the data volume, where the trials read it.
        from aurora_mlops.data import open_dataset

        write_dataset(open_dataset(dataset_uri), target)
    else:
        src = Path(dataset_uri)
        if not src.exists():
            raise DataFileError(f"dataset_uri {dataset_uri} does not exist; give a path on a "
                                f"mounted volume, an http(s) URL or `{SYNTHETIC}`")
        copy = shutil.copytree if src.is_dir() else shutil.copy2
        copy(src, target)
    report = validate(target, variant, report_dir=report_dir)
    if not report.ok:
        raise ValidationFailed(report.problems)
    return {"path": str(target)}


def _trial_budget(args: str) -> dict[str, Any]:
    from aurora_mlops.training import parse_param_args

    return parse_param_args(shlex.split(args)) if args.strip() else {}


def _stage(src: Path, dest: Path) -> None:
    """Copy the dataset where Katib's trials read it, unless the same file is there."""
    if dest.is_file() and dest.stat().st_size == src.stat().st_size:
        from aurora_mlops._io import sha256_file

        if sha256_file(dest) == sha256_file(src):
            return
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)


def sweep(*, variant: str, algorithm: str, profile: str, data_dir: str | Path,
          best_dir: str | Path, sweep_dir: str | Path, max_trials: int, parallel_trials: int,
          backend: str, trial_args: str = "", tracking_uri: str = "", namespace: str = "",
          data_root: str = DATA_ROOT, run_id: str = "", artifacts_mount: str = ARTIFACTS_ROOT,
          katib_api: Any = None, katib_watcher: Any = None) -> dict[str, Any]:
    """Run the variant's Katib Experiment (``backend`` katib or local) and export its best trial.

    Args:
        variant, algorithm, profile: Which rendered Experiment (``katib/...``) to run.
        data_dir: Directory holding ``<variant>.nc`` (local: linked as the sweep's ``data``).
        best_dir: Receives the best trial's folder and a ``best.json`` with relative paths.
        sweep_dir: Local: the sweep's work dir (study, trials, status); Katib: unused.
        max_trials, parallel_trials: ``maxTrialCount`` and ``parallelTrialCount``.
        backend: ``local`` (embedded Optuna runner) or ``katib`` (the cluster).
        trial_args: Extra ``--NAME=VALUE`` appended to every trial's command (budgets).
        tracking_uri: MLflow URI for the sweep and its trials (empty: the settings').
        namespace: Katib namespace (empty: the settings').
        data_root: Katib: the data volume's mount, where trials read ``<variant>.nc``; the
            dataset is staged there first.
        run_id: Katib: the pipeline run's id, appended to the Experiment's name.
        artifacts_mount: Katib: where this pod mounts the artifacts volume that the trials
            mount at ``/mnt/artifacts``.
        katib_api, katib_watcher: Katib: injected ``CustomObjectsApi`` and watch (tests).

    Returns:
        The ``best.json`` written into ``best_dir``.
    """
    from aurora_mlops.tuning import export_trial, pipeline_experiment

    exp = pipeline_experiment(variant=variant, algorithm=algorithm, profile=profile,
                              max_trials=max_trials, parallel_trials=parallel_trials,
                              extra_args=shlex.split(trial_args),
                              name_suffix=run_id[:8] if backend == "katib" else "")
    if backend == "katib":
        from aurora_mlops.config import get_settings
        from aurora_mlops.tuning import run_katib

        _stage(Path(data_dir) / f"{variant}.nc", Path(data_root) / f"{variant}.nc")
        k = run_katib(exp, namespace=namespace or get_settings().namespace, api=katib_api,
                      watcher=katib_watcher)
        ckpt = PurePosixPath(str(k.checkpoint))
        if ckpt.is_relative_to(ARTIFACTS_ROOT):
            ckpt = PurePosixPath(artifacts_mount) / ckpt.relative_to(ARTIFACTS_ROOT)
        trial_dir, best, params, metrics = (Path(ckpt).parent, k.best_trial, k.parameters,
                                            k.metrics)
    elif backend == "local":
        from aurora_mlops.tuning import run_local

        r = run_local(exp, work_dir=sweep_dir, data_dir=data_dir, progress=False,
                      tracking_uri=tracking_uri or None)
        if r.best_trial is None or r.checkpoint is None:
            raise StepFailed(f"no trial of {exp.name} succeeded ({r.reason}); see "
                             f"{Path(sweep_dir) / 'status.json'}")
        trial_dir, best, params, metrics = r.checkpoint.parent, r.best_trial, r.parameters, \
            r.metrics
    else:
        raise ConfigError(f"backend must be `local` or `katib`, got {backend!r}")
    return export_trial(trial_dir, best_dir, experiment=exp.name, best_trial=str(best),
                        parameters=params, metrics=metrics)


def _point_at_dataset(trial_json: Path, data: Path) -> None:
    """Make a shipped sweep trial name the pipeline's dataset, the file it trained on.

    A local sweep's trial records ``data/<variant>.nc``, relative to the sweep's work dir; the
    steps after this one (package reads the dataset's grid and static fields) run elsewhere.
    """
    if not trial_json.is_file() or not data.is_file():
        return
    doc = json.loads(trial_json.read_text(encoding="utf-8"))
    doc.setdefault("data", {})["path"] = str(data.resolve())
    write_json(trial_json, doc, sort_keys=False)


def final_fit(*, best_dir: str | Path, data: str | Path, variant: str, profile: str,
              out_dir: str | Path, fit_args: str, tracking_uri: str = "") -> dict[str, float]:
    """Train the sweep's best parameters again with ``fit_args`` (longer budget).

    An empty ``fit_args`` skips the fit: the best trial itself is copied to ``out_dir``.

    Returns:
        The final trial's metrics (``val_score`` ...).
    """
    best_json = Path(best_dir) / "best.json"
    try:
        best = json.loads(best_json.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{best_json}: not a tune step's best trial ({e})") from e
    if not fit_args.strip():
        shutil.copytree(best_dir, out_dir, dirs_exist_ok=True)
        _point_at_dataset(Path(out_dir) / "trial.json", Path(data))
        return {k: float(v) for k, v in (best.get("metrics") or {}).items()}
    from aurora_mlops.training import parse_param_args, resolve_params, train_trial
    from aurora_mlops.variants import get_variant

    given = parse_param_args([f"--{a['name']}={a['value']}"
                              for a in best.get("parameterAssignments") or []])
    given.update(_trial_budget(fit_args))
    result = train_trial(variant=get_variant(variant), data=data, output_dir=out_dir,
                         params=resolve_params(profile, given), profile=profile,
                         tracking_uri=tracking_uri or None)
    return dict(result.metrics)


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


def evaluate_model(*, model_dir: str | Path, data: str | Path, variant: str,
                   out_dir: str | Path, lead_steps: int = 4, max_inits: int = 0
                   ) -> dict[str, Any]:
    """``aurora-mlops evaluate --model``, then the figures the pipeline shows and gates on.

    Returns:
        ``figures`` (RMSE wins against each baseline, headline RMSE at each lead), ``event``
        (the model's first event record: hits, misses, false alarms, correct negatives) and
        ``skill`` (fraction of targets where the model beats persistence on RMSE).
    """
    argv = ["evaluate", "--model", str(model_dir), "--data", str(data), "--variant", variant,
            "--out", str(out_dir), "--lead-steps", str(lead_steps)]
    if max_inits > 0:
        argv += ["--max-inits", str(max_inits)]
    run_cli(argv)
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
            bench_dir: str | Path, tracking_uri: str = "") -> dict[str, Any]:
    """Package the final model as an MLflow pyfunc with its evaluation and benchmark.

    Returns:
        ``variant``, ``checkpoint_sha256`` and ``val_score`` of the package.
    """
    from aurora_mlops.packaging import package_model

    result = package_model(model_dir, variant=variant, out=out_dir, eval_dir=eval_dir,
                           bench_dir=bench_dir, log_to=tracking_uri or None)
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
