"""The processes of local trials: a preloaded forkserver for ``train-trial``, else a subprocess.

Importing torch + aurora + mlflow costs ~5-10 s on 2 cores, more than a smoke trial trains.
So a recognised ``aurora-mlops train-trial`` command runs in a process forked from a forkserver
that has imported, once, everything such a trial imports (:data:`PRELOAD`, then
:func:`warm_trial_imports`); the child sets its environment, working dir and output, then calls
the ``aurora-mlops`` entry point (:func:`program_main`) with the command's arguments, so the
trial is still exactly the template's command. Any other command runs as a plain subprocess.
Either way the trial is its own process group, dies with the runner (Linux
``PR_SET_PDEATHSIG``), and :meth:`TrialProcess.stop` ends it with SIGTERM, then SIGKILL; the
runner sleeps in :func:`wait_any`, which wakes as soon as a trial ends.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "PRELOAD",
    "WARM_PYTHON_ENV",
    "ForkServer",
    "TrialProcess",
    "is_train_trial_command",
    "log_tail",
    "signal_text",
    "wait_any",
    "warm_trial_imports",
]

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
    "aurora_mlops.tuning.local._trial_proc", "aurora_mlops.tuning.local._trial_warm",
)
#: Set by a local pipeline run (``aurora_mlops.kfp._warm_steps``) in its tasks' environment: a
#: ``python`` whose ``-m`` commands fork from the run's warm step server, which has imported
#: :data:`PRELOAD` already. A sweep in such a task starts its trials there instead of starting a
#: forkserver of its own (another interpreter importing the same modules).
WARM_PYTHON_ENV = "AURORA_MLOPS_WARM_PYTHON"
#: Seconds between SIGTERM and SIGKILL when a trial is stopped.
KILL_GRACE_S = 3.0
LOG_TAIL_LINES = 20


def warm_trial_workers() -> None:
    """Start the trial forkserver now, so that its imports (torch, aurora, MLflow) run on
    another core while the caller builds its Experiment; the local runner uses it as is.
    Nothing to start where a warm step server serves the trials (:data:`WARM_PYTHON_ENV`)."""
    if not os.environ.get(WARM_PYTHON_ENV):
        ForkServer.warm_up()


def warm_step_command(argv: Sequence[str]) -> list[str] | None:
    """``argv`` (a ``train-trial`` command) as a ``-m`` command of the warm step server's
    ``python`` (:data:`WARM_PYTHON_ENV`); ``None`` where there is none."""
    python = os.environ.get(WARM_PYTHON_ENV)
    return [python, "-m", "aurora_mlops", *_cli_args(argv)] if python else None


def is_train_trial_command(argv: Sequence[str]) -> bool:
    """Whether ``argv`` is ``aurora-mlops train-trial ...`` (or ``python -m aurora_mlops ...``)."""
    if not argv:
        return False
    head = os.path.basename(argv[0])
    if head == "aurora-mlops":
        return len(argv) > 1 and argv[1] == "train-trial"
    if head.startswith("python") and len(argv) > 3 and argv[1:3] == ["-m", "aurora_mlops"]:
        return argv[3] == "train-trial"
    return False



def _cli_args(argv: Sequence[str]) -> list[str]:
    return list(argv[1:]) if os.path.basename(argv[0]) == "aurora-mlops" else list(argv[3:])



def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (a killed runner leaves no trials)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: best effort
        pass



def _subprocess_setup() -> None:
    os.setsid()
    _die_with_parent()



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


def _forked_trial(argv: list[str], cwd: str, env: dict[str, str], log_path: str,
                  threads: int) -> None:
    """Body of a trial worker forked from the preloaded forkserver (runs in the child)."""
    os.setsid()
    _die_with_parent()
    _release_forkserver_pipe()
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
        code = program_main()(_cli_args(argv))
    except SystemExit as e:  # argparse usage errors
        code = e.code if isinstance(e.code, int) else 2
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    sys.exit(code)



class ForkServer:
    """multiprocessing's forkserver with :data:`PRELOAD` imported once (shared per process)."""

    _ctx: Any = None

    @classmethod
    def context(cls) -> Any:
        if cls._ctx is None:
            import multiprocessing

            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(list(PRELOAD))
            cls._ctx = ctx
        return cls._ctx

    @classmethod
    def warm_up(cls) -> None:
        """Start the server now (it imports in the background while the runner sets up)."""
        from multiprocessing import forkserver

        cls.context()
        forkserver.ensure_running()



class TrialProcess:
    """A running trial process, forked or plain, polled without blocking."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], log_path: Path,
                 threads: int, fork: bool) -> None:
        self.forked = fork
        self._popen: subprocess.Popen[bytes] | None = None
        self._process: Any = None
        if fork:
            ctx = ForkServer.context()
            self._process = ctx.Process(
                target=_forked_trial, args=(argv, str(cwd), env, str(log_path), threads),
                daemon=False)
            self._process.start()
            self.pid: int = self._process.pid
        else:
            with log_path.open("ab") as out:
                try:
                    self._popen = subprocess.Popen(
                        argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL, preexec_fn=_subprocess_setup)
                except OSError as e:
                    out.write(f"cannot start {argv[0]!r}: {e}\n".encode())
                    self._popen = None
                    self.pid = -1
                    self._start_error = 127
                    return
            self.pid = self._popen.pid

    @property
    def sentinel(self) -> int | None:
        """A handle that turns ready when the trial ends (``None``: poll it instead)."""
        if self.forked:
            return int(self._process.sentinel)
        return None

    def poll(self) -> int | None:
        if self.forked:
            code = self._process.exitcode
            return None if code is None else int(code)
        if self._popen is None:
            return self._start_error
        return self._popen.poll()

    def signal(self, sig: int) -> None:
        if self.pid <= 0 or self.poll() is not None:
            return
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, sig)

    def stop(self, grace: float = KILL_GRACE_S) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.poll() is None:
            self.signal(signal.SIGKILL)
            deadline = time.monotonic() + 5
            while self.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
        if self.forked:
            with contextlib.suppress(ValueError, AttributeError):
                self._process.join(timeout=0)
        return self.poll()



def wait_any(procs: Iterable[TrialProcess], timeout: float) -> None:
    """Sleep up to ``timeout`` seconds, waking as soon as one of the forked ``procs`` ends.

    A sleep of a fixed interval cost every trial up to that interval between its end and the
    next trial's start; the interval now only paces the reading of running trials' metrics.
    """
    handles = [h for h in (p.sentinel for p in procs) if h is not None]
    if not handles:
        time.sleep(timeout)
        return
    from multiprocessing.connection import wait

    wait(handles, timeout)



def signal_text(code: int) -> str:
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    hint = " (the OOM killer, or another SIGKILL)" if -code == signal.SIGKILL else ""
    return f"was killed by {name}{hint}"



def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - 16384, 0))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]
