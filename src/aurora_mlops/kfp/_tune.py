"""What the tune component runs: the variant's Katib Experiment (or the embedded runner).

Re-exported by :mod:`aurora_mlops.kfp.steps` as :func:`sweep`. The trials read the dataset on
the data volume and write their folders on the artifacts volume; the step hands on a
``best.json`` naming the best trial's checkpoint there (no copy of the checkpoint).
"""

from __future__ import annotations

import logging
import shlex
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from aurora_mlops._io import write_json
from aurora_mlops.errors import AuroraMLOpsError, ConfigError
from aurora_mlops.kfp._refs import pod_namespace, run_folder

log = logging.getLogger(__name__)

__all__ = ["ARTIFACTS_ROOT", "DATA_ROOT", "StepFailed", "sweep"]

#: Where the data and artifacts volumes are mounted in the pipeline's pods and Katib's trials.
DATA_ROOT = "/mnt/data"
ARTIFACTS_ROOT = "/mnt/artifacts"
#: What a local sweep leaves that the KFP UI and the report read (small files only).
_SWEEP_SUMMARY = ("status.json", "best.json", "study.db", "halving.json")


class StepFailed(AuroraMLOpsError, RuntimeError):
    """A pipeline step's command failed; its own error was printed just before."""


def _trial_data(data: Path, data_root: str) -> str:
    """``data`` as the trials see it: the same file under their own data mount.

    Raises:
        ConfigError: ``data`` is not on the data volume, so Katib's trials cannot read it.
    """
    try:
        rel = PurePosixPath(data).relative_to(data_root)
    except ValueError:
        raise ConfigError(f"dataset {data} is not on the data volume ({data_root}); Katib's "
                          "trials read only that volume: set dataset_uri to a path under "
                          f"{data_root}, a URL, or `synthetic`") from None
    return str(PurePosixPath(DATA_ROOT) / rel)


def _best_json(best_dir: Path, *, checkpoint: Path, experiment: str, best_trial: str,
               parameters: dict[str, str], metrics: dict[str, float]) -> dict[str, Any]:
    """Write ``best_dir/best.json``, naming the checkpoint where the trial wrote it.

    Raises:
        StepFailed: The checkpoint is not there (the best trial wrote none, or the artifacts
            volume is mounted elsewhere in this pod than in the trials).
    """
    if not checkpoint.is_file():
        raise StepFailed(f"best trial {best_trial}: no {checkpoint}; is the artifacts volume "
                         "mounted where the trials wrote it?")
    from aurora_mlops.tuning import best_document

    trial = checkpoint.parent / "trial.json"
    doc = best_document(experiment=experiment, best_trial=best_trial, parameters=parameters,
                        metrics=metrics, checkpoint=str(checkpoint.resolve()),
                        trial=str(trial.resolve()) if trial.is_file() else None)
    best_dir.mkdir(parents=True, exist_ok=True)
    write_json(best_dir / "best.json", doc, sort_keys=False)
    return doc


def _local_data_dir(data: Path, variant: str, work: Path) -> Path:
    """A folder holding ``<variant>.nc`` (what the rendered trials read) that is ``data``."""
    if data.name == f"{variant}.nc":
        return data.parent
    folder = work.parent / "sweep-data"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / f"{variant}.nc"
    if not link.exists():
        link.symlink_to(data.resolve())
    return folder


def _katib_best(exp: Any, best_dir: Path, artifacts_root: str, **run: Any) -> dict[str, Any]:
    """Run ``exp`` on Katib, name its best trial with a checkpoint, prune the other folders."""
    from aurora_mlops.config import get_settings
    from aurora_mlops.tuning import prune_trials, read_halving, run_halving_katib, run_katib

    def here(path: str) -> Path:  # a trial's path (under /mnt/artifacts) as this pod sees it
        p = PurePosixPath(path)
        if p.is_relative_to(ARTIFACTS_ROOT):
            p = PurePosixPath(artifacts_root) / p.relative_to(ARTIFACTS_ROOT)
        return Path(p)

    if read_halving(exp.raw, exp.source) is not None:
        h = run_halving_katib(exp, here=here, **run)
        write_json(best_dir / "halving.json", h.summary(), sort_keys=False)
        doc = _best_json(best_dir, checkpoint=here(str(h.checkpoint)), experiment=exp.name,
                         best_trial=h.best_trial, parameters=h.parameters, metrics=h.metrics)
        # Rung by rung from the last: the full-budget trials first, then the ones they resumed.
        ranked = [t for rung in reversed(h.result.rungs) for t in rung.trials]
        prune_trials(ranked, keep=get_settings().keep_trials, exported=h.best_trial,
                     local=here)
        return doc
    k = run_katib(exp, has_checkpoint=lambda p: here(p).is_file(), **run)
    doc = _best_json(best_dir, checkpoint=here(str(k.checkpoint)), experiment=exp.name,
                     best_trial=str(k.best_trial), parameters=dict(k.parameters),
                     metrics=dict(k.metrics))
    prune_trials(k.trials, keep=get_settings().keep_trials, exported=str(k.best_trial),
                 local=here)
    return doc


def _keep_summary(work: Path, sweep_dir: Path) -> None:
    """Copy the small files of a local sweep that the KFP UI and the report read."""
    for name in _SWEEP_SUMMARY:
        if (work / name).is_file():
            sweep_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(work / name, sweep_dir / name)


def _local_best(exp: Any, best_dir: Path, sweep_dir: Path, *, work: Path, data_dir: Path,
                tracking_uri: str) -> dict[str, Any]:
    """Run ``exp`` on the embedded runner in ``work``; name its best trial, keep a summary."""
    from aurora_mlops.tuning import read_halving, run_halving_local, run_local

    if read_halving(exp.raw, exp.source) is not None:
        h = run_halving_local(exp, work_dir=work, data_dir=data_dir, progress=False,
                              tracking_uri=tracking_uri or None)
        _keep_summary(work, sweep_dir)
        return _best_json(best_dir, checkpoint=Path(str(h.checkpoint)), experiment=exp.name,
                          best_trial=h.best_trial, parameters=h.parameters, metrics=h.metrics)
    r = run_local(exp, work_dir=work, data_dir=data_dir, progress=False,
                  tracking_uri=tracking_uri or None)
    _keep_summary(work, sweep_dir)
    if r.best_trial is None or r.checkpoint is None:
        raise StepFailed(f"no trial of {exp.name} succeeded ({r.reason}); see "
                         f"{work / 'status.json'}")
    return _best_json(best_dir, checkpoint=Path(r.checkpoint), experiment=exp.name,
                      best_trial=str(r.best_trial), parameters=dict(r.parameters),
                      metrics=dict(r.metrics))


def sweep(*, variant: str, algorithm: str, profile: str, data: str | Path,
          best_dir: str | Path, sweep_dir: str | Path, max_trials: int, parallel_trials: int,
          backend: str, run_id: str, trial_args: str = "", tracking_uri: str = "",
          namespace: str = "", data_root: str = DATA_ROOT,
          artifacts_root: str = ARTIFACTS_ROOT, katib_api: Any = None,
          katib_watcher: Any = None, namespace_file: str | None = None) -> dict[str, Any]:
    """Run the variant's Katib Experiment (``backend`` katib or local); name its best trial.

    Args:
        variant, algorithm, profile: Which rendered Experiment (``katib/...``) to run.
        data: The dataset (on the data volume).
        best_dir: Receives ``best.json`` (absolute paths on the artifacts volume).
        sweep_dir: Local: receives the sweep's status, best trial and study (small files).
        max_trials, parallel_trials: ``maxTrialCount`` and ``parallelTrialCount``.
        backend: ``local`` (embedded Optuna runner) or ``katib`` (the cluster).
        run_id: The pipeline run's id: the Experiment's name suffix (Katib), the folder of
            the local sweep's trials.
        trial_args: Extra ``--NAME=VALUE`` appended to every trial's command (budgets).
        tracking_uri: MLflow URI for the sweep and its trials (empty: the settings').
        namespace: Katib namespace (empty: this pod's own, where the run and its volumes are;
            outside a pod, the settings').
        data_root, artifacts_root: Where this pod mounts the data and artifacts volumes (the
            trials mount them at ``/mnt/data`` and ``/mnt/artifacts``).
        katib_api, katib_watcher: Katib: injected ``CustomObjectsApi`` and watch (tests).
        namespace_file: Where the pod's namespace is read (tests).

    Returns:
        The ``best.json`` written into ``best_dir``.
    """
    from aurora_mlops.tuning import pipeline_experiment, warm_trial_workers

    if backend == "local":
        # The trials' forkserver imports torch and aurora on the other core while the
        # Experiment is built (its defaults trial reads the Aurora class's defaults: seconds).
        warm_trial_workers()
    data = Path(data)
    extra = shlex.split(trial_args)
    if backend == "katib":
        extra.append(f"--data={_trial_data(data, data_root)}")
    elif backend != "local":
        raise ConfigError(f"backend must be `local` or `katib`, got {backend!r}")
    exp = pipeline_experiment(variant=variant, algorithm=algorithm, profile=profile,
                              max_trials=max_trials, parallel_trials=parallel_trials,
                              extra_args=extra,
                              name_suffix=run_id[:8] if backend == "katib" else "")
    if backend == "katib":
        from aurora_mlops.config import get_settings

        ns = (namespace or pod_namespace(*([namespace_file] if namespace_file else []))
              or get_settings().namespace)
        return _katib_best(exp, Path(best_dir), artifacts_root, namespace=ns, api=katib_api,
                           watcher=katib_watcher)
    work = run_folder(artifacts_root, run_id, variant, "sweep")
    return _local_best(exp, Path(best_dir), Path(sweep_dir), work=work,
                       data_dir=_local_data_dir(data, variant, work), tracking_uri=tracking_uri)
