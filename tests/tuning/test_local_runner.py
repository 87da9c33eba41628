"""The embedded Katib-compatible runner: algorithms, failures, pruning, goal, kill -9 resume."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning import (
    is_train_trial_command,
    load_experiment,
    load_spec,
    parse_experiment,
    run_local,
)
from aurora_mlops.tuning.local._workdir import localize

SPECS = Path(__file__).parent / "specs"
FAMILIES = ["random", "grid", "tpe", "multivariate-tpe", "cmaes", "sobol", "bayesianoptimization"]


def _doc(name: str) -> dict[str, Any]:
    return yaml.safe_load((SPECS / name).read_text())


def _script_work(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(SPECS / "trial.py", work / "trial.py")
    return work


def _script_doc(*, name: str, modes: list[str], algorithm: str = "random",
                max_trials: int = 4, parallel: int = 2, extra: list[str] | None = None,
                **spec: Any) -> dict[str, Any]:
    doc = _doc("script-random.yaml")
    doc["metadata"]["name"] = name
    doc["spec"]["algorithm"]["algorithmName"] = algorithm
    doc["spec"]["maxTrialCount"] = max_trials
    doc["spec"]["parallelTrialCount"] = parallel
    doc["spec"]["parameters"][1]["feasibleSpace"]["list"] = modes
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"][0]
    container["command"] += extra or []
    doc["spec"].update(spec)
    return doc


def _completed(work: Path) -> list[str]:
    path = work / "completed.txt"
    return path.read_text().split() if path.exists() else []


# ------------------------------------------------------------------------------------ the spec


def test_experiment_reader_substitutes_like_katib() -> None:
    exp = load_experiment(SPECS / "smoke-tpe.yaml")
    assert exp.name == "medium-res-tpe" and exp.objective.metric == "val_score"
    assert exp.algorithm.settings == {"random_state": "3"}
    assert [p.name for p in exp.parameters] == ["learning_rate", "weight_decay", "loss"]
    assert exp.parameter("learning_rate").log
    cmd = exp.trial_command("medium-res-tpe-7", {"learning_rate": "0.001",
                                                 "weight_decay": "0.01", "loss": "mae"})
    assert cmd[:2] == ["aurora-mlops", "train-trial"]
    assert "trials/medium-res-tpe-7" in cmd and "--learning_rate=0.001" in cmd
    assert "--loss=mae" in cmd and not any("${" in a for a in cmd)
    assert exp.trial_output_dir("t-1") == "trials/t-1"
    assert is_train_trial_command(cmd)
    assert not is_train_trial_command(["python", "trial.py"])
    assert is_train_trial_command(["python3", "-m", "aurora_mlops", "train-trial", "--variant"])


def test_a_forked_trial_runs_the_installed_aurora_mlops_command() -> None:
    from aurora_mlops.cli import main
    from aurora_mlops.tuning.local._trial_workers import program_main

    assert program_main() is main


def test_status_and_analysis_classify_trials_with_one_function() -> None:
    import optuna
    from optuna.trial import TrialState, create_trial

    from aurora_mlops.tuning.local._states import live_trials, trial_state
    from aurora_mlops.tuning.local._status import counts

    def trial(state: TrialState, **attrs: Any) -> Any:
        dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
        return create_trial(state=state, params={"x": 0.5}, distributions=dist,
                            user_attrs=attrs, value=0.1 if state == TrialState.COMPLETE else None)

    trials = [trial(TrialState.COMPLETE), trial(TrialState.PRUNED), trial(TrialState.FAIL),
              trial(TrialState.FAIL, katib_killed=True), trial(TrialState.RUNNING),
              trial(TrialState.FAIL, katib_interrupted=True)]
    live = live_trials(trials)
    assert [trial_state(t) for t in live] == ["complete", "pruned", "failed", "killed",
                                              "running"]
    assert counts(live) == {"succeeded": 1, "failed": 1, "early_stopped": 1, "killed": 1}


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["spec"]["trialTemplate"].update(primaryContainerName="trainer"),
     "no container named 'trainer'"),
    (lambda d: d["spec"]["trialTemplate"]["trialParameters"][0].update(reference="lr"),
     "references 'lr'"),
    (lambda d: d["spec"]["parameters"][0].update(parameterType="float"), "parameterType"),
    (lambda d: d["spec"]["objective"].update(type="lowest"), "spec.objective.type"),
    (lambda d: d.update(kind="Trial"), "kind Experiment"),
], ids=["container", "reference", "type", "objective", "kind"])
def test_experiment_reader_names_the_bad_field(edit: Callable[[dict[str, Any]], None],
                                               message: str) -> None:
    doc = _doc("smoke-tpe.yaml")
    edit(doc)
    with pytest.raises(ConfigError, match=message):
        parse_experiment(doc, source="x.yaml")


def test_local_runner_refuses_algorithms_it_cannot_run(tmp_path: Path) -> None:
    doc = _script_doc(name="hb", modes=["ok"], algorithm="hyperband")
    with pytest.raises(ConfigError, match="hyperband"):
        run_local(parse_experiment(doc), work_dir=tmp_path, progress=False, tracking=False)


# ------------------------------------------------------------------ real smoke trials per family


@pytest.fixture(scope="module")
def smoke_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aurora_mlops.data import synthesize, write_dataset

    root = tmp_path_factory.mktemp("sweepdata")
    write_dataset(synthesize("medium-res", times=40, seed=1), root / "medium-res.nc")
    return root


@pytest.mark.parametrize("algorithm", FAMILIES, ids=FAMILIES)
def test_smoke_sweep_per_algorithm_family(algorithm: str, smoke_data_dir: Path,
                                          tmp_path: Path) -> None:
    doc = _doc("smoke-tpe.yaml")
    doc["metadata"]["name"] = f"medium-res-{algorithm}"
    doc["spec"]["algorithm"]["algorithmName"] = algorithm
    doc["spec"]["parallelTrialCount"] = 2
    settings = {"random": [{"name": "random_state", "value": "1"}],
                "bayesianoptimization": [{"name": "n_initial_points", "value": "1"}],
                "cmaes": [{"name": "sigma", "value": "0.2"}]}
    if algorithm in settings:
        doc["spec"]["algorithm"]["algorithmSettings"] = settings[algorithm]
    if algorithm in ("tpe", "multivariate-tpe"):
        doc["spec"]["maxTrialCount"] = 3
        doc["spec"]["parallelTrialCount"] = 1
    work = tmp_path / "w"
    result = run_local(parse_experiment(doc), work_dir=work, data_dir=smoke_data_dir,
                       progress=False, trial_timeout=300)
    status = json.loads((work / "status.json").read_text())
    want = doc["spec"]["maxTrialCount"]
    assert status["trialsSucceeded"] == want, status["failures"]
    assert status["trials"] == want and status["trialsRunning"] == 0
    assert status["conditions"][-1]["type"] == "Succeeded"
    optimal = status["currentOptimalTrial"]
    assert optimal["bestTrialName"] == result.best_trial
    assert {p["name"] for p in optimal["parameterAssignments"]} == {
        "learning_rate", "weight_decay", "loss"}
    names = [m["name"] for m in optimal["observation"]["metrics"]]
    assert "val_score" in names and "val_rmse" in names
    # The best trial's checkpoint is the one train-trial wrote, and best.json says so.
    assert result.checkpoint is not None and result.checkpoint.is_file()
    trial_json = json.loads((result.checkpoint.parent / "trial.json").read_text())
    assert trial_json["metrics"]["val_score"] == pytest.approx(result.metrics["val_score"])
    best = json.loads((work / "best.json").read_text())
    assert best["bestTrialName"] == result.best_trial
    assert best["checkpoint"] == str(result.checkpoint)
    assert "val_score=" in (work / "trials" / result.best_trial / "log.txt").read_text()

    if algorithm == "random":
        # Trials ran in preloaded forked workers, and each is an MLflow child of the sweep's run.
        import optuna
        from mlflow.tracking import MlflowClient

        study = optuna.load_study(study_name=doc["metadata"]["name"],
                                  storage=f"sqlite:///{work / 'study.db'}")
        assert {t.user_attrs["katib_runner"] for t in study.trials} == {"forkserver"}
        client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
        parent = best["mlflowParentRunId"]
        runs = client.search_runs(
            [client.get_run(parent).info.experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")
        assert sorted(r.data.tags["katib.trial"] for r in runs) == sorted(
            status["succeededTrialList"])
        assert client.get_run(parent).data.metrics["best_val_score"] == pytest.approx(
            result.metrics["val_score"])


def test_the_rendered_smoke_spec_runs_here_on_its_volume_paths(smoke_data_dir: Path,
                                                               tmp_path: Path) -> None:
    """A shipped smoke spec reads /mnt/data and writes /mnt/artifacts, as on a cluster; the
    runner maps both into its work dir (``--data-dir`` is linked as ``WORKDIR/data``)."""
    root = Path(__file__).resolve().parents[2]
    doc = load_spec((root / "katib/smoke/medium-res-random.yaml").read_text())
    command = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"][0]["command"]
    assert "/mnt/data/medium-res.nc" in command
    doc["spec"].update(maxTrialCount=1, parallelTrialCount=1)
    work = tmp_path / "w"
    result = run_local(parse_experiment(doc), work_dir=work, data_dir=smoke_data_dir,
                       progress=False, trial_timeout=300, tracking=False)
    assert result.checkpoint is not None
    assert result.checkpoint.parent == (work / "trials" / result.best_trial).resolve()
    assert result.checkpoint.is_file()
    assert not Path("/mnt/artifacts/trials", result.best_trial).exists()


def test_volume_paths_map_into_the_work_dir(tmp_path: Path) -> None:
    work = _script_work(tmp_path)
    doc = _script_doc(name="volumes", modes=["ok"], max_trials=1, parallel=1)
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"][0]
    container["command"][-1] = "--output=/mnt/artifacts/trials/${trialParameters.trial_name}"
    container["env"] = [{"name": "HF_HOME", "value": "/mnt/artifacts/cache/huggingface"}]
    result = run_local(parse_experiment(doc), work_dir=work, progress=False, tracking=False)
    out = work / "trials" / result.best_trial
    assert result.checkpoint == out / "model.ckpt"
    assert (out / "hf_home.txt").read_text() == str(work / "cache/huggingface")
    assert localize(["--data", "/mnt/data/x.nc", "--output=/mnt/artifacts/t/1", "/mnt/datax",
                     "--x=/mnt/data"]) == ["--data", "data/x.nc", "--output=t/1", "/mnt/datax",
                                           "--x=data"]


# -------------------------------------------------------------------- cheap script trials


def test_crash_hang_oom_and_nan_trials_fail_with_their_last_lines(tmp_path: Path) -> None:
    work = _script_work(tmp_path)
    doc = _script_doc(name="bad", modes=["crash", "hang", "nan", "oom"], algorithm="grid",
                      max_trials=10, parallel=4, maxFailedTrialCount=10)
    doc["spec"]["parameters"][0] = {"name": "x", "parameterType": "discrete",
                                    "feasibleSpace": {"list": ["0.5"]}}
    result = run_local(parse_experiment(doc), work_dir=work, progress=False, tracking=False,
                       trial_timeout=3)
    status = json.loads((work / "status.json").read_text())
    assert status["trialsFailed"] == 4 and status["trialsSucceeded"] == 0
    assert result.best_trial is None
    failures = status["failures"]
    assert all(f["logTail"] for f in failures.values()), failures
    reasons = " | ".join(f["reason"] for f in failures.values())
    tails = " | ".join(" ".join(f["logTail"]) for f in failures.values())
    assert "exited with code 3" in reasons and "about to crash" in tails
    assert "timed out after 3 s" in reasons and "waiting forever" in tails
    assert "metrics unavailable" in reasons
    assert "SIGKILL" in reasons


def test_max_failed_trial_count_stops_the_sweep(tmp_path: Path) -> None:
    work = _script_work(tmp_path)
    doc = _script_doc(name="failing", modes=["crash"], max_trials=10, parallel=1,
                      maxFailedTrialCount=2)
    result = run_local(parse_experiment(doc), work_dir=work, progress=False, tracking=False)
    assert result.reason == "MaxFailedTrialsReached"
    status = result.status
    assert status["trialsFailed"] == 2 and status["conditions"][-1]["type"] == "Failed"


def test_goal_reached_stops_early(tmp_path: Path) -> None:
    work = _script_work(tmp_path)
    doc = _script_doc(name="goal", modes=["ok"], max_trials=20, parallel=1)
    doc["spec"]["objective"]["goal"] = 0.6
    result = run_local(parse_experiment(doc), work_dir=work, progress=False, tracking=False)
    assert result.reason == "GoalReached"
    assert result.metrics["val_score"] <= 0.6
    assert result.status["trialsSucceeded"] < 20


def test_medianstop_prunes_and_stops_trial_processes(tmp_path: Path) -> None:
    work = _script_work(tmp_path)
    # A trial the median rule will stop waits for that after its last epoch (an event, not a
    # race between its exit and the runner's next read of its log).
    doc = _script_doc(name="prune", modes=["ok"], max_trials=6, parallel=1,
                      extra=["--epochs=8", "--sleep=0", "--linger-if-pruned"])
    doc["spec"]["earlyStopping"] = {"algorithmName": "medianstop", "algorithmSettings": [
        {"name": "min_trials_required", "value": "2"}, {"name": "start_step", "value": "2"}]}
    xs = ["0.3", "0.31", "0.32", "0.9", "1.0", "1.1"]
    doc["spec"]["parameters"][0] = {"name": "x", "parameterType": "discrete",
                                    "feasibleSpace": {"list": xs}}
    doc["spec"]["algorithm"] = {"algorithmName": "grid", "algorithmSettings": [
        {"name": "random_state", "value": "0"}]}
    result = run_local(parse_experiment(doc), work_dir=work, progress=False, tracking=False)
    status = result.status
    assert status["trialsEarlyStopped"] >= 1, status
    assert status["trialsSucceeded"] + status["trialsEarlyStopped"] == 6
    for name in status["earlyStoppedTrialList"]:
        log_text = (work / "trials" / name / "log.txt").read_text()
        assert "nobody stopped this trial" not in log_text, log_text  # the process was stopped
        assert name not in _completed(work)
        assert not (work / "trials" / name / "model.ckpt").exists()
    assert result.parameters["x"] == "0.3"


def _wait_for(check: Callable[[], Any], what: str, deadline_s: float = 120) -> Any:
    """Poll ``check`` until it returns something truthy (a generous deadline, not a timing)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for {what} after {deadline_s:g} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_kill_9_resumes_without_losing_or_repeating_trials(tmp_path: Path) -> None:
    work = _script_work(tmp_path)
    # The third trial holds (writes `held`, waits to be killed): the runner dies mid-trial.
    doc = _script_doc(name="resume", modes=["ok"], max_trials=5, parallel=1,
                      extra=["--sleep=0", "--hold-after=2"])
    spec = tmp_path / "resume.yaml"
    spec.write_text(yaml.safe_dump(doc))
    code = ("from aurora_mlops.tuning.local._runner import run_local; "
            f"run_local({str(spec)!r}, work_dir={str(work)!r}, progress=False, tracking=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        held = _wait_for(lambda: (work / "held").exists() and (work / "held").read_text(),
                         "the third trial to hold")

        def running() -> dict[str, Any] | None:
            status = json.loads((work / "status.json").read_text())
            return status if status["trialsRunning"] == 1 else None

        with_status = _wait_for(running, "status.json to list the held trial as running")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    done_before = set(with_status["succeededTrialList"])
    assert len(done_before) == 2
    interrupted = with_status["runningTrialList"][0]
    _wait_for(lambda: not _alive(int(held)), "the held trial to die with its runner")
    result = run_local(spec, work_dir=work, progress=False, tracking=False)
    status = result.status
    assert status["trialsSucceeded"] == 5 and status["trialsFailed"] == 0
    assert done_before <= set(status["succeededTrialList"])
    completed = _completed(work)
    assert len(completed) == len(set(completed)) == 5, completed  # nothing ran twice
    assert interrupted not in completed  # its process died with the runner

    import optuna

    study = optuna.load_study(study_name="resume", storage=f"sqlite:///{work / 'study.db'}")
    old = next(t for t in study.trials if t.user_attrs.get("katib_name") == interrupted)
    again = [t for t in study.trials if t.user_attrs.get("katib_requeued_from") == interrupted]
    assert len(again) == 1 and again[0].params == old.params


def _pids_in(work: Path) -> set[int]:
    """Processes whose working directory is ``work`` (where trials run)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if Path(os.readlink(proc / "cwd")) == work.resolve():
                    found.add(int(proc.name))
            except OSError:
                continue
    return found


@pytest.mark.slow
def test_kill_9_of_a_forkserver_sweep_kills_its_trial_and_resume_requeues_it(
    smoke_data_dir: Path, tmp_path: Path
) -> None:
    """The path real sweeps take: train-trial commands run in processes forked from the
    preloaded forkserver, not as plain subprocesses."""
    doc = _doc("smoke-tpe.yaml")
    doc["metadata"]["name"] = "fork-resume"
    doc["spec"].update(maxTrialCount=2, maxFailedTrialCount=2, parallelTrialCount=1)
    doc["spec"]["algorithm"] = {"algorithmName": "random"}
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"][0]
    # A trial that trains far longer than this test waits: the runner dies mid-trial.
    container["command"] = [a for a in container["command"] if not a.startswith("--epochs")]
    container["command"] += ["--epochs=5000", "--patience=5000", "--val_windows=1"]
    spec = tmp_path / "fork.yaml"
    spec.write_text(yaml.safe_dump(doc))
    work = tmp_path / "work"
    code = ("from aurora_mlops.tuning.local._runner import run_local; "
            f"run_local({str(spec)!r}, work_dir={str(work)!r}, data_dir={str(smoke_data_dir)!r}, "
            "progress=False, tracking=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def training() -> list[Path]:
            logs = list((work / "trials").glob("*/log.txt")) if (work / "trials").exists() else []
            return [p for p in logs if "epoch=" in p.read_text()]

        (log_path,) = _wait_for(training, "the forked trial to report an epoch")
        trial_pids = _wait_for(lambda: _pids_in(work), "the trial's process")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    interrupted = log_path.parent.name
    _wait_for(lambda: not any(_alive(p) for p in trial_pids),
              "the forked trial to die with its runner")
    # Resume: the interrupted trial is re-queued with its parameters (then the sweep's timeout
    # stops it: it would train for minutes).
    run_local(spec, work_dir=work, data_dir=smoke_data_dir, progress=False, tracking=False,
              timeout=1)

    import optuna

    study = optuna.load_study(study_name="fork-resume", storage=f"sqlite:///{work / 'study.db'}")
    old = next(t for t in study.trials if t.user_attrs.get("katib_name") == interrupted)
    assert old.user_attrs["katib_runner"] == "forkserver" and old.user_attrs["katib_interrupted"]
    again = [t for t in study.trials if t.user_attrs.get("katib_requeued_from") == interrupted]
    assert len(again) == 1  # still waiting if the timeout came first, else killed by it
    assert (again[0].params or again[0].system_attrs.get("fixed_params")) == old.params
    assert "succeeded" not in (work / "trials" / interrupted / "log.txt").read_text()


def test_cli_register_runs_the_local_backend(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from aurora_mlops.cli._tune import register

    work = _script_work(tmp_path)
    spec = tmp_path / "cli.yaml"
    spec.write_text(yaml.safe_dump(_script_doc(name="cli", modes=["ok"], max_trials=2,
                                                maxFailedTrialCount=2)))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["tune", str(spec), "--backend", "local", "--work-dir", str(work),
                              "--trial-timeout", "60"])
    assert args.handler(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trialsSucceeded"] == 2 and out["bestTrialName"].startswith("cli-")
    assert Path(out["checkpoint"]).is_file()


def test_cli_module_is_cheap_to_import() -> None:
    code = ("import sys, aurora_mlops.cli._tune; "
            "print(sorted(m for m in ('optuna', 'torch', 'yaml', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
