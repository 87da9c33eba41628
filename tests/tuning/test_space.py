"""Search spaces: names and tags agree with TrialParams, Katib and Optuna views agree."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from aurora_mlops.training import ARCHITECTURE_KNOBS, TrialParams
from aurora_mlops.training._params import parse_param_args, resolve_params
from aurora_mlops.tuning import (
    SMOKE_SPACES,
    SPACES,
    SWEEPS,
    SearchParameter,
    SearchSpace,
    format_space_value,
    get_space,
)
from aurora_mlops.tuning.space._search_space import categorical, discrete, double, integer
from aurora_mlops.variants import VARIANTS

ALL = [("production", v, s) for v, s in SPACES.items()] + [
    ("smoke", v, s) for v, s in SMOKE_SPACES.items()
]
ALL_IDS = [f"{p}-{v}" for p, v, _ in ALL]


def test_one_space_per_variant_and_profile() -> None:
    assert set(SPACES) == set(VARIANTS) == set(SMOKE_SPACES)


@pytest.mark.parametrize(("profile", "variant", "space"), ALL, ids=ALL_IDS)
def test_every_parameter_is_a_trial_parameter_with_the_right_tag(
    profile: str, variant: str, space: SearchSpace
) -> None:
    for p in space.parameters:
        assert p.name in TrialParams.model_fields, p.name
        assert p.tag == ("architecture" if p.name in ARCHITECTURE_KNOBS else "fine-tune")


@pytest.mark.parametrize("variant", list(SMOKE_SPACES))
def test_smoke_spaces_hold_only_fine_tune_parameters(variant: str) -> None:
    assert {p.tag for p in SMOKE_SPACES[variant].parameters} == {"fine-tune"}
    assert "learning_rate" in SMOKE_SPACES[variant].names


def _params_from_strings(values: dict[str, str]) -> list[str]:
    return [f"--{k}={v}" for k, v in values.items()]


@pytest.mark.parametrize(("profile", "variant", "space"), ALL, ids=ALL_IDS)
def test_every_example_value_passes_resolve_params(
    profile: str, variant: str, space: SearchSpace
) -> None:
    examples = {p.name: p.examples() for p in space.parameters}
    rounds = max(len(v) for v in examples.values())
    for i in range(rounds):
        values = {k: v[i % len(v)] for k, v in examples.items()}
        params = resolve_params(profile, parse_param_args(_params_from_strings(values)))
        for name in values:
            assert getattr(params, name) is not None


@pytest.mark.parametrize(("profile", "variant", "space"), ALL, ids=ALL_IDS)
def test_optuna_samples_pass_resolve_params(
    profile: str, variant: str, space: SearchSpace
) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    dists = space.to_optuna()
    assert list(dists) == list(space.names)
    for _ in range(8):
        trial = study.ask(fixed_distributions=dists)
        values = {k: format_space_value(v) for k, v in trial.params.items()}
        resolve_params(profile, parse_param_args(_params_from_strings(values)))
        study.tell(trial, 0.0)


@pytest.mark.parametrize(("profile", "variant", "space"), ALL, ids=ALL_IDS)
def test_katib_view_reads_back_to_the_same_parameter(
    profile: str, variant: str, space: SearchSpace
) -> None:
    for p in space.parameters:
        assert SearchParameter.from_katib(p.to_katib()) == p.model_copy(update={"help": ""})


def test_optuna_distributions_match_the_katib_types() -> None:
    space = SPACES["medium-res"]
    lr = space.get("learning_rate").to_optuna()
    assert lr == FloatDistribution(8e-5, 4e-4, log=True)
    assert space.get("lora_steps").to_optuna() == IntDistribution(20, 60)
    assert space.get("weight_decay").to_optuna() == CategoricalDistribution((0, 1e-3, 1e-2))
    assert space.get("encoder_depths").to_optuna() == CategoricalDistribution(
        ("6-10-8", "6-8-8", "8-10-8"))
    assert SPACES["ocean-waves"].get("coastal_conditioning").to_optuna() == (
        CategoricalDistribution(("on", "off")))


def test_plan_bounds() -> None:
    """Spot checks against the tuning plan (known answers)."""
    med = SPACES["medium-res"]
    assert med.get("learning_rate").to_katib() == {
        "name": "learning_rate", "parameterType": "double",
        "feasibleSpace": {"min": "8e-05", "max": "0.0004", "distribution": "logUniform"},
    }
    assert med.get("accumulation_steps").to_katib()["feasibleSpace"] == {"list": ["2", "4", "8"]}
    assert SPACES["high-res"].get("decoder_depths").choices == ("8-8-6", "10-8-6")
    assert SPACES["high-res"].get("dec_mlp_ratio").choices == (1.5, 2.0)
    assert SPACES["air-pollution"].get("patch_size").choices == (2, 3, 4)
    assert SPACES["air-pollution"].get("drop_path").high == 0.15
    assert SPACES["ocean-waves"].get("spectral_loss_weight").high == 0.1
    assert get_space("ocean-waves", "smoke") is SMOKE_SPACES["ocean-waves"]


@pytest.mark.parametrize("variant", list(SPACES))
def test_every_planned_parameter_is_swept_by_some_production_spec(variant: str) -> None:
    swept = {n for s in SWEEPS if s.variant == variant and s.profile == "production"
             for n in s.parameters}
    assert swept == set(SPACES[variant].names)


def test_conflicts_name_the_bad_combination() -> None:
    problems = SPACES["medium-res"].conflicts()
    assert problems == ["embed_dim must be divisible by num_heads, but the space allows "
                        "embed_dim=512 with num_heads=12"]
    assert SPACES["medium-res"].without(["embed_dim"]).conflicts() == []
    for sweep in SWEEPS:
        assert sweep.space.conflicts() == [], sweep.relpath


def test_grid_values_and_size() -> None:
    assert double("drop_path", 0.0, 0.2, step=0.1).grid_values() == ("0.0", "0.1", "0.2")
    assert double("drop_path", 0.0, 0.2).grid_values() is None
    assert integer("lora_steps", 20, 60, step=20).grid_values() == ("20", "40", "60")
    assert SPACES["air-pollution"].subset(["patch_size", "separate_perceiver"]).grid_size() == 9


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "on"), (False, "off"), ((6, 10, 8), "6-10-8"), (3, "3"), (3.0, "3.0"),
     (8e-5, "8e-05"), ("from_second", "from_second")],
)
def test_format_value(value: Any, text: str) -> None:
    assert format_space_value(value) == text


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: double("lr", 1e-4, 1e-3), "not a trial parameter"),
        (lambda: SearchParameter(name="embed_dim", type="discrete", tag="fine-tune",
                                 choices=(384,)), "ARCHITECTURE_KNOBS makes it 'architecture'"),
        (lambda: double("drop_path", 0.2, 0.1), "low must be < high"),
        (lambda: double("learning_rate", 0.0, 1e-3, log=True), "logUniform needs low > 0"),
        (lambda: double("drop_path", 0.0, 0.2, step=0.5), "step must be in (0, high - low]"),
        (lambda: discrete("batch_size", ()), "needs at least one choice"),
        (lambda: discrete("batch_size", (1, 1)), "choices must be unique"),
        (lambda: SearchParameter(name="lora_mode", type="categorical", tag="fine-tune",
                                 choices=(1, 2)), "categorical choices must be strings"),
        (lambda: SearchParameter(name="lora_steps", type="int", tag="fine-tune", low=1.5,
                                 high=3), "whole numbers"),
        (lambda: SearchSpace(parameters=(categorical("lora_mode", ("all",)),
                                         categorical("lora_mode", ("single",)))),
         "more than once"),
    ],
    ids=["unknown-name", "wrong-tag", "low-above-high", "log-needs-positive", "step-too-big",
         "empty-choices", "duplicate-choices", "categorical-numbers", "int-fraction",
         "duplicate-names"],
)
def test_invalid_parameters_are_refused(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        make()


def test_every_trial_parameter_and_swept_knob_is_read_by_the_trainer() -> None:
    """A knob that nothing reads would be swept for nothing (prefetch_factor once was)."""
    import re
    from pathlib import Path

    import aurora_mlops.training as training
    from aurora_mlops.training import MODEL_KNOBS, TrialParams
    from aurora_mlops.tuning.space._registry import SMOKE_SPACES, SPACES

    sources = "\n".join(p.read_text() for p in Path(training.__file__).parent.glob("*.py")
                        if p.name != "_params.py")
    read = set(re.findall(r"params\.(\w+)", sources)) | set(MODEL_KNOBS)
    unread = sorted(set(TrialParams.model_fields) - read)
    assert unread == [], f"trial parameters nothing reads: {unread}"
    swept = {p.name for s in (*SPACES.values(), *SMOKE_SPACES.values()) for p in s.parameters}
    assert swept <= set(TrialParams.model_fields)
