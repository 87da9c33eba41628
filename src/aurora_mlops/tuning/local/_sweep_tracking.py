"""The MLflow parent run of a local sweep, which every trial's run nests under.

The parent run's id is kept on the Optuna study (``katib_mlflow_parent_run_id``), so a resumed
sweep goes on logging under the same run. A tracking URI that cannot be used stops the sweep
before its first trial (:func:`start_parent_run`); a failure later, while finishing the run,
is logged and the sweep's result stands.
"""

from __future__ import annotations

import logging
from typing import Any

from aurora_mlops._mlflow_experiment import experiment_id as ensure_experiment
from aurora_mlops._redact import redact_uri
from aurora_mlops.errors import ConfigError, RegistryError
from aurora_mlops.tuning.katib._experiment import Experiment
from aurora_mlops.tuning.local._states import attr
from aurora_mlops.tuning.local._study_storage import create_mlflow_store, sqlite_file

log = logging.getLogger(__name__)

__all__ = ["ParentRun", "start_parent_run"]


class ParentRun:
    """The sweep's MLflow parent run (created once per study, found again on resume)."""

    def __init__(self, exp: Experiment, study: Any, tracking_uri: str | None) -> None:
        from mlflow.tracking import MlflowClient

        from aurora_mlops.config import get_settings

        key = attr("mlflow_parent_run_id")
        self.exp = exp
        db = sqlite_file(tracking_uri)
        if db is not None:  # a new local store: built without MLflow's thousand disk syncs
            create_mlflow_store(db)
        self._client = MlflowClient(tracking_uri=tracking_uri)
        self._tracking_uri = tracking_uri
        run_id = study.user_attrs.get(key)
        if run_id is None:
            run_id = self._create(get_settings().experiment_name)
            study.set_user_attr(key, run_id)
        self.run_id: str = run_id

    def _create(self, experiment_name: str) -> str:
        client, exp = self._client, self.exp
        exp_id = ensure_experiment(client, experiment_name, self._tracking_uri)
        run = client.create_run(exp_id, run_name=exp.name, tags={
            "katib.experiment": exp.name, "sweep.algorithm": exp.algorithm.name,
            "sweep.backend": "local", "sweep.spec": exp.source})
        run_id: str = run.info.run_id
        client.log_param(run_id, "algorithm", exp.algorithm.name)
        client.log_param(run_id, "objective", f"{exp.objective.type} {exp.objective.metric}")
        client.log_param(run_id, "max_trial_count", str(exp.max_trial_count))
        client.log_param(run_id, "parallel_trial_count", str(exp.parallel_trial_count))
        return run_id

    def finish(self, best: Any | None, status: str) -> None:
        """Log the best trial onto the run and end it (a failure is logged, not raised)."""
        client = self._client
        try:
            if best is not None:
                client.set_tag(self.run_id, "best_trial", best.user_attrs[attr("name")])
                client.log_metric(self.run_id, f"best_{self.exp.objective.metric}",
                                  float(best.value))
                for k, v in best.user_attrs.get(attr("assignments"), {}).items():
                    client.log_param(self.run_id, f"best.{k}", v)
            client.set_terminated(self.run_id, status)
        except Exception as e:
            log.warning("MLflow: could not finish the sweep's parent run (%s)",
                        redact_uri(str(e)))


def start_parent_run(exp: Experiment, study: Any, tracking_uri: str | None) -> ParentRun:
    """The sweep's parent run.

    Raises:
        RegistryError: ``tracking_uri`` is a server that does not answer ``/health``.
        ConfigError: The store refused the parent run. Either way before any trial starts: the
            trials are given the same URI and would each stop on it (``train-trial`` refuses
            a tracking URI it cannot use rather than training untracked).
    """
    from aurora_mlops.training import tracking_server_problem

    shown = redact_uri(tracking_uri or "the default store")
    fix = ("start it or fix the URI (AURORA_MLOPS_TRACKING_URI or MLFLOW_TRACKING_URI), or "
           "sweep without tracking")
    if tracking_uri and tracking_uri.startswith(("http://", "https://")):
        reason = tracking_server_problem(tracking_uri)
        if reason is not None:
            raise RegistryError(f"MLflow tracking server {shown} does not answer "
                                f"({redact_uri(reason)}): {fix}")
    try:
        return ParentRun(exp, study, tracking_uri)
    except Exception as e:
        why = redact_uri((str(e).splitlines() or [type(e).__name__])[0])
        raise ConfigError(f"MLflow at {shown} refused the sweep's parent run ({why}): "
                          f"{fix}") from e
