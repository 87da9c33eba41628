"""--val_lead_steps: validation scores the evaluation's leads, weighed equally, and nothing else
changes (the training steps, the one-step default)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aurora_mlops.cli import main
from aurora_mlops.training import resolve_params, train_trial
from aurora_mlops.training._loss import EVENT_WEIGHT
from aurora_mlops.variants import get_variant

BUDGET = {"epochs": 2, "steps_per_epoch": 4, "patience": 5, "learning_rate": 3e-3,
          "warmup_steps": 1}


def _trial(data: Path, out: Path, **given: Any) -> dict[str, Any]:
    result = train_trial(variant=get_variant("medium-res"), data=data, output_dir=out,
                         params=resolve_params("smoke", {**BUDGET, **given}), profile="smoke",
                         tracking=False)
    trial: dict[str, Any] = json.loads(result.trial_json.read_text())
    return trial


def _leads(metrics: dict[str, float], name: str = "val_rmse") -> list[float]:
    """The normalised RMSE per lead that validation reported (``val_persistence_rmse``:
    persistence's)."""
    out = [metrics[name]]
    while f"{name}_lead{len(out) + 1}" in metrics:
        out.append(metrics[f"{name}_lead{len(out) + 1}"])
    return out


def test_val_lead_steps_scores_every_lead_equally_and_leaves_training_alone(
    synthetic_data: Callable[..., Path], tmp_path: Path
) -> None:
    data = synthetic_data("medium-res")
    one = _trial(data, tmp_path / "one")
    three = _trial(data, tmp_path / "three", val_lead_steps=3)

    # The default validates the training rollout's one lead.
    assert all(len(_leads(h)) == 1 for h in one["history"])
    for h in one["history"]:
        assert h["val_score"] == pytest.approx(
            h["val_rmse"] + EVENT_WEIGHT * (1 - h["val_event_f1"]), rel=1e-6)

    # Three leads, each weighed alike (evaluate's mean over leads), errors growing with the lead.
    for h in three["history"]:
        leads = _leads(h)
        assert len(leads) == 3
        assert h["val_score"] == pytest.approx(
            sum(leads) / 3 + EVENT_WEIGHT * (1 - h["val_event_f1"]), rel=1e-6)
        assert leads[2] > leads[0]
    assert three["history"][-1]["val_score"] != pytest.approx(one["history"][-1]["val_score"])

    # Validation only looks: the optimiser took the same steps.
    assert three["step_losses"] == one["step_losses"]


def test_val_lead_steps_overrides_the_training_lead_weights(
    synthetic_data: Callable[..., Path], tmp_path: Path
) -> None:
    data = synthetic_data("medium-res")
    weighted = _trial(data, tmp_path / "w", rollout_steps=2, lead_weights=(1.0, 3.0), epochs=1)
    equal = _trial(data, tmp_path / "e", rollout_steps=2, lead_weights=(1.0, 3.0), epochs=1,
                   val_lead_steps=2)
    hw, he = weighted["history"][0], equal["history"][0]
    # Without it, val_score weighs the leads as the loss does (1:3) ...
    assert hw["val_score"] == pytest.approx(
        (hw["val_rmse"] + 3 * hw["val_rmse_lead2"]) / 4 + EVENT_WEIGHT * (1 - hw["val_event_f1"]),
        rel=1e-6)
    # ... with it, alike; the same windows and the same model, so the same per-lead errors.
    assert _leads(he) == pytest.approx(_leads(hw), rel=1e-6)
    assert he["val_score"] == pytest.approx(
        (he["val_rmse"] + he["val_rmse_lead2"]) / 2 + EVENT_WEIGHT * (1 - he["val_event_f1"]),
        rel=1e-6)
    assert not math.isclose(he["val_score"], hw["val_score"], rel_tol=1e-4)


def test_persistence_weighting_counts_every_leads_skill_alike(
    synthetic_data: Callable[..., Path], tmp_path: Path
) -> None:
    data = synthetic_data("medium-res")
    equal = _trial(data, tmp_path / "e", val_lead_steps=3, epochs=1)
    skill = _trial(data, tmp_path / "s", val_lead_steps=3, epochs=1,
                   val_lead_weighting="persistence")
    he, hs = equal["history"][0], skill["history"][0]
    assert _leads(hs) == pytest.approx(_leads(he), rel=1e-6)  # the same model, the same errors
    pers = _leads(hs, "val_persistence_rmse")
    assert len(pers) == 3 and pers[2] > pers[0] > 0  # persistence is worse at longer leads
    # val_score = sum_k nRMSE_k / p_k / sum_k 1 / p_k: a weighted mean in nRMSE units, so the
    # event term keeps its share; the short leads weigh more than under equal weights.
    weighted = sum(r / p for r, p in zip(_leads(hs), pers, strict=True)) / sum(1 / p for p in pers)
    assert hs["val_score"] == pytest.approx(
        weighted + EVENT_WEIGHT * (1 - hs["val_event_f1"]), rel=1e-6)
    assert hs["val_score"] < he["val_score"]  # the errors grow with the lead; so does 1 / p fall


def test_persistence_weighting_falls_back_to_equal_where_persistence_is_exact() -> None:
    from aurora_mlops.training._validation import _lead_weights

    with_leads = resolve_params("smoke", {**BUDGET, "val_lead_steps": 2,
                                          "val_lead_weighting": "persistence"})
    assert _lead_weights(with_leads, [1.0], [0.5, 2.0]) == [2.0, 0.5]
    assert _lead_weights(with_leads, [1.0], [0.0, 2.0]) == [1.0, 1.0]
    # Without --val_lead_steps the weighting still applies to the rollout's leads ...
    rollout = resolve_params("smoke", {**BUDGET, "rollout_steps": 2, "lead_weights": (1.0, 3.0),
                                       "val_lead_weighting": "persistence"})
    assert _lead_weights(rollout, [1.0, 3.0], [0.25, 1.0]) == [4.0, 1.0]
    # ... and without either, val_score weighs the leads as the loss does.
    plain = resolve_params("smoke", {**BUDGET, "rollout_steps": 2, "lead_weights": (1.0, 3.0)})
    assert _lead_weights(plain, [1.0, 3.0], [0.25, 1.0]) == [1.0, 3.0]


@pytest.mark.parametrize(("arg", "phrase"), [
    ("--val_lead_steps=0", "--val_lead_steps"),
    # 17 steps: history 2 + 15 leads fit
    ("--val_lead_steps=16", "--val_lead_steps=16: the validation split"),
    ("--val_lead_weighting=skill", "val_lead_weighting"),
])
def test_bad_validation_leads_fail_before_training(
    arg: str, phrase: str, synthetic_data: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "trial"
    code = main(["train-trial", "--variant", "medium-res", "--data",
                 str(synthetic_data("medium-res")), "--output", str(out), "--profile", "smoke",
                 "--no-tracking", arg])
    err = capsys.readouterr().err
    assert code != 0
    assert phrase in err and "Traceback" not in err and err.count("\n") == 1
    assert not (out / "model.ckpt").exists() and not (out / "trial.json").exists()



def test_pipeline_run_help_quotes_make_runs_trial_budget(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`pipeline run --trial-args` replaces the whole budget (its --val_lead_steps included), so
    its help must quote make run's budget as it is."""
    from aurora_mlops.kfp import LocalBudget

    with pytest.raises(SystemExit):
        main(["pipeline", "run", "--help"])
    help_text = "".join(capsys.readouterr().out.split())
    assert LocalBudget().trial_args.replace(" ", "") + "';add--val_lead_steps=4" in help_text
