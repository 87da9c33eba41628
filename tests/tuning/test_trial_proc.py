"""Cheap trials: the warm forkserver, the runner's wake-up on a trial's end, the study's storage."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from aurora_mlops.tuning import parse_experiment, run_local
from aurora_mlops.tuning.local._study_storage import close_storage, open_storage
from aurora_mlops.tuning.local._trial_proc import TrialProcess, wait_any
from aurora_mlops.tuning.local._trial_workers import PRELOAD

SPECS = Path(__file__).parent / "specs"


class _Forked:
    """A stand-in for a forked :class:`TrialProcess`: only its process's sentinel matters."""

    def __init__(self, process: Any) -> None:
        self.sentinel = process.sentinel

    def handles(self) -> list[Any]:
        return [self.sentinel]


def test_the_runner_wakes_when_a_forked_trial_ends_not_after_its_poll_interval() -> None:
    process = multiprocessing.get_context("fork").Process(target=time.sleep, args=(0.2,))
    process.start()
    t0 = time.monotonic()
    wait_any([_Forked(process)], timeout=120)
    # Woken by the end (a generous bound: the interval it would otherwise sleep is 120 s).
    assert time.monotonic() - t0 < 60
    process.join(5)
    assert process.exitcode == 0


def test_a_subprocess_trial_has_no_sentinel_so_the_runner_polls_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = TrialProcess([sys.executable, "-c", "pass"], tmp_path, dict(os.environ),
                        tmp_path / "log.txt", threads=1, fork=False)
    assert proc.sentinel is None
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    wait_any([proc], timeout=0.05)
    assert slept == [0.05]


def test_the_study_file_is_whole_when_the_sweep_returns(tmp_path: Path) -> None:
    """During a sweep the study commits to a write-ahead log; afterwards study.db alone holds
    everything (the pipeline copies it as the sweep's summary)."""
    import optuna

    db = tmp_path / "study.db"
    storage = open_storage(db)
    with storage.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    study = optuna.create_study(storage=storage, study_name="s")
    study.enqueue_trial({"x": 1.0})
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 2)})
    trial.set_user_attr("katib_name", "s-0")
    study.tell(trial, 0.5)
    close_storage(storage)
    assert not db.with_name("study.db-wal").exists()
    copy = tmp_path / "copy" / "study.db"
    copy.parent.mkdir()
    shutil.copy(db, copy)  # the file alone, as a copy of the summary would be
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    (again,) = optuna.load_study(study_name="s", storage=f"sqlite:///{copy}").trials
    assert again.value == 0.5 and again.user_attrs["katib_name"] == "s-0"


def _list_params_doc(name: str) -> dict[str, Any]:
    """A sweep whose one trial is a forked ``train-trial --list-params`` (it prints the
    parameters and exits without a metric, so it fails quickly, in the forkserver)."""
    doc = yaml.safe_load((SPECS / "smoke-tpe.yaml").read_text())
    doc["metadata"]["name"] = name
    doc["spec"].update(maxTrialCount=1, maxFailedTrialCount=1, parallelTrialCount=1)
    doc["spec"]["algorithm"] = {"algorithmName": "random"}
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"][0]
    container["command"] = ["aurora-mlops", "train-trial", "--list-params", "--profile", "smoke",
                            "--data", "data/medium-res.nc",
                            "--learning_rate=${trialParameters.learning_rate}"]
    return doc


@pytest.mark.slow
def test_every_sweep_of_a_process_reuses_the_one_warm_forkserver(tmp_path: Path) -> None:
    """Successive-halving rungs call run_local one after another: only the first pays for the
    forkserver's imports."""
    from multiprocessing import forkserver

    data = tmp_path / "data"
    data.mkdir()
    (data / "medium-res.nc").write_bytes(b"")  # --list-params never opens it
    servers = []
    for rung in ("rung-0", "rung-1"):
        work = tmp_path / rung
        result = run_local(parse_experiment(_list_params_doc(rung)), work_dir=work,
                           data_dir=data, progress=False, tracking=False)
        (trial,) = result.status["failures"]
        assert "learning_rate" in (work / "trials" / trial / "log.txt").read_text()
        servers.append(forkserver._forkserver._forkserver_pid)
    assert servers[0] is not None and servers[0] == servers[1]
    os.kill(servers[0], 0)  # still alive, for the next rung


#: A user's script that calls run_local with no ``if __name__ == "__main__":`` guard.
_UNGUARDED = """
import json, os, sys
import yaml
from aurora_mlops.tuning import parse_experiment, run_local
work = sys.argv[1]
with open(os.path.join(work, "ran.txt"), "a") as f:
    f.write(f"{os.getpid()}\\n")
with open(os.path.join(work, "spec.yaml")) as f:
    spec = parse_experiment(yaml.safe_load(f))
result = run_local(spec, work_dir=os.path.join(work, "sweep"),
                   data_dir=os.path.join(work, "data"), progress=False, tracking=False)
print(json.dumps(result.status["failures"]))
"""


@pytest.mark.slow
def test_a_script_that_runs_a_sweep_runs_once_not_again_in_each_trial_worker(
        tmp_path: Path) -> None:
    """multiprocessing imports the parent's ``__main__`` script again in every process it starts
    (CPython's Lib/multiprocessing/spawn.py, ``get_preparation_data`` and
    ``_fixup_main_from_path``). Unguarded, this script would start a sweep inside its trial's
    worker: the worker died before the trial's command ran, the trial failed with an empty
    log, and the script ran three times."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "medium-res.nc").write_bytes(b"")  # --list-params never opens it
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(_list_params_doc("unguarded")))
    script = tmp_path / "sweep_script.py"
    script.write_text(_UNGUARDED)
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                          text=True, timeout=600, check=True)
    assert len((tmp_path / "ran.txt").read_text().splitlines()) == 1
    (trial,) = json.loads(done.stdout.splitlines()[-1])
    assert "learning_rate" in (tmp_path / "sweep" / "trials" / trial / "log.txt").read_text()


def test_the_forkserver_takes_on_the_runners_main_file_and_module_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from aurora_mlops.tuning.local import _trial_workers as workers

    main = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setenv(workers.RUNNER_MAIN_ENV,
                       json.dumps({"file": "/home/me/sweep.py", "name": "tools.sweep"}))
    workers.adopt_runner_main()
    assert main.__file__ == "/home/me/sweep.py"
    assert main.__spec__ is not None and main.__spec__.name == "tools.sweep"
    assert workers.RUNNER_MAIN_ENV not in os.environ  # the workers' environments stay clean


_TRIAL_IMPORTS = """
import atexit, json, os, sys
from aurora_mlops.tuning.local._trial_workers import PRELOAD, _run_trial
for name in PRELOAD:
    __import__(name)
before = set(sys.modules)
out, argv, work = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
def dump():
    with open(out, "w") as f:
        json.dump(sorted(set(sys.modules) - before), f)
atexit.register(dump)
env = {"PATH": os.environ["PATH"], "HOME": work}
_run_trial(argv, work, env, os.path.join(work, "log.txt"), 1)
"""
#: What a forked trial must never import itself (the forkserver holds them).
_PRELOADED = ("torch", "aurora.", "timm", "scipy", "xarray", "netCDF4", "sqlalchemy", "git",
              "rich", "aurora_mlops", "mlflow.store.tracking", "mlflow.tracking")


@pytest.mark.slow
def test_a_forked_trial_imports_nothing_that_the_forkserver_could_have(tmp_path: Path) -> None:
    """Same order as the server: PRELOAD, then the trial body with an MLflow run on SQLite."""
    from aurora_mlops.data import synthesize, write_dataset

    work = tmp_path / "work"
    work.mkdir()
    write_dataset(synthesize("medium-res", times=40, seed=1), work / "medium-res.nc")
    argv = ["aurora-mlops", "train-trial", "--variant", "medium-res", "--profile", "smoke",
            "--data", "medium-res.nc", "--output", "trials/t-0", "--epochs=1",
            "--steps_per_epoch=1", "--val_windows=1",
            "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}"]
    out = tmp_path / "imports.json"
    subprocess.run([sys.executable, "-c", _TRIAL_IMPORTS, str(out), json.dumps(argv),
                    str(work)], check=True, timeout=600)
    assert "val_score=" in (work / "log.txt").read_text()
    new = json.loads(out.read_text())
    late = [m for m in new if m.startswith(_PRELOADED)]
    assert late == [], f"a forked trial imported {late}: add them to PRELOAD or _WARM_IMPORTS"
    assert "aurora_mlops.tuning.local._trial_warm" in PRELOAD


def test_warming_the_forkserver_leaves_logging_to_each_trial() -> None:
    """The warm-up runs the CLI once; a trial's own ``-v`` must still configure its logging."""
    import logging

    from aurora_mlops.tuning.local._trial_workers import warm_trial_imports

    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    warm_trial_imports()
    assert (list(root.handlers), root.level) == before
    assert {"aurora_mlops.cli._train", "aurora_mlops.cli._profile"} <= set(sys.modules)


def test_the_warm_up_leaves_trials_a_sqlite_that_mlflow_accepts() -> None:
    """Listing xarray's engines loads eccodes' bundled SQLite 3.26 with global symbols; in a
    process that had not loaded Python's own first, every forked trial's sqlite3 would be 3.26,
    which MLflow's SQL store refuses (it needs 3.31). A fresh interpreter, as the forkserver's."""
    code = ("from aurora_mlops.tuning.local._trial_workers import warm_trial_imports\n"
            "warm_trial_imports()\n"
            "import sqlite3; print(sqlite3.sqlite_version)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()[-1]
    assert tuple(int(x) for x in out.split(".")) >= (3, 31), out


# -- the standby worker and the worker's end-of-trial message -----------------------------------
# These fork the test process itself ("fork" context), so that the worker runs this module's
# stand-in for the trial's command; the runner's workers fork from the forkserver instead.


def _lingering_trial(argv: list[str], cwd: str, env: dict[str, str], log_path: str,
                     threads: int) -> int:
    """A trial whose command returns 3 and leaves a non-daemon thread: its process outlives
    its end by ~2 s (Python joins such threads before it exits)."""
    import threading

    threading.Thread(target=time.sleep, args=(2.0,)).start()
    return 3


def test_a_forked_trial_has_ended_when_its_worker_says_so_not_when_its_process_is_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aurora_mlops.tuning.local import _trial_workers

    monkeypatch.setattr(_trial_workers, "_run_trial", _lingering_trial)
    monkeypatch.setattr(_trial_workers.ForkServer, "_standby",
                        _trial_workers._Standby(multiprocessing.get_context("fork")))
    proc = TrialProcess(["aurora-mlops", "train-trial"], tmp_path, {}, tmp_path / "log.txt",
                        threads=1, fork=True)
    assert _trial_workers.ForkServer._standby is None  # taken: the next trial forks its own
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        wait_any([proc], timeout=1.0)
    assert proc.poll() == 3
    assert proc._process.is_alive()  # still exiting: the runner did not wait for that
    proc.reap(timeout=30)
    assert proc._process.exitcode == 3
    assert proc.handles() == [proc.sentinel]  # the message is read: only the process is left


def test_a_dead_standby_worker_is_replaced_by_a_fresh_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aurora_mlops.tuning.local import _trial_workers

    ctx = multiprocessing.get_context("fork")
    monkeypatch.setattr(_trial_workers, "_run_trial", lambda *order: 0)
    monkeypatch.setattr(_trial_workers.ForkServer, "context", classmethod(lambda cls: ctx))
    dead = _trial_workers._Standby(ctx)
    dead.process.kill()
    dead.process.join(10)
    monkeypatch.setattr(_trial_workers.ForkServer, "_standby", dead)
    proc = TrialProcess(["aurora-mlops", "train-trial"], tmp_path, {}, tmp_path / "log.txt",
                        threads=1, fork=True)
    assert proc.pid != dead.process.pid
    proc.reap(timeout=30)
    assert proc.poll() == 0


@pytest.mark.slow
def test_a_sweep_returns_with_none_of_its_worker_processes_left(tmp_path: Path) -> None:
    """Three trials at most, stopped after two failures: the worker forked for the third is
    never used, and is gone when run_local returns, as are the two trials' processes."""
    from aurora_mlops.tuning.local._trial_workers import ForkServer

    data = tmp_path / "data"
    data.mkdir()
    (data / "medium-res.nc").write_bytes(b"")  # --list-params never opens it
    doc = _list_params_doc("standby")
    doc["spec"].update(maxTrialCount=3, maxFailedTrialCount=2)
    before = {p.pid for p in multiprocessing.active_children()}  # other tests' in this worker
    result = run_local(parse_experiment(doc), work_dir=tmp_path / "work", data_dir=data,
                       progress=False, tracking=False)
    assert result.reason == "MaxFailedTrialsReached"
    assert sorted(result.status["failures"]) == ["standby-0", "standby-1"]
    for name in result.status["failures"]:  # each ran the command, in a forked worker
        assert "learning_rate" in (tmp_path / "work" / "trials" / name / "log.txt").read_text()
    assert ForkServer._standby is None  # dismissed: it read EOF and exited
    assert {p.pid for p in multiprocessing.active_children()} <= before


def test_the_runners_main_file_is_handed_on_as_multiprocessing_names_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A relative ``__main__.__file__`` reaches the child absolute from the start directory and
    normalised (``get_preparation_data`` in CPython's Lib/multiprocessing/spawn.py); the server
    must take it on in that form, or the child's comparison fails and the script runs again."""
    import types
    from multiprocessing import process, spawn

    from aurora_mlops.tuning.local import _trial_workers as workers

    main = types.ModuleType("__main__")
    main.__file__ = "tools/../sweep.py"
    main.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(process, "ORIGINAL_DIR", str(tmp_path))
    handed = spawn.get_preparation_data("x")["init_main_from_path"]
    assert json.loads(workers._runner_main()) == {"file": handed, "name": None}
    assert handed == str(tmp_path / "sweep.py")
