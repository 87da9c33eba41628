"""What `tune` checks before the first trial: the spec as Katib would, the work-dir lock, the
trial's data paths; and status.json's per-metric latest/min/max."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from aurora_mlops.cli import main
from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning import parse_experiment, run_local
from aurora_mlops.tuning.local._workdir import lock_work_dir

SPECS = Path(__file__).parent / "specs"


def _script_doc(name: str, *, epochs: int = 4) -> dict[str, Any]:
    """One script trial at x = 0.5 (grid of one point)."""
    doc = yaml.safe_load((SPECS / "script-random.yaml").read_text())
    doc["metadata"]["name"] = name
    doc["spec"].update(maxTrialCount=1, parallelTrialCount=1)
    doc["spec"]["algorithm"] = {"algorithmName": "grid"}
    doc["spec"]["parameters"][0] = {"name": "x", "parameterType": "discrete",
                                    "feasibleSpace": {"list": ["0.5"]}}
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"][0]
    container["command"] += [f"--epochs={epochs}", "--sleep=0"]
    return doc


def _work(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(SPECS / "trial.py", work / "trial.py")
    return work


# ------------------------------------------------------------------- the spec, as Katib reads it

KATIB_REFUSES = [
    # kubectl reads 1e3 as a number: Katib gets no name, although safe_load gave "1e3".
    ("name-typed-by-kubectl", lambda text: text.replace("name: script-random", "name: 1e3"),
     "metadata.name"),
    ("unknown-algorithm-setting", lambda text: text.replace(
        '{name: random_state, value: "7"}', '{name: n_startup_trials, value: "1"}'),
     "spec.algorithm.algorithmSettings[0].name"),
    ("no-success-condition", lambda text: "\n".join(
        line for line in text.splitlines() if "successCondition" not in line),
     "spec.trialTemplate.successCondition"),
]


@pytest.mark.parametrize(("edit", "field"), [k[1:] for k in KATIB_REFUSES],
                         ids=[k[0] for k in KATIB_REFUSES])
def test_tune_refuses_a_spec_katib_would_refuse_before_anything_starts(
    edit: Any, field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(edit((SPECS / "script-random.yaml").read_text()))
    work = tmp_path / "work"
    code = main(["tune", str(spec), "--backend", "local", "--work-dir", str(work)])
    err = capsys.readouterr().err
    assert code == 1
    assert field in err and str(spec) in err and "Traceback" not in err
    assert err.count("\n") == 1
    assert not work.exists()
    # katib check agrees: one loader, one model of the spec.
    assert main(["katib", "check", str(spec)]) == 1
    checked = capsys.readouterr()
    assert field in checked.out + checked.err


# --------------------------------------------------------------------------- the work-dir lock


def test_a_second_runner_is_refused_and_a_killed_one_does_not_block(tmp_path: Path) -> None:
    work = _work(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; "
         "from aurora_mlops.tuning.local._workdir import lock_work_dir\n"
         f"with lock_work_dir(Path({str(work)!r})):\n"
         "    print('locked', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"  # waits for the event, not a clock
        with pytest.raises(ConfigError, match=f"in use by another `tune` run, process "
                                              f"{holder.pid} on "):
            run_local(parse_experiment(_script_doc("locked")), work_dir=work, progress=False,
                      tracking=False)
        assert not (work / "study.db").exists() and not (work / "status.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The holder died by kill -9 and left its lock file behind: the resume runs.
    assert (work / ".tune.lock").exists()
    result = run_local(parse_experiment(_script_doc("locked")), work_dir=work, progress=False,
                       tracking=False)
    assert result.status["trialsSucceeded"] == 1


def test_the_lock_is_released_when_the_runner_returns(tmp_path: Path) -> None:
    with lock_work_dir(tmp_path):
        pass
    with lock_work_dir(tmp_path):
        pass


# ------------------------------------------------------------------------ the trial's data paths


def test_a_trial_whose_data_is_missing_is_refused_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    code = main(["tune", str(SPECS / "smoke-tpe.yaml"), "--work-dir", str(work)])
    err = capsys.readouterr().err
    assert code == 1
    assert "--data data/medium-res.nc does not exist" in err
    assert "pass --data-dir with the folder that holds medium-res.nc" in err
    assert not (work / "trials").exists() and not (work / "study.db").exists()


def test_a_data_dir_that_holds_the_file_passes_the_check(tmp_path: Path) -> None:
    from aurora_mlops.tuning.local._workdir import check_trial_data

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "medium-res.nc").write_bytes(b"")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "data").symlink_to(tmp_path / "d")
    check_trial_data(["x", "--data=data/medium-res.nc"], tmp_path / "w", spec="s.yaml")
    with pytest.raises(ConfigError, match=r"--data /nope/x.nc does not exist.*fix --data in s"):
        check_trial_data(["x", "--data", "/nope/x.nc"], tmp_path / "w", spec="s.yaml")


# -------------------------------------------------------------------------------- status.json


def test_status_json_reports_latest_min_and_max_of_each_metric(tmp_path: Path) -> None:
    work = _work(tmp_path)
    run_local(parse_experiment(_script_doc("summary", epochs=4)), work_dir=work, progress=False,
              tracking=False, use_forkserver=False)
    status = json.loads((work / "status.json").read_text())
    metrics = {m["name"]: m for m in status["currentOptimalTrial"]["observation"]["metrics"]}
    # trial.py prints val_score = (x - 0.3)^2 + 1/(epoch + 1) and val_rmse = 2 * val_score.
    scores = [round((0.5 - 0.3) ** 2 + 1.0 / (e + 1), 6) for e in range(4)]
    assert float(metrics["val_score"]["latest"]) == pytest.approx(scores[-1])
    assert float(metrics["val_score"]["min"]) == pytest.approx(min(scores))
    assert float(metrics["val_score"]["max"]) == pytest.approx(max(scores))
    assert float(metrics["val_rmse"]["max"]) == pytest.approx(2 * max(scores), rel=1e-5)
    assert metrics["val_score"]["max"] != metrics["val_score"]["latest"]


@pytest.mark.parametrize("store", ["server", "database"])
def test_a_sweep_that_cannot_track_stops_without_printing_the_uri_credentials(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A given tracking URI that cannot be used stops the sweep before its first trial (its
    trials would each refuse it), and the one sentence hides the URI's password."""
    import mlflow.tracking

    from _servers import free_port
    from aurora_mlops.errors import ConfigError, RegistryError

    if store == "server":  # nothing listens there: /health fails at once
        uri, expected = f"https://alice:s3cret@127.0.0.1:{free_port()}", RegistryError
    else:
        uri, expected = "postgresql://alice:s3cret@db.example.org/mlflow", ConfigError

        class Refusing:
            def __init__(self, tracking_uri: str) -> None:
                raise ConnectionError(f"API request to {tracking_uri}/api/2.0 failed")

        monkeypatch.setattr(mlflow.tracking, "MlflowClient", Refusing)
    work = _work(tmp_path)
    with pytest.raises(expected) as err:
        run_local(parse_experiment(_script_doc("tracked")), work_dir=work,
                  progress=False, tracking=True, tracking_uri=uri, use_forkserver=False)
    message = str(err.value)
    assert "alice:***@" in message or "***@" in message, message
    assert "s3cret" not in message and "\n" not in message
    assert not (work / "trials").exists() or not any((work / "trials").iterdir())
