"""The local runner's SQLite files: the Optuna study in write-ahead-log mode, MLflow's new store.

Optuna commits every write on its own (each sampled parameter, user attribute, reported value
and ``tell``), about thirty commits per trial. In SQLite's default rollback-journal mode each
commit syncs the journal and the database to disk; with many short trials that was ~0.3 s of
the runner's time between one trial's end and the next one's start. A write-ahead log with
``synchronous=NORMAL`` (SQLite's recommended pairing) syncs only at checkpoints, and loses
nothing when a process dies (``kill -9`` of the runner): only an OS crash or power cut may
drop the last commits, and the database stays consistent. The pragmas hold from the first
connection, the one that creates the tables. :func:`close_storage` folds the log back into
``study.db`` and returns the file to the default mode, so what the sweep leaves is one
self-contained file that can be copied (the pipeline's sweep summary copies it).

A new MLflow SQLite store is built by MLflow's own schema migrations, about 1,700 statements
that each sync the disk in the default mode: 5 of the 6 seconds it took, all before the first
trial could start. :func:`create_mlflow_store` runs the same migrations on a private file
without syncing, then links the finished file into place: the store appears whole or not at
all, so a runner killed half-way leaves no half-migrated database behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["close_storage", "create_mlflow_store", "open_storage", "sqlite_file"]

_WAL = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")
#: For a file nobody else sees until it is complete: a crash loses only that private file.
_NO_SYNC = ("PRAGMA journal_mode=MEMORY", "PRAGMA synchronous=OFF")


def _fast_commits(dbapi_connection: Any, _record: Any) -> None:
    for pragma in _WAL:
        dbapi_connection.execute(pragma)


@contextlib.contextmanager
def _pragmas_for(db: Path, pragmas: tuple[str, ...]) -> Iterator[None]:
    """Run ``pragmas`` on every SQLAlchemy connection to the file ``db`` opened in the block.

    A library that creates its engine and tables in one call (Optuna's storage, MLflow's
    store) gives no engine to listen on before its first connection; every pool does.
    """
    import sqlalchemy

    target = os.path.realpath(db)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        files = [row[2] for row in dbapi_connection.execute("PRAGMA database_list")]
        if files and files[0] and os.path.realpath(files[0]) == target:
            for pragma in pragmas:
                dbapi_connection.execute(pragma)

    sqlalchemy.event.listen(sqlalchemy.pool.Pool, "connect", on_connect)
    try:
        yield
    finally:
        sqlalchemy.event.remove(sqlalchemy.pool.Pool, "connect", on_connect)


def open_storage(db: Path) -> Any:
    """An Optuna ``RDBStorage`` on the SQLite file ``db`` whose connections use the log."""
    import optuna
    import sqlalchemy

    with _pragmas_for(db, _WAL):
        storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    sqlalchemy.event.listen(storage.engine, "connect", _fast_commits)
    return storage


def close_storage(storage: Any) -> None:
    """Fold the log into the database file and leave it in rollback-journal mode.

    Another process with the database open (a dashboard, a second reader) keeps the file in
    log mode; SQLite then folds the log when the last connection closes.
    """
    import sqlalchemy

    engine = storage.engine
    with contextlib.suppress(sqlalchemy.exc.InvalidRequestError):
        sqlalchemy.event.remove(engine, "connect", _fast_commits)
    engine.dispose()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
    except sqlalchemy.exc.OperationalError as e:  # locked by another reader
        log.debug("study.db stays in WAL mode (%s)", e)
    engine.dispose()


def sqlite_file(uri: str | None) -> Path | None:
    """The file of a ``sqlite:///PATH`` URI (relative to the working dir, as SQLAlchemy reads
    it); ``None`` for any other URI, an in-memory database or one with query options."""
    prefix = "sqlite:///"
    if not uri or not uri.startswith(prefix) or "?" in uri:
        return None
    path = uri[len(prefix):]
    return None if path in ("", ":memory:") else Path(path).absolute()


#: The first new store's file as MLflow's migrations left it (its default experiment dropped):
#: later stores of this process are copies of it (a halving chain's rungs, the bench's sweeps).
_migrated: bytes | None = None


def create_mlflow_store(db: Path) -> None:
    """Create MLflow's SQLite store at ``db`` if it is missing (a no-op when it exists, or
    when its folder does not).

    MLflow builds the schema, on a private file next to ``db`` and without disk syncs; its
    default experiment is dropped again, so that the store opened at ``db`` creates it with
    the artifact root it would have used anyway. Nothing else in the file depends on where it
    is, so the process keeps its bytes and later stores are copies (the migrations take 0.5 s
    and more; a copy, milliseconds). ``os.link`` publishes the finished file and fails if
    another process created ``db`` meanwhile: theirs is kept.
    """
    global _migrated
    if db.exists() or not db.parent.is_dir():  # a missing folder: MLflow's own error says so
        return
    partial = db.with_name(f".{db.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    try:
        if _migrated is None:
            _migrate(partial, db.parent / "mlruns")
            _migrated = partial.read_bytes()
        else:
            partial.write_bytes(_migrated)
        with contextlib.suppress(FileExistsError):
            os.link(partial, db)
    finally:
        partial.unlink(missing_ok=True)


def _migrate(partial: Path, artifacts: Path) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with _pragmas_for(partial, _NO_SYNC):
        store = SqlAlchemyStore(f"sqlite:///{partial}", str(artifacts))
    store.engine.dispose()
    with contextlib.closing(sqlite3.connect(partial)) as conn, conn:
        conn.execute("DELETE FROM experiments WHERE experiment_id = ?",
                     (int(SqlAlchemyStore.DEFAULT_EXPERIMENT_ID),))
