"""`katib check`: a table of broken specs, each with the problem it must report."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aurora_mlops.config import Settings
from aurora_mlops.tuning import (
    SWEEPS,
    build_experiment,
    check_experiment,
    check_file,
    service_warnings,
)

Doc = dict[str, Any]


def _study(relpath: str) -> Any:
    return next(s for s in SWEEPS if s.relpath == relpath)


#: A valid smoke TPE spec (double, int, discrete and categorical parameters; medianstop) and a
#: valid smoke grid (weight_decay x lora_mode = 9 combinations).
TPE = build_experiment(_study("smoke/medium-res-tpe.yaml"), Settings.model_construct())
GRID = build_experiment(_study("smoke/medium-res-grid.yaml"), Settings.model_construct())
PYTORCH = build_experiment(_study("high-res/tpe-pytorchjob.yaml"), Settings.model_construct())


def _container(d: Doc) -> Doc:
    c: Doc = d["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    return c


def _param(d: Doc, name: str) -> Doc:
    p: Doc = next(p for p in d["spec"]["parameters"] if p["name"] == name)
    return p


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    """A mutation that sets ``a.b.c`` (creating nothing; the path must exist but the leaf)."""
    *parents, leaf = path.split(".")

    def mutate(d: Doc) -> None:
        node = d
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[leaf] = value
    return mutate


def _drop(path: str) -> Callable[[Doc], None]:
    *parents, leaf = path.split(".")

    def mutate(d: Doc) -> None:
        node = d
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[leaf]
    return mutate


def _sdk_bug(d: Doc) -> None:
    # kubeflow-katib's search.categorical emits `distribution:` instead of `list:`.
    _param(d, "lora_mode")["feasibleSpace"] = {"distribution": ["single", "all"]}


def _add_arg(arg: str) -> Callable[[Doc], None]:
    return lambda d: _container(d)["command"].append(arg)


def _drop_trial_param(name: str) -> Callable[[Doc], None]:
    def mutate(d: Doc) -> None:
        tps = d["spec"]["trialTemplate"]["trialParameters"]
        tps[:] = [t for t in tps if t["name"] != name]
    return mutate


def _unused_trial_param(d: Doc) -> None:
    cmd = _container(d)["command"]
    cmd[:] = [a for a in cmd if "trialParameters.lora_mode" not in a]


def _bad_reference(d: Doc) -> None:
    d["spec"]["trialTemplate"]["trialParameters"][1]["reference"] = "learning_rat"


def _duplicate_trial_param(d: Doc) -> None:
    tps = d["spec"]["trialTemplate"]["trialParameters"]
    tps.append(dict(tps[1], reference="weight_decay_2"))


def _rename_container(d: Doc) -> None:
    _container(d)["name"] = "trainer"


# (id, base, mutation, expected fragment)
CASES: list[tuple[str, Doc, Callable[[Doc], None], str]] = [
    ("unknown-algorithm", TPE, _set("spec.algorithm.algorithmName", "bayes"),
     "spec.algorithm.algorithmName: unknown algorithm 'bayes'"),
    ("unknown-algorithm-setting", TPE,  # hyperopt's tpe: n_startup_trials is Optuna's
     _set("spec.algorithm", {"algorithmName": "tpe", "algorithmSettings": [
         {"name": "n_startup_trials", "value": "5"}]}),
     "spec.algorithm.algorithmSettings[0].name: unknown setting n_startup_trials for algorithm "
     "tpe"),
    ("bad-algorithm-setting", TPE,
     _set("spec.algorithm.algorithmSettings", [{"name": "random_state", "value": "-1"}]),
     "spec.algorithm.algorithmSettings[0].value: random_state must be an integer >= 0"),
    ("nas-algorithm", TPE, _set("spec.algorithm.algorithmName", "darts"),
     "darts is a neural-architecture-search algorithm"),
    ("unknown-early-stopping", TPE, _set("spec.earlyStopping.algorithmName", "median"),
     "spec.earlyStopping.algorithmName: unknown early-stopping algorithm 'median'"),
    ("bad-medianstop-setting", TPE,
     _set("spec.earlyStopping.algorithmSettings", [{"name": "start_step", "value": "0"}]),
     "spec.earlyStopping.algorithmSettings[0].value: start_step must be an integer >= 1"),
    ("unknown-parameter-type", TPE, _set("spec.parameters.0.parameterType", "float"),
     "spec.parameters[0].parameterType: must be one of double, int, discrete, categorical"),
    ("unquoted-number", TPE, _set("spec.parameters.0.feasibleSpace.min", 0.001),
     "spec.parameters[0].feasibleSpace.min: must be a string, got the number 0.001"),
    ("min-not-below-max", TPE, _set("spec.parameters.0.feasibleSpace.min", "0.05"),
     "spec.parameters[0].feasibleSpace.min: 0.05 must be less than max ("),
    ("log-needs-positive-min", TPE, _set("spec.parameters.0.feasibleSpace.min", "0"),
     "spec.parameters[0].feasibleSpace.min: 0 must be greater than 0 for distribution logUniform"),
    ("unknown-distribution", TPE,
     _set("spec.parameters.0.feasibleSpace.distribution", "loguniform"),
     "spec.parameters[0].feasibleSpace.distribution: 'loguniform' is not supported"),
    ("missing-max", TPE, _drop("spec.parameters.0.feasibleSpace.max"),
     "spec.parameters[0].feasibleSpace.max: must be specified for parameterType double"),
    ("int-with-fraction", TPE, _set("spec.parameters.5.feasibleSpace.min", "20.5"),
     "spec.parameters[5].feasibleSpace.min: '20.5' is not an integer"),
    ("sdk-categorical-bug", TPE, _sdk_bug,
     "spec.parameters[4].feasibleSpace.list: must be specified for parameterType categorical"),
    ("discrete-label", TPE, _set("spec.parameters.1.feasibleSpace.list", ["0", "small"]),
     "spec.parameters[1].feasibleSpace.list[1]: 'small' is not a number"),
    ("bounds-on-categorical", TPE, _set("spec.parameters.4.feasibleSpace.min", "1"),
     "spec.parameters[4].feasibleSpace.min: is not supported for parameterType categorical"),
    ("duplicate-parameter", TPE,
     lambda d: d["spec"]["parameters"].append(copy.deepcopy(d["spec"]["parameters"][0])),
     "spec.parameters[6].name: parameter learning_rate is defined twice"),
    ("grid-continuous", GRID,
     lambda d: d["spec"]["parameters"].append(copy.deepcopy(_param(TPE, "drop_path"))),
     "spec.parameters[2].feasibleSpace.step: grid search needs a discrete space"),
    ("grid-too-many-trials", GRID, _set("spec.maxTrialCount", 10),
     "spec.maxTrialCount: 10 is larger than the grid (9 combinations)"),
    ("parallel-above-max", TPE, _set("spec.parallelTrialCount", 7),
     "spec.parallelTrialCount: 7 should be less than or equal to spec.maxTrialCount (6)"),
    ("failed-above-max", TPE, _set("spec.maxFailedTrialCount", 9),
     "spec.maxFailedTrialCount: 9 should be less than or equal to spec.maxTrialCount (6)"),
    ("zero-max-trials", TPE, _set("spec.maxTrialCount", 0),
     "spec.maxTrialCount: must be greater than 0, got 0"),
    ("missing-max-trials", TPE, _drop("spec.maxTrialCount"),
     "spec.maxTrialCount: must be specified"),
    ("string-budget", TPE, _set("spec.parallelTrialCount", "2"),
     "spec.parallelTrialCount: must be an integer, got the string '2'"),
    ("objective-type", TPE, _set("spec.objective.type", "min"),
     "spec.objective.type: must be minimize or maximize, got the string 'min'"),
    ("objective-in-additional", TPE,
     _set("spec.objective.additionalMetricNames", ["val_score", "epoch"]),
     "spec.objective.additionalMetricNames: should not contain "
     "spec.objective.objectiveMetricName (val_score)"),
    ("missing-objective", TPE, _drop("spec.objective"), "spec.objective: must be specified"),
    ("bad-metric-strategy", TPE, _set("spec.objective.metricStrategies.0.value", "mean"),
     "spec.objective.metricStrategies[0].value: must be one of min, max, latest"),
    ("undefined-placeholder", TPE, _add_arg("--seed=${trialParameters.seed}"),
     "spec.trialTemplate.trialSpec: ${trialParameters.seed} is used but not defined"),
    ("direct-trial-name", TPE, _add_arg("--tracking-uri=${trialSpec.Name}"),
     "${trialSpec.Name} is substituted only through a trial parameter"),
    ("unused-trial-parameter", TPE, _unused_trial_param,
     "spec.trialTemplate.trialParameters[5].name: ${trialParameters.lora_mode} is not used"),
    ("search-parameter-unreferenced", TPE,
     lambda d: (_drop_trial_param("lora_mode")(d), _unused_trial_param(d)),
     "spec.parameters[4]: no trial parameter references lora_mode"),
    ("reference-to-nothing", TPE, _bad_reference,
     "spec.trialTemplate.trialParameters[1].reference: 'learning_rat' is not a parameter"),
    ("duplicate-trial-parameter", TPE, _duplicate_trial_param,
     "spec.trialTemplate.trialParameters[7].name: trial parameter learning_rate is defined twice"),
    ("bad-meta-reference", TPE,
     _set("spec.trialTemplate.trialParameters.0.reference", "${trialSpec.Uid}"),
     "${trialSpec.Uid} is not trial metadata Katib can substitute"),
    ("primary-container-missing", TPE, _rename_container,
     "spec.trialTemplate.primaryContainerName: container 'training-container' does not exist"),
    ("missing-primary-name", TPE, _drop("spec.trialTemplate.primaryContainerName"),
     "spec.trialTemplate.primaryContainerName: must be specified"),
    ("missing-success-condition", TPE, _drop("spec.trialTemplate.successCondition"),
     "spec.trialTemplate.successCondition: must be specified"),
    ("both-trial-sources", TPE,
     _set("spec.trialTemplate.configMap", {"configMapName": "t", "configMapNamespace": "k",
                                           "templatePath": "p"}),
     "spec.trialTemplate: exactly one of trialSpec and configMap must be specified"),
    ("unknown-spec-field", TPE, _set("spec.maxTrialCounts", 4),
     "spec.maxTrialCounts: unknown field"),
    ("unknown-feasible-space-field", TPE, _set("spec.parameters.0.feasibleSpace.mean", "0.1"),
     "spec.parameters[0].feasibleSpace.mean: unknown field"),
    ("unknown-container-field", TPE, lambda d: _container(d).update(commands=["x"]),
     "spec.trialTemplate.trialSpec.spec.template.spec.containers[0].commands: unknown field"),
    ("job-restart-always", TPE,
     _set("spec.trialTemplate.trialSpec.spec.template.spec.restartPolicy", "Always"),
     "spec.trialTemplate.trialSpec.spec.template.spec.restartPolicy: a Job needs Never or "
     "OnFailure"),
    ("trial-spec-named", TPE, _set("spec.trialTemplate.trialSpec.metadata", {"name": "x"}),
     "spec.trialTemplate.trialSpec.metadata: name and namespace must be omitted"),
    ("latest-image", TPE, lambda d: _container(d).update(image="ghcr.io/x/aurora-mlops:latest"),
     "image: 'ghcr.io/x/aurora-mlops:latest' must carry a pinned tag"),
    ("pytorchjob-container-name", PYTORCH,
     lambda d: d["spec"]["trialTemplate"]["trialSpec"]["spec"]["pytorchReplicaSpecs"]["Worker"][
         "template"]["spec"]["containers"][0].update(name="worker"),
     "spec.trialTemplate.trialSpec.spec.pytorchReplicaSpecs.Worker: needs a container named "
     "pytorch"),
    ("bad-experiment-name", TPE, _set("metadata.name", "Aurora_Sweep"),
     "metadata.name: 'Aurora_Sweep' must be lower-case letters, digits or '-'"),
    # kubeflow/katib pkg/webhook/v1beta1/experiment/validator/validator.go (v0.18.0+):
    # `len(instance.Name) > 40` is refused.
    ("name-over-40-characters", TPE, _set("metadata.name", "aurora-smoke-air-pollution-random-"
                                                           "0123abcd"),
     "metadata.name: 'aurora-smoke-air-pollution-random-0123abcd' has 42 characters; Katib's "
     "webhook refuses names longer than 40"),
    # pkg/suggestion/v1beta1/skopt/base_service.py: every double is Real(min, max,
    # "log-uniform"), which fails on a 0 bound.
    ("skopt-zero-lower-bound", TPE, lambda d: (
        d["spec"]["algorithm"].update(algorithmName="bayesianoptimization", algorithmSettings=[]),
        _param(d, "drop_path")["feasibleSpace"].update(min="0.0")),
     "spec.parameters[3].feasibleSpace.min: 0.0 must be greater than 0: Katib's "
     "bayesianoptimization (skopt) samples every double log-uniformly"),
    # pkg/suggestion/v1beta1/optuna/base_service.py: int/double only for uniform, logUniform.
    ("optuna-normal-distribution", TPE,
     lambda d: _param(d, "learning_rate")["feasibleSpace"].update(distribution="normal"),
     "spec.parameters[0].feasibleSpace.distribution: Katib's multivariate-tpe (Optuna) has no "
     "normal distribution: it leaves learning_rate out of its suggestions"),
    ("wrong-api-version", TPE, _set("apiVersion", "kubeflow.org/v1alpha3"),
     "apiVersion: must be kubeflow.org/v1beta1"),
    ("resume-policy", TPE, _set("spec.resumePolicy", "Sometimes"),
     "spec.resumePolicy: must be one of Never, LongRunning, FromVolume"),
    ("metrics-collector-kind", TPE, _set("spec.metricsCollectorSpec.collector.kind", "Stdout"),
     "spec.metricsCollectorSpec.collector.kind: invalid metrics collector kind"),
    ("metrics-format-one-group", TPE,
     _set("spec.metricsCollectorSpec.source", {"filter": {"metricsFormat": ["val_score=(.*)"]}}),
     "spec.metricsCollectorSpec.source.filter.metricsFormat[0]: 'val_score=(.*)' needs two top "
     "subexpressions"),
]


def test_the_bases_are_valid() -> None:
    for doc in (TPE, GRID, PYTORCH):
        assert check_experiment(doc) == []


@pytest.mark.parametrize(("base", "mutate", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_broken_spec_is_reported(base: Doc, mutate: Callable[[Doc], None],
                                 expected: str) -> None:
    doc = copy.deepcopy(base)
    mutate(doc)
    problems = check_experiment(doc)
    assert any(expected in p for p in problems), problems


def test_table_is_big_enough() -> None:
    assert len(CASES) >= 15
    assert len({c[0] for c in CASES}) == len(CASES)


def test_not_a_mapping() -> None:
    assert check_experiment(["a"]) == [
        "(document): expected a Katib Experiment (a mapping), got a list"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spec: [unclosed\n", "not valid YAML: "),
        ("- just\n- a list\n", "(document): expected a Katib Experiment (a mapping), got a list"),
        ("a: 1\n---\nb: 2\n", "not valid YAML: expected one YAML document, found 2"),
        ("", "(document): expected a Katib Experiment (a mapping), got nothing"),
    ],
    ids=["parse-error", "list", "two-documents", "empty"],
)
def test_file_level_problems(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    problems = check_file(path)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_missing_file(tmp_path: Path) -> None:
    problems = check_file(tmp_path / "nope.yaml")
    assert len(problems) == 1 and problems[0].startswith("cannot read the file: ")


def test_forty_characters_pass() -> None:
    doc = copy.deepcopy(TPE)
    doc["metadata"]["name"] = "a" * 40
    assert check_experiment(doc) == []


# Where Katib's suggestion service samples otherwise than the spec and the embedded runner: a
# warning each (the spec stays valid). Services per algorithm: kubeflow/katib
# manifests/v1beta1/installs/katib-standalone/katib-config.yaml (v0.17.0-v0.19.0).
def _algorithm(name: str, parallel: int | None = None) -> Callable[[Doc], None]:
    def mutate(d: Doc) -> None:
        d["spec"]["algorithm"] = {"algorithmName": name}
        if parallel is None:
            del d["spec"]["parallelTrialCount"]
        else:
            d["spec"]["parallelTrialCount"] = parallel
    return mutate


WARNINGS: list[tuple[str, Callable[[Doc], None], str, str]] = [
    # pkg/suggestion/v1beta1/hyperopt/base_service.py: after the first batch every slot calls
    # tpe.suggest with one seed and one history (kubeflow/katib#1329).
    ("hyperopt-tpe-parallel", _algorithm("tpe", 2), "0.19",
     "spec.algorithm.algorithmName: Katib serves tpe with hyperopt, which proposes one and the "
     "same point for all 2 trials of a request"),
    # Katib's default parallelTrialCount is 3 (pkg/apis/controller/experiments/v1beta1/
    # constants.go DefaultTrialParallelCount).
    ("hyperopt-tpe-default-parallel", _algorithm("tpe"), "0.19", "for all 3 trials"),
    # pkg/suggestion/v1beta1/goptuna/converter.go: Uniform/IntUniform from min, max, step only.
    ("sobol-log-uniform", _algorithm("sobol", 2), "0.19",
     "spec.parameters[0].feasibleSpace.distribution: Katib's sobol (goptuna) ignores logUniform"),
    ("cmaes-log-uniform", _algorithm("cmaes", 2), "0.19", "Katib's cmaes (goptuna) ignores"),
    ("skopt-uniform-double", _algorithm("bayesianoptimization", 2), "0.19",
     "spec.parameters[3]: Katib's bayesianoptimization (skopt) samples every double "
     "log-uniformly"),
    # hyperopt.hp.quniform: round(uniform(min, max) / step) * step.
    ("hyperopt-step-from-zero", lambda d: (_algorithm("random", 2)(d), _param(
        d, "lora_steps")["feasibleSpace"].update(min="25", max="60", step="10")), "0.19",
     "spec.parameters[5].feasibleSpace.step: Katib's random (hyperopt) rounds to multiples of "
     "10 counted from 0, not from min 25"),
    # FeasibleSpace.Distribution is new in v0.18.0 (experiment_types.go); 0.17 drops it.
    ("katib-0.17-distribution", lambda d: None, "0.17",
     "spec.parameters[0].feasibleSpace.distribution: Katib 0.17 has no "
     "feasibleSpace.distribution (added in 0.18): it ignores logUniform"),
]


@pytest.mark.parametrize(("mutate", "version", "expected"), [w[1:] for w in WARNINGS],
                         ids=[w[0] for w in WARNINGS])
def test_service_differences_are_warnings(mutate: Callable[[Doc], None], version: str,
                                          expected: str) -> None:
    doc = copy.deepcopy(TPE)
    mutate(doc)
    if "skopt" not in expected:
        assert check_experiment(doc) == []
    warnings = service_warnings(doc, katib_version=version)
    assert any(expected in w for w in warnings), warnings


@pytest.mark.parametrize(("mutate", "version"), [
    (_algorithm("tpe", 1), "0.19"),  # one trial a request: hyperopt's TPE is fine
    (_algorithm("multivariate-tpe", 4), "0.19"),  # Optuna with the constant liar
    # hyperopt's rand.suggest draws each new id from one advancing generator (hyperopt/rand.py)
    (_algorithm("random", 4), "0.19"),
    (lambda d: None, "0.18"),
], ids=["tpe-one-at-a-time", "multivariate-tpe", "hyperopt-random-parallel",
        "katib-0.18-distribution"])
def test_no_warning_where_katib_and_the_runner_agree(mutate: Callable[[Doc], None],
                                                     version: str) -> None:
    doc = copy.deepcopy(TPE)
    mutate(doc)
    assert service_warnings(doc, katib_version=version) == []


def test_cli_prints_warnings_and_exits_0(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from aurora_mlops.cli import main
    from aurora_mlops.tuning import dump_yaml

    doc = copy.deepcopy(TPE)
    _algorithm("tpe", 2)(doc)
    spec = tmp_path / "tpe.yaml"
    spec.write_text(dump_yaml(doc))
    assert main(["katib", "check", str(spec)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{spec}: ok\n"
    (line,) = err.splitlines()
    assert line.startswith(f"{spec}: warning: spec.algorithm.algorithmName: Katib serves tpe "
                           "with hyperopt")
    assert main(["katib", "check", "--katib-version", "0.17", str(spec)]) == 0
    assert "Katib 0.17 has no feasibleSpace.distribution" in capsys.readouterr().err
