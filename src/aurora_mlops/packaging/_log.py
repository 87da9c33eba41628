"""Log a written package to an MLflow tracking server as an MLflow 3 ``LoggedModel``.

The package directory is uploaded as it is (the same bytes that were tested locally), under a
run tagged with the trial; the result loads back by its ``models:/m-<id>`` URI.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aurora_mlops._mlflow_experiment import experiment_id as ensure_experiment
from aurora_mlops.packaging._info import read_package

__all__ = ["LoggedPackage", "log_package"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoggedPackage:
    """Where :func:`log_package` put a package.

    Attributes:
        model_uri: ``models:/m-<id>``: what ``mlflow.pyfunc.load_model`` takes.
        run_id: The run the model was logged under.
        model_id: The ``LoggedModel``'s id.
        experiment_id: The experiment of that run.
    """

    model_uri: str
    run_id: str
    model_id: str
    experiment_id: str


def log_package(
    path: str | Path,
    tracking_uri: str,
    *,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    experiment: str | None = None,
) -> LoggedPackage:
    """Upload the package at ``path`` to ``tracking_uri`` under a new run.

    Args:
        path: A directory written by :func:`package_model`.
        tracking_uri: MLflow tracking URI (credentials come from the environment only).
        run_name: Name of the run (default ``package-<variant>-<trial>``).
        tags: Extra tags on the run and the logged model.
        experiment: Experiment name (default: the settings' experiment).

    Raises:
        PackageError: ``path`` is not a package.
        mlflow.exceptions.MlflowException: The server refused or could not be reached.
    """
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelStatus

    from aurora_mlops.config import get_settings

    info = read_package(path)
    client = MlflowClient(tracking_uri=tracking_uri)
    name = experiment or get_settings().experiment_name
    experiment_id = ensure_experiment(client, name, tracking_uri)
    all_tags = {**info.tags(), **(tags or {})}
    run = client.create_run(
        experiment_id, run_name=run_name or f"package-{info.variant}-{info.trial}",
        tags={"aurora_mlops.step": "package", **all_tags},
    )
    run_id = run.info.run_id
    try:
        params = {k: str(v)[:500] for k, v in info.params.items()}
        model = client.create_logged_model(
            experiment_id, name=f"aurora-{info.variant}", source_run_id=run_id,
            tags=all_tags, params=params,
        )
        client.log_model_artifacts(model.model_id, str(path))
        client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
        if info.val_score is not None:
            client.log_metric(run_id, "val_score", info.val_score)
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    log.info("logged %s as models:/%s (run %s)", path, model.model_id, run_id)
    return LoggedPackage(
        model_uri=f"models:/{model.model_id}", run_id=run_id, model_id=model.model_id,
        experiment_id=experiment_id,
    )
