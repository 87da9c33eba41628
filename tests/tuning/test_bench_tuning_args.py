"""bench/bench_tuning.py: bad arguments stop it before any work, the held-out comparison pairs
the pick and the defaults seed by seed, and its verdict follows the paired standard error."""

from __future__ import annotations

import importlib.util
import json
import math
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
                                  ["--replay", "8:2"], ["--space", "wide"],
                                  ["--val-leads", "0"], ["--val-weighting", "skill"],
                                  # 16 for the bracket and 8 for random's 3C: 20 is too few.
                                  ["--part", "b", "--pool", "20", "--replay", "16:4:1,6,18"],
                                  ["--part", "b", "--replay", "8:2:2,6,24"]])
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


def test_val_leads_sets_every_trial_and_fit_of_the_bench(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    bench = _bench()
    swept: dict[str, Any] = {}
    fits: list[dict[str, Any]] = []

    def pool(calls: list[tuple[Any, ...]], jobs: int) -> list[tuple[float, float]]:
        fits.extend(given for *_, given in calls)
        return [(0.9, 0.5)] * len(calls)

    monkeypatch.setattr(bench, "sweep", lambda **kw: swept.update(kw) or {
        "parameterAssignments": []})
    monkeypatch.setattr(bench, "_pool", pool)
    assert bench.main(["--variants", "medium-res", "--part", "a", "--seeds", "2", "--jobs", "1",
                       "--val-leads", "4", "--val-weighting", "persistence",
                       "--work", str(tmp_path)]) == 0
    swept_args = parse_param_args(shlex.split(swept["trial_args"]))
    assert swept_args["val_lead_steps"] == "4"
    assert swept_args["val_lead_weighting"] == "persistence"
    resolved = [resolve_params("smoke", given) for given in fits]
    assert [p.validation_leads() for p in resolved] == [4] * 4
    assert [p.val_lead_weighting for p in resolved] == ["persistence"] * 4
    # Progress on stderr while it works; the results on stdout.
    err = capsys.readouterr().err
    assert "(a) medium-res: sweeping the held-out data" in err
    assert "picked the defaults; fitting the pick and the defaults with 2 seeds each" in err
    assert "(a) medium-res: 4 fits scored" in err
    # Without it, what make run's trials validate.
    assert bench._budget_args(50) == " ".join(
        f"--{k}={v}" for k, v in {**parse_param_args(shlex.split(LocalBudget().trial_args)),
                                   "steps_per_epoch": 50}.items())


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
    """Replayed from twenty full-length trials, 8-4-2 at 1, 2, 4 epochs costs 16 epochs, so
    random search's 3C is 12 whole trials: the 12 the bracket did not draw. Where the early
    epochs rank like the last, halving finds the pool's best whenever its 8 first-rung trials
    hold it (8 in 20 draws); where they rank in reverse, it promotes the worst and never does,
    and random search reaches its best within a fraction of C. Ranked by the full budget (the
    bracket's ceiling), it finds the best in 8 draws of 20 either way."""
    bench = _bench()
    plan = bench.Halving(eta=2, budgets=(1, 2, 4))
    finals = [0.1 * (i + 1) for i in range(20)]
    alike, _ = bench.replay(_pool(finals, finals), 8, plan)
    assert alike == pytest.approx(0.4, abs=0.04)
    reversed_, need = bench.replay(_pool(finals, finals[::-1]), 8, plan)
    assert reversed_ == 0.0
    # Halving keeps 2 of the 4 worst of its 8: its best is the 7th of them, which random
    # search's first few trials beat (each of its trials costs 4 / 16 C).
    assert need < 1.0
    ceiling, _ = bench.replay(_pool(finals, finals[::-1]), 8, plan, oracle=True)
    assert ceiling == pytest.approx(0.4, abs=0.04)


def test_the_replay_counts_what_random_search_needs_to_reach_halvings_best() -> None:
    """A pool of four trials, one better than three alike, and a bracket of one trial promoted
    from 1 epoch to 2 (C = one trial): random search's 3C is the other three. Halving gets the
    better trial in a quarter of the draws and reaches random's best only then (random search
    has it otherwise). Random search's first trial reaches halving's best whenever halving got
    a worse one (3 draws in 4), and never otherwise: a median of 1 C."""
    bench = _bench()
    pool = _pool([0.1, 0.2, 0.2, 0.2], [0.1, 0.2, 0.2, 0.2], epochs=2)
    reached, need = bench.replay(pool, 1, bench.Halving(eta=2, budgets=(1, 2)), draws=4000)
    assert reached == pytest.approx(0.25, abs=0.03)
    assert need == 1.0


def test_the_replay_draws_the_bracket_and_random_search_apart() -> None:
    """2-1 at 1, 2 epochs costs 3 epochs, so random search's 3C (9 epochs) is 5 trials. Drawn
    apart from a pool of ten that rank alike at every epoch, halving reaches random's best when
    the best of the 7 trials drawn is among its 2: 2 draws in 7. Drawn independently, the two
    would share trials and tie whenever both held the same best (0.34: a simulation). A pool
    without room for both is an error."""
    bench = _bench()
    finals = [0.1 * (i + 1) for i in range(10)]
    reached, _ = bench.replay(_pool(finals, finals, epochs=2), 2, bench.Halving(
        eta=2, budgets=(1, 2)), draws=6000)
    assert reached == pytest.approx(2 / 7, abs=0.02)
    with pytest.raises(ValueError, match="too few for random search's 3C"):
        bench.replay(_pool(finals, finals, epochs=2), 6, bench.Halving(eta=2, budgets=(1, 2)))


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


def test_a_failed_trial_is_out_at_its_rung_and_costs_random_search_only_its_epochs() -> None:
    """A pool of two good trials (0.1 and 0.2 after 2 epochs) and four that diverged in their
    second epoch after a fine first one. The bracket is one trial promoted from 1 epoch to 2
    (C = 2 epochs): with a diverged one it fails at the last rung and ships nothing. Random
    search gets the other five, and its 3C (6 epochs) pays each failure only its finished
    epoch, so it starts all five and always has the better good trial unless halving drew it:
    halving reaches random's best in 1 draw of 6. Charged whole trials, random would start only
    3 of its 5 and miss the better one 2 times in 5 when halving drew the worse (7 in 30)."""
    bench = _bench()
    pool = [[0.5, 0.1], [0.6, 0.2]] + [[0.05]] * 4
    reached, need = bench.replay(pool, 1, bench.Halving(eta=2, budgets=(1, 2)), draws=6000)
    assert reached == pytest.approx(1 / 6, abs=0.015)
    # Where halving shipped nothing or the worse good trial (5 draws in 6), random search
    # reaches it with its first good trial, after 2 to 6 epochs: 1 to 3 C.
    assert 1.0 <= need <= 3.0


def test_a_diverged_trial_scores_inf_costs_its_finished_epochs_and_ranks_nothing(
        tmp_path: Path) -> None:
    """``failure.json`` (train-trial's record of a NaN loss) holds the epochs before it."""
    bench = _bench()
    folders = []
    for name, scores in {"a": [0.9, 0.5, 0.3], "b": [0.8, 0.6, 0.4], "c": [0.7, 0.6, 0.5]}.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "trial.json").write_text(json.dumps(
            {"history": [{"epoch": i + 1, "val_score": v} for i, v in enumerate(scores)],
             "timings": {"train_steps": 30}, "metrics": {"val_score": min(scores)}}))
        folders.append(folder)
    failed = tmp_path / "d"
    failed.mkdir()
    (failed / "failure.json").write_text(json.dumps(
        {"status": "failed", "error": "loss is nan", "history": [{"epoch": 1, "val_score": 0.1}]}))
    assert bench._ran(failed) and not bench._ran(tmp_path)
    assert bench._trial_steps(failed, 10) == (10, float("inf"))
    assert bench._trial_steps(folders[0], 10) == (30, 0.3)
    curves = bench._curves([*folders, failed])
    assert curves[-1] == [0.1]
    # Its one fine epoch would rank it first at epoch 1; it has no final, so it is left out.
    assert bench._fidelity(curves, (1, 3)) == pytest.approx([-1.0])


@pytest.mark.parametrize(("variant", "drop_path"), [("medium-res", "0.2"),
                                                    ("ocean-waves", "0.15")])
def test_the_wide_space_is_the_first_written_smoke_space_and_keeps_failures_going(
        variant: str, drop_path: str) -> None:
    """``--space wide``: the learning rate 1e-3..1e-2 and drop_path to its first top (git show
    3794c50), the other parameters as make run's; a failed trial does not end the sweep, and
    the Experiment still passes Katib's rules (parse_experiment checks them; a failure budget
    equal to the trial count is the most kubeflow/katib's
    pkg/webhook/v1beta1/experiment/validator/validator.go allows)."""
    from types import SimpleNamespace

    from aurora_mlops.tuning import pipeline_experiment

    bench = _bench()
    for space in ("smoke", "wide"):
        exp = bench._experiment(variant, "random", SimpleNamespace(space=space, jobs=2), 12, [],
                                "t")
        params = {p["name"]: p["feasibleSpace"] for p in exp.raw["spec"]["parameters"]}
        make_run = {p["name"]: p["feasibleSpace"] for p in pipeline_experiment(
            variant=variant, algorithm="random", profile="smoke", max_trials=12,
            parallel_trials=2).raw["spec"]["parameters"]}
        assert exp.raw["spec"]["maxFailedTrialCount"] == 12
        if space == "smoke":
            assert params == make_run
            continue
        assert (params["learning_rate"]["min"], params["learning_rate"]["max"]) == (
            "0.001", "0.01")
        assert params["drop_path"]["max"] == drop_path
        assert params["learning_rate"].get("distribution") == make_run["learning_rate"].get(
            "distribution")
        assert {k: v for k, v in params.items() if k not in ("learning_rate", "drop_path")} == {
            k: v for k, v in make_run.items() if k not in ("learning_rate", "drop_path")}


def test_the_printout_gives_the_brackets_ceiling_and_a_bound_where_the_pool_ran_out(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Where random search never reached halving's best with the rest of the pool (inf), the
    printout says more than the pool's compute, not inf."""
    bench = _bench()
    rows = [{"seed": s, "halving": 0.09, "random": 0.091, "cost": 2400, "random_cost": 7200,
             "random_trials": 8, "pool": 24, "failed": 0, "reach": None, "budgets": (1, 6, 18),
             "fidelity": [0.6, 0.8],
             "replays": {"16-4-1 at [1, 6, 18]": (0.6 + s / 10, need, 0.67, math.inf, 3.0)},
             "late": "t0 acts late." if s == 2 else "",
             "test": {judge: {"halving": 0.60, "random": 0.60 + s / 100, "rank": 0.1 * s,
                              "tested": {"16-4-1 at [1, 6, 18]": (0.5 + s / 10, s / 100)}}
                      for judge in bench.JUDGES}}
            for s, need in ((1, math.inf), (2, 2.25), (3, math.inf))]
    bench.print_b("medium-res", rows)
    out = capsys.readouterr().out
    assert ("seed 1 replayed from 24 trials (0 failed), 16-4-1 at [1, 6, 18]: halving reaches "
            "random's 3C best in 70% of draws (ranked by the full budget: 67%); random needs "
            "> 3.00 C (more than the pool) (median; > 3.00 C (more than the pool))") in out
    assert "random needs 2.25 C (median;" in out
    assert "seed 2, tune analyze of random's trials: t0 acts late." in out
    assert "seed 1, tune analyze" not in out
    assert ("replayed, 16-4-1 at [1, 6, 18]: halving reaches random's 3C best in 80% +- 6% of "
            "draws; random needs > 3.00 C (more than the pool) (median of the seeds' medians; "
            "target >= 3 C)") in out
    assert "halving's best <= random's 3C best on 3/3 seeds; random - halving +0.0010" in out
    for judge in ("first lead", "all leads"):
        assert (f"seed 2 on the test split, {judge}: halving's pick 0.6000, random's 3C pick "
                "0.6200; val_score ranks random's finished trials like it by +0.20") in out
        assert (f"on the test split, {judge}, replayed, 16-4-1 at [1, 6, 18]: halving's pick at "
                "least as good as random's 3C pick in 70% +- 6% of draws; random - halving "
                "+0.0200 +- 0.0058") in out
        assert (f"on the test split, {judge}, run: halving's pick <= random's 3C pick on 3/3 "
                "seeds; random - halving +0.0200 +- 0.0058; val_score ranks random's trials "
                "like it by +0.20") in out


def test_on_the_test_split_the_replay_judges_the_picks_not_their_val_scores() -> None:
    """The test-split replay takes the very draws of the val_score replay. Where the test split
    agrees with val_score, halving's pick is at least as good there exactly when its val_score
    reached random's best; where it reverses val_score (the lower val_score, the luckier and the
    worse), halving wins there exactly when it lost on val_score, and by as much as random's
    pick is worse."""
    bench = _bench()
    plan = bench.Halving(eta=2, budgets=(1, 2, 4))
    finals = [0.1 * (i + 1) for i in range(20)]
    pool = _pool(finals, finals[::-1])  # rungs rank in reverse: halving often loses on val
    reached, _ = bench.replay(pool, 8, plan, seed=3)
    alike, gain = bench.replay_test(pool, finals, 8, plan, seed=3)
    assert alike == reached == 0.0 and gain < 0
    won, gain = bench.replay_test(pool, [1 - f for f in finals], 8, plan, seed=3)
    assert won == 1.0 and gain > 0
    pool = _pool(finals, finals)
    reached, _ = bench.replay(pool, 8, plan, seed=4)
    assert 0.3 < reached < 0.5
    assert bench.replay_test(pool, finals, 8, plan, seed=4)[0] == reached
    won, _ = bench.replay_test(pool, [1 - f for f in finals], 8, plan, seed=4)
    assert won == pytest.approx(1 - reached)


def test_on_the_test_split_a_search_that_shipped_nothing_loses() -> None:
    """One good trial and three that diverged in their second epoch; the bracket is one trial
    promoted from 1 epoch to 2. Halving drew a diverged one in 3 draws of 4 and shipped
    nothing: it loses those. It wins the fourth, where random search got only the diverged
    ones and shipped nothing. No draw has two picks to subtract."""
    bench = _bench()
    pool = [[0.5, 0.1]] + [[0.05]] * 3
    won, gain = bench.replay_test(pool, [0.7] + [math.inf] * 3, 1,
                                  bench.Halving(eta=2, budgets=(1, 2)), draws=4000)
    assert won == pytest.approx(0.25, abs=0.03)
    assert math.isnan(gain)


def test_the_test_split_scores_each_finished_trial_in_order(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each finished trial's model is scored on the data's test split into its own folder, over
    all leads and at the first; a failed one (failure.json) is inf, in its place."""
    bench = _bench()
    folders = []
    for name, done in (("t-0", True), ("t-1", False), ("t-2", True)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / ("trial.json" if done else "failure.json")).write_text("{}")
        folders.append(folder)
    calls: list[tuple[Any, ...]] = []
    real_score = bench._score

    def score(variant: str, model: Path, data: Path, out: Path) -> tuple[float, float]:
        """evaluate's metrics.json: two targets at two leads; the first lead's ratios are
        0.4 and 0.6 (trial t-2: 0.6 and 0.8), the later ones 0.9. The bench's own _score reads
        it back without evaluating again (a re-run over the same --work)."""
        calls.append((variant, model.name, data.name, out))
        k = int(model.name[-1]) / 10
        rows = [{"metric": "rmse", "variable": v, "level": None, "lead_hours": h, "model": m,
                 "value": value}
                for v, first in (("2t", 0.4 + k), ("msl", 0.6 + k))
                for h, ratio in ((6, first), (12, 0.9))
                for m, value in (("model", ratio), ("persistence", 1.0))]
        out.mkdir()
        (out / "metrics.json").write_text(json.dumps({"rows": rows}))
        return real_score(variant, model, data, out)

    monkeypatch.setattr(bench, "_score", score)
    data = tmp_path / "medium-res.nc"
    got = bench._test_scores("medium-res", folders, data, jobs=1)
    assert got["first lead"] == pytest.approx([0.5, math.inf, 0.7])
    assert got["all leads"] == pytest.approx([0.7, math.inf, 0.8])
    assert calls == [("medium-res", "t-0", "medium-res.nc", folders[0] / "test-split"),
                     ("medium-res", "t-2", "medium-res.nc", folders[2] / "test-split")]
