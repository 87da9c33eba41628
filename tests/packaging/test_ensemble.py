"""`package --ensemble K`: a sweep's K best trials as one pyfunc, checked at load, mean served."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from aurora_mlops.errors import CheckpointError
from aurora_mlops.packaging import PackageError, load_forecaster, parse_request, select_members
from aurora_mlops.tuning import best_document, read_best

VARIANT = "medium-res"
#: The Experiment the sweep's best.json names.
EXPERIMENT = "mr-sweep"
#: Three tiny trials that differ in seed and learning rate (so their weights differ).
TRIALS = {"sw-0": (0, 3e-3), "sw-1": (1, 1e-3), "sw-2": (2, 5e-3)}


def _status(work: Path, succeeded: list[str]) -> None:
    (work / "status.json").write_text(json.dumps({"succeededTrialList": succeeded}))


@pytest.fixture(scope="module")
def sweep(synthetic_data: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain sweep's work dir: three Succeeded trials and one Failed without a checkpoint."""
    from aurora_mlops.training import resolve_params, train_trial
    from aurora_mlops.variants import get_variant

    work = tmp_path_factory.mktemp("ensemble") / "sweep"
    for name, (seed, lr) in TRIALS.items():
        train_trial(
            variant=get_variant(VARIANT), data=synthetic_data(VARIANT),
            output_dir=work / "trials" / name,
            params=resolve_params("smoke", {"epochs": 1, "steps_per_epoch": 2, "seed": seed,
                                            "learning_rate": lr}),
            profile="smoke", tracking=False, stdout=io.StringIO(),
        )
    (work / "trials" / "sw-3").mkdir()
    _status(work, [*TRIALS, "sw-3"])
    best = select_members(work, 1)[0]
    (work / "best.json").write_text(json.dumps(best_document(
        experiment=EXPERIMENT, best_trial=best.name, parameters={"learning_rate": "0.001"},
        metrics={"val_score": best.value}, checkpoint=str(best.trial_dir / "model.ckpt"))))
    return work


def _scores(work: Path) -> list[tuple[float, str]]:
    return sorted(
        (json.loads((work / "trials" / n / "trial.json").read_text())["metrics"]["val_score"], n)
        for n in TRIALS
    )


def test_a_plain_sweep_gives_its_best_succeeded_trials_with_a_checkpoint(sweep: Path) -> None:
    members = select_members(sweep, 3)
    assert [m.name for m in members] == [n for _, n in _scores(sweep)]
    assert [m.value for m in members] == sorted(m.value for m in members)
    with pytest.raises(PackageError, match=r"has 3 Succeeded trials with a checkpoint, fewer "
                                           r"than --ensemble 4: pass --ensemble 3"):
        select_members(sweep, 4)
    with pytest.raises(PackageError, match="at least 1"):
        select_members(sweep, 0)


def _fake_trial(work: Path, name: str, value: float) -> None:
    folder = work / "trials" / name
    folder.mkdir(parents=True)
    (folder / "model.ckpt").write_bytes(b"x")
    (folder / "trial.json").write_text(json.dumps({"metrics": {"val_score": value}}))


def test_a_halving_chain_gives_configurations_at_their_furthest_budget(tmp_path: Path) -> None:
    """Budget first, then value; a configuration whose last trial failed counts at the rung
    before; a promoted trial's earlier rung is not a configuration of its own."""
    def trial(name: str, value: float | None, parent: str | None = None,
              state: str = "Succeeded") -> dict[str, object]:
        if value is not None and state == "Succeeded":
            _fake_trial(tmp_path, name, value)
        return {"name": name, "state": state, "value": value,
                "parameters": {"promoted": parent} if parent else {"lr": "0.1"}}

    rungs = [
        {"budget": 3, "trials": [trial("r0-a", 0.50), trial("r0-b", 0.40), trial("r0-c", 0.30),
                                 trial("r0-d", 0.45)]},
        {"budget": 9, "trials": [trial("r1-a", 0.35, "r0-c"),
                                 trial("r1-b", None, "r0-b", state="Failed")]},
        {"budget": 27, "trials": [trial("r2-a", 0.90, "r1-a")]},
    ]
    (tmp_path / "halving.json").write_text(json.dumps({"rungs": rungs}))
    members = select_members(tmp_path, 4)
    assert [(m.name, m.budget) for m in members] == [
        ("r2-a", 27), ("r0-b", 3), ("r0-d", 3), ("r0-a", 3)]


def test_a_folder_that_is_no_sweep_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="not a local sweep's work dir"):
        select_members(tmp_path, 2)


@pytest.fixture(scope="module")
def packages(sweep: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from aurora_mlops.cli import main

    root = tmp_path_factory.mktemp("ensemble-packages")
    out = {"ensemble": root / "ensemble", "single": root / "single"}
    assert main(["package", "--model", str(sweep), "--variant", VARIANT,
                 "--out", str(out["ensemble"]), "--ensemble", "2"]) == 0
    assert main(["package", "--model", str(sweep), "--variant", VARIANT,
                 "--out", str(out["single"])]) == 0
    return out


def test_a_package_of_a_sweep_names_its_experiment_and_best_trial(
    packages: dict[str, Path], sweep: Path
) -> None:
    """Both the best trial alone and the ensemble say which Experiment and trial they came
    from, on the card and in the metadata that publish tags the registered version with."""
    from aurora_mlops.packaging import read_package

    best = read_best(sweep)
    for kind, package in packages.items():
        info = read_package(package)
        assert (info.katib_experiment, info.katib_trial) == (EXPERIMENT, best.trial), kind
        assert info.tags()["katib_experiment"] == EXPERIMENT
        card = info.model_card.read_text()
        assert f"Katib Experiment `{EXPERIMENT}` trial `{best.trial}`." in card, kind
        record = json.loads((package / "artifacts" / "best_params.json").read_text())["best"]
        assert (record["experiment"], record["trial"]) == (EXPERIMENT, best.trial)


@pytest.mark.parametrize("ensemble", ["1", "2"], ids=["best-trial", "ensemble"])
@pytest.mark.parametrize(("text", "names"), [
    ('{"bestTrialName": 3}', "field 'bestTrialName' must be a string or null, not 3"),
    ('{"experiment": ', "is not readable JSON"),
], ids=["wrong-field", "not-json"])
def test_a_broken_best_json_is_one_sentence_naming_the_file(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], ensemble: str, text: str,
    names: str,
) -> None:
    import shutil

    from aurora_mlops.cli import main

    work = tmp_path / "sweep"
    work.mkdir()
    (work / "trials").symlink_to(sweep / "trials")
    shutil.copy(sweep / "status.json", work)
    (work / "best.json").write_text(text)
    code = main(["package", "--model", str(work), "--variant", VARIANT,
                 "--out", str(tmp_path / "pkg"), "--ensemble", ensemble])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"aurora-mlops: error: {work / 'best.json'}") and names in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "pkg").exists()


def _example(package: Path) -> dict[str, object]:
    return json.loads((package / "serving_input_example.json").read_text())["inputs"]


def test_the_ensemble_serves_the_mean_of_its_members_and_the_members_on_request(
    packages: dict[str, Path], sweep: Path
) -> None:
    from aurora_mlops.packaging import read_package

    info = read_package(packages["ensemble"])
    want = [n for _, n in _scores(sweep)][:2]
    assert [m["trial"] for m in info.ensemble] == want
    assert info.trial == want[0]
    ens, single = load_forecaster(packages["ensemble"]), load_forecaster(packages["single"])
    example = _example(packages["ensemble"])
    plain = ens.forecast(example, {"steps": 2})
    assert not any(k.endswith("_members") for k in plain)
    answer = ens.forecast(example, {"steps": 2, "members": True})
    alone = single.forecast(example, {"steps": 2})
    for name in ens.contract.state_vars if ens.contract else ():
        members = answer[f"{name}_members"]
        assert members.shape[:3] == (1, 2, 2)
        np.testing.assert_allclose(answer[name], members.mean(axis=1), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(answer[name], plain[name])
        # member 0 is the best trial, and rolls out exactly as that trial packaged alone
        np.testing.assert_allclose(members[:, 0], alone[name], rtol=1e-5, atol=1e-5)
        assert not np.allclose(members[:, 0], members[:, 1])


def test_a_reference_forecast_names_the_ensemble(
    packages: dict[str, Path], synthetic_data: Callable[..., Path], tmp_path: Path
) -> None:
    import xarray as xr

    from aurora_mlops.packaging import read_package

    ens = load_forecaster(packages["ensemble"])
    answer = ens.forecast({"input_uri": str(synthetic_data(VARIANT)),
                           "output_uri": str(tmp_path / "fc.nc")}, {"steps": 1})
    with xr.open_dataset(answer["output_uri"]) as fc:
        assert fc.attrs["checkpoint_sha256"] == read_package(
            packages["ensemble"]).checkpoint_sha256


def test_members_must_be_a_boolean(packages: dict[str, Path]) -> None:
    from aurora_mlops.packaging import RequestError

    ens = load_forecaster(packages["ensemble"])
    with pytest.raises(RequestError, match=r"params\.members must be true or false"):
        ens.forecast(_example(packages["ensemble"]), {"steps": 1, "members": 3})
    assert ens.contract is not None
    assert parse_request(_example(packages["ensemble"]), {"steps": 1}, ens.contract, ens.grid)


def test_a_changed_member_is_refused_at_load_naming_it(
    packages: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "pkg"
    shutil.copytree(packages["ensemble"], copy)
    record = json.loads((copy / "artifacts" / "ensemble.json").read_text())
    ckpt = copy / "artifacts" / "members" / "1" / "model.ckpt"
    ckpt.write_bytes(ckpt.read_bytes() + b"\0")
    with pytest.raises(CheckpointError, match=rf"^ensemble member 1 \(trial "
                                              rf"{record['members'][1]['trial']}\): .* has "
                                              r"sha256 .*, but ensemble.json records"):
        load_forecaster(copy)


def test_ensemble_of_one_trial_folder_is_refused(sweep: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from aurora_mlops.cli import main

    code = main(["package", "--model", str(sweep / "trials" / "sw-0"), "--variant", VARIANT,
                 "--out", str(tmp_path / "p"), "--ensemble", "2"])
    assert code != 0
    assert "needs a sweep's work dir as --model" in capsys.readouterr().err


@pytest.fixture(scope="module")
def ensemble_eval(sweep: Path, synthetic_data: Callable[..., Path],
                  tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aurora_mlops.cli import main

    out = tmp_path_factory.mktemp("ensemble-eval") / "eval"
    assert main(["evaluate", "--model", str(sweep), "--ensemble", "2", "--data",
                 str(synthetic_data(VARIANT)), "--variant", VARIANT, "--out", str(out),
                 "--lead-steps", "2", "--max-inits", "3"]) == 0
    return out


def test_evaluate_scores_the_ensemble_with_its_member_metrics_against_the_best_member(
    ensemble_eval: Path, sweep: Path, packages: dict[str, Path], tmp_path: Path
) -> None:
    from aurora_mlops.packaging import package_model, read_package

    metrics = json.loads((ensemble_eval / "metrics.json").read_text())
    model_metrics = {r["metric"] for r in metrics["rows"] if r["model"] == "model"}
    assert {"crps", "spread", "spread_skill", "rmse"} <= model_metrics
    assert "best_member" in metrics["models"]
    assert not {"crps", "spread"} & {r["metric"] for r in metrics["rows"]
                                      if r["model"] == "best_member"}
    assert "rmse" in metrics["scorecard"]["model"]["best_member"]
    # The evaluation names the ensemble's digest: packaging it with its ensemble passes and
    # the gate can read the comparison with the best member; the single model's is refused.
    info = read_package(package_model(sweep, variant=VARIANT, out=tmp_path / "p",
                                      eval_dir=ensemble_eval, ensemble=2).path)
    assert metrics["checkpoint"]["sha256"] == info.checkpoint_sha256
    card = metrics["scorecard"]["model"]["best_member"]["rmse"]
    assert info.scores["rmse_wins_vs_best_member"] == card["wins"]
    with pytest.raises(PackageError, match="but the packaged checkpoint is"):
        package_model(sweep, variant=VARIANT, out=tmp_path / "q", eval_dir=ensemble_eval)
    _card_says_who_won(info.model_card.read_text(), metrics)
    assert "## Ensemble" not in (packages["single"] / "artifacts" / "MODEL_CARD.md").read_text()


def _card_says_who_won(card: str, metrics: dict[str, object]) -> None:
    """The card's verdict, recomputed here from metrics.json's RMSE rows."""
    from aurora_mlops.packaging._card import fmt

    rmse: dict[str, dict[tuple[object, ...], float]] = {"model": {}, "best_member": {}}
    for r in metrics["rows"]:  # type: ignore[attr-defined]
        if r["metric"] == "rmse" and r["model"] in rmse:
            rmse[r["model"]][(r["variable"], r["level"], r["lead_hours"])] = r["value"]
    ratios = [v / rmse["best_member"][k] for k, v in rmse["model"].items()]
    median = float(np.median(ratios))
    winner = "the ensemble mean" if median < 1 else "the best single member"
    assert "## Ensemble" in card
    assert (f"lower in {sum(x < 1 for x in ratios)} of {len(ratios)} targets, median RMSE "
            f"ratio {fmt(median)}: **{winner} won, by {fmt(abs(median - 1) * 100)} % of RMSE**"
            ) in card


def test_evaluate_takes_an_ensemble_package_as_the_model(
    packages: dict[str, Path], ensemble_eval: Path, synthetic_data: Callable[..., Path],
    tmp_path: Path,
) -> None:
    from aurora_mlops.cli import main

    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(packages["ensemble"]), "--data",
                 str(synthetic_data(VARIANT)), "--variant", VARIANT, "--out", str(out),
                 "--lead-steps", "2", "--max-inits", "3"]) == 0
    again = json.loads((out / "metrics.json").read_text())
    first = json.loads((ensemble_eval / "metrics.json").read_text())
    assert again["checkpoint"]["sha256"] == first["checkpoint"]["sha256"]
    assert again["scorecard"] == first["scorecard"]


def test_benchmark_reports_the_cost_per_member_and_packages_with_the_ensemble(
    packages: dict[str, Path], sweep: Path, tmp_path: Path
) -> None:
    from aurora_mlops.cli import main
    from aurora_mlops.packaging import package_model, read_package

    out = tmp_path / "bench"
    assert main(["benchmark", "--model", str(packages["ensemble"]), "--variant", VARIANT,
                 "--out", str(out), "--repeats", "1", "--warmup", "0", "--train-steps", "1",
                 "--batch-sizes", "1", "--no-amp-compare"]) == 0
    report = json.loads((out / "benchmark.json").read_text())
    cost = report["ensemble"]
    assert [r["members"] for r in cost["rows"]] == [1, 2]
    assert all(r["latency_s"] > 0 and r["rss_bytes"] > 0 for r in cost["rows"])
    assert cost["per_member"]["param_bytes"] > 0
    info = read_package(packages["ensemble"])
    assert report["model"]["checkpoint_sha256"] == info.checkpoint_sha256
    assert report["model"]["best_member_sha256"] == info.ensemble[0]["checkpoint_sha256"]
    package_model(sweep, variant=VARIANT, out=tmp_path / "p", bench_dir=out, ensemble=2)


def test_the_pipeline_steps_package_the_sweep_of_the_best_trial_with_its_benchmark(
    sweep: Path, ensemble_eval: Path, tmp_path: Path
) -> None:
    """ensemble=2 in the pipeline: the best trial's folder stands for its sweep, and a
    benchmark of that best trial alone (one member's figures) is accepted by the package."""
    from aurora_mlops.cli import main
    from aurora_mlops.errors import ConfigError
    from aurora_mlops.kfp.steps import ensemble_sweep, package

    best = select_members(sweep, 1)[0].trial_dir
    assert ensemble_sweep(best, 1) == best
    assert ensemble_sweep(best, 2) == sweep
    with pytest.raises(ConfigError, match="an ensemble needs backend=local and an empty "
                                          "final_fit_args"):
        ensemble_sweep(tmp_path / "final-fit", 2)
    bench = tmp_path / "bench"
    assert main(["benchmark", "--model", str(best), "--variant", VARIANT, "--out", str(bench),
                 "--repeats", "1", "--warmup", "0", "--train-steps", "1", "--batch-sizes", "1",
                 "--no-amp-compare"]) == 0
    info = package(model_dir=best, variant=VARIANT, out_dir=tmp_path / "p",
                   eval_dir=ensemble_eval, bench_dir=bench, ensemble=2)
    assert info["checkpoint_sha256"] == json.loads(
        (ensemble_eval / "metrics.json").read_text())["checkpoint"]["sha256"]
