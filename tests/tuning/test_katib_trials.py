"""Ranking Katib trials, choosing the one to export and pruning the rest, on real folders."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aurora_mlops.tuning import Objective, TrialOutcome, prune_trials
from aurora_mlops.tuning.katib._trials import choose_best, metric_value, rank

MIN = Objective(type="minimize", metric="val_score")
MAX = Objective(type="maximize", metric="val_f1")


def _outcome(name: str, state: str, value: float | None, root: str = "/mnt/artifacts"
             ) -> TrialOutcome:
    return TrialOutcome(name=name, state=state, value=value,
                        checkpoint=f"{root}/trials/{name}/model.ckpt")


def test_metric_value_follows_katibs_strategy_and_fallback() -> None:
    # kubeflow/katib pkg/controller.v1beta1/experiment/util/status_util.go,
    # getObjectiveMetricValue: min/max fall back to latest when Katib has no summary.
    m = {"name": "val_score", "min": "0.2", "max": "0.9", "latest": "0.4"}
    assert (metric_value(m, "min"), metric_value(m, "max"), metric_value(m, "latest")) == (
        0.2, 0.9, 0.4)
    assert metric_value({**m, "min": "unavailable"}, "min") == 0.4
    assert metric_value({"name": "x", "min": "unavailable", "max": "unavailable",
                         "latest": "unavailable"}, "min") is None
    assert metric_value({**m, "latest": "nan-ish"}, "latest") is None


@pytest.mark.parametrize(("objective", "order"), [(MIN, ["b", "c", "a", "n"]),
                                                  (MAX, ["a", "c", "b", "n"])],
                         ids=["minimize", "maximize"])
def test_rank_by_objective_direction_valueless_last(objective: Objective,
                                                    order: list[str]) -> None:
    trials = [_outcome("a", "Succeeded", 0.9), _outcome("n", "Failed", None),
              _outcome("b", "Succeeded", 0.1), _outcome("c", "Succeeded", 0.5)]
    assert [t.name for t in rank(trials, objective)] == order


def test_choose_best_skips_unfinished_and_missing_checkpoints() -> None:
    ranked = rank([_outcome("early", "EarlyStopped", 0.1), _outcome("gone", "Succeeded", 0.2),
                   _outcome("good", "Succeeded", 0.3), _outcome("worse", "Succeeded", 0.4)], MIN)
    best, skipped = choose_best(ranked, lambda path: "/gone/" not in path)
    assert best is not None and best.name == "good"
    assert [(t.name, why.split(",")[0]) for t, why in skipped] == [
        ("early", "its state is EarlyStopped"),
        ("gone", "no checkpoint at /mnt/artifacts/trials/gone/model.ckpt")]
    assert choose_best(ranked, lambda path: False)[0] is None


def _folder(root: Path, name: str, size: int, ckpt: bool = True) -> Path:
    folder = root / "trials" / name
    folder.mkdir(parents=True)
    (folder / "log.txt").write_bytes(b"x" * size)
    if ckpt:
        (folder / "model.ckpt").write_bytes(b"w" * 1000)
        (folder / "sub").mkdir()
        (folder / "sub" / "opt.pt").write_bytes(b"o" * 24)
    return folder


def test_prune_keeps_the_exported_and_best_checkpointed_trials(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for name, size in [("e-a", 10), ("e-c", 20), ("e-d", 30), ("e-e", 40), ("e-f", 50)]:
        _folder(tmp_path, name, size)
    _folder(tmp_path, "e-b", 5, ckpt=False)  # succeeded, yet its checkpoint is gone
    _folder(tmp_path, "e-x", 7)  # on the volume, but not a trial of this Experiment
    _folder(tmp_path, "other-run-a", 9)  # another Experiment's trial
    ranked = rank([_outcome("e-a", "Failed", 0.1), _outcome("e-b", "Succeeded", 0.2),
                   _outcome("e-c", "Succeeded", 0.3), _outcome("e-d", "Succeeded", 0.4),
                   _outcome("e-e", "Succeeded", 0.5), _outcome("e-f", "Killed", None),
                   _outcome("e-g", "Failed", None)],  # never wrote a folder
                  MIN)

    def local(path: str) -> Path:  # the volume, as this process mounts it
        return tmp_path / Path(path).relative_to("/mnt/artifacts")

    # the package logger, not only the root: an in-process `train-trial` sets its level
    caplog.set_level(logging.INFO, logger="aurora_mlops")
    removed = prune_trials(ranked, keep=2, exported="e-d", local=local)
    # Kept: the exported e-d and the best other Succeeded trial with a checkpoint, e-c.
    assert dict(removed) == {"e-a": 10 + 1024, "e-b": 5, "e-e": 40 + 1024, "e-f": 50 + 1024}
    left = sorted(p.name for p in (tmp_path / "trials").iterdir())
    assert left == ["e-c", "e-d", "e-x", "other-run-a"]
    assert f"{3 * 1024 + 105} bytes freed" in caplog.text
    # keep=1: only the exported trial stays, even when a better one has a checkpoint.
    assert [n for n, _ in prune_trials(ranked, keep=1, exported="e-d", local=local)] == ["e-c"]
    assert (tmp_path / "trials" / "e-d" / "model.ckpt").is_file()


def test_prune_leaves_a_folder_not_named_after_its_trial(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "shared", 10)
    odd = TrialOutcome(name="e-a", state="Failed", value=0.1,
                       checkpoint=f"{tmp_path}/trials/shared/model.ckpt")
    assert prune_trials([odd], keep=1, exported="e-b") == []
    assert folder.is_dir()
