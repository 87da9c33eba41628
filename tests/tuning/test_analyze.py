"""``tune analyze``: a synthetic sweep with a known answer, stored the way the local runner does."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from aurora_mlops.cli import main
from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning import (
    Experiment,
    SweepAnalysis,
    analyze_sweep,
    check_experiment,
    check_file,
    load_experiment,
)
from aurora_mlops.tuning.katib._experiment import format_katib_value

ROOT = Path(__file__).resolve().parents[2]
SPECS = Path(__file__).parent / "specs"
SMOKE = SPECS / "analyze-tpe.yaml"  # the designed sweep's spec (fixed ranges)
MODES = ["single", "from_second", "all"]
DECAYS = [0, 0.001, 0.01]


def _write_sweep(work: Path, exp: Experiment,
                 trials: Sequence[tuple[dict[str, Any], str, float | None]],
                 curves: Sequence[Sequence[float]] | None = None) -> None:
    """Store trials as :mod:`aurora_mlops.tuning.local._runner` leaves them, and its ``best.json``.

    Same storage (``sqlite:///WORKDIR/study.db``), study name (the Experiment's), direction,
    distributions (:meth:`Parameter.distribution_for_optuna`), Katib assignments and ``katib_*``
    user attributes, intermediate values per epoch; states are ``complete``, ``pruned``,
    ``failed``, ``killed`` or ``interrupted`` (left running by a dead runner and re-queued). The
    trials are added in one go (``add_trials``): asking and telling them one by one, as the
    runner does, costs ~0.5 s of SQLite commits per trial. ``curves``: each trial's objective
    per epoch (default: three epochs ending at its value).
    """
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    work.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(storage=f"sqlite:///{work / 'study.db'}", study_name=exp.name,
                                direction=exp.objective.type, load_if_exists=True)
    distributions = {p.name: p.distribution_for_optuna() for p in exp.parameters}
    metric = exp.objective.metric
    states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED}
    frozen = []
    best: tuple[float, str, dict[str, str]] | None = None
    for number, (params, state, value) in enumerate(trials, start=len(study.trials)):
        name = f"{exp.name}-{number}"
        assignments = {
            p.name: p.values[list(p.choices()).index(params[p.name])]
            if p.type in ("discrete", "categorical") else format_katib_value(params[p.name])
            for p in exp.parameters}
        attrs: dict[str, Any] = {"katib_name": name, "katib_assignments": assignments,
                                 "katib_command": exp.trial_command(name, assignments),
                                 "katib_runner": "forkserver", "katib_seconds": 1.0}
        steps: dict[int, float] = {}
        if value is not None:
            curve = [value + 0.2, value + 0.1, value] if curves is None else curves[
                number - len(study.trials)]
            steps = dict(enumerate(curve))
            attrs.update(katib_observation={metric: value, "val_rmse": 2 * value},
                         katib_epochs=len(curve))
        if state in ("failed", "killed", "interrupted"):
            attrs.update(katib_reason="exited with code 3", katib_log_tail=["about to crash"])
            if state != "failed":
                attrs[f"katib_{state}"] = True
        frozen.append(create_trial(
            state=states.get(state, TrialState.FAIL), params=params,
            distributions=distributions, user_attrs=attrs, intermediate_values=steps,
            value=value if state == "complete" else None))
        if state == "complete" and value is not None and (best is None or value < best[0]):
            best = (value, name, assignments)
    study.add_trials(frozen)
    (work / "best.json").write_text(json.dumps({
        "experiment": exp.name, "bestTrialName": best[1] if best else None,
        "parameterAssignments": [{"name": k, "value": v} for k, v in (best[2] if best else {})
                                 .items()]}))


# The designed sweep: 30 completed trials; the 6 elites (every 5th from trial 3) have
# learning_rate in the top 10% of its log range and drop_path within 0.1 +- 0.005. Everything
# else is spread. val_score = 3 (1 - lr position) + 2 ((drop_path - 0.1) / 0.1)^2 + noise.
ELITES = [3, 8, 13, 18, 23, 28]


def _designed_trials() -> list[tuple[dict[str, Any], str, float | None]]:
    rng = np.random.default_rng(7)
    out: list[tuple[dict[str, Any], str, float | None]] = []
    for i in range(30):
        elite = i in ELITES
        pos = rng.uniform(0.92, 0.995) if elite else rng.uniform(0.0, 0.85)
        drop_path = rng.uniform(0.095, 0.105) if elite else rng.uniform(0.0, 0.2)
        params = {
            "learning_rate": float(10 ** (-3 + pos)),
            "weight_decay": DECAYS[(i // 3) % 3],
            "drop_path": float(drop_path),
            "drop_rate": 0.1 * (((i * 7) % 30) + 0.5) / 30,
            "lora_mode": MODES[i % 3],
            "lora_steps": 20 + (i * 11) % 41,
        }
        score = 3 * (1 - pos) + 2 * ((drop_path - 0.1) / 0.1) ** 2 + 0.05 * rng.uniform()
        out.append((params, "complete", float(score)))
    extra = {**out[0][0], "learning_rate": 0.0099}  # would be elites if their values counted
    out += [(extra, "pruned", 0.01), (extra, "pruned", None), (extra, "failed", None),
            (extra, "killed", None), (extra, "interrupted", None)]
    return out


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("sweep") / "work"
    _write_sweep(work, load_experiment(SMOKE), _designed_trials())
    return work


@pytest.fixture(scope="module")
def analysis(sweep: Path) -> SweepAnalysis:
    return analyze_sweep(sweep, spec=SMOKE)


@pytest.fixture(scope="module")
def report(sweep: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``aurora-mlops tune analyze`` run once: the output dir and what it printed."""
    out = tmp_path_factory.mktemp("report") / "analysis"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["tune", "analyze", str(sweep), "--spec", str(SMOKE), "--out", str(out)])
    assert code == 0
    return out, printed.getvalue()


def test_counts_every_state_and_uses_only_completed_trials(analysis: SweepAnalysis) -> None:
    assert analysis.counts == {"complete": 30, "pruned": 2, "failed": 1, "killed": 1,
                               "running": 0, "waiting": 0, "interrupted": 1}
    assert len(analysis.completed) == 30
    assert analysis.elite_count == 6 and sorted(analysis.elites) == ELITES
    assert analysis.best.number in ELITES and analysis.best.state == "complete"
    assert all(p.trials == 30 for p in analysis.parameters)
    assert analysis.metric == "val_score" and analysis.direction == "minimize"
    assert analysis.importance_method == "fanova"
    importances = {p.name: p.importance for p in analysis.parameters}
    assert max(importances, key=lambda k: importances[k] or 0.0) == "learning_rate"
    assert analyze_sweep(analysis.work_dir, spec=SMOKE).parameters == analysis.parameters


def test_elites_at_the_upper_bound_expand_it(analysis: SweepAnalysis) -> None:
    lr = analysis.parameter("learning_rate")
    actions = {s.action: s.message for s in analysis.suggestions_for("learning_rate")}
    assert "expand_upper" in actions and "expand_lower" not in actions
    assert lr.elites_at_upper == 6
    assert "max 0.01 -> 0.032" in actions["expand_upper"]  # half a decade more, 2 digits
    assert lr.proposed is not None and lr.proposed["max"] == "0.032"
    # they also cluster at the top, so the min rises to their span minus a 10% margin
    assert "narrow" in actions and 0.001 < float(lr.proposed["min"]) < 10 ** (-3 + 0.92 - 0.1)


def test_spearman_states_a_direction_only_when_significant(analysis: SweepAnalysis) -> None:
    lr = analysis.parameter("learning_rate")
    assert lr.rho is not None and lr.p_value is not None
    assert lr.rho < -0.5 and lr.p_value < 0.05
    assert lr.direction.startswith("higher learning_rate tends to lower val_score (rho=-")
    for p in analysis.parameters:
        if p.type == "categorical":
            continue
        if p.p_value is None or p.p_value >= 0.05:
            assert p.direction.startswith("no clear direction"), p
        else:
            assert p.direction.split()[0] in ("lower", "higher"), p
    assert analysis.parameter("drop_rate").direction.startswith("no clear direction")


@pytest.mark.parametrize(("ys", "goal", "expected"), [
    ([1, 2, 3, 4, 5, 6, 7, 9], "minimize", "lower x tends to lower m (rho=1.00, p="),
    ([1, 2, 3, 4, 5, 6, 7, 9], "maximize", "higher x tends to higher m (rho=1.00, p="),
    ([9, 7, 6, 5, 4, 3, 2, 1], "minimize", "higher x tends to lower m (rho=-1.00, p="),
    ([9, 7, 6, 5, 4, 3, 2, 1], "maximize", "lower x tends to higher m (rho=-1.00, p="),
    # sum of squared rank differences 40: rho = 1 - 6 * 40 / (8 * 63) = 0.52
    ([3, 1, 4, 1.5, 5, 9, 2, 6], "minimize", "no clear direction (rho=0.52, p=0.18, n=8)"),
    ([1, 1, 1, 1, 1, 1, 1, 1], "minimize", "no clear direction (too few distinct values"),
], ids=["up-min", "up-max", "down-min", "down-max", "noise", "constant"])
def test_direction_sentence(ys: list[float], goal: str, expected: str) -> None:
    from aurora_mlops.tuning.analysis._stats import _direction
    from aurora_mlops.tuning.katib._experiment import Parameter

    p = Parameter(name="x", type="double", min=0.0, max=10.0)
    rho, pval, sentence = _direction(p, [1, 2, 3, 4, 5, 6, 7, 8], ys, "m", goal == "minimize")
    assert rho is not None or pval is None
    assert sentence.startswith(expected)
    assert (pval is not None and pval < 0.05) == (not sentence.startswith("no clear"))


def test_clustered_elites_narrow_the_range(analysis: SweepAnalysis) -> None:
    dp = analysis.parameter("drop_path")
    actions = [s.action for s in analysis.suggestions_for("drop_path")]
    assert actions == ["narrow"]
    assert dp.elite_iqr is not None and dp.elite_iqr < 0.25
    assert dp.proposed is not None
    assert 0.05 <= float(dp.proposed["min"]) < 0.095 and 0.105 < float(dp.proposed["max"]) <= 0.15
    for name in ("drop_rate", "lora_steps"):  # spread elites: nothing to change
        assert analysis.suggestions_for(name) == [] and analysis.parameter(name).proposed is None


def test_a_categorical_that_does_not_matter_stays_searchable(analysis: SweepAnalysis) -> None:
    mode = analysis.parameter("lora_mode")
    [decision] = analysis.suggestions_for("lora_mode")
    assert decision.action == "keep" and "elites use 3 of 3 values" in decision.message
    assert mode.proposed is None
    assert [c.value for c in mode.categories] == MODES
    assert [c.count for c in mode.categories] == [10, 10, 10]
    assert sum(c.elites for c in mode.categories) == 6
    assert mode.best_vs_worst.startswith("best ")
    decay = analysis.parameter("weight_decay")
    assert [c.value for c in decay.categories] == ["0", "0.001", "0.01"]
    assert [s.action for s in analysis.suggestions_for("weight_decay")] == ["keep"]


def test_next_spec_changes_only_the_suggested_spaces_and_passes_katib_check(
        analysis: SweepAnalysis, report: tuple[Path, str]) -> None:
    spec = report[0] / "next-spec.yaml"
    assert check_file(spec) == [] and analysis.next_spec_problems == ()
    new = load_experiment(spec)
    old = load_experiment(SMOKE)
    assert new.name == "aurora-smoke-medium-res-tpe-v2"
    assert new.raw["metadata"]["annotations"]["aurora-mlops/derived-from"] == old.name
    assert new.parameter("learning_rate").max == 0.032 and new.parameter("learning_rate").log
    assert new.parameter("drop_path") != old.parameter("drop_path")
    for name in ("weight_decay", "drop_rate", "lora_mode", "lora_steps"):
        assert new.parameter(name) == old.parameter(name)
    assert new.trial_template.command == old.trial_template.command
    assert analysis.next_spec == yaml.safe_load(spec.read_text())


def test_outputs_are_json_markdown_plots_and_next_spec(analysis: SweepAnalysis,
                                                         report: tuple[Path, str]) -> None:
    out, printed = report
    paths = [Path(line.strip()) for line in printed.split("wrote:\n", 1)[1].splitlines()]
    names = {p.name for p in paths}
    assert all(p.parent == out and p.is_file() for p in paths)
    assert {"analysis.json", "analysis.md", "next-spec.yaml", "history.png"} <= names
    assert {f"param-{p.name}.png" for p in analysis.parameters} <= names
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((out / "analysis.json").read_text())
    assert doc["counts"]["complete"] == 30 and doc["experiment"] == "aurora-smoke-medium-res-tpe"
    assert {s["action"] for s in doc["suggestions"]} >= {"expand_upper", "narrow", "keep"}
    md = (out / "analysis.md").read_text()
    assert "## Suggestions" in md and "### learning_rate" in md and "![history](history.png)" in md
    assert "| lora_mode | categorical |" in md


@pytest.mark.parametrize(("space", "side", "expected"), [
    ({"type": "double", "min": 0.001, "max": 0.01, "distribution": "logUniform"}, "upper", 0.032),
    ({"type": "double", "min": 0.001, "max": 0.01, "distribution": "logUniform"}, "lower",
     0.00031),
    ({"type": "double", "min": 0.0, "max": 0.2}, "upper", 0.3),
    ({"type": "double", "min": 0.0, "max": 0.2}, "lower", None),  # never below 0
    ({"type": "double", "min": 0.5, "max": 0.9}, "upper", 1.0),  # a fraction stays <= 1
    ({"type": "double", "min": 0.0, "max": 1.0}, "upper", None),
    ({"type": "double", "min": 0.1, "max": 0.5, "step": 0.1}, "upper", 0.7),  # on the step grid
    ({"type": "double", "min": -4.0, "max": -1.0}, "upper", -0.5),  # never up to 0
    ({"type": "int", "min": 20, "max": 60}, "upper", 80),
    ({"type": "int", "min": 20, "max": 60}, "lower", 10),  # a positive min at most halves
    ({"type": "int", "min": 1, "max": 4}, "lower", None),
    ({"type": "discrete", "values": ("0", "0.001", "0.01")}, "upper", "0.1"),
    ({"type": "discrete", "values": ("0", "0.001", "0.01")}, "lower", None),
    ({"type": "discrete", "values": ("16", "32", "64")}, "lower", "8"),
    ({"type": "discrete", "values": ("2", "4", "5")}, "upper", "6"),
    ({"type": "discrete", "values": ("1", "2", "3")}, "lower", None),  # evenly spaced: 0
    ({"type": "discrete", "values": ("20", "40", "60")}, "upper", "80"),
    ({"type": "discrete", "values": ("1", "2", "4")}, "lower", None),  # 0.5 is no integer
], ids=lambda v: str(v) if not isinstance(v, dict) else v["type"])
def test_expanding_a_bound(space: dict[str, Any], side: str, expected: Any) -> None:
    from aurora_mlops.tuning.analysis._proposals import _expand, _expand_list
    from aurora_mlops.tuning.katib._experiment import Parameter

    p = Parameter(name="x", **space)
    value, why = _expand_list(p, side) if p.type == "discrete" else _expand(p, side)
    assert value == expected and (why == "") == (expected is not None)


def test_fixing_a_value_needs_every_elite_significance_and_enough_trials(tmp_path: Path) -> None:
    exp = load_experiment(SMOKE)

    def trials(n: int, n_all: int) -> list[tuple[dict[str, Any], str, float | None]]:
        out: list[tuple[dict[str, Any], str, float | None]] = []
        for i in range(n):
            mode = "all" if i < n_all else MODES[i % 2]
            params = {"learning_rate": 0.001 * 10 ** ((i * 0.37) % 1), "weight_decay": 0,
                      "drop_path": 0.2 * ((i * 0.61) % 1), "drop_rate": 0.1 * ((i * 0.29) % 1),
                      "lora_mode": mode, "lora_steps": 20 + (i * 7) % 41}
            score = (0.1 if mode == "all" else 1.0) + 0.01 * i
            out.append((params, "complete", score))
        return out

    _write_sweep(tmp_path / "many", exp, trials(12, 4))
    a = analyze_sweep(tmp_path / "many", spec=SMOKE)
    [fix] = a.suggestions_for("lora_mode")
    assert fix.action == "fix" and "fix to all" in fix.message and "p=0.002" in fix.message
    assert a.parameter("lora_mode").proposed == {"list": ["all"]}
    assert a.next_spec is not None and a.next_spec_problems == ()
    [mode] = [p for p in a.next_spec["spec"]["parameters"] if p["name"] == "lora_mode"]
    assert mode["feasibleSpace"]["list"] == ["all"]
    # every trial used weight_decay 0: no evidence against the other values
    [decay] = a.suggestions_for("weight_decay")
    assert decay.action == "keep" and "only 0 trials tried another value" in decay.message
    assert a.parameter("weight_decay").proposed is None

    _write_sweep(tmp_path / "few", exp, trials(5, 3))
    b = analyze_sweep(tmp_path / "few", spec=SMOKE)
    [keep] = b.suggestions_for("lora_mode")
    assert keep.action == "keep" and "only 5 trials completed" in keep.message
    assert b.importance_method == "variance" and "fANOVA needs at least 10" in " ".join(b.notes)
    assert all(s.action == "keep" for s in b.suggestions)  # too few trials for any range change


def test_without_a_spec_the_space_comes_from_the_trials(sweep: Path, tmp_path: Path) -> None:
    a = analyze_sweep(sweep)
    assert a.spec_path is None and a.next_spec is None and a.metric == "val_score"
    types = {p.name: (p.type, p.log) for p in a.parameters}
    assert types["learning_rate"] == ("double", True)
    assert types["weight_decay"] == ("discrete", False)
    assert types["lora_mode"] == ("categorical", False) and types["lora_steps"] == ("int", False)
    assert [s.action for s in a.suggestions_for("learning_rate")] == ["expand_upper", "narrow"]
    # a spec path recorded in best.json is picked up
    work = tmp_path / "small"
    _write_sweep(work, load_experiment(SMOKE), _designed_trials()[:3])
    best = json.loads((work / "best.json").read_text())
    (work / "best.json").write_text(json.dumps({**best, "spec": str(SMOKE)}))
    small = analyze_sweep(work)
    assert small.spec_path == SMOKE and small.next_spec is not None


def test_a_broken_best_json_costs_a_warning_not_the_analysis(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """best.json only names the spec and the study; the study is what is analysed."""
    work = tmp_path / "work"
    _write_sweep(work, load_experiment(SMOKE), _designed_trials()[:3])
    (work / "best.json").write_text(json.dumps({"bestTrialName": 3, "spec": str(SMOKE)}))
    with caplog.at_level(logging.WARNING):
        a = analyze_sweep(work)
    assert a.counts["complete"] == 3 and a.spec_path is None
    assert "best.json: field 'bestTrialName' must be a string or null" in caplog.text


def test_a_real_local_run_is_read_back(tmp_path: Path) -> None:
    from aurora_mlops.tuning.local._runner import run_local

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(SPECS / "trial.py", work / "trial.py")
    doc = yaml.safe_load((SPECS / "script-random.yaml").read_text())
    doc["spec"]["parallelTrialCount"] = 2
    spec = tmp_path / "script.yaml"
    spec.write_text(yaml.safe_dump(doc))
    result = run_local(spec, work_dir=work, progress=False, tracking=False,
                       use_forkserver=False, trial_timeout=60)
    a = analyze_sweep(work, spec=spec)
    status = json.loads((work / "status.json").read_text())
    assert a.counts["complete"] == status["trialsSucceeded"] == 4
    assert a.best.name == result.best_trial
    assert math.isclose(a.best.value or 0.0, result.metrics["val_score"])
    assert a.suggestions_for("mode") == []  # one listed value: nothing to decide
    # tune runs only specs that pass `katib check`; the proposed next spec passes it too
    assert a.next_spec is not None and a.next_spec_problems == ()
    assert check_experiment(a.next_spec) == check_file(spec) == []


@pytest.mark.parametrize(("setup", "message"), [
    (lambda w: None, "does not exist"),
    (lambda w: w.mkdir(), "has no study.db"),
    (lambda w: (w.mkdir(), (w / "study.db").write_bytes(b"not sqlite" * 100)),
     "not an Optuna study database"),
    (lambda w: _write_sweep(w, load_experiment(SMOKE), [
        ({"learning_rate": 0.002, "weight_decay": 0, "drop_path": 0.1, "drop_rate": 0.05,
          "lora_mode": "all", "lora_steps": 30}, state, None) for state in ("pruned", "failed")]),
     "has no completed trial yet [(]1 early-stopped, 1 failed"),
], ids=["missing", "no-db", "not-a-db", "nothing-completed"])
def test_bad_input_is_one_clear_sentence(tmp_path: Path, setup: Any, message: str) -> None:
    work = tmp_path / "work"
    setup(work)
    with pytest.raises(ConfigError, match=message):
        analyze_sweep(work, spec=SMOKE)


def test_a_spec_of_another_sweep_is_refused(sweep: Path) -> None:
    with pytest.raises(ConfigError, match="no study named 'script-random'"):
        analyze_sweep(sweep, spec=SPECS / "script-random.yaml")


def test_cli_tune_analyze(report: tuple[Path, str], tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    out, printed = report
    assert "30 completed, 2 early-stopped, 2 failed" in printed
    assert "learning_rate: expand the upper bound: max 0.01 -> 0.032" in printed
    assert str(out / "next-spec.yaml") in printed
    assert main(["katib", "check", str(out / "next-spec.yaml")]) == 0
    capsys.readouterr()

    assert main(["tune", "analyze", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("aurora-mlops: error: ") and "does not exist" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("argv", [
    ["tune", "analyze"],
    ["tune", "analyze", "w", "--backend", "katib"],
    ["tune", "spec.yaml", "--out", "o"],
    ["tune", "spec.yaml", "extra"],
], ids=["no-workdir", "run-flag", "analyze-flag", "stray-positional"])
def test_cli_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and "usage:" in capsys.readouterr().err


def test_cli_still_parses_tune_spec() -> None:
    from aurora_mlops.cli import build_parser
    from aurora_mlops.cli._tune import cmd_tune

    args = build_parser().parse_args(["tune", "katib/x.yaml", "--backend", "local",
                                      "--work-dir", "w"])
    assert args.spec == "katib/x.yaml" and args.backend == "local" and args.work_dir == "w"
    assert args.analyze_work_dir is None and args.handler is cmd_tune


def test_tune_run_is_the_default_subcommand() -> None:
    from aurora_mlops.cli import build_parser
    from aurora_mlops.cli._tune import cmd_analyze, cmd_tune

    parser = build_parser()
    plain = parser.parse_args(["tune", "katib/x.yaml", "--backend", "katib"])
    explicit = parser.parse_args(["tune", "run", "katib/x.yaml", "--backend", "katib"])
    assert vars(plain) == vars(explicit) and plain.handler is cmd_tune
    analyze = parser.parse_args(["tune", "analyze", "w", "--out", "o"])
    assert analyze.handler is cmd_analyze and analyze.analyze_work_dir == "w"
    assert analyze.analyze_out == "o" and analyze.tune_command == "analyze"
    spec_named_analyze = parser.parse_args(["tune", "./analyze"])
    assert spec_named_analyze.spec == "./analyze" and spec_named_analyze.handler is cmd_tune


# Fidelity (tune analyze of a full-budget sweep): twelve trials over six epochs, trial i the
# i-th best at the full budget. Up to epoch 3 they rank in reverse, from epoch 4 as at the end
# (each epoch lower than every earlier one, so the best so far is the latest). lora_mode "all"
# holds the six best, "single" the rest: it acts late. weight_decay alternates and does not
# matter (its values interleave).
LATE_N, LATE_EPOCHS, LATE_FLIP = 12, 6, 4


def _late_curve(i: int, n: int = LATE_N) -> list[float]:
    return [2.0 - 0.1 * e + 0.01 * (n - 1 - i) if e < LATE_FLIP else 1.0 - 0.1 * e + 0.01 * i
            for e in range(1, LATE_EPOCHS + 1)]


def _late_trials() -> list[tuple[dict[str, Any], str, float | None]]:
    return [({"learning_rate": 0.002, "weight_decay": DECAYS[i % 2], "drop_path": 0.1,
              "drop_rate": 0.05, "lora_mode": "all" if i < LATE_N // 2 else "single",
              "lora_steps": 30}, "complete", min(_late_curve(i))) for i in range(LATE_N)]


def test_a_full_budget_sweep_says_from_which_epoch_rungs_rank_like_the_full_budget(
        tmp_path: Path) -> None:
    from aurora_mlops.tuning.analysis._fidelity import analyze_fidelity

    curves = [({"lora_mode": t[0]["lora_mode"], "weight_decay": str(t[0]["weight_decay"])},
               _late_curve(i)) for i, t in enumerate(_late_trials())]
    f = analyze_fidelity(curves, ["lora_mode", "weight_decay"])
    assert f is not None and (f.curves, f.full) == (LATE_N, LATE_EPOCHS)
    assert [c.rho for c in f.by_epoch] == pytest.approx([-1, -1, -1, 1, 1])
    assert [(c.low, c.high, c.n) for c in f.by_epoch] == [(e, 6, 12) for e in range(1, 6)]
    assert f.alike_from == LATE_FLIP
    ((late,),) = [f.late]
    assert (late.name, late.best, late.early, late.leads_from) == ("lora_mode", "all", "single",
                                                                   LATE_FLIP)
    ranks = {v.value: v.ranks for v in late.values}
    assert ranks["all"] == pytest.approx([9.5] * 3 + [3.5] * 3)  # ranks 7..12, then 1..6
    assert ("lora_mode acts late: after 1 epoch lora_mode=single leads (mean rank 3.5 of 12; "
            "lora_mode=all 9.5), lora_mode=all only from 4 epochs on") in f.verdict
    assert f.verdict.startswith("From 4 epochs on, the 12 full-length trials ranked like the "
                                "full 6 epochs (Spearman rho 1.00)")
    # The same sweep maximising the negated objective; shorter (failed) curves are left out.
    flipped = [(p, [-v for v in h]) for p, h in curves] + [({"lora_mode": "all"}, [-9.0])]
    g = analyze_fidelity(flipped, ["lora_mode", "weight_decay"], minimize=False)
    assert g is not None and (g.alike_from, g.late, g.curves) == (f.alike_from, f.late, 12)


def test_fidelity_verdicts_at_the_extremes() -> None:
    """Rungs that rank like the full budget from the first epoch; rungs that never do (the
    order flips only at the last epoch); too few full-length trials to judge."""
    from aurora_mlops.tuning.analysis._fidelity import analyze_fidelity

    alike = [({}, [2.0 - 0.1 * e + 0.01 * i for e in range(4)]) for i in range(6)]
    f = analyze_fidelity(alike, [])
    assert f is not None and f.alike_from == 1 and f.late == ()
    assert "a first rung of 1 epoch is safe" in f.verdict
    flip = [({}, [2.0 + 0.01 * (5 - i)] * 3 + [1.0 + 0.01 * i]) for i in range(6)]
    f = analyze_fidelity(flip, [])
    assert f is not None and f.alike_from is None
    assert f.verdict.startswith("No budget below the full 4 epochs ranked the 6 full-length "
                                "trials like the full budget")
    assert analyze_fidelity(flip[:3], []) is None
    assert analyze_fidelity([({}, [1.0])] * 6, []) is None  # one epoch: no lower budget


def test_tune_analyze_reports_the_fidelity_of_a_full_budget_sweep(tmp_path: Path) -> None:
    """The curves come from the study's intermediate values, as the local runner keeps them;
    the verdict is printed and written (analysis.md, analysis.json, fidelity.png)."""
    work = tmp_path / "work"
    _write_sweep(work, load_experiment(SMOKE), _late_trials(),
                 curves=[_late_curve(i) for i in range(LATE_N)])
    out = tmp_path / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["tune", "analyze", str(work), "--spec", str(SMOKE), "--out", str(out)]) == 0
    assert ("fidelity: From 4 epochs on, the 12 full-length trials ranked like the full 6 "
            "epochs") in printed.getvalue()
    assert "fix lora_mode=all before a halving sweep" in printed.getvalue()
    md = (out / "analysis.md").read_text()
    assert "## Fidelity: would successive halving judge this space?" in md
    assert "| lora_mode | all | 6 | 9.5 | 3.5 | 3.5 |" in md
    assert "![fidelity](fidelity.png)" in md
    assert (out / "fidelity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((out / "analysis.json").read_text())
    assert doc["fidelity"]["alike_from"] == 4 and doc["fidelity"]["late"][0]["best"] == "all"


def test_the_designed_sweeps_curves_rank_alike_from_the_first_epoch(
        analysis: SweepAnalysis) -> None:
    """Its intermediate values run parallel to the final value: nothing acts late."""
    assert analysis.fidelity is not None
    assert (analysis.fidelity.alike_from, analysis.fidelity.late) == (1, ())


def test_a_dip_below_the_first_safe_epoch_is_named_and_an_early_leader_is_not_late() -> None:
    """Eight trials that rank as at the end after epoch 1, in reverse after epoch 2 and alike
    from 3: the verdict names the worst budget below (epoch 2), and mode, whose best value also
    leads after epoch 1, is not said to act late (the first rung would promote it)."""
    from aurora_mlops.tuning.analysis._fidelity import analyze_fidelity

    n = 8
    curves = [({"mode": "a" if i < n // 2 else "b"},
               [3.0 + 0.01 * i, 2.0 + 0.01 * (n - 1 - i), 1.0 + 0.01 * i, 0.5 + 0.01 * i])
              for i in range(n)]
    f = analyze_fidelity(curves, ["mode"])
    assert f is not None and f.alike_from == 3 and f.late == ()
    assert "(rho -1.00 after 2 epochs)" in f.verdict and "ranked unlike it" in f.verdict
