"""A trial given a tracking URI that it cannot use fails before training, in one sentence.

Trials on a cluster get their URI from the Secret the manifests name; a typo there, a server
that is down, or an ``azureml://`` URI in an image without azureml-mlflow used to leave a whole
sweep training without a record. Without a URI, MLflow's local default store is used as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aurora_mlops.cli import main
from aurora_mlops.errors import ConfigError
from aurora_mlops.training._tracking import MlflowTracker

AZURE_URI = ("azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/SUB/resourceGroups/"
             "RG/providers/Microsoft.MachineLearningServices/workspaces/WS")


@pytest.fixture
def clean_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No tracking URI in the environment before, and none may be left behind after (MLflow's
    ``set_tracking_uri`` exports it, which would leak into whatever runs next in the process)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("AURORA_MLOPS_TRACKING_URI", raising=False)
    yield
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_an_azureml_uri_without_the_plugin_says_what_to_do(clean_tracking_uri: None) -> None:
    pytest.importorskip("mlflow")
    try:
        import azureml.mlflow  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - the lock leaves the plugin out; with it the URI would be tried
        pytest.skip("azureml-mlflow is installed here")
    tracker = MlflowTracker(enabled=True, uri=AZURE_URI, experiment="x")
    with pytest.raises(ConfigError) as info:
        tracker.start(run_name="r", tags={}, parent_run_id=None)
    message = str(info.value)
    assert "azureml-mlflow" in message and "in-cluster MLflow" in message
    assert "\n" not in message
    assert tracker.run_id is None
    import mlflow

    assert not mlflow.get_tracking_uri().startswith("azureml://")  # restored


def test_an_unusable_store_fails_with_the_uri_and_the_reason(
    tmp_path: Path, clean_tracking_uri: None
) -> None:
    # A SQLite file below a plain file: MLflow can neither create the folder nor open the store.
    (tmp_path / "a-file").write_text("")
    uri = f"sqlite:///{tmp_path}/a-file/mlflow.db"
    tracker = MlflowTracker(enabled=True, uri=uri, experiment="x")
    with pytest.raises(ConfigError, match="cannot be used") as info:
        tracker.start(run_name="r", tags={}, parent_run_id=None)
    assert uri in str(info.value) and "--no-tracking" in str(info.value)
    assert "\n" not in str(info.value)
    import mlflow

    assert mlflow.get_tracking_uri() != uri  # restored


def test_without_a_uri_the_local_default_store_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_tracking_uri: None
) -> None:
    monkeypatch.chdir(tmp_path)
    tracker = MlflowTracker(enabled=True, uri=None, experiment="local")
    tracker.start(run_name="r", tags={"k": "v"}, parent_run_id=None)
    try:
        assert tracker.enabled and tracker.run_id
    finally:
        tracker.end("FINISHED")


def test_train_trial_exits_1_in_one_line_before_training(
    synthetic_data: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    clean_tracking_uri: None,
) -> None:
    out = tmp_path / "t"
    code = main(["train-trial", "--variant", "medium-res", "--profile", "smoke",
                 "--data", str(synthetic_data("medium-res")), "--output", str(out),
                 "--tracking-uri", "http://127.0.0.1:9", "--epochs=1", "--steps_per_epoch=2"])
    err = capsys.readouterr().err
    assert code == 1
    lines = [ln for ln in err.splitlines() if ln.startswith("aurora-mlops: error:")]
    assert len(lines) == 1 and "http://127.0.0.1:9" in lines[0], err
    assert "Traceback" not in err
    assert not (out / "trial.json").exists() and not (out / "model.ckpt").exists()


def test_a_sqlite_store_keeps_its_artifacts_beside_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_tracking_uri: None
) -> None:
    """MLflow's default artifact root on a SQL store is ``./mlruns`` of the current folder;
    a run started elsewhere (a clone, the repository) must not write there."""
    import mlflow

    store, elsewhere = tmp_path / "work", tmp_path / "started-here"
    store.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    artifact = tmp_path / "log.txt"
    artifact.write_text("trial log\n")
    tracker = MlflowTracker(enabled=True, uri=uri, experiment="artifact-home")
    tracker.start(run_name="r", tags={}, parent_run_id=None)
    try:
        tracker.log_artifact(artifact)
    finally:
        tracker.end("FINISHED")
    assert list(elsewhere.iterdir()) == []
    logged = list((store / "mlartifacts" / "artifact-home").rglob("log.txt"))
    assert len(logged) == 1 and logged[0].read_text() == "trial log\n"
    location = mlflow.MlflowClient(uri).get_experiment_by_name("artifact-home").artifact_location
    assert location == (store / "mlartifacts" / "artifact-home").as_uri()
