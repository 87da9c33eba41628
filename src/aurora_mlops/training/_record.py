"""What a trial leaves behind: ``model.ckpt``, ``train_state.pt`` (what a resumed trial
continues from), ``config.json``, ``trial.json`` (or ``failure.json``), and the system metrics
logged to MLflow. Only rank 0 writes.

Durability: each file appears whole under its name or not at all, whenever the process dies
(written beside it, then renamed), but none is synced to disk (``atomic_write(durable=False)``):
a sync per file costs tens of milliseconds on a busy disk, a visible share of a short sweep
trial's time outside training. After an OS crash or power cut a file may be missing or empty;
``trial.json`` records the SHA-256 and size of the checkpoint and the state, which packaging
and ``--resume-from`` check before using either, so such a loss is refused, never trained or
served on: the trial is run again."""

from __future__ import annotations

import platform
import resource
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aurora_mlops._io import atomic_write, sha256_file, write_json
from aurora_mlops._version import __version__
from aurora_mlops.training._data import TrialData
from aurora_mlops.training._distributed import Distributed
from aurora_mlops.training._loop import LoopResult
from aurora_mlops.training._params import TrialParams
from aurora_mlops.training._resume import STATE_FILE, ResumePoint, init_ref, pack_state
from aurora_mlops.training._tracking import Tracker
from aurora_mlops.variants import Profile, VariantSpec

__all__ = ["TrialRecord", "write_failure"]


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


#: Read once, when the module is imported: a trial forked from the sweep's preloaded server
#: inherits it instead of scanning every installed package's metadata as it ends (15-30 ms).
_AURORA_VERSION = _dist_version("microsoft-aurora")


def write_failure(output_dir: Path, error: Exception, history: list[dict[str, float]]) -> None:
    """``failure.json``: the error and the epochs that finished before it."""
    write_json(output_dir / "failure.json",
               {"status": "failed", "error": str(error), "history": history})


@dataclass
class TrialRecord:
    """The facts of a finished trial that its files record."""

    variant: VariantSpec
    profile: Profile
    params: TrialParams
    data_path: str
    data: TrialData
    init: str | Path | None
    dist: Distributed
    resumed_from: ResumePoint | None = None

    def config(self) -> dict[str, Any]:
        """``config.json``: what rebuilds the trained model."""
        return {
            "variant": self.variant.name,
            "aurora_class": self.variant.aurora_class,
            "profile": self.profile,
            "model_overrides": self.params.model_overrides(),
            "history": self.data.history,
            "levels": list(self.data.levels),
        }

    def system(self, loop: LoopResult, duration: float) -> dict[str, Any]:
        """Timings and peak memory of this process (``total_train_steps``: a resumed trial's
        earlier steps included)."""
        steps, samples, secs = loop.own()
        return {
            "duration_s": duration,
            "train_seconds": secs,
            "train_steps": steps,
            "total_train_steps": loop.steps,
            "samples_per_s": samples / secs if secs > 0 else 0.0,
            "peak_cpu_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_cuda_mib": (
                torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
            ),
        }

    def write(self, output_dir: Path, loop: LoopResult, duration: float,
              tracker: Tracker, state: dict[str, Any] | None) -> Path:
        """Write the best weights, the end ``state`` (unless ``None``), ``config.json`` and
        ``trial.json``; returns the checkpoint."""
        best = loop.best_state
        assert best is not None
        # The weights are written on a thread while MLflow logs, whose commits mostly wait for
        # the disk; its error, if any, is raised here by result().
        with ThreadPoolExecutor(max_workers=1) as pool:
            saving = pool.submit(_save_weights, output_dir, best, state)
            system = self.system(loop, duration)
            tracker.log_metrics({f"system_{k}": float(v) for k, v in system.items()
                                 if v is not None})
            config = self.config()
            write_json(output_dir / "config.json", config, durable=False)
            tracker.log_artifact(output_dir / "config.json")
            ckpt, refs = saving.result()
        d = self.data
        write_json(output_dir / "trial.json", {
            "status": "succeeded",
            "variant": self.variant.name,
            "profile": self.profile,
            "params": self.params.model_dump(mode="json"),
            "config": config,
            "data": {"path": self.data_path, "splits": d.splits.as_dict(),
                     "levels": list(d.levels)},
            "event_threshold": d.threshold,
            "metrics": {k: float(v) for k, v in loop.best_metrics.items()},
            "best_epoch": loop.best_epoch,
            "history": loop.history,
            "step_losses": loop.step_losses,
            "timings": system,
            **refs,
            "resumed_from": None if self.resumed_from is None else self.resumed_from.record(),
            "norm_stats": "norm_stats.json",
            "norm_stats_source": d.stats_source,
            # A resumed trial's weights come from its state: record where the training began.
            "init": (init_ref(self.init) if self.resumed_from is None
                     else self.resumed_from.trial["init"]),
            **tracker.record(),  # mlflow_run_id, and wandb_run where W&B tracks the trial
            "versions": {
                "aurora_mlops": __version__,
                "torch": torch.__version__,
                "aurora": _AURORA_VERSION,
                "python": platform.python_version(),
                "world_size": self.dist.world,
                "device": str(self.dist.device),
            },
        }, durable=False)
        return ckpt


def _save_weights(output_dir: Path, best: dict[str, Any],
                  state: dict[str, Any] | None) -> tuple[Path, dict[str, Any]]:
    """Write ``model.ckpt`` and ``train_state.pt`` (or remove a stale one when ``state`` is
    ``None``); the checkpoint's path and ``trial.json``'s ``checkpoint`` and ``train_state``."""
    ckpt, state_file = output_dir / "model.ckpt", output_dir / STATE_FILE
    atomic_write(ckpt, lambda f: torch.save(best, f), durable=False)
    if state is not None:
        atomic_write(state_file, lambda f: torch.save(pack_state(state), f), durable=False)
    else:  # a stale state beside new weights would resume the wrong run
        state_file.unlink(missing_ok=True)
    return ckpt, {"checkpoint": _file_ref(ckpt),
                  "train_state": _file_ref(state_file) if state is not None else None}


def _file_ref(path: Path) -> dict[str, Any]:
    """How ``trial.json`` names a file beside it: its name, SHA-256 and size."""
    return {"path": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}
