"""The one model of a Katib Experiment: every spec fits it, and what does not is named."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning import SWEEPS, load_spec, parse_experiment
from aurora_mlops.tuning.katib._model import KatibExperiment, schema_problems

KATIB_DIR = Path(__file__).resolve().parents[2] / "katib"
SMOKE = KATIB_DIR / "smoke" / "medium-res-random.yaml"


@pytest.mark.parametrize("sweep", SWEEPS, ids=[s.relpath for s in SWEEPS])
def test_every_checked_in_spec_fits_the_model_and_round_trips(sweep: Any) -> None:
    doc = load_spec((KATIB_DIR / sweep.relpath).read_text())
    assert schema_problems(doc) == []
    model = KatibExperiment.model_validate(doc)
    assert model.body() == doc  # what the Katib client sends is the spec as written
    assert model.spec is not None and model.spec.objective is not None
    assert model.spec.objective.objective_metric_name == doc["spec"]["objective"][
        "objectiveMetricName"]


def test_problems_name_the_field_and_what_was_found() -> None:
    doc = load_spec(SMOKE.read_text())
    doc["spec"]["parallelTrialCount"] = "2"
    doc["spec"]["parameters"][0]["feasibleSpace"]["min"] = 0.001
    doc["spec"]["parameters"][0]["feasibleSpace"]["mean"] = "0.5"
    doc["spec"]["trialTemplate"]["retain"] = "yes"
    problems = schema_problems(doc)
    assert "spec.parallelTrialCount: must be an integer, got the string '2'" in problems
    assert ('spec.parameters[0].feasibleSpace.min: must be a string, got the number 0.001; '
            'quote it ("0.001")') in problems
    assert ("spec.parameters[0].feasibleSpace.mean: unknown field (known fields: distribution, "
            "list, max, min, step)") in problems
    assert "spec.trialTemplate.retain: must be true or false, got the string 'yes'" in problems
    assert schema_problems(["a"]) == ["(document): must be a mapping, got a list"]


def test_the_runner_refuses_what_the_model_refuses_in_one_sentence() -> None:
    doc: dict[str, Any] = copy.deepcopy(load_spec(SMOKE.read_text()))
    doc["spec"]["maxTrialCounts"] = 3
    with pytest.raises(ConfigError) as e:
        parse_experiment(doc, source="sweep.yaml")
    message = str(e.value)
    assert message.startswith("sweep.yaml: spec.maxTrialCounts: unknown field")
    assert "\n" not in message
    exp = parse_experiment(load_spec(SMOKE.read_text()), source=str(SMOKE))
    assert exp.model is not None and exp.model.body() == load_spec(SMOKE.read_text())


def test_with_the_webhook_rules_on_the_model_refuses_what_katib_refuses() -> None:
    from pydantic import ValidationError

    doc = load_spec(SMOKE.read_text())
    KatibExperiment.model_validate(doc, context={"webhook": True})  # a rendered spec passes
    doc["spec"]["maxTrialCount"] = 0
    KatibExperiment.model_validate(doc)  # the fields alone are fine
    with pytest.raises(ValidationError, match=r"spec\.maxTrialCount: must be greater than 0"):
        KatibExperiment.model_validate(doc, context={"webhook": True})


def test_the_model_refuses_names_katibs_webhook_refuses() -> None:
    """kubeflow/katib pkg/webhook/v1beta1/experiment/validator/validator.go (v0.18.0+) refuses
    `len(instance.Name) > 40`; Katib 0.17 had no limit, so 40 is the portable bound."""
    from pydantic import ValidationError

    doc = load_spec(SMOKE.read_text())
    doc["metadata"]["name"] = "a" * 40
    KatibExperiment.model_validate(doc, context={"webhook": True})
    doc["metadata"]["name"] = "a" * 41
    KatibExperiment.model_validate(doc)  # the field's type is fine
    with pytest.raises(ValidationError, match=r"metadata\.name: 'a{41}' has 41 characters; "
                                              r"Katib's webhook refuses names longer than 40"):
        KatibExperiment.model_validate(doc, context={"webhook": True})
