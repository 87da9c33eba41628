"""The MLflow experiment that runs and logged models go into, with a home for its artifacts.

MLflow gives an experiment created on a SQL store without an ``artifact_location`` the
default root ``./mlruns``, relative to the folder the process was started in (not to the
database), so a local run's artifacts landed wherever it was started (a clone's ``mlruns/``).
Here an experiment created on a local SQLite store keeps its artifacts beside the database:
``<folder of the .db>/mlartifacts/<experiment name>``. A tracking server (``http(s)://``) or
any other store keeps its own default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["artifact_root", "experiment_id"]


def artifact_root(tracking_uri: str | None, name: str) -> str | None:
    """Where a new experiment ``name`` on ``tracking_uri`` keeps artifacts (``None``: the
    store's default)."""
    if not tracking_uri or not tracking_uri.startswith("sqlite:///"):
        return None
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    if not db.is_absolute():  # sqlite:///relative.db is relative to the current folder
        db = Path.cwd() / db
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "default"
    return (db.parent / "mlartifacts" / safe).resolve().as_uri()


def experiment_id(client: Any, name: str, tracking_uri: str | None) -> str:
    """The id of experiment ``name`` on ``client``'s store, created when missing.

    Args:
        client: An ``mlflow.MlflowClient`` on ``tracking_uri``.
        name: The experiment's name.
        tracking_uri: The store's URI (decides the artifact root of a new experiment).
    """
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(
            name, artifact_location=artifact_root(tracking_uri, name)))
    except MlflowException as e:  # another process (a parallel trial) created it first
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        again = client.get_experiment_by_name(name)
        if again is None:
            raise
        return str(again.experiment_id)
