"""Tracking of one trial: a :class:`Tracker` protocol, MLflow and W&B behind it.

A trial logs to :class:`Trackers`, which fans each call out to the trackers the settings (or
``--tracker``) choose: :class:`MlflowTracker`, :class:`~._tracking_wandb.WandbTracker`, or
both. Each says the same things (parameters, per-epoch metrics, final metrics, artifacts' paths)
in its own service's terms.

With no tracking URI configured, MLflow runs go to MLflow's local default store. A URI that was
given (``--tracking-uri``, ``AURORA_MLOPS_TRACKING_URI`` or ``MLFLOW_TRACKING_URI``) must work
when the run starts: a server that does not answer, or a scheme this environment cannot serve
(an ``azureml://`` URI without the azureml-mlflow plugin), fails the trial before training with
one sentence, because a sweep whose trials silently log nowhere loses its record. Once a run has
started, a failed log call turns that tracker off with one warning and the trial goes on: hours
of training are worth more than the rest of one run's metrics.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from aurora_mlops._mlflow_experiment import experiment_id as ensure_experiment
from aurora_mlops._redact import redact_uri
from aurora_mlops.config import TrackerName
from aurora_mlops.errors import ConfigError, RegistryError
from aurora_mlops.training._tracking_wandb import WandbTracker

log = logging.getLogger(__name__)

__all__ = ["MlflowTracker", "Tracker", "Trackers", "make_tracker", "tracking_server_problem"]


class Tracker(Protocol):
    """One run in one tracking service; every call after a failure is a no-op."""

    def start(self, *, run_name: str, tags: Mapping[str, str],
              parent_run_id: str | None) -> None: ...
    def log_params(self, params: Mapping[str, Any]) -> None: ...
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...
    def log_artifact(self, path: Path) -> None: ...
    def end(self, status: str) -> None: ...
    def record(self) -> dict[str, Any]:
        """What ``trial.json`` keeps of the run (its id, where it is)."""
        ...


class Trackers:
    """The trial's trackers as one :class:`Tracker`: each call goes to every member in turn."""

    def __init__(self, members: list[Tracker]) -> None:
        self.members = members
        self.ended = False

    def _refuse_after_end(self, what: str) -> None:
        """A log call after :meth:`end` is a bug: MLflow would silently start a new, untagged
        run for it. Raise whether or not tracking is on, so that tests without a server catch
        it too."""
        if self.ended:
            raise RuntimeError(f"Tracker.{what} called after end(): log before ending the run")

    def start(self, *, run_name: str, tags: Mapping[str, str], parent_run_id: str | None) -> None:
        """Start every member's run; if one cannot start, end those already started (FAILED)
        and raise its error."""
        for i, member in enumerate(self.members):
            try:
                member.start(run_name=run_name, tags=tags, parent_run_id=parent_run_id)
            except BaseException:
                for started in self.members[:i]:
                    started.end("FAILED")
                raise

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._refuse_after_end("log_params")
        for member in self.members:
            member.log_params(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Per-epoch metrics with their ``step``; final metrics without one."""
        self._refuse_after_end("log_metrics")
        for member in self.members:
            member.log_metrics(metrics, step)

    def log_artifact(self, path: Path) -> None:
        self._refuse_after_end("log_artifact")
        for member in self.members:
            member.log_artifact(path)

    def end(self, status: str) -> None:
        """End every run with ``status``; any later log call raises ``RuntimeError``."""
        self.ended = True
        for member in self.members:
            member.end(status)

    def record(self) -> dict[str, Any]:
        """``mlflow_run_id`` always (``None`` without an MLflow run), then each member's."""
        out: dict[str, Any] = {"mlflow_run_id": None}
        for member in self.members:
            out.update(member.record())
        return out


def make_tracker(name: TrackerName, *, enabled: bool, uri: str | None,
                 experiment: str) -> Trackers:
    """The trackers ``name`` chooses (none when not ``enabled``), not started yet.

    Args:
        name: ``mlflow``, ``wandb`` or ``both``.
        enabled: ``False`` for a trial that logs nowhere (``--no-tracking``, a DDP worker).
        uri: The MLflow tracking URI (``None``: MLflow's default store).
        experiment: The MLflow experiment, and the W&B project.
    """
    members: list[Tracker] = []
    if enabled and name in ("mlflow", "both"):
        members.append(MlflowTracker(enabled=True, uri=uri, experiment=experiment))
    if enabled and name in ("wandb", "both"):
        members.append(WandbTracker(project=experiment))
    return Trackers(members)


def tracking_server_problem(uri: str, timeout: float = 3.0) -> str | None:
    """``None`` if ``uri`` answers ``/health``, else the reason it does not."""
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as r:
            return None if r.status == 200 else f"HTTP {r.status}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        return str(getattr(e, "reason", e))


class MlflowTracker:
    """A thin MLflow run wrapper; every call is a no-op once tracking is off or has failed."""

    def __init__(self, *, enabled: bool, uri: str | None, experiment: str) -> None:
        self.enabled = enabled
        self.uri = uri
        self.experiment = experiment
        self.run_id: str | None = None
        self._mlflow: Any = None
        # MLflow's global tracking URI before start() set ours (restored by end()):
        # set_tracking_uri also exports MLFLOW_TRACKING_URI, which would leak into everything
        # the same process runs afterwards (an in-process pipeline step, the next test).
        self._previous_uri: tuple[str | None] | None = None

    def _fail(self, what: str, e: BaseException) -> None:
        log.warning(
            "MLflow tracking stopped (%s failed: %s); the trial goes on without it", what,
            redact_uri(str(e)),
        )
        self.enabled = False

    def start(self, *, run_name: str, tags: Mapping[str, str], parent_run_id: str | None) -> None:
        """Start the run (nested under ``parent_run_id`` when given).

        Raises:
            RegistryError: The given tracking server does not answer ``/health``.
            ConfigError: The given tracking URI cannot be used here (its scheme has no store in
                this environment, or the server refused the run).
        """
        if not self.enabled:
            return
        if self.uri and self.uri.startswith(("http://", "https://")):
            reason = tracking_server_problem(self.uri)
            if reason is not None:
                raise RegistryError(
                    f"MLflow tracking server {redact_uri(self.uri)} does not answer "
                    f"({redact_uri(reason)}): start it or fix the URI (--tracking-uri, "
                    "AURORA_MLOPS_TRACKING_URI or MLFLOW_TRACKING_URI), or train with "
                    "--no-tracking"
                )
        try:
            import mlflow

            self._mlflow = mlflow
            if self.uri:
                from mlflow.environment_variables import MLFLOW_TRACKING_URI

                self._previous_uri = (MLFLOW_TRACKING_URI.get(),)
                mlflow.set_tracking_uri(self.uri)
            mlflow.set_experiment(experiment_id=ensure_experiment(
                mlflow.MlflowClient(), self.experiment, mlflow.get_tracking_uri()))
            all_tags = dict(tags)
            if parent_run_id:
                all_tags["mlflow.parentRunId"] = parent_run_id
            run = mlflow.start_run(run_name=run_name, tags=all_tags, log_system_metrics=False)
            self.run_id = run.info.run_id
        except Exception as e:
            if not self.uri:
                self._fail("start_run", e)
                return
            self._restore_uri()
            raise ConfigError(_unusable(self.uri, e)) from e

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log ``params`` (values cut to MLflow's 500 characters)."""
        if self.enabled:
            try:
                self._mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            except Exception as e:
                self._fail("log_params", e)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log ``metrics`` at ``step``."""
        if self.enabled:
            try:
                self._mlflow.log_metrics(dict(metrics), step=step)
            except Exception as e:
                self._fail("log_metrics", e)

    def log_artifact(self, path: Path) -> None:
        """Log the file at ``path`` as an artifact of the run."""
        if self.enabled:
            try:
                self._mlflow.log_artifact(str(path))
            except Exception as e:
                self._fail("log_artifact", e)

    def end(self, status: str) -> None:
        """End the run with ``status``."""
        if self.enabled and self.run_id:
            try:
                self._mlflow.end_run(status=status)
            except Exception as e:
                self._fail("end_run", e)
        self._restore_uri()

    def record(self) -> dict[str, Any]:
        return {"mlflow_run_id": self.run_id}

    def _restore_uri(self) -> None:
        if self._previous_uri is not None and self._mlflow is not None:
            self._mlflow.set_tracking_uri(self._previous_uri[0])
            self._previous_uri = None


def _unusable(uri: str, e: BaseException) -> str:
    """One sentence on why the given tracking URI ``uri`` cannot be used, and what to do."""
    where = "(--tracking-uri, AURORA_MLOPS_TRACKING_URI or MLFLOW_TRACKING_URI)"
    if uri.startswith("azureml://"):
        return (
            f"MLflow tracking URI {redact_uri(uri)} {where} is an Azure ML URI, which needs the "
            "azureml-mlflow plugin that this environment (and the project image) does not have: "
            "track to the in-cluster MLflow server, or install 'aurora-mlops[azure]' where the "
            "trial runs"
        )
    first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return (
        f"MLflow tracking URI {redact_uri(uri)} {where} cannot be used "
        f"({redact_uri(first_line)[:300]}): fix the URI or its credentials "
        "(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD), or train with --no-tracking"
    )
