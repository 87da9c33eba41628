"""The real pipeline through kfp.local: ``make run`` narrowed to one variant, tiny budgets.

One shared run (``make run``, which is ``aurora-mlops pipeline run --local``), then a second
run on the same work folder; every test reads what they wrote. A failing step is a separate,
fast run (it fails at the first step).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from aurora_mlops.cli import main
from aurora_mlops.comparison import floors
from aurora_mlops.kfp import LocalBudget, PipelineFailed, run_pipeline_locally, task_timings

REPO = Path(__file__).resolve().parents[2]
VARIANT = "medium-res"
TINY = LocalBudget(algorithm="random", max_trials=1, parallel_trials=1,
                   trial_args="--epochs=1 --steps_per_epoch=3",
                   final_fit_args="--epochs=1 --steps_per_epoch=4", lead_steps=2, max_inits=2,
                   bench_repeats=1, bench_train_steps=1)
# As make run does by default: no final fit, the best trial is shipped (TINY, the second run,
# has one).
RUN_ARGS = "--max-trials=1 --trial-args='--epochs=1 --steps_per_epoch=3' --final-fit-args=''"
#: The same inputs as RUN_ARGS, for the library call.
MAKE_RUN_BUDGET = replace(LocalBudget(), max_trials=1, trial_args="--epochs=1 --steps_per_epoch=3",
                          final_fit_args="")


@dataclass
class Runs:
    work: Path
    make: subprocess.CompletedProcess[str]
    first: Path  # the first run's folder under WORK/kfp
    second: object  # the second run's LocalRun: make run's inputs again, same work folder
    left_in_repo: set[str]  # files that appeared in the repository during the two runs
    gated: Path  # the work folder of a run whose quality gate cannot be met
    gated_out: str  # what that run printed


#: What the tests themselves make in the repository (the venv, caches, the test data).
_OURS = (".venv/", ".testdata/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/",
         "src/aurora_mlops.egg-info/")


def _loose_files() -> set[str]:
    """Files in the repository that git does not track, ignored ones included (``mlruns/``,
    ``mlflow.db``, ``work/`` would all show here), less what the test run itself makes."""
    listed = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    return {p for p in listed.splitlines()
            if not p.startswith(_OURS) and "__pycache__/" not in p}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    work = tmp_path_factory.mktemp("pipeline") / "work"
    before = _loose_files()
    result = subprocess.run([make, "run", f"WORK={work}", f"RUN_VARIANTS={VARIANT}",
                             f"RUN_ARGS={RUN_ARGS}"], cwd=REPO, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (first,) = (work / "kfp").iterdir()
    second = run_pipeline_locally(variants=[VARIANT], work_dir=work, budget=MAKE_RUN_BUDGET,
                                  echo=lambda line: None)
    left = _loose_files() - before
    gated = work.parent / "gated"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["pipeline", "run", "--local", "--variants", VARIANT, "--work-dir",
                     str(gated), "--algorithm", TINY.algorithm, "--max-trials", "1",
                     "--trial-args", TINY.trial_args, "--final-fit-args", TINY.final_fit_args,
                     "--min-skill", "1.01"])
    assert code == 0, printed.getvalue()[-3000:]
    return Runs(work=work, make=result, first=first, second=second, left_in_repo=left,
                gated=gated, gated_out=printed.getvalue())


def test_the_progress_feed_reports_tasks_that_end_in_the_runs_last_second(
        tmp_path: Path) -> None:
    """The feed looks once a second; tasks that end after its last look and before the run
    returns (make run's publish, report and failure summary can all end within one second)
    are reported by one more look after the stop, in the order they ended."""
    import threading
    import time

    from aurora_mlops.kfp import _run_local

    since = time.time() - 1
    for ended, task in ((since + 2, "report"), (since + 1, "publish")):
        out = tmp_path / "run-1" / "for-loop-2-iteration-0" / task / "executor_output.json"
        out.parent.mkdir(parents=True)
        out.write_text("{}")
        os.utime(out, (ended, ended))
    stale = tmp_path / "run-0" / "old" / "executor_output.json"  # an earlier run's
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    os.utime(stale, (since - 60, since - 60))
    stop = threading.Event()
    stop.set()  # the run returned before the feed's first look
    lines: list[str] = []
    _run_local._follow(tmp_path, since, lines.append, stop)
    assert lines == ["  done: for-loop-2-iteration-0/publish",
                     "  done: for-loop-2-iteration-0/report"]


@pytest.mark.slow
def test_make_run_prints_the_summary(runs: Runs) -> None:
    out = runs.make.stdout
    assert f"{VARIANT}: aurora-{VARIANT} version 1 registered, gate passed, champion version" \
        in out
    assert "combined report: " in out and "report.html" in out
    assert "mlflow ui --backend-store-uri sqlite:///" in out
    assert f"optuna-dashboard sqlite:///{runs.first}" in out
    assert "done: for-loop-2-iteration-0/publish" in out  # the progress feed
    assert "Executing task" not in out  # KFP's own output went to the log
    log = re.sub(r"\x1b\[[0-9;]*m", "", (runs.work / "pipeline.log").read_text())
    assert "Executing task 'publish'" in log
    # Where the time went, step by step, and the floors of the shipped model, as its own
    # evaluation reads (a tiny run misses them: the line must say so, not hide it).
    steps = re.search(r"^time per step, all variants: (.*)$", out, re.M)
    assert steps is not None and {"tune", "evaluate", "package"} <= {
        part.split()[0] for part in steps[1].split(", ")}
    metrics = runs.first / "for-loop-2-iteration-0" / "evaluate" / "results" / "metrics.json"
    assert f"  floors: {floors(json.loads(metrics.read_text())).line()}" in out


@pytest.mark.slow
def test_every_step_left_its_outputs(runs: Runs) -> None:
    it = runs.first / "for-loop-2-iteration-0"
    volumes = runs.work / "volumes"
    data = _ref(it / "data-validate" / "dataset")
    assert data.is_file() and data.is_relative_to(volumes / "data" / "pipeline-runs")
    assert (it / "data-validate" / "audit").read_text().startswith("#")
    best = json.loads((it / "tune" / "best" / "best.json").read_text())
    assert best["experiment"] == f"aurora-smoke-{VARIANT}-halving"  # make run's own sweep
    # The chain's rungs, and the shipped trial is the last rung's, with rung 0's parameters.
    chain = json.loads((it / "tune" / "sweep" / "halving.json").read_text())
    assert [r["budget"] for r in chain["rungs"]] == [2, 6, 18]
    assert best["bestTrialName"] == chain["bestTrialName"] == chain["rungs"][-1]["trials"][0][
        "name"]
    assert {a["name"] for a in best["parameterAssignments"]} >= {"learning_rate", "t0"}
    checkpoint = Path(best["checkpoint"])  # where the trial wrote it: nothing was copied
    assert checkpoint.is_file() and checkpoint.is_relative_to(volumes / "artifacts")
    assert (it / "tune" / "sweep" / "study.db").is_file()
    assert _ref(it / "final-fit" / "model") == checkpoint.parent  # no final fit: the trial
    metrics = json.loads((it / "evaluate" / "results" / "metrics.json").read_text())
    assert metrics["variant"] == VARIANT
    assert (it / "evaluate" / "report_html").read_text().lstrip().startswith("<")
    assert (it / "benchmark" / "results" / "benchmark.json").is_file()
    assert (_ref(it / "package" / "mlflow_model") / "MLmodel").is_file()
    assert "card" in (it / "package" / "model_card").read_text().lower()
    receipt = json.loads((it / "publish" / "receipt").read_text())
    assert receipt["name"] == f"aurora-{VARIANT}" and receipt["version"] == "1"
    assert receipt["gate_passed"] is True and receipt["champion_version"] == "1"
    assert (runs.first / "report" / "results" / "report.html").is_file()
    assert VARIANT in (runs.first / "report" / "report_md").read_text()
    summary = (runs.first / "failure-summary" / "summary").read_text()
    assert "SUCCEEDED" in summary


def _ref(artifact: Path) -> Path:
    """What a reference artifact names (a file or folder on the volumes)."""
    return Path(json.loads((artifact / "ref.json").read_text())["path"])


@pytest.mark.slow
def test_no_dataset_or_checkpoint_goes_through_the_artifact_store(runs: Runs) -> None:
    """kfp.local's pipeline_root is what a cluster uploads to its object store: the dataset,
    checkpoints and package stay on the volumes, and only references and reports move."""
    for run_dir in (runs.first, runs.second.run_dir):  # type: ignore[attr-defined]
        heavy = [p for p in run_dir.rglob("*")
                 if p.suffix in (".nc", ".ckpt", ".pt") or p.name == "MLmodel"]
        assert not heavy, heavy
        total = sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file())
        assert total < 8e6, total  # reports and figures; the dataset alone was 17 MB


@pytest.mark.slow
def test_evaluate_logs_figures_for_the_ui(runs: Runs) -> None:
    out = json.loads((runs.first / "for-loop-2-iteration-0" / "evaluate" /
                      "executor_output.json").read_text())
    arts = out["artifacts"]
    figures = arts["metrics"]["artifacts"][0]["metadata"]
    assert 0.0 <= figures["rmse_wins_vs_persistence"] <= 1.0
    assert any(k.startswith("rmse_") and k.endswith("h") for k in figures)
    matrix = arts["events"]["artifacts"][0]["metadata"]["confusionMatrix"]
    assert [c["displayName"] for c in matrix["annotationSpecs"]] == ["no event", "event"]
    assert len(matrix["rows"]) == 2 and sum(sum(r["row"]) for r in matrix["rows"]) > 0
    assert out["parameterValues"]["Output"] == figures["rmse_wins_vs_persistence"]


@pytest.mark.slow
def test_one_tracking_store_for_the_whole_run(runs: Runs) -> None:
    assert sorted(p.name for p in runs.work.rglob("mlflow.db")) == ["mlflow.db"]
    with sqlite3.connect(runs.work / "mlflow.db") as db:
        names = {r[0] for r in db.execute("select name from registered_models")}
        runs_logged = db.execute("select count(*) from runs").fetchone()[0]
    assert names == {f"aurora-{VARIANT}"}
    assert runs_logged >= 3  # the sweep's parent run, its trial, the final fit (+ package)
    # nothing written in the folder make run was started from (MLflow's default artifact
    # root on a SQL store is ./mlruns of that folder): every run artifact is under WORK
    assert runs.left_in_repo == set(), sorted(runs.left_in_repo)[:20]
    assert list(runs.work.glob("mlartifacts/*/*"))


def _package_sha(run_dir: Path) -> str:
    out = json.loads((run_dir / "for-loop-2-iteration-0" / "package" /
                      "executor_output.json").read_text())
    return str(out["artifacts"]["mlflow_model"]["artifacts"][0]["metadata"]["sha256"])


@pytest.mark.slow
def test_a_second_run_with_the_same_inputs_converges(runs: Runs) -> None:
    """make run's inputs again on the same work folder: the same checkpoint, so the version
    registered the first time is found again (``created`` False), and the champion stays."""
    second = runs.second
    assert second.run_dir != runs.first  # type: ignore[attr-defined]
    assert _package_sha(second.run_dir) == _package_sha(runs.first)  # type: ignore[attr-defined]
    receipt = second.variants[VARIANT]["publish"]  # type: ignore[attr-defined]
    assert (receipt["created"], receipt["version"], receipt["champion_version"]) == (
        False, "1", "1")
    with sqlite3.connect(runs.work / "mlflow.db") as db:
        versions = db.execute("select count(*) from model_versions").fetchone()[0]
        aliases = db.execute("select alias, version from registered_model_aliases").fetchall()
    assert versions == 1
    assert ("champion", 1) in aliases


@pytest.mark.slow
def test_an_unreachable_quality_gate_registers_nothing_and_says_why(runs: Runs) -> None:
    """``min_skill`` above 1 cannot be met (skill is a fraction of targets): publish must not
    run, the registry stays empty, and the summary gives the skill against the gate."""
    (it,) = runs.gated.glob("kfp/*/for-loop-2-iteration-0")
    assert (it / "evaluate" / "executor_output.json").is_file()
    assert not (it / "publish").exists()
    with sqlite3.connect(runs.gated / "mlflow.db") as db:
        assert db.execute("select count(*) from registered_models").fetchone()[0] == 0
        assert db.execute("select count(*) from model_versions").fetchone()[0] == 0
    line = next(ln for ln in runs.gated_out.splitlines() if ln.startswith(f"{VARIANT}:"))
    match = re.fullmatch(rf"{VARIANT}: not published, the quality gate held it back: skill "
                         r"([0-9.e-]+) < min_skill 1.01, the fraction of targets on which it "
                         r"beats persistence", line)
    assert match, line
    assert 0.0 <= float(match[1]) <= 1.0


def test_a_failing_step_shows_its_own_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineFailed) as exc:
        run_pipeline_locally(variants=[VARIANT], work_dir=tmp_path / "w", budget=TINY,
                             dataset_uri=str(tmp_path / "missing.nc"), echo=lambda line: None)
    message = str(exc.value)
    assert message.startswith("step data-validate failed")
    assert "aurora-mlops: error: [data-validate] dataset_uri" in message
    assert "missing.nc does not exist" in message
    assert str(tmp_path / "w" / "pipeline.log") in message
    assert "\x1b[" not in message


@pytest.mark.slow
def test_step_timings_come_from_the_log(runs: Runs) -> None:
    tasks = task_timings(runs.work / "pipeline.log")  # the second run's log
    names = [t.task for t in tasks]
    assert sorted(names) == sorted(["data-validate", "tune", "final-fit", "evaluate",
                                    "benchmark", "package", "publish", "report",
                                    "failure-summary"])
    assert names[:3] == ["data-validate", "tune", "final-fit"]
    assert names[-3:] == ["publish", "report", "failure-summary"]
    for t in tasks:
        assert t.queued <= t.started <= t.written <= t.finished, t
    assert tasks[0].queued <= tasks[-1].finished
    assert sum(t.own_s for t in tasks) <= runs.second.wall_s  # type: ignore[attr-defined]


@pytest.mark.slow
def test_every_task_forked_from_the_warm_step_server(runs: Runs) -> None:
    """Each task of the run was a process forked from the warm step server (not a new
    interpreter), and ended as kfp.local recorded it."""
    log = (runs.work / "pipeline-steps.log").read_text()  # the second run's
    ended = dict(re.findall(r"^task (\w+): pid \d+, (exit \d+|signal \d+)", log, re.M))
    assert ended == {t.task.replace("-", "_"): "exit 0"
                     for t in task_timings(runs.work / "pipeline.log")}
    # and so was each sweep trial of its tune task (no forkserver of its own)
    (study,) = runs.second.run_dir.glob("*/tune/sweep/study.db")  # type: ignore[attr-defined]
    with sqlite3.connect(study) as db:
        runners = [json.loads(v) for (v,) in db.execute(
            "select value_json from trial_user_attributes where key = 'katib_runner'")]
        names = [json.loads(v) for (v,) in db.execute(
            "select value_json from trial_user_attributes where key = 'katib_name'")]
    assert runners and set(runners) == {"warm-step-server"}
    for name in names:
        assert re.search(rf"^task trial {re.escape(name)}: pid \d+, exit 0,", log, re.M), name
