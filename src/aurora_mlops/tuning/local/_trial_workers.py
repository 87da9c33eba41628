"""The workers of local trials, on the forkserver's side: what the server imports once
(:data:`PRELOAD`, :func:`warm_trial_imports`), the processes it forks (a standby worker waits
for its trial's command, runs it and reports its exit code as soon as the command returns), and
the server itself (:class:`ForkServer`). :mod:`._trial_proc` starts and watches them.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["PRELOAD", "ForkServer", "adopt_runner_main", "cli_args", "die_with_parent",
           "program_main", "warm_trial_imports"]

#: Modules the forkserver imports once, before it forks trial workers: all that a smoke
#: ``train-trial`` imports (measured by diffing ``sys.modules`` in a forked trial). Without the
#: last three, every trial imported ~560 modules again (0.3 s before training, 0.8 s more
#: when its MLflow run started).
PRELOAD: tuple[str, ...] = (
    "torch", "aurora", "aurora.rollout", "mlflow", "xarray", "aurora_mlops.cli",
    "aurora_mlops.training", "aurora_mlops.data._open", "aurora_mlops.data._windows",
    # The SQLite store (SQLAlchemy, alembic) of the sweep's default MLflow URI.
    "mlflow.store.tracking.sqlalchemy_store",
    # The module of the forked target (unpickling it imported the whole tuning package), and
    # the one whose import calls :func:`warm_trial_imports` in the server.
    "aurora_mlops.tuning.local._trial_workers", "aurora_mlops.tuning.local._trial_warm",
)


def cli_args(argv: Sequence[str]) -> list[str]:
    """The ``aurora-mlops`` arguments of a trial command (after the program or ``-m``)."""
    return list(argv[1:]) if os.path.basename(argv[0]) == "aurora-mlops" else list(argv[3:])


def die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (a killed runner leaves no trials)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: best effort
        pass


def _release_forkserver_pipe() -> None:
    """Close this child's copy of the forkserver's "client alive" pipe.

    multiprocessing hands every forked child the write end of the pipe on which the forkserver
    waits for EOF to learn that its client (the runner) died. A trial holding it keeps the
    forkserver, its parent, alive after ``kill -9`` of the runner, so PR_SET_PDEATHSIG never
    fires and the trial trains on as an orphan. Trials start no processes through the
    forkserver, so they do not need it.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if server is not None and fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None


#: Where the runner tells its forkserver which ``__main__`` it runs (:func:`adopt_runner_main`).
RUNNER_MAIN_ENV = "AURORA_MLOPS_RUNNER_MAIN"


def _runner_main() -> str:
    """This process's ``__main__``: its file and module name (JSON), the file as multiprocessing
    hands it to a child (absolute from the start directory, normalised)."""
    from multiprocessing import process

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is not None:
        start = getattr(process, "ORIGINAL_DIR", None)  # not in typeshed
        if not os.path.isabs(path) and start is not None:
            path = os.path.join(start, path)
        path = os.path.normpath(path)
    return json.dumps({"file": path,
                       "name": getattr(getattr(main, "__spec__", None), "name", None)})


def adopt_runner_main() -> None:
    """In the forkserver: take on the runner's ``__main__`` file and module name, so that the
    workers it forks do not run the runner's script again.

    multiprocessing tells each process it starts its parent's ``__main__`` (a script's path, or
    a module's name under ``-m``), and the child imports it again as ``__mp_main__`` unless its
    own ``__main__`` already has that file or name (CPython's Lib/multiprocessing/spawn.py,
    ``_fixup_main_from_path`` and ``_fixup_main_from_name``). A trial worker runs an
    ``aurora-mlops`` command and needs nothing of that script: running it again costs its
    imports in every trial, and a script whose :func:`~aurora_mlops.tuning.run_local` call has
    no ``if __name__ == "__main__":`` guard would start a sweep inside each worker, which fails.
    """
    try:
        main = json.loads(os.environ.pop(RUNNER_MAIN_ENV, "") or "{}")
    except ValueError:
        return
    module = sys.modules["__main__"]
    if main.get("file"):
        module.__file__ = main["file"]
    if main.get("name"):
        from importlib.machinery import ModuleSpec

        module.__spec__ = ModuleSpec(main["name"], None)


@functools.cache
def program_main() -> Callable[[list[str]], int]:
    """The ``aurora-mlops`` command's entry point, found as a shell finds the command.

    A trial's command names the installed console script, so it is resolved through the
    package's ``console_scripts`` entry point (``aurora_mlops.cli:main``), not imported by name:
    the CLI imports this package, and the runner needs only the command the spec names.
    """
    from importlib.metadata import entry_points

    found = entry_points(group="console_scripts", name="aurora-mlops")
    if not found:
        raise RuntimeError("the aurora-mlops command is not installed (pip install -e .)")
    main: Callable[[list[str]], int] = next(iter(found)).load()
    return main


def warm_trial_imports() -> None:
    """What every forked trial would repeat before training, done once in the forkserver.

    Resolve the entry point (a scan of every installed package's metadata), import the CLI's
    subcommand modules (the parser is built from all of them), the training modules (the
    package imports them lazily) and what a trial imports on the way: its dataset's reader
    (and xarray's list of backends), the progress bar, and what MLflow imports when a run
    starts and logs (GitPython for the source commit, OpenTelemetry, the SQLite dialect).
    Optional ones may be missing.
    """
    import logging

    # Python's own SQLite first: listing xarray's engines loads cfgrib and eccodes, whose
    # bundled SQLite 3.26 (loaded with global symbols) would otherwise become the one every
    # forked trial's sqlite3 binds to, and MLflow's SQL store refuses SQLite below 3.31.
    import sqlite3  # noqa: F401

    # The cheapest run of the command builds its whole parser, as every trial's run does;
    # the logging it configures is undone, so that each trial's own -v still takes effect.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        program_main()(["train-trial", "--list-params", "--profile", "smoke"])
    root.handlers[:] = handlers
    root.setLevel(level)
    import xarray.backends

    from aurora_mlops.training import train_trial  # noqa: F401

    xarray.backends.list_engines()  # found through entry points on a process's first open
    for name in _WARM_IMPORTS:
        with contextlib.suppress(ImportError):
            __import__(name)


_WARM_IMPORTS = (
    "aurora_mlops.cli._profile", "netCDF4", "rich.progress", "git", "alembic.command",
    "sqlalchemy.dialects.sqlite", "mlflow.tracking.context.registry",
    "mlflow.tracing.processor.otel", "mlflow.store.tracking.sqlalchemy_workspace_store",
    "torch.utils.serialization", "alembic.config", "einops._torch_specific",
    "mlflow.tracing.processor.base_mlflow",
)


def _run_trial(argv: list[str], cwd: str, env: dict[str, str], log_path: str,
               threads: int) -> int:
    """Run the trial's command in this forked process, its output to ``log_path``; its code."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    code = 1
    try:
        import torch

        torch.set_num_threads(max(threads, 1))
        from aurora_mlops.config import get_settings

        get_settings.cache_clear()
        code = program_main()(cli_args(argv))
    except SystemExit as e:  # argparse usage errors
        code = e.code if isinstance(e.code, int) else 2
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def _worker_setup() -> None:
    """A forked worker's own session (its trial's process group), death with its parent."""
    os.setsid()
    die_with_parent()
    _release_forkserver_pipe()


def _standby_trial(orders: Any, ended: Any) -> None:
    """Body of a worker forked before its trial is known (runs in the child).

    It waits for its trial's command on ``orders`` (EOF: no trial came, it exits), runs it, and
    sends the exit code on ``ended`` before exiting: the runner can start the next trial while
    this process is torn down (tens of milliseconds for a process of torch's size).
    """
    _worker_setup()
    try:
        order = orders.recv()
    except (EOFError, OSError):
        os._exit(0)
    orders.close()
    code = _run_trial(*order)
    with contextlib.suppress(OSError):
        ended.send(code)
        ended.close()
    sys.exit(code)


class _Standby:
    """A worker forked from the forkserver ahead of need, waiting for its trial."""

    def __init__(self, ctx: Any) -> None:
        take, self.orders = ctx.Pipe(duplex=False)
        self.ended, tell = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=_standby_trial, args=(take, tell), daemon=False)
        self.process.start()
        take.close()  # the worker's ends: this process keeps only its own
        tell.close()

    def start(self, order: tuple[Any, ...]) -> bool:
        """Hand the worker its trial; False if it is gone (then it is not used)."""
        try:
            self.orders.send(order)
        except OSError:
            self.dismiss()
            return False
        self.orders.close()
        return True

    def dismiss(self, timeout: float = 5.0) -> None:
        """Let an unused worker go: it reads EOF and exits (or is killed after ``timeout``)."""
        with contextlib.suppress(OSError):
            self.orders.close()
        with contextlib.suppress(OSError):
            self.ended.close()
        self.process.join(timeout)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join(5)


class ForkServer:
    """multiprocessing's forkserver with :data:`PRELOAD` imported once (shared per process),
    and at most one standby worker forked from it ahead of the next trial."""

    _ctx: Any = None
    _standby: _Standby | None = None

    @classmethod
    def context(cls) -> Any:
        if cls._ctx is None:
            import multiprocessing
            from multiprocessing import forkserver

            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(list(PRELOAD))
            # Started here, not by the first worker, so that it gets the runner's __main__.
            os.environ[RUNNER_MAIN_ENV] = _runner_main()
            try:
                forkserver.ensure_running()
            finally:
                os.environ.pop(RUNNER_MAIN_ENV, None)
            cls._ctx = ctx
        return cls._ctx

    @classmethod
    def warm_up(cls) -> None:
        """Start the server now (it imports in the background while the runner sets up)."""
        from multiprocessing import forkserver

        cls.context()
        forkserver.ensure_running()

    @classmethod
    def prepare(cls) -> None:
        """Fork the next trial's worker now, while the running trials train, so that starting
        that trial costs a message instead of a fork of the server."""
        if cls._standby is None:
            cls._standby = _Standby(cls.context())

    @classmethod
    def take(cls) -> _Standby:
        """The standby worker (forked now if there is none); the next one is not forked yet."""
        standby = cls._standby or _Standby(cls.context())
        cls._standby = None
        return standby

    @classmethod
    def dismiss(cls) -> None:
        """End the unused standby worker, if any (a sweep leaves no idle process behind)."""
        standby, cls._standby = cls._standby, None
        if standby is not None:
            standby.dismiss()
