"""The local ``sobol`` algorithm: a Sobol' design over every parameter, listed ones included."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from scipy.stats import qmc

from aurora_mlops.tuning import parse_experiment, run_local
from aurora_mlops.tuning.katib._defaults_trial import DEFAULTS_TRIAL_ANNOTATION
from aurora_mlops.tuning.katib._render import rendered_specs
from aurora_mlops.tuning.local._optuna_map import make_sampler
from aurora_mlops.tuning.local._sobol import SobolSampler, sobol_point, value_at
from aurora_mlops.variants import VARIANTS

SPECS = Path(__file__).parent / "specs"

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _design(sampler: optuna.samplers.BaseSampler, dists: dict[str, Any],
            n: int) -> list[dict[str, Any]]:
    study = optuna.create_study(sampler=sampler)
    out = []
    for _ in range(n):
        trial = study.ask(dists)
        study.tell(trial, 0.0)
        out.append(trial.params)
    return out


def test_the_points_are_scipys_unscrambled_sobol_sequence_from_its_second_point() -> None:
    want = qmc.Sobol(4, scramble=False).random(8)
    for i in range(8):
        assert sobol_point(4, i) == pytest.approx(list(want[i]))
    dists = {"b": FloatDistribution(0.0, 1.0), "a": FloatDistribution(0.0, 1.0),
             "d": FloatDistribution(0.0, 1.0), "c": FloatDistribution(0.0, 1.0)}
    design = _design(SobolSampler(dists), dists, 5)
    # Parameters in name order (as goptuna takes them); trial n takes point n + 1, so the
    # all-lows corner (point 0) is never tried and the first trial is the centre.
    assert design[0] == {"a": 0.5, "b": 0.5, "c": 0.5, "d": 0.5}
    for n, params in enumerate(design):
        assert [params[k] for k in "abcd"] == pytest.approx(list(want[n + 1]))


@pytest.mark.parametrize(("dist", "u", "want"), [
    (CategoricalDistribution([60, 300, 1500]), 0.0, 60),
    (CategoricalDistribution([60, 300, 1500]), 0.34, 300),
    (CategoricalDistribution([60, 300, 1500]), 0.999, 1500),
    (IntDistribution(20, 60), 0.999, 60),  # goptuna's floor(u * (high - low)) never gives 60
    (IntDistribution(20, 60), 0.0, 20),
    (IntDistribution(0, 10, step=5), 0.5, 5),
    (FloatDistribution(0.0, 0.2, step=0.1), 0.9, 0.2),
    (FloatDistribution(1.5e-3, 5e-3, log=True), 0.5, math.sqrt(1.5e-3 * 5e-3)),
    (FloatDistribution(1.5e-3, 5e-3, log=True), 0.0, 1.5e-3),
    (FloatDistribution(-1.0, 1.0), 0.75, 0.5),
])
def test_a_coordinate_maps_onto_each_kind_of_parameter(dist: Any, u: float, want: Any) -> None:
    assert value_at(dist, u) == pytest.approx(want)


@pytest.mark.parametrize("dist", [
    CategoricalDistribution(["single", "from_second", "all"]),
    IntDistribution(20, 24),
    IntDistribution(1, 64, log=True),
    FloatDistribution(0.0, 0.2, step=0.05),
])
def test_listed_and_stepped_values_each_take_a_fair_share(dist: Any) -> None:
    counts: dict[Any, int] = {}
    for i in range(1000):
        v = value_at(dist, (i + 0.5) / 1000)
        counts[v] = counts.get(v, 0) + 1
    if isinstance(dist, CategoricalDistribution):
        assert set(counts) == set(dist.choices)
    elif isinstance(dist, IntDistribution) and dist.log:
        assert set(counts) == set(range(1, 65))  # every value, both ends included
        return
    else:
        step = dist.step or 1
        count = round((dist.high - dist.low) / step) + 1
        want = {round(dist.low + k * step, 9) for k in range(count)}
        assert {round(v, 9) for v in counts} == want
    assert max(counts.values()) - min(counts.values()) <= 1


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_make_runs_smoke_design_tries_every_listed_value_within_three_trials(
        variant: str) -> None:
    """The reason make run sweeps sobol: five random draws left t0=1500 untried on medium-res."""
    doc = yaml.safe_load(rendered_specs()[f"smoke/{variant}-sobol.yaml"])
    assert doc["spec"]["algorithm"] == {"algorithmName": "sobol"}  # Katib's sobol: no settings
    exp = parse_experiment(doc)
    dists = {p.name: p.distribution_for_optuna() for p in exp.parameters}
    design = _design(make_sampler(exp), dists, 5)
    assert len({tuple(sorted(p.items())) for p in design}) == 5
    listed = {n: d.choices for n, d in dists.items() if isinstance(d, CategoricalDistribution)}
    assert "t0" in listed
    for name, choices in listed.items():
        assert {p[name] for p in design[:3]} == set(choices), name
    # One trial pairs one cosine cycle over the run with a learning rate above the default.
    assert any(p["t0"] == 1500 and p["learning_rate"] > 3e-3 for p in design)


def test_a_seed_scrambles_the_design_and_no_seed_repeats_it() -> None:
    dists = {"x": FloatDistribution(0.0, 1.0), "k": CategoricalDistribution(["a", "b"])}
    plain = _design(SobolSampler(dists), dists, 4)
    assert plain == _design(SobolSampler(dists), dists, 4)
    assert _design(SobolSampler(dists, seed=3), dists, 4) == _design(
        SobolSampler(dists, seed=3), dists, 4)
    assert _design(SobolSampler(dists, seed=3), dists, 4) != plain


def test_the_runner_runs_the_defaults_then_the_design_and_resumes_it(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(SPECS / "trial.py", work / "trial.py")
    doc = yaml.safe_load((SPECS / "script-random.yaml").read_text())
    doc["spec"]["algorithm"] = {"algorithmName": "sobol"}
    doc["spec"]["maxTrialCount"] = 3
    doc["spec"]["parallelTrialCount"] = 1
    doc["metadata"]["annotations"] = {DEFAULTS_TRIAL_ANNOTATION: '{"x": "0.1", "mode": "ok"}'}
    run_local(parse_experiment(doc), work_dir=work, progress=False, tracking=False)
    doc["spec"]["maxTrialCount"] = 5
    run_local(parse_experiment(doc), work_dir=work, progress=False, tracking=False)
    study = optuna.load_study(study_name="script-random", storage=f"sqlite:///{work / 'study.db'}")
    xs = [t.params["x"] for t in sorted(study.trials, key=lambda t: t.number)]
    points = qmc.Sobol(2, scramble=False).random(8)  # dims in name order: mode, x
    # The defaults take trial 0 (the centre's turn); the resumed sweep goes on with the design.
    assert xs == pytest.approx([0.1, *(points[n + 1][1] for n in range(1, 5))])
