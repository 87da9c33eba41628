"""The local runner's Optuna storage: ``sqlite:///WORKDIR/study.db`` in write-ahead-log mode.

Optuna commits every write on its own (each sampled parameter, user attribute, reported value
and ``tell``), about thirty commits per trial. In SQLite's default rollback-journal mode each
commit syncs the journal and the database to disk; with many short trials that was ~0.3 s of
the runner's time between one trial's end and the next one's start. A write-ahead log with
``synchronous=NORMAL`` (SQLite's recommended pairing) syncs only at checkpoints, and loses
nothing when a process dies (``kill -9`` of the runner): only an OS crash or power cut may
drop the last commits, and the database stays consistent. :func:`close_storage` folds the log
back into ``study.db`` and returns the file to the default mode, so what the sweep leaves is
one self-contained file that can be copied (the pipeline's sweep summary copies it).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["close_storage", "open_storage"]


def _fast_commits(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_storage(db: Path) -> Any:
    """An Optuna ``RDBStorage`` on the SQLite file ``db`` whose connections use the log."""
    import optuna
    import sqlalchemy

    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    sqlalchemy.event.listen(storage.engine, "connect", _fast_commits)
    storage.engine.dispose()  # connections opened while creating the tables lack the pragmas
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
