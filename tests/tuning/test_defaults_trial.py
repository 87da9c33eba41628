"""The defaults trial: the first trial of a sweep trains exactly what a trial without flags does."""

from __future__ import annotations

import functools
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import yaml

from aurora_mlops.errors import ConfigError
from aurora_mlops.training import parse_param_args, resolve_params, train_trial
from aurora_mlops.tuning import parse_experiment, run_local
from aurora_mlops.tuning.katib._defaults_trial import DEFAULTS_TRIAL_ANNOTATION
from aurora_mlops.tuning.katib._render import rendered_specs
from aurora_mlops.tuning.local._optuna_map import optuna_params
from aurora_mlops.tuning.space._search_space import categorical, discrete, double, integer
from aurora_mlops.variants import VARIANTS, get_variant

SPECS = Path(__file__).parent / "specs"


@pytest.mark.parametrize(("param", "value", "text"), [
    (double("learning_rate", 1e-3, 4e-3, log=True), 3e-3, "0.003"),
    (double("learning_rate", 1e-3, 4e-3, log=True), 5e-3, None),
    (double("drop_path", 0.0, 0.2, step=0.1), 0.1, "0.1"),
    (double("drop_path", 0.0, 0.2, step=0.1), 0.05, None),
    (integer("lora_steps", 20, 60), 40, "40"),
    (integer("lora_steps", 20, 60, step=20), 30, None),
    (integer("lora_steps", 20, 60), 2.5, None),
    (discrete("weight_decay", (0, 1e-3, 1e-2)), 0.0, "0"),
    (discrete("t0", (60, 300, 1500)), 50, None),
    (categorical("modulation_heads", (True, False)), True, "on"),
    (categorical("separate_perceiver", (("co", "no"), ("no",))), ("co", "no"), "co-no"),
    (categorical("lora_mode", ("single", "all")), "from_second", None),
    (categorical("lora_mode", ("single", "all")), None, None),
])
def test_assignment_spells_what_the_space_holds_and_refuses_the_rest(
        param: Any, value: Any, text: str | None) -> None:
    assert param.assignment(value) == text


@functools.cache
def _annotations() -> dict[str, tuple[dict[str, Any], str | None]]:
    out = {}
    for rel, text in rendered_specs().items():
        doc = yaml.safe_load(text)
        out[rel] = (doc, doc["metadata"]["annotations"].get(DEFAULTS_TRIAL_ANNOTATION))
    return out


def test_every_smoke_sweep_but_grid_starts_with_the_defaults() -> None:
    for rel, (doc, text) in _annotations().items():
        names = sorted(p["name"] for p in doc["spec"]["parameters"])
        if doc["spec"]["algorithm"]["algorithmName"] == "grid":
            assert text is None, rel
        elif rel.startswith("smoke/"):
            assert text is not None, rel
            assert sorted(json.loads(text)) == names, rel
        if text is not None:  # every value lies in its parameter's feasible space
            exp = parse_experiment(doc)
            assert set(optuna_params(exp, json.loads(text))) == set(names)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_defaults_trial_trains_exactly_the_default_model(
        variant: str, synthetic_data: Callable[..., Path], tmp_path: Path) -> None:
    text = _annotations()[f"smoke/{variant}-random.yaml"][1]
    assert text is not None
    flags = [f"--{k}={v}" for k, v in json.loads(text).items()]
    budget = {"epochs": 1, "steps_per_epoch": 2, "val_windows": 2}
    states = []
    for name, given in (("plain", {}), ("defaults-trial", parse_param_args(flags))):
        train_trial(variant=get_variant(variant), data=synthetic_data(variant),
                    output_dir=tmp_path / name, params=resolve_params("smoke", {**given, **budget}),
                    profile="smoke", tracking=False, stdout=io.StringIO())
        states.append(torch.load(tmp_path / name / "model.ckpt", map_location="cpu",
                                 weights_only=False))
    plain, trial = states
    assert plain.keys() == trial.keys()
    for key in plain:
        assert torch.equal(plain[key], trial[key]), f"{variant}: {key} differs"


# ------------------------------------------------------------------------ the local runner

def _script(tmp_path: Path, algorithm: str = "random", defaults: str | None = '{"x": "0.5", '
            '"mode": "ok"}', max_trials: int = 3) -> tuple[dict[str, Any], Path]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    shutil.copy(SPECS / "trial.py", work / "trial.py")
    doc = yaml.safe_load((SPECS / "script-random.yaml").read_text())
    doc["spec"]["algorithm"]["algorithmName"] = algorithm
    doc["spec"]["maxTrialCount"] = max_trials
    doc["spec"]["parallelTrialCount"] = 1
    if algorithm == "grid":
        doc["spec"]["parameters"][0]["feasibleSpace"]["step"] = "0.5"
        del doc["spec"]["algorithm"]["algorithmSettings"]
    if defaults is not None:
        doc["metadata"]["annotations"] = {DEFAULTS_TRIAL_ANNOTATION: defaults}
    return doc, work


def _trials(work: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{work / 'study.db'}")
    return sorted(study.trials, key=lambda t: t.number)


def test_the_runner_runs_the_defaults_first_and_once(tmp_path: Path) -> None:
    doc, work = _script(tmp_path)
    run_local(parse_experiment(doc), work_dir=work, progress=False, tracking=False)
    trials = _trials(work, doc["metadata"]["name"])
    assert trials[0].params == {"x": 0.5, "mode": "ok"}
    assert trials[0].user_attrs["katib_assignments"] == {"x": "0.5", "mode": "ok"}
    assert trials[0].user_attrs.get("katib_defaults") is True
    assert all("katib_defaults" not in t.user_attrs for t in trials[1:])
    assert len({t.params["x"] for t in trials}) == 3  # the sampler proposes the others
    # Resuming with a larger budget adds sampled trials, not the defaults again.
    doc["spec"]["maxTrialCount"] = 5
    run_local(parse_experiment(doc), work_dir=work, progress=False, tracking=False)
    trials = _trials(work, doc["metadata"]["name"])
    assert len(trials) == 5
    assert sum(t.user_attrs.get("katib_defaults") is True for t in trials) == 1


def test_a_grid_visits_its_own_points(tmp_path: Path) -> None:
    doc, work = _script(tmp_path, algorithm="grid", defaults='{"x": "0.25", "mode": "ok"}')
    run_local(parse_experiment(doc), work_dir=work, progress=False, tracking=False)
    assert sorted(t.params["x"] for t in _trials(work, doc["metadata"]["name"])) == [0, 0.5, 1]


@pytest.mark.parametrize(("defaults", "message"), [
    ("{not json", "must be a JSON object"),
    ('{"x": "0.5"}', "must be a JSON object giving a string for each search parameter"),
    ('{"x": "2.0", "mode": "ok"}', "x=2.0 is outside [0.0, 1.0]"),
    ('{"x": "0.5", "mode": "crash"}', "mode='crash' is not one of ok"),
])
def test_a_bad_defaults_annotation_is_named_before_any_trial(
        tmp_path: Path, defaults: str, message: str) -> None:
    doc, work = _script(tmp_path, defaults=defaults)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run_local(parse_experiment(doc), work_dir=work, progress=False, tracking=False)
    assert not (work / "trials").exists() or not any((work / "trials").iterdir())
