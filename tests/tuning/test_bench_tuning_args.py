"""bench/bench_tuning.py: bad arguments stop it before any work, the held-out comparison pairs
the pick and the defaults seed by seed, and its verdict follows the paired standard error."""

from __future__ import annotations

import importlib.util
import json
import shlex
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from aurora_mlops.kfp import LocalBudget
from aurora_mlops.training import parse_param_args, resolve_params

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_tuning.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_tuning", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv", [["--seeds", "1"], ["--jobs", "0"],
                                  ["--steps-per-epoch", "0"], ["--part", "c"],
                                  ["--plan", "27:1:2,6,18"], ["--plan", "27:3:6,2"],
                                  ["--plan", "27:3"], ["--pool", "-1"],
                                  ["--replay", "8:2"]])
def test_bad_arguments_are_usage_errors_before_any_work(
        argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    with pytest.raises(SystemExit) as exit_:
        _bench().main([*argv, "--work", str(work)])
    assert exit_.value.code == 2
    assert "usage:" in capsys.readouterr().err
    assert not work.exists()


def test_held_out_fits_pair_the_pick_with_the_defaults_seed_by_seed(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    bench = _bench()
    swept: dict[str, Any] = {}
    fits: list[tuple[str, dict[str, Any]]] = []

    def sweep(**kw: Any) -> dict[str, Any]:
        swept.update(kw)
        return {"parameterAssignments": [{"name": "learning_rate", "value": "0.002"},
                                         {"name": "t0", "value": "1500"}]}

    def pool(calls: list[tuple[Any, ...]], jobs: int) -> list[tuple[float, float]]:
        out = []
        for _, data, folder, given in calls:
            assert data.is_file()  # the held-out dataset was written
            fits.append((folder.name, given))
            seed = given["seed"]
            # The pick beats the defaults by 0.02 on every seed, seeds differ by 0.1.
            out.append((0.80 + 0.1 * seed if folder.name.startswith("tuned") else
                        0.82 + 0.1 * seed, 0.6))
        return out

    monkeypatch.setattr(bench, "sweep", sweep)
    monkeypatch.setattr(bench, "_pool", pool)
    assert bench.main(["--variants", "medium-res", "--part", "a", "--seeds", "3", "--jobs", "1",
                       "--steps-per-epoch", "5", "--work", str(tmp_path)]) == 0
    assert swept["algorithm"] == "halving" and swept["backend"] == "local"
    assert "--steps_per_epoch=5" in swept["trial_args"]
    # make run's budget (its epochs and patience), with the bench's steps an epoch.
    budget = {**parse_param_args(shlex.split(LocalBudget().trial_args)), "steps_per_epoch": 5}
    expected = {**{f"tuned-{s}": {"learning_rate": 0.002, "t0": 1500, **budget, "seed": s}
                   for s in (1, 2, 3)},
                **{f"default-{s}": {**budget, "seed": s} for s in (1, 2, 3)}}
    assert {name: resolve_params("smoke", given) for name, given in fits} == {
        name: resolve_params("smoke", given) for name, given in expected.items()}
    out = capsys.readouterr().out
    # Unpaired, the arms overlap (seed spread 0.1); paired, the pick wins by 0.02 every time.
    assert "paired default - tuned +0.0200 +- 0.0000: pays (beyond 2 SE)" in out


def test_a_pick_worse_than_the_defaults_is_said_so(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _bench()
    bench.print_a("ocean-waves", {"tuned": [0.9, 0.95, 1.0], "default": [0.8, 0.86, 0.9],
                                  "won_tuned": [0.5] * 3, "won_default": [0.6] * 3,
                                  "best": {}, "sweep_s": 1.0})
    assert "WORSE than the defaults" in capsys.readouterr().out


def test_both_arms_train_with_the_variants_smoke_flags(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Air pollution's sweep trials run with ``--positivity=on`` (not searched, so not among
    the pick's assignments): the held-out fits of both arms must too, or (a) compares models
    trained unlike the ones the sweep ranked."""
    bench = _bench()
    fits: list[dict[str, Any]] = []

    def pool(calls: list[tuple[Any, ...]], jobs: int) -> list[tuple[float, float]]:
        fits.extend(given for *_, given in calls)
        return [(0.9, 0.5)] * len(calls)

    monkeypatch.setattr(bench, "sweep", lambda **kw: {"parameterAssignments": []})
    monkeypatch.setattr(bench, "_pool", pool)
    assert bench.main(["--variants", "air-pollution", "--part", "a", "--seeds", "2",
                       "--jobs", "1", "--steps-per-epoch", "5", "--work", str(tmp_path)]) == 0
    assert len(fits) == 4
    assert all(resolve_params("smoke", given).positivity for given in fits)


def test_the_fidelity_is_the_rank_correlation_of_each_lower_rung_with_the_full_budget(
        tmp_path: Path) -> None:
    """Three full-length trials (6 epochs): by epoch 2 they rank in the reverse of their final
    order, by epoch 4 in the same order; the last budget (the full one) is not a rung to judge."""
    bench = _bench()
    histories = {"a": [0.9, 0.8, 0.5, 0.3, 0.2, 0.1], "b": [0.6, 0.5, 0.4, 0.35, 0.3, 0.25],
                 "c": [0.5, 0.4, 0.45, 0.42, 0.41, 0.4]}
    folders = []
    for name, scores in histories.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "trial.json").write_text(json.dumps(
            {"history": [{"epoch": i + 1, "val_score": v} for i, v in enumerate(scores)]}))
        folders.append(folder)
    assert bench._fidelity(bench._curves(folders), (2, 4, 6)) == pytest.approx([-1.0, 1.0])


def _pool(finals: list[float], early: list[float], epochs: int = 4) -> list[list[float]]:
    """Full-length curves: each trial's val_score ranks as ``early`` until the last epoch, where
    it drops to its ``final``."""
    return [[e + 1.0] * (epochs - 1) + [f] for e, f in zip(early, finals, strict=True)]


def test_the_replay_follows_the_first_rungs_ranking() -> None:
    """Replayed from ten full-length trials, 8-4-2 at 1, 2, 4 epochs costs 16 epochs, so random
    search's 3C is 12 whole trials: the whole pool, its best every time. Where the early epochs
    rank like the last, halving finds the pool's best whenever its 8 first-rung trials hold it
    (8 in 10 draws); where they rank in reverse, it promotes the worst and never does, and
    random search reaches its best within a fraction of C."""
    bench = _bench()
    plan = bench.Halving(eta=2, budgets=(1, 2, 4))
    finals = [0.1 * (i + 1) for i in range(10)]
    alike, _ = bench.replay(_pool(finals, finals), 8, plan)
    assert alike == pytest.approx(0.8, abs=0.04)
    reversed_, need = bench.replay(_pool(finals, finals[::-1]), 8, plan)
    assert reversed_ == 0.0
    # Halving keeps 2 of the 4 worst of its 8: its best is at most the 7th of 10, which random
    # search's first few trials beat (each of its trials costs 4 / 16 C).
    assert need < 1.0


def test_the_replay_counts_what_random_search_needs_to_reach_halvings_best() -> None:
    """A pool of two trials and a bracket of one trial, promoted from 1 epoch to 2 (C = one
    trial): halving gets the better trial in half the draws, and random search (3 trials: the
    whole pool) always has it, so halving reaches random's best half the time. Random search's
    first trial reaches halving's best in 3 draws of 4 (halving got the worse trial, or both
    got the better), its second otherwise: a median of 1 C."""
    bench = _bench()
    pool = _pool([0.1, 0.2], [0.1, 0.2], epochs=2)
    reached, need = bench.replay(pool, 1, bench.Halving(eta=2, budgets=(1, 2)), draws=4000)
    assert reached == pytest.approx(0.5, abs=0.04)
    assert need == 1.0


def test_held_out_fits_take_the_pick_of_the_plans_bracket(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``--plan`` in (a): the bracket runs on the embedded runner over make run's space and
    budget instead of make run's tune step, and its pick is what the tuned arm fits."""
    from types import SimpleNamespace

    from aurora_mlops.tuning import read_halving

    bench = _bench()
    chains: list[Any] = []

    def run_halving_local(exp: Any, **kw: Any) -> Any:
        chains.append((exp, kw))
        return SimpleNamespace(parameters={"learning_rate": "0.004", "t0": "300"})

    fits: list[tuple[str, dict[str, Any]]] = []

    def pool(calls: list[tuple[Any, ...]], jobs: int) -> list[tuple[float, float]]:
        fits.extend((folder.name, given) for _, _, folder, given in calls)
        return [(0.9, 0.5)] * len(calls)

    monkeypatch.setattr(bench, "sweep", lambda **kw: pytest.fail("make run's step ran"))
    monkeypatch.setattr(bench, "run_halving_local", run_halving_local)
    monkeypatch.setattr(bench, "_pool", pool)
    assert bench.main(["--variants", "medium-res", "--part", "a", "--seeds", "2", "--jobs", "1",
                       "--steps-per-epoch", "5", "--plan", "16:4:1,6,18",
                       "--work", str(tmp_path)]) == 0
    ((exp, kw),) = chains
    plan = read_halving(exp.raw)
    assert plan is not None and (plan.eta, plan.budgets) == (4, (1, 6, 18))
    assert exp.raw["spec"]["maxTrialCount"] == 16
    command = " ".join(exp.raw["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"][0]["command"])
    assert "--steps_per_epoch=5" in command
    assert (kw["data_dir"] / "medium-res.nc").is_file()  # the held-out data
    tuned = [resolve_params("smoke", g) for name, g in fits if name.startswith("tuned")]
    assert [(p.learning_rate, p.t0, p.seed) for p in tuned] == [(0.004, 300, 1), (0.004, 300, 2)]
