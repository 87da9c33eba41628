"""Rendered Katib specs: golden files, valid for `katib check`, commands the CLI accepts."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aurora_mlops.cli import _katib, build_parser
from aurora_mlops.config import Settings
from aurora_mlops.training._params import parse_param_args, resolve_params
from aurora_mlops.tuning import (
    SWEEPS,
    TRIAL_NAME_PARAMETER,
    Sweep,
    build_experiment,
    check_experiment,
    check_file,
    load_spec,
    render_all,
    rendered_specs,
    spec_warnings,
)
from aurora_mlops.variants import VARIANTS

KATIB_DIR = Path(__file__).resolve().parents[2] / "katib"
DEFAULTS = Settings.model_construct()  # the defaults, whatever the environment says
SWEEP_IDS = [s.relpath for s in SWEEPS]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("katib")
    render_all(out, DEFAULTS)
    return out


def _yaml_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*.yaml")}


def test_checked_in_specs_equal_the_rendered_ones(rendered: Path) -> None:
    assert _yaml_files(KATIB_DIR) == _yaml_files(rendered) == set(SWEEP_IDS), (
        "katib/ is out of date: run `aurora-mlops katib render`")
    for rel in sorted(_yaml_files(rendered)):
        assert (KATIB_DIR / rel).read_bytes() == (rendered / rel).read_bytes(), (
            f"katib/{rel} differs from what the source renders: run `aurora-mlops katib render`")
    assert (KATIB_DIR / "README.md").is_file()


def test_layout_covers_every_variant_and_algorithm() -> None:
    for variant in VARIANTS:
        for algorithm in ("grid", "random", "tpe"):
            assert f"{variant}/{algorithm}.yaml" in SWEEP_IDS
            assert f"smoke/{variant}-{algorithm}.yaml" in SWEEP_IDS
            # A 4-GPU trial also runs one GPU a pod, for pools of 1-GPU nodes.
            assert (f"{variant}/{algorithm}-pytorchjob.yaml" in SWEEP_IDS) == (
                VARIANTS[variant].node_pool.gpus_per_trial > 1)


@pytest.mark.parametrize("rel", SWEEP_IDS)
def test_every_checked_in_spec_passes_katib_check(rel: str) -> None:
    assert check_file(KATIB_DIR / rel) == []
    # Nor does Katib sample otherwise than the embedded runner (Katib 0.18 and 0.19 have
    # feasibleSpace.distribution; 0.17 does not, and `katib check --katib-version 0.17` says so).
    for version in ("0.18", "0.19"):
        assert spec_warnings(KATIB_DIR / rel, katib_version=version) == []


def test_goptuna_specs_give_no_distribution() -> None:
    """Katib's sobol ignores distributions (kubeflow/katib pkg/suggestion/v1beta1/goptuna/
    converter.go): its specs sample uniformly, on Katib and in the embedded runner alike."""
    for sweep in SWEEPS:
        params = build_experiment(sweep, DEFAULTS)["spec"]["parameters"]
        given = [p["name"] for p in params if "distribution" in p["feasibleSpace"]]
        if sweep.algorithm == "sobol":
            assert given == [], sweep.relpath
    assert any("distribution" in p["feasibleSpace"] for p in build_experiment(
        next(s for s in SWEEPS if s.relpath == "smoke/medium-res-random.yaml"),
        DEFAULTS)["spec"]["parameters"])


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    trial = doc["spec"]["trialTemplate"]["trialSpec"]
    if trial["kind"] == "PyTorchJob":
        pod = trial["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    else:
        pod = trial["spec"]["template"]["spec"]
    container: dict[str, Any] = pod["containers"][0]
    return container


def _assignments(doc: dict[str, Any]) -> list[dict[str, str]]:
    """Katib-like assignments: every list value, and min/middle/max of ranges."""
    from aurora_mlops.tuning import SearchParameter

    examples = {p["name"]: SearchParameter.from_katib(p).examples()
                for p in doc["spec"]["parameters"]}
    rounds = max(len(v) for v in examples.values())
    return [{k: v[i % len(v)] for k, v in examples.items()} for i in range(rounds)]


@pytest.mark.parametrize("sweep", SWEEPS, ids=SWEEP_IDS)
def test_trial_command_parses_with_the_real_cli(sweep: Sweep) -> None:
    doc = load_spec((KATIB_DIR / sweep.relpath).read_text())
    command: list[str] = _container(doc)["command"]
    for assignment in _assignments(doc):
        values = {**assignment, TRIAL_NAME_PARAMETER: "trial-x7k2"}

        def sub(arg: str, values: dict[str, str] = values) -> str:
            return re.sub(r"\$\{trialParameters\.(.+?)\}", lambda m: values[m.group(1)], arg)

        argv = [sub(a) for a in command]
        assert not any("${" in a for a in argv), argv
        argv = argv[argv.index("train-trial"):]  # after the launcher (torchrun, ...)
        args, extra = build_parser().parse_known_args(argv)
        assert args.command == "train-trial"
        assert (args.variant, args.profile) == (sweep.variant, sweep.profile)
        assert args.output.endswith("/trial-x7k2")
        assert args.init == sweep.init
        params = resolve_params(args.profile, parse_param_args(extra))
        for name in sweep.parameters:
            assert getattr(params, name) is not None, name
        if sweep.variant == "high-res":  # bf16 autocast on GPUs only: slower on the CPU
            assert params.amp is (sweep.profile == "production")
        if sweep.variant == "air-pollution":
            assert params.positivity is True
        # Smoke trials too: the volumes' paths, not the image's working directory.
        assert args.data == f"/mnt/data/{sweep.variant}.nc"
        assert args.output == "/mnt/artifacts/trials/trial-x7k2"
        if sweep.profile == "smoke":
            assert (params.epochs, params.steps_per_epoch) == (3, 8)


@pytest.mark.parametrize("sweep", SWEEPS, ids=SWEEP_IDS)
def test_budgets_and_algorithms(sweep: Sweep) -> None:
    spec = build_experiment(sweep, DEFAULTS)["spec"]
    assert spec["objective"]["objectiveMetricName"] == "val_score"
    assert spec["objective"]["type"] == "minimize"
    assert spec["objective"]["additionalMetricNames"]
    assert spec["metricsCollectorSpec"] == {"collector": {"kind": "StdOut"}}
    n = spec["maxTrialCount"]
    assert 1 <= spec["parallelTrialCount"] <= n and 0 <= spec["maxFailedTrialCount"] <= n
    if sweep.algorithm == "halving":
        # Rung 0 of successive halving: a Sobol' design wide enough that 1/eta survive.
        assert sweep.halving is not None and n >= sweep.halving.eta ** 2
        assert spec["parallelTrialCount"] <= (2 if sweep.profile == "smoke" else 4)
    elif sweep.profile == "smoke":
        assert n <= 6 and spec["parallelTrialCount"] <= 2
    elif sweep.algorithm == "random":
        assert 10 <= n <= 30
    elif sweep.algorithm == "tpe":
        assert 30 <= n <= 60
    if sweep.algorithm == "tpe":
        assert spec["earlyStopping"]["algorithmName"] == "medianstop"
        # Katib's `tpe` (hyperopt) proposes duplicates to parallel trials; Optuna's does not.
        assert spec["algorithm"]["algorithmName"] == "multivariate-tpe"
    else:
        assert spec["algorithm"]["algorithmName"] == sweep.katib_algorithm
    if sweep.algorithm == "grid":
        assert n <= (sweep.space.grid_size() or 0)
        if sweep.profile == "production":
            assert {p.tag for p in sweep.space.parameters} == {"architecture"}


def test_production_trials_use_the_gpu_pool_from_settings() -> None:
    settings = Settings.model_construct(
        image_registry="registry.example.org/team", gpu_node_selector_key="pool",
        gpu_node_selector_value="a100", gpu_toleration_key="gpu-only", namespace="sweeps",
    )
    for sweep in SWEEPS:
        doc = build_experiment(sweep, settings)
        assert doc["metadata"]["namespace"] == "sweeps"
        container = _container(doc)
        assert container["image"].startswith("registry.example.org/team/aurora-mlops:")
        assert not container["image"].endswith(":latest")
        trial = doc["spec"]["trialTemplate"]["trialSpec"]
        pods = ([r["template"]["spec"] for r in trial["spec"]["pytorchReplicaSpecs"].values()]
                if trial["kind"] == "PyTorchJob" else [trial["spec"]["template"]["spec"]])
        for pod in pods:
            limits = pod["containers"][0]["resources"]["limits"]
            if sweep.profile == "production":
                assert pod["nodeSelector"] == {"pool": "a100"}
                assert pod["tolerations"][0]["key"] == "gpu-only"
                assert limits["nvidia.com/gpu"] >= 1
            else:
                assert "nodeSelector" not in pod and "nvidia.com/gpu" not in limits
        if sweep.profile == "production" and trial["kind"] == "Job":
            gpus = VARIANTS[sweep.variant].node_pool.gpus_per_trial
            assert container["resources"]["limits"]["nvidia.com/gpu"] == gpus


@pytest.mark.parametrize("algorithm", ["grid", "random", "tpe"])
def test_pytorchjob_spreads_the_gpus_over_pods(algorithm: str) -> None:
    doc = load_spec((KATIB_DIR / f"high-res/{algorithm}-pytorchjob.yaml").read_text())
    job = doc["spec"]["trialTemplate"]["trialSpec"]
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "PyTorchJob")
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert set(replicas) == {"Master", "Worker"} and replicas["Master"]["replicas"] == 1
    total = sum(r["replicas"] * r["template"]["spec"]["containers"][0]["resources"]["limits"][
        "nvidia.com/gpu"] for r in replicas.values())
    assert total == VARIANTS["high-res"].node_pool.gpus_per_trial
    for replica in replicas.values():
        container = replica["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
        # One process a pod; torchrun reads the rest from the PET_* variables the training
        # operator sets (kubeflow/training-operator pkg/controller.v1/pytorch/envvar.go).
        assert container["command"][:4] == ["torchrun", "--nproc_per_node=1", "--module",
                                            "aurora_mlops"]
    assert job["spec"]["nprocPerNode"] == "1"
    assert doc["spec"]["trialTemplate"]["primaryContainerName"] == "pytorch"
    # Katib reads metrics from the pod with this label (the training operator's master role,
    # kubeflow/training-operator pkg/apis/kubeflow.org/v1/common_types.go JobRoleLabel).
    assert doc["spec"]["trialTemplate"]["primaryPodLabels"] == {
        "training.kubeflow.org/job-role": "master"}


def test_smoke_specs_say_why_their_parameters_differ() -> None:
    for sweep in SWEEPS:
        annotations = build_experiment(sweep, DEFAULTS)["metadata"]["annotations"]
        assert ("aurora-mlops/smoke" in annotations) == (sweep.profile == "smoke")


def test_numbers_stay_strings_on_a_cluster() -> None:
    """`8e-05` unquoted is a float to Kubernetes; the dumper quotes it."""
    text = rendered_specs(DEFAULTS)["medium-res/tpe.yaml"]
    assert "min: '8e-05'" in text
    assert check_experiment(load_spec(text.replace("'8e-05'", "8e-05"))) == [
        "spec.parameters[0].feasibleSpace.min: must be a string, got the number 8e-05; "
        "quote it (\"8e-05\")"
    ]


def test_render_all_is_idempotent(tmp_path: Path) -> None:
    first = render_all(tmp_path, DEFAULTS)
    stamps = {p: p.stat().st_mtime_ns for p in first}
    assert render_all(tmp_path, DEFAULTS) == first
    assert {p: p.stat().st_mtime_ns for p in first} == stamps
    assert not list(tmp_path.rglob("*.tmp"))


def _katib_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    _katib.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def test_cli_render_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _katib_cli(["katib", "render", "--out", str(tmp_path)]) == 0
    files = sorted(str(p) for p in tmp_path.rglob("*.yaml"))
    assert _katib_cli(["katib", "check", *files]) == 0
    assert capsys.readouterr().out.count(": ok") == len(SWEEPS)
    bad = tmp_path / "bad.yaml"
    bad.write_text((tmp_path / "smoke/medium-res-grid.yaml").read_text()
                   .replace("maxTrialCount: 4", "maxTrialCount: 40"))
    assert _katib_cli(["katib", "check", files[0], str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{bad}: spec.maxTrialCount: 40 is larger than the grid (9 combinations); "
                   "grid search cannot run more trials than that"]


def test_cli_module_stays_cheap() -> None:
    code = ("import sys, aurora_mlops.cli._katib; "
            "print(sorted(m for m in ('yaml', 'optuna', 'aurora_mlops.tuning') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_a_variants_trial_flags_and_grids_come_from_its_spec() -> None:
    for sweep in SWEEPS:
        spec = VARIANTS[sweep.variant]
        command = build_experiment(sweep)["spec"]["trialTemplate"]["trialSpec"]
        text = str(command)
        assert all(flag in text for flag in spec.trial_flags), sweep.relpath
        own, other = ((spec.production_flags, spec.smoke_flags) if sweep.profile == "production"
                      else (spec.smoke_flags, spec.production_flags))
        assert all(flag in text for flag in own), sweep.relpath
        assert not any(flag in text for flag in other), sweep.relpath
        grid = spec.sweep_grid if sweep.profile == "production" else spec.smoke_sweep_grid
        if sweep.algorithm == "grid":
            assert set(sweep.parameters) == set(grid), sweep.relpath
        if sweep.algorithm == "random" and sweep.profile == "production":
            assert not set(sweep.parameters) & set(spec.sweep_random_leave_out), sweep.relpath
    assert any("--amp=on" in str(build_experiment(s)) for s in SWEEPS if s.variant == "high-res")
    # The wave headline's loss weights are the smoke model's, not a production fine-tune's.
    waves = {s.profile: str(build_experiment(s)) for s in SWEEPS if s.variant == "ocean-waves"}
    assert "--variable_weights=" in waves["smoke"]
    assert "--variable_weights=" not in waves["production"]
