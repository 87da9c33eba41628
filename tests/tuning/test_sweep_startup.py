"""The sweep's start-up: its SQLite files are created without a disk sync per statement.

MLflow's schema migrations on a new SQLite store and Optuna's table creation each commit many
times; synced one by one they were most of the seconds before a sweep's first trial. These
tests check that the fast paths build the same files and apply only where they should.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy

from aurora_mlops.tuning.local._study_storage import (
    _pragmas_for,
    close_storage,
    create_mlflow_store,
    open_storage,
    sqlite_file,
)


def _tables(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}


def _revision(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])


@pytest.mark.slow
def test_the_fast_mlflow_store_is_the_store_mlflow_builds(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Same tables, same schema revision and, once MLflow opens it, the same default
    experiment (id 0, created by MLflow's own store with its own artifact root)."""
    from mlflow.tracking import MlflowClient

    from aurora_mlops.tuning.local import _study_storage

    monkeypatch.setattr(_study_storage, "_migrated", None)  # migrated here, not copied
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    ours, theirs = tmp_path / "ours" / "mlflow.db", tmp_path / "theirs" / "mlflow.db"
    ours.parent.mkdir()
    create_mlflow_store(ours)
    assert sorted(p.name for p in ours.parent.iterdir()) == ["mlflow.db"]  # no partial left
    # The default experiment is left to MLflow (mlflow/mlflow
    # mlflow/store/tracking/sqlalchemy_store.py: _initialize_store_state creates id 0 when
    # the store opens without one); only the rows the migrations write remain.
    assert "experiments" in _tables(ours) and _tables(ours)["experiments"] == 0
    theirs.parent.mkdir()
    clients = [MlflowClient(f"sqlite:///{db}") for db in (ours, theirs)]
    defaults = [c.get_experiment("0") for c in clients]
    assert _tables(ours) == _tables(theirs)
    assert _revision(ours) == _revision(theirs)
    assert [e.name for e in defaults] == ["Default", "Default"]
    assert defaults[0].artifact_location == defaults[1].artifact_location
    run = clients[0].create_run(defaults[0].experiment_id)
    clients[0].log_metric(run.info.run_id, "val_score", 0.5)
    assert clients[0].get_run(run.info.run_id).data.metrics == {"val_score": 0.5}
    with sqlite3.connect(ours) as conn:  # left in SQLite's default mode, as MLflow makes it
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


@pytest.mark.slow
def test_later_stores_of_a_process_are_copies_of_the_first_migrated_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A halving chain's rungs each open a new store: only the first runs MLflow's migrations
    (0.5 s and more); a copy is the same file, and MLflow opens it and logs to it."""
    from mlflow.tracking import MlflowClient

    from aurora_mlops.tuning.local import _study_storage

    monkeypatch.setattr(_study_storage, "_migrated", None)
    monkeypatch.chdir(tmp_path)
    first, second = tmp_path / "rung-0" / "mlflow.db", tmp_path / "rung-1" / "mlflow.db"
    first.parent.mkdir()
    second.parent.mkdir()
    create_mlflow_store(first)
    migrations: list[tuple[object, ...]] = []
    monkeypatch.setattr(_study_storage, "_migrate", lambda *a: migrations.append(a))
    create_mlflow_store(second)
    assert migrations == []
    assert second.read_bytes() == first.read_bytes()
    assert sorted(p.name for p in second.parent.iterdir()) == ["mlflow.db"]  # no partial left
    client = MlflowClient(f"sqlite:///{second}")
    # created by MLflow as the copy opens (mlflow/mlflow
    # mlflow/store/tracking/sqlalchemy_store.py: _initialize_store_state)
    default = client.get_experiment("0")
    assert default is not None and default.name == "Default"
    run = client.create_run(default.experiment_id)
    client.log_metric(run.info.run_id, "val_score", 0.25)
    assert client.get_run(run.info.run_id).data.metrics == {"val_score": 0.25}
    assert _revision(second) == _revision(first)


def test_an_existing_mlflow_store_is_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"somebody's store")
    create_mlflow_store(db)
    assert db.read_bytes() == b"somebody's store"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]


@pytest.mark.parametrize(("uri", "expected"), [
    ("sqlite:////abs/mlflow.db", "/abs/mlflow.db"),
    ("sqlite:///rel/mlflow.db", "REL"),
    ("sqlite:///:memory:", None),
    ("sqlite:////abs/mlflow.db?timeout=5", None),
    ("http://127.0.0.1:5000", None),
    ("file:///abs/mlruns", None),
    (None, None),
], ids=["absolute", "relative", "memory", "options", "server", "file-store", "none"])
def test_only_a_plain_sqlite_file_uri_gets_the_fast_store(uri: str | None, expected: str | None,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLAlchemy's form: sqlite:/// then the path, relative to the working dir unless it
    # starts with / (sqlalchemy/sqlalchemy lib/sqlalchemy/dialects/sqlite/pysqlite.py).
    monkeypatch.chdir(tmp_path)
    want = tmp_path / "rel" / "mlflow.db" if expected == "REL" else \
        None if expected is None else Path(expected)
    assert sqlite_file(uri) == want


def _mode(engine: sqlalchemy.engine.Engine) -> tuple[str, int]:
    with engine.connect() as conn:
        return (str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()),
                int(conn.exec_driver_sql("PRAGMA synchronous").scalar() or 0))


def test_pragmas_reach_the_first_connection_of_that_file_only(tmp_path: Path) -> None:
    """An engine created inside the block gets them from its first connection (the one a
    library creates its tables on); another file's, or one created afterwards, does not."""
    target, other = tmp_path / "a.db", tmp_path / "b.db"
    with _pragmas_for(target, ("PRAGMA journal_mode=MEMORY", "PRAGMA synchronous=OFF")):
        inside = sqlalchemy.create_engine(f"sqlite:///{target}")
        elsewhere = sqlalchemy.create_engine(f"sqlite:///{other}")
        assert _mode(inside) == ("memory", 0)
        assert _mode(elsewhere) == ("delete", 2)  # SQLite's defaults: FULL is 2
    after = sqlalchemy.create_engine(f"sqlite:///{target}")
    assert _mode(after) == ("delete", 2)
    for engine in (inside, elsewhere, after):
        engine.dispose()


def test_the_study_is_created_in_wal_mode_and_left_whole(tmp_path: Path) -> None:
    import optuna

    db = tmp_path / "study.db"
    storage = open_storage(db)
    assert db.with_name("study.db-wal").exists()  # the tables were created through the log
    assert _mode(storage.engine) == ("wal", 1)     # NORMAL is 1
    optuna.create_study(storage=storage, study_name="s").ask()
    close_storage(storage)
    assert not db.with_name("study.db-wal").exists()
    assert optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials


def test_the_runner_reads_the_study_twice_per_trial_and_writes_one_status(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between two short trials the runner's own work delays the next one; every read of the
    study loads all its trials, and every status.json write syncs the disk. It reads once
    when a trial ends and once after the next one starts (it used to read five times), and
    writes one status for both."""
    import json
    import shutil

    import optuna
    import yaml

    from aurora_mlops.tuning import parse_experiment, run_local
    from aurora_mlops.tuning.local import _runner, _status

    specs = Path(__file__).parent / "specs"
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(specs / "trial.py", work / "trial.py")
    doc = yaml.safe_load((specs / "script-random.yaml").read_text())
    doc["metadata"]["name"] = "reads"
    doc["spec"].update(maxTrialCount=4, parallelTrialCount=1, maxFailedTrialCount=1)
    doc["spec"]["parameters"][1]["feasibleSpace"]["list"] = ["ok"]
    reads: list[int] = []
    get_trials = optuna.Study.get_trials
    monkeypatch.setattr(optuna.Study, "get_trials",
                        lambda self, *a, **k: reads.append(1) or get_trials(self, *a, **k))
    writes: list[str] = []
    write_status = _status.write_status
    monkeypatch.setattr(_runner, "write_status",
                        lambda path, payload: writes.append(path.name) or
                        write_status(path, payload))
    result = run_local(parse_experiment(doc), work_dir=work, progress=False, tracking=False)
    assert result.status["trialsSucceeded"] == 4
    # 2 per trial, and a few around the loop (resume check, first status, result, best.json).
    assert len(reads) <= 2 * 4 + 5, len(reads)
    # One per trial start (the previous trial's end folded in), the last end, the first and
    # the final status: 7 (it was two per trial, 11).
    assert writes.count("status.json") <= 4 + 3, writes
    assert json.loads((work / "status.json").read_text())["trialsSucceeded"] == 4


def test_a_store_in_a_missing_folder_is_left_to_mlflow_to_refuse(tmp_path: Path) -> None:
    create_mlflow_store(tmp_path / "typo" / "mlflow.db")
    assert not (tmp_path / "typo").exists()
