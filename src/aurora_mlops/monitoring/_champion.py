"""The model being watched: the registry's champion (``models:/NAME@ALIAS``), or a package."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr

from aurora_mlops.errors import ConfigError, RegistryError

__all__ = ["Champion", "load_champion"]

_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[\w-]+)$")


@dataclass
class Champion:
    """A loaded model and which registry version it is.

    Attributes:
        name: Registered model name (the package folder's name for a local package).
        version: Its version (``local`` for a package folder).
        variant: The Aurora variant.
        trained: The loaded trial (:class:`aurora_mlops.training.TrainedModel`).
        training_data: The dataset the package records it was trained on (``""``: none).
    """

    name: str
    version: str
    variant: str
    trained: Any
    training_data: str = ""

    @property
    def label(self) -> str:
        """``NAME/VERSION``, as the history records it."""
        return f"{self.name}/{self.version}"

    def forecast(self, data: xr.Dataset, leads: int) -> xr.Dataset:
        """Forecasts from every initialisation of ``data`` with its history and leads."""
        from aurora_mlops.monitoring._window import rollout_window

        return rollout_window(self.trained, data, self.variant, leads=leads)


def load_champion(model_uri: str, *, tracking_uri: str | None, cache_dir: str | Path
                  ) -> Champion:
    """Load ``models:/NAME@ALIAS`` from the registry at ``tracking_uri`` (downloaded once
    per version into ``cache_dir``), or a package folder written by ``aurora-mlops package``.

    Raises:
        ConfigError: ``model_uri`` is neither; the alias is not set.
        RegistryError: The registry cannot be reached.
    """
    m = _ALIAS_URI.match(model_uri)
    if m is None:
        folder = Path(model_uri)
        if not (folder / "artifacts" / "contract.json").is_file():
            raise ConfigError(f"--model {model_uri}: not models:/NAME@ALIAS nor a package "
                              "folder (aurora-mlops package writes one)")
        return _loaded(folder, folder.name, "local")
    name, alias = m["name"], m["alias"]
    version = _alias_version(name, alias, tracking_uri)
    local = Path(cache_dir) / name / version
    if not (local / "artifacts" / "contract.json").is_file():
        _download(name, version, tracking_uri, local)
    return _loaded(local, name, version)


def _download(name: str, version: str, tracking_uri: str | None, local: Path) -> None:
    """Download a registered version's files into ``local``.

    Not ``download_artifacts("models:/NAME/VERSION")``: MLflow resolves a ``models:/`` URI
    against the process-wide registry URI, not the one passed, so the version's own artifact
    location is looked up here and downloaded from the given store.
    """
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    location = client.get_model_version_download_uri(name, version)
    if location.startswith("models:/m-"):  # MLflow 3: a logged model, not a run's folder
        location = client.get_logged_model(location.removeprefix("models:/")).artifact_location
    local.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=local.parent, prefix=f".{version}-") as tmp:
        got = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=tmp, tracking_uri=tracking_uri))
        roots = [p.parent for p in got.rglob("MLmodel")] if got.is_dir() else []
        if not roots:
            raise ConfigError(f"models:/{name}/{version} holds no MLflow model "
                              "(no MLmodel file); publish a package made by aurora-mlops "
                              "package")
        shutil.rmtree(local, ignore_errors=True)
        os.replace(min(roots, key=lambda p: len(p.parts)), local)


def _loaded(folder: Path, name: str, version: str) -> Champion:
    """The package in ``folder`` loaded, with the training data its ``data_config.json``
    names."""
    import json

    from aurora_mlops.packaging import load_forecaster

    f = load_forecaster(folder)
    assert f.contract is not None
    config = folder / "artifacts" / "data_config.json"
    data = json.loads(config.read_text()).get("path", "") if config.is_file() else ""
    return Champion(name=name, version=version, variant=f.contract.variant, trained=f.trained,
                    training_data=str(data or ""))


def _alias_version(name: str, alias: str, tracking_uri: str | None) -> str:
    import mlflow
    from mlflow.exceptions import MlflowException

    from aurora_mlops._redact import redact_uri

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as e:
        if e.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise ConfigError(f"--model models:/{name}@{alias}: the registry at "
                              f"{redact_uri(tracking_uri or '')} has no {alias!r} alias on "
                              f"{name!r}; publish a model first (aurora-mlops publish)") from e
        raise RegistryError(f"the registry at {redact_uri(tracking_uri or '')} failed: "
                            f"{e.error_code}") from e
