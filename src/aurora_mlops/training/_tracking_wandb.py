"""Weights & Biases tracking of one trial (the optional ``wandb`` extra).

What MLflow gets, W&B gets in its own terms: the trial's parameters become the run's config
(its tags under ``tags``), per-epoch metrics its history at the epoch's step, final metrics its
summary, and the artifacts' paths the summary's ``artifacts`` list (the files stay where the
trial wrote them). W&B reads its own variables: ``WANDB_MODE=offline`` keeps the run in a
local folder (``WANDB_DIR``, else ``./wandb``) for ``wandb sync`` later, ``WANDB_API_KEY``
logs in. The project is the MLflow experiment's name; a Katib Experiment (or a sweep's MLflow
parent run) is the run's group.

A run that cannot start (no ``wandb`` package, no API key, a bad ``WANDB_MODE``) fails the
trial before training in one sentence; once started, a failed call turns W&B off with one
warning and the trial goes on, as with MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aurora_mlops.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["WandbTracker"]

_CHOICE = "(--tracker or AURORA_MLOPS_TRACKER)"


class WandbTracker:
    """A thin W&B run wrapper; every call is a no-op once the run has failed."""

    def __init__(self, *, project: str) -> None:
        self.project = project
        self.enabled = True
        self._run: Any = None
        self._artifacts: list[str] = []
        self._ref: dict[str, str] = {}

    def _fail(self, what: str, e: BaseException) -> None:
        log.warning("W&B tracking stopped (%s failed: %s); the trial goes on without it", what, e)
        self.enabled = False

    def start(self, *, run_name: str, tags: Mapping[str, str], parent_run_id: str | None) -> None:
        """Start the run (grouped under the Katib Experiment or ``parent_run_id``).

        Raises:
            ConfigError: ``wandb`` is not installed, or W&B refused to start the run.
        """
        try:
            import wandb
        except ImportError as e:
            raise ConfigError(
                f"W&B tracking {_CHOICE} needs the wandb package: install "
                "'aurora-mlops[wandb]', or track with --tracker mlflow"
            ) from e
        try:
            # console="off": W&B must not wrap stdout, where Katib reads the metric lines.
            # reinit="create_new": every trial of one process (a sweep's forkserver, tests)
            # is its own run, never the previous one returned again.
            self._run = wandb.init(
                project=self.project, name=run_name, job_type="train-trial",
                group=tags.get("katib.experiment") or parent_run_id,
                config={"tags": dict(tags)}, reinit="create_new",
                settings=wandb.Settings(console="off", quiet=True),
            )
        except Exception as e:
            first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ConfigError(
                f"W&B run of {run_name!r} could not start ({first_line[:300]}): log in "
                f"(WANDB_API_KEY or `wandb login`), set WANDB_MODE=offline, or choose "
                f"mlflow {_CHOICE}"
            ) from e
        run = self._run
        self._ref = {"id": run.id, "project": run.project, "mode": run.settings.mode,
                     "dir": str(Path(run.dir).parent)}

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Add ``params`` to the run's config."""
        if self.enabled:
            try:
                self._run.config.update(dict(params), allow_val_change=True)
            except Exception as e:
                self._fail("config.update", e)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Per-epoch ``metrics`` into the history at ``step``; without a step, final metrics
        into the summary (a history row would take the next step and read as an epoch)."""
        if self.enabled:
            try:
                if step is None:
                    self._run.summary.update(dict(metrics))
                else:
                    self._run.log(dict(metrics), step=step)
            except Exception as e:
                self._fail("log", e)

    def log_artifact(self, path: Path) -> None:
        """Name the file at ``path`` in the summary's ``artifacts`` (not uploaded: the trial
        folder holds it)."""
        if self.enabled:
            self._artifacts.append(str(Path(path).resolve()))
            try:
                self._run.summary["artifacts"] = list(self._artifacts)
            except Exception as e:
                self._fail("summary", e)

    def end(self, status: str) -> None:
        """Finish the run: exit code 0 for ``FINISHED``, else 1 (W&B marks it failed)."""
        if self.enabled and self._run is not None:
            try:
                self._run.finish(exit_code=0 if status == "FINISHED" else 1)
            except Exception as e:
                self._fail("finish", e)

    def record(self) -> dict[str, Any]:
        """The run's id, project, mode and local folder (``wandb sync`` takes the folder)."""
        return {"wandb_run": self._ref} if self._ref else {}
