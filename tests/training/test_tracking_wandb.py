"""Weights & Biases as a trial tracker, beside or instead of MLflow, in W&B's offline mode.

The offline run folder is read back record by record: W&B 0.31 keeps a run's config, history
and summary in its ``run-<id>.wandb`` transaction log (no ``wandb-summary.json`` offline), so
the test decodes that log with W&B's own protobuf messages.
"""

from __future__ import annotations

import json
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aurora_mlops.cli import main
from aurora_mlops.config import get_settings
from aurora_mlops.errors import ConfigError
from aurora_mlops.training._tracking import make_tracker

wandb = pytest.importorskip("wandb")

RUN = ["--epochs=2", "--steps_per_epoch=2"]


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """W&B offline, writing below ``tmp_path``; MLflow to a SQLite store there too; settings
    re-read from this environment."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("AURORA_MLOPS_TRACKER", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("AURORA_MLOPS_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "wandb-dir").mkdir()
    get_settings.cache_clear()
    # W&B reads its variables once a process (its session); a new session reads these.
    wandb.teardown()
    yield tmp_path
    wandb.teardown()
    get_settings.cache_clear()


def _records(log_file: Path) -> list[Any]:
    """The protobuf records of a W&B transaction log.

    The format (wandb/wandb core/pkg/leveldb/record.go): a 7-byte header (``:W&B``, magic
    0xBEE1, version), then LevelDB log chunks in 32 KiB blocks counted from the file's start,
    each chunk a 7-byte header (CRC32 4, length 2 little-endian, type 1: full 1, first 2,
    middle 3, last 4); a block's tail shorter than a chunk header is padding.
    """
    from wandb.proto import wandb_internal_pb2

    data, block = log_file.read_bytes(), 32 * 1024
    assert data[:4] == b":W&B" and struct.unpack("<H", data[4:6])[0] == 0xBEE1
    pos, parts, records = 7, [], []
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            break
        parts.append(data[pos + 7:pos + 7 + length])
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(parts))
            records.append(record)
            parts = []
    return records


def _item_key(item: Any) -> str:
    return item.key or ".".join(item.nested_key)


def _finished_records(log_file: Path, timeout: float = 60.0) -> list[Any]:
    """The records of a run's log once its exit record is in it: ``finish()`` returns before
    the W&B service process has necessarily written the rest of the file (a loaded machine
    once read it with no history yet); its own reader waits for the exit record too
    (wandb/wandb core/internal/leet: WandbReader's exitSeen)."""
    deadline = time.monotonic() + timeout
    while True:
        records = _records(log_file)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or \
                time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def _run_contents(run_dir: Path) -> dict[str, Any]:
    """``config``, ``history`` (one dict a step) and ``summary`` of an offline run folder."""
    (log_file,) = run_dir.glob("run-*.wandb")
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for record in _finished_records(log_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            config.update({u.key: json.loads(u.value_json) for u in record.run.config.update})
        elif kind == "config":
            config.update({_item_key(u): json.loads(u.value_json) for u in record.config.update})
        elif kind == "history":
            history.append({_item_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            summary.update({_item_key(u): json.loads(u.value_json)
                            for u in record.summary.update})
    return {"config": config, "history": history, "summary": summary}


def _train(synthetic_data: Callable[..., Path], out: Path, *flags: str) -> dict[str, Any]:
    code = main(["train-trial", "--variant", "medium-res", "--profile", "smoke", "--data",
                 str(synthetic_data("medium-res")), "--output", str(out), *flags, *RUN])
    assert code == 0
    trial: dict[str, Any] = json.loads((out / "trial.json").read_text())
    return trial


def test_both_trackers_log_the_same_trial(
    offline: Path, synthetic_data: Callable[..., Path], capsys: pytest.CaptureFixture[str],
) -> None:
    import mlflow

    trial = _train(synthetic_data, offline / "t", "--tracker", "both")
    run = trial["wandb_run"]
    assert run["mode"] == "offline" and run["project"] == "aurora-mlops"
    run_dir = Path(run["dir"])
    assert run_dir.parent == offline / "wandb-dir" / "wandb" and run_dir.name.endswith(run["id"])
    wb = _run_contents(run_dir)
    # Parameters: the whole TrialParams, as MLflow's params have them.
    assert wb["config"]["learning_rate"] == trial["params"]["learning_rate"]
    assert wb["config"]["epochs"] == 2 and wb["config"]["tags"]["variant"] == "medium-res"
    # Per-epoch metrics: one history row an epoch, at the epoch's step, the trial's values.
    rows = [r for r in wb["history"] if "val_score" in r]
    assert [r["_step"] for r in rows] == [0, 1]
    assert [r["val_score"] for r in rows] == pytest.approx([h["val_score"] for h in
                                                           trial["history"]])
    # Final metrics in the summary, not as a third epoch; the artifact's path named there.
    assert wb["summary"]["system_train_steps"] == 4
    assert wb["summary"]["artifacts"] == [str((offline / "t" / "config.json").resolve())]
    # MLflow logged the same trial beside it.
    client = mlflow.MlflowClient(f"sqlite:///{offline / 'mlflow.db'}")
    mlflow_run = client.get_run(trial["mlflow_run_id"])
    steps = client.get_metric_history(mlflow_run.info.run_id, "val_score")
    assert [m.value for m in steps] == pytest.approx([r["val_score"] for r in rows])
    assert mlflow_run.data.metrics["system_train_steps"] == 4
    # W&B left stdout alone: the Katib metric lines are there, one an epoch.
    assert capsys.readouterr().out.count("epoch=") >= 2


def test_the_setting_chooses_wandb_instead_of_mlflow(
    offline: Path, synthetic_data: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AURORA_MLOPS_TRACKER", "wandb")
    trial = _train(synthetic_data, offline / "t")
    assert trial["mlflow_run_id"] is None and trial["wandb_run"]["mode"] == "offline"
    assert not (offline / "mlflow.db").exists()
    wb = _run_contents(Path(trial["wandb_run"]["dir"]))
    assert len([r for r in wb["history"] if "val_score" in r]) == 2


def test_a_bad_tracker_setting_is_one_sentence(
    offline: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AURORA_MLOPS_TRACKER", "tensorboard")
    code = main(["train-trial", "--variant", "medium-res", "--profile", "smoke", "--data",
                 str(offline / "nothing.nc"), "--output", str(offline / "t")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert "AURORA_MLOPS_TRACKER" in line and "'wandb'" in line


def test_without_the_extra_the_trial_stops_in_one_sentence(
    offline: Path, synthetic_data: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # what `import wandb` meets without it
    code = main(["train-trial", "--variant", "medium-res", "--profile", "smoke", "--data",
                 str(synthetic_data("medium-res")), "--output", str(offline / "t"),
                 "--tracker", "wandb", *RUN])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("aurora-mlops: error:")]
    assert "aurora-mlops[wandb]" in line
    assert not (offline / "t" / "trial.json").exists()


def test_a_run_that_cannot_start_ends_the_mlflow_run_it_started(
    offline: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow

    # Online without an API key: W&B refuses before any network call.
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("HOME", str(offline / "home"))
    monkeypatch.setenv("NETRC", str(offline / "home" / ".netrc"))
    uri = f"sqlite:///{offline / 'mlflow.db'}"
    tracker = make_tracker("both", enabled=True, uri=uri, experiment="wb")
    with pytest.raises(ConfigError) as info:
        tracker.start(run_name="r", tags={}, parent_run_id=None)
    message = str(info.value)
    assert "\n" not in message and "WANDB_MODE=offline" in message and "'r'" in message
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("wb").experiment_id])
    assert run.info.status == "FAILED"


def test_no_tracking_starts_no_wandb_run(offline: Path) -> None:
    tracker = make_tracker("wandb", enabled=False, uri=None, experiment="x")
    tracker.start(run_name="r", tags={}, parent_run_id=None)
    tracker.log_metrics({"a": 1.0}, step=0)
    tracker.end("FINISHED")
    assert tracker.record() == {"mlflow_run_id": None}
    assert list((offline / "wandb-dir").iterdir()) == []
    with pytest.raises(RuntimeError, match="after end"):
        tracker.log_params({"a": 1})
