"""``best.json``'s one reader: what each writer writes reads back, and a broken file is one
sentence naming the file and the field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from aurora_mlops.errors import CheckpointError, ConfigError
from aurora_mlops.tuning import BestTrial, SweepResult, export_trial, read_best


def _write(folder: Path, doc: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "best.json").write_text(json.dumps(doc))
    return folder


def test_the_local_runners_best_json_reads_back(tmp_path: Path) -> None:
    ckpt = tmp_path / "work" / "trials" / "t-1" / "model.ckpt"
    result = SweepResult(experiment="exp", work_dir=tmp_path / "work", best_trial="t-1",
                         parameters={"learning_rate": "0.003", "lora_mode": "all"},
                         metrics={"val_score": 0.25}, checkpoint=ckpt, status={},
                         reason="max trials reached")
    _write(tmp_path / "work", result.best_json(parent_run_id="run", spec="spec.yaml"))
    best = read_best(tmp_path / "work")
    assert best == BestTrial(path=tmp_path / "work" / "best.json", trial="t-1",
                             experiment="exp",
                             parameters={"learning_rate": "0.003", "lora_mode": "all"},
                             metrics={"val_score": 0.25}, checkpoint=ckpt,
                             reason="max trials reached", spec="spec.yaml")
    assert list(best.parameters) == ["learning_rate", "lora_mode"]  # the file's order


def test_an_exported_trials_checkpoint_is_found_beside_its_best_json(tmp_path: Path) -> None:
    """export_trial writes a relative checkpoint, so the folder can move."""
    trial = tmp_path / "volume" / "t-2"
    trial.mkdir(parents=True)
    (trial / "model.ckpt").write_bytes(b"x")
    export_trial(trial, tmp_path / "out", experiment="exp", best_trial="t-2",
                 parameters={"t0": "60"}, metrics={"val_score": 0.5})
    moved = (tmp_path / "out").rename(tmp_path / "moved")
    best = read_best(moved / "best.json")
    assert best.checkpoint == moved / "model.ckpt" and best.checkpoint.is_file()
    assert best.parameters == {"t0": "60"} and best.trial == "t-2"


def test_a_sweep_without_a_successful_trial_reads_as_no_trial(tmp_path: Path) -> None:
    _write(tmp_path, {"experiment": "exp", "bestTrialName": None, "parameterAssignments": [],
                      "metrics": {}, "checkpoint": None, "reason": "every trial failed"})
    best = read_best(tmp_path)
    assert best.trial is None and best.checkpoint is None and not best.parameters
    assert best.reason == "every trial failed"


@pytest.mark.parametrize(("doc", "field"), [
    ({"bestTrialName": 3}, "'bestTrialName'"),
    ({"bestTrialName": "t", "parameterAssignments": {"a": "1"}}, "'parameterAssignments'"),
    ({"bestTrialName": "t", "parameterAssignments": [{"name": "a"}]},
     "'parameterAssignments[0]'"),
    ({"bestTrialName": "t", "parameterAssignments": [{"name": "a", "value": True}]},
     "'parameterAssignments[0]'"),
    ({"bestTrialName": "t", "metrics": {"val_score": "low"}}, "'metrics'"),
    ({"bestTrialName": "t", "checkpoint": 1}, "'checkpoint'"),
], ids=["trial", "assignments", "no-value", "bool-value", "metrics", "checkpoint"])
def test_a_wrong_field_is_named(tmp_path: Path, doc: dict[str, Any], field: str) -> None:
    _write(tmp_path, doc)
    with pytest.raises(ConfigError, match=re.escape(f"best.json: field {field} must be")):
        read_best(tmp_path)


def test_a_missing_or_broken_file_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"holds no best\.json: pass a directory written by"):
        read_best(tmp_path)
    (tmp_path / "best.json").write_text("{")
    with pytest.raises(ConfigError, match=r"best\.json is not readable JSON"):
        read_best(tmp_path)
    _write(tmp_path, [1])
    with pytest.raises(ConfigError, match=r"best\.json is not a JSON object"):
        read_best(tmp_path)


def test_numbers_in_assignments_read_as_katib_strings(tmp_path: Path) -> None:
    _write(tmp_path, {"bestTrialName": "t", "parameterAssignments": [
        {"name": "lora_steps", "value": 40}, {"name": "drop_path", "value": 0.05}]})
    assert read_best(tmp_path).parameters == {"lora_steps": "40", "drop_path": "0.05"}


def test_a_sweep_where_a_trial_is_expected_is_read_by_the_same_reader(tmp_path: Path) -> None:
    """``load_trained`` (``evaluate --model``, ``package``) takes a sweep's folder for its best
    trial: the checkpoint is found beside best.json like everywhere else, and a broken file is
    the reader's sentence as a CheckpointError."""
    from aurora_mlops.training import load_trained

    _write(tmp_path / "moved", {"bestTrialName": "t-1", "checkpoint": "t-1/model.ckpt"})
    (tmp_path / "moved" / "t-1").mkdir()
    (tmp_path / "moved" / "t-1" / "model.ckpt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=re.escape(
            f"{tmp_path / 'moved' / 't-1' / 'model.ckpt'}: no trial.json beside it")):
        load_trained(tmp_path / "moved")
    _write(tmp_path / "bad", {"bestTrialName": "t", "checkpoint": 1})
    with pytest.raises(CheckpointError, match=re.escape(
            "best.json: field 'checkpoint' must be a string or null, not 1")):
        load_trained(tmp_path / "bad")
    _write(tmp_path / "none", {"bestTrialName": None, "checkpoint": None})
    with pytest.raises(CheckpointError, match="the sweep has no best trial with a checkpoint"):
        load_trained(tmp_path / "none")
