"""The processes of local trials, on the runner's side: a worker of the preloaded forkserver
(:mod:`._trial_workers`) for ``train-trial``, else a subprocess.

Importing torch + aurora + mlflow costs ~5-10 s on 2 cores, more than a smoke trial trains.
So a recognised ``aurora-mlops train-trial`` command runs in a process forked from a forkserver
that has imported, once, everything such a trial imports (:data:`PRELOAD`, then
:func:`warm_trial_imports`); the child sets its environment, working dir and output, then calls
the ``aurora-mlops`` entry point (:func:`program_main`) with the command's arguments, so the
trial is still exactly the template's command. Any other command runs as a plain subprocess.
Either way the trial is its own process group, dies with the runner (Linux
``PR_SET_PDEATHSIG``), and :meth:`TrialProcess.stop` ends it with SIGTERM, then SIGKILL; the
runner sleeps in :func:`wait_any`, which wakes as soon as a trial ends.

Between two short trials the runner waits for nothing it can avoid: the next trial's worker is
forked while the current ones train (:meth:`ForkServer.prepare`), so starting it costs one
message; and a worker reports its exit code as soon as its command returns, so the next trial
starts while the finished process is still being torn down (:meth:`TrialProcess.reap` waits
for that before the sweep returns).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aurora_mlops.tuning.local._trial_workers import ForkServer, cli_args, die_with_parent

__all__ = [
    "WARM_PYTHON_ENV",
    "TrialProcess",
    "is_train_trial_command",
    "log_tail",
    "signal_text",
    "wait_any",
    "warm_trial_workers",
]

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
    return [python, "-m", "aurora_mlops", *cli_args(argv)] if python else None


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


def _subprocess_setup() -> None:
    os.setsid()
    die_with_parent()


class TrialProcess:
    """A running trial process, forked or plain, polled without blocking."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], log_path: Path,
                 threads: int, fork: bool) -> None:
        self.forked = fork
        self._popen: subprocess.Popen[bytes] | None = None
        self._process: Any = None
        self._ended: Any = None
        self._code: int | None = None
        if fork:
            order = (argv, str(cwd), env, str(log_path), threads)
            worker = ForkServer.take()
            if not worker.start(order):  # the standby died: fork one for this trial
                worker = ForkServer.take()
                if not worker.start(order):
                    raise OSError(f"cannot start trial worker {worker.process.pid}")
            self._process, self._ended = worker.process, worker.ended
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
        """A handle that turns ready when the trial's process ends (``None``: poll it)."""
        if self.forked:
            return int(self._process.sentinel)
        return None

    def handles(self) -> list[Any]:
        """What :func:`wait_any` waits on: the worker's end-of-trial message and its process."""
        if not self.forked:
            return []
        return [h for h in (self._ended, self.sentinel) if h is not None]

    def poll(self) -> int | None:
        """The trial's exit code once it has ended, else ``None``. A forked trial has ended
        when its worker says so (its process may still be exiting) or its process is gone."""
        if self.forked:
            if self._code is None and self._ended is not None and self._ended.poll():
                # EOF: it died before it could say, and its process's exit code tells.
                with contextlib.suppress(EOFError, OSError):
                    self._code = int(self._ended.recv())
                self._ended.close()
                self._ended = None
            if self._code is not None:
                return self._code
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

    def reap(self, timeout: float = 5.0) -> None:
        """Wait until a trial that has ended is gone (its worker may still be exiting);
        SIGKILL its process group if it outlives ``timeout``."""
        if not self.forked:
            return
        self._process.join(timeout)
        if self._process.exitcode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            self._process.join(5)


def wait_any(procs: Iterable[TrialProcess], timeout: float) -> None:
    """Sleep up to ``timeout`` seconds, waking as soon as one of the forked ``procs`` ends.

    A sleep of a fixed interval cost every trial up to that interval between its end and the
    next trial's start; the interval now only paces the reading of running trials' metrics.
    """
    handles = [h for p in procs for h in p.handles()]
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
