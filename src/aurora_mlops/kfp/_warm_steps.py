"""Warm task processes for ``kfp.local``: each task of a local run forks from one interpreter
that has imported torch, aurora, MLflow and the steps once.

kfp.local's ``SubprocessRunner(use_venv=False)`` starts every task as ``sys.executable -m
kfp.dsl.executor_main ...``; a task that needs a model pays ~6 s of imports before its work
(``TOOLCHAIN.md``), and a smoke run has five such tasks per variant. While
:func:`warm_steps` is active, ``sys.executable`` names a small client
(:mod:`aurora_mlops.kfp._step_client`) that hands the task's arguments, environment, working
folder and standard streams to a server forked from this module's :func:`serve`; the server
forks a process for the task, which runs ``kfp.dsl.executor_main`` as ``python -m`` would, in
its own session, and reports how it ended. kfp.local sees the same command, output, exit code
and files as before; on a cluster nothing of this exists (each task is its own container).

The server is two processes (see :func:`serve`): the one that listens forks the first tasks
itself while its child imports, then passes every connection to that child. It dies with the
process that started it (Linux ``PR_SET_PDEATHSIG``); a task whose client is killed is killed
too (its process group, SIGKILL); ``AURORA_MLOPS_WARM_STEPS=0`` turns it all off. The server
writes one line per task to its log (``pipeline-steps.log`` beside a local run's
``pipeline.log``): the task, its process id, how it ended and its wall time.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import runpy
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["STEP_PRELOAD", "serve", "warm_python", "warm_steps"]

#: What the server imports before it forks tasks: what the model steps import (the SQLite
#: module first, see :func:`aurora_mlops.tuning.local._trial_workers.warm_trial_imports`).
STEP_PRELOAD: tuple[str, ...] = (
    "sqlite3", "kfp.dsl.executor", "kfp.dsl.kfp_config", "aurora_mlops.kfp.steps",
    "aurora_mlops.kfp.monitor_steps", "torch", "aurora", "aurora.rollout", "mlflow", "xarray",
    "matplotlib.pyplot", "aurora_mlops.training", "aurora_mlops.evaluation",
    "aurora_mlops.data._open", "mlflow.store.tracking.sqlalchemy_store",
    # what the sweep trials of a tune task import (they fork from here too)
    "aurora_mlops.tuning.local._trial_warm",
)
_ENV_SWITCH = "AURORA_MLOPS_WARM_STEPS"
_HEADER = struct.Struct("!I")
_POLL_S = 0.1


@contextlib.contextmanager
def warm_steps(log: Path, *, enabled: bool = True) -> Iterator[bool]:
    """Run the tasks that kfp.local starts in this block in processes forked from a warm server.

    Yields whether it is on (not when ``enabled`` is false or ``AURORA_MLOPS_WARM_STEPS=0``, nor
    when the server did not start). The server's own lines go to ``log``. ``sys.executable``
    names the client while the block runs.
    """
    if not enabled or os.environ.get(_ENV_SWITCH, "1") == "0":
        yield False
        return
    from aurora_mlops.tuning import WARM_PYTHON_ENV

    real, before = sys.executable, os.environ.get(WARM_PYTHON_ENV)
    with warm_python(log) as python:
        if python is None:  # not started (its log says why): kfp.local starts plain processes
            yield False
            return
        sys.executable = os.environ[WARM_PYTHON_ENV] = python
        try:
            yield True
        finally:
            sys.executable = real
            if before is None:
                os.environ.pop(WARM_PYTHON_ENV, None)
            else:
                os.environ[WARM_PYTHON_ENV] = before


@contextlib.contextmanager
def warm_python(log: Path) -> Iterator[str | None]:
    """Start a warm step server for this block; yields the path of a ``python`` whose ``python
    -m MODULE ...`` commands fork from it (see :mod:`aurora_mlops.kfp._step_client`), or ``None``
    when the server did not start. The server's own lines go to ``log``."""
    folder = Path(tempfile.mkdtemp(prefix="aurora-steps-"))  # short: socket paths <= 107 bytes
    sock = folder / "s"
    real = sys.executable
    shim = folder / "python3"
    client = Path(__file__).with_name("_step_client.py")
    shim.write_text(f'#!/bin/sh\nexec "{real}" -S -E "{client}" "{sock}" "{real}" "$@"\n')
    shim.chmod(0o755)
    with open(log, "wb") as out:
        server = subprocess.Popen([real, "-m", "aurora_mlops.kfp._warm_steps", str(sock)],
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  preexec_fn=_die_with_parent)
    try:
        yield str(shim) if _started(sock, server) else None
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _started(sock: Path, server: subprocess.Popen[bytes]) -> bool:
    """Whether the server listens within 30 s (it binds before its imports: milliseconds)."""
    deadline = time.monotonic() + 30
    while not sock.exists():
        if server.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class _Task:
    conn: socket.socket
    pid: int
    name: str
    start: float = field(default_factory=time.monotonic)


def serve(path: str) -> None:
    """Listen on the Unix socket ``path`` and fork one process per request until terminated.

    Two processes: this one, which listens and never imports anything heavy, and its child,
    which imports :data:`STEP_PRELOAD` and then serves every request this one passes it (the
    connection itself, over a socket pair). Until the child is ready, this one forks the tasks
    itself, so an early light task (the data step) never waits for torch's import; they import
    what they need, as a new interpreter would.
    """
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    listener.listen(16)
    os.replace(path + ".tmp", path)  # clients connect from here on
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))  # nothing to clean up
    here, there = socket.socketpair()
    if os.fork() == 0:  # the warm forker
        listener.close()
        here.close()
        _die_with_parent()
        t0 = time.monotonic()
        for name in STEP_PRELOAD:
            with contextlib.suppress(ImportError):
                __import__(name)
        print(f"warm step server {os.getpid()}: imported {len(sys.modules)} modules in "
              f"{time.monotonic() - t0:.1f} s", flush=True)
        there.sendall(b"ready")
        _serve_loop(there, lambda: _passed(there), handoff=None)
    there.close()
    _serve_loop(listener, lambda: listener.accept()[0], handoff=here)


def _passed(pair: socket.socket) -> socket.socket:
    """A connection that the listening process passed over ``pair`` (exit when it is gone)."""
    msg, fds, _flags, _addr = socket.recv_fds(pair, 1, 1)
    if not msg or not fds:
        os._exit(0)
    return socket.socket(fileno=fds[0])


def _serve_loop(source: socket.socket, accept: Callable[[], socket.socket],
                handoff: socket.socket | None) -> NoReturn:
    """Take connections from ``source``; pass them on over ``handoff`` once the warm forker
    said it is ready there, else fork their tasks here."""
    selector = selectors.DefaultSelector()
    selector.register(source, selectors.EVENT_READ, "source")
    if handoff is not None:
        selector.register(handoff, selectors.EVENT_READ, "handoff")
    tasks: dict[int, _Task] = {}
    ready = False
    while True:
        for key, _ in selector.select(_POLL_S):
            if key.data == "source":
                conn = accept()
                if ready and handoff is not None:
                    try:
                        socket.send_fds(handoff, [b"c"], [conn.fileno()])
                        conn.close()
                        continue
                    except OSError:  # the warm forker is gone: fork here
                        ready = False
                task = _start(conn, [source, *([handoff] if handoff else []),
                                     *(t.conn for t in tasks.values())])
                if task is not None:
                    tasks[task.pid] = task
                    selector.register(conn, selectors.EVENT_READ, task.pid)
            elif key.data == "handoff":
                ready = bool(handoff is not None and handoff.recv(16))
                if not ready:  # it died: every task forks here from now on
                    selector.unregister(key.fileobj)
            else:  # a client closed its end (it was killed): so is its task
                task = tasks.get(key.data)
                if task is not None:
                    with contextlib.suppress(OSError):
                        os.killpg(task.pid, signal.SIGKILL)
        _reap(tasks, selector)


def _start(conn: socket.socket, others: list[socket.socket]) -> _Task | None:
    """Read one request and fork its task; ``None`` when the request was broken."""
    try:
        head, fds, _flags, _addr = socket.recv_fds(conn, _HEADER.size, 3)
        (size,) = _HEADER.unpack(head)
        body = b""
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                raise OSError("short request")
            body += chunk
        request = json.loads(body)
    except (OSError, ValueError, struct.error):
        conn.close()
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the task
        for other in (*others, conn):
            other.close()
        _run_task(request, fds)  # never returns
    for fd in fds:
        os.close(fd)
    argv = request["argv"]
    trial = request["env"].get("KATIB_TRIAL_NAME")
    name = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--function_to_execute"),
                f"trial {trial}" if trial else " ".join(argv[:2]))
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    return _Task(conn=conn, pid=pid, name=name)


def _run_task(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: become the task that ``python ARGV`` would have been, then exit."""
    code = 1
    try:
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if os.environ.get("PYTHONUNBUFFERED"):
            with contextlib.suppress(AttributeError, ValueError):
                sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
                sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        if "torch" in sys.modules and os.environ.get("OMP_NUM_THREADS", "").isdigit():
            sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        from aurora_mlops.config import get_settings

        get_settings.cache_clear()  # read again from this task's environment
        argv = request["argv"]  # ["-m", MODULE, ARGS...]
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int | None):
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reap(tasks: dict[int, _Task], selector: selectors.BaseSelector) -> None:
    """Tell each ended task's client how it ended, and log it."""
    while tasks:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        task = tasks.pop(pid, None)
        if task is None:
            continue
        if os.WIFSIGNALED(status):
            reply, how = {"signal": os.WTERMSIG(status)}, f"signal {os.WTERMSIG(status)}"
        else:
            reply, how = {"exit": os.waitstatus_to_exitcode(status)}, \
                f"exit {os.waitstatus_to_exitcode(status)}"
        with contextlib.suppress(OSError, KeyError, ValueError):
            selector.unregister(task.conn)
        with contextlib.suppress(OSError):
            task.conn.sendall(json.dumps(reply).encode() + b"\n")
        task.conn.close()
        print(f"task {task.name}: pid {pid}, {how}, {time.monotonic() - task.start:.1f} s",
              flush=True)


if __name__ == "__main__":
    serve(sys.argv[1])
