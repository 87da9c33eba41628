"""The warm step server of local pipeline runs: a task forked from it behaves as the plain
``python -m MODULE`` process that kfp.local would have started.

kfp.local (``kfp/local/subprocess_task_handler.py``, kfp 2.17) starts each task with
``subprocess.Popen`` of its command, in which ``python3`` was replaced by ``sys.executable``
(``replace_python_executable``; ``environment()`` yields ``sys.executable`` when
``use_venv=False``), reads its merged output line by line and judges it by its return code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aurora_mlops.kfp._warm_steps import warm_steps

PROBE = textwrap.dedent("""
    import os, sys, time
    print("argv", sys.argv[1:])
    print("cwd", os.getcwd())
    print("env", os.environ.get("PROBE_VALUE"))
    print("stdin", sys.stdin.read().strip())
    print("to stderr", file=sys.stderr)
    if sys.argv[1:2] == ["sleep"]:
        print("sleeping", os.getpid(), flush=True)
        time.sleep(60)
    if sys.argv[1:2] == ["raise"]:
        raise ValueError("a bug in the task")
    sys.exit(int(sys.argv[1]) if sys.argv[1:] and sys.argv[1].isdigit() else 0)
""")


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(the client that stands for python, the real python, the server's log); the probe
    module is on the ``PYTHONPATH`` of the server and of every test's processes."""
    folder = tmp_path_factory.mktemp("warm")
    (folder / "probe_task.py").write_text(PROBE)
    real = sys.executable
    log = folder / "steps.log"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join([str(folder), *sys.path]))
        with warm_steps(log) as on:
            assert on
            yield sys.executable, real, log
    assert sys.executable == real


def _run(python: str, args: list[str], cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROBE_VALUE": "from the caller"}  # the server was started without
    return subprocess.run([python, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          input="on stdin", timeout=120, **kw)  # type: ignore[call-overload]


@pytest.mark.parametrize("args", [["3", "x"], ["0"], ["raise"]], ids=["exit-3", "ok", "raises"])
def test_a_warm_task_is_the_plain_process(warm: tuple[str, str, Path], tmp_path: Path,
                                          args: list[str]) -> None:
    client, real, log = warm
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    plain = _run(real, ["-m", "probe_task", *args], cwd)
    forked = _run(client, ["-m", "probe_task", *args], cwd)
    assert forked.returncode == plain.returncode
    assert forked.stdout == plain.stdout
    assert f"cwd {cwd}" in forked.stdout and "env from the caller" in forked.stdout
    assert "stdin on stdin" in forked.stdout
    if args == ["raise"]:
        assert plain.stderr.splitlines()[-1] == forked.stderr.splitlines()[-1] == \
            "ValueError: a bug in the task"
    else:
        assert forked.stderr == plain.stderr == "to stderr\n"
    assert "task -m probe_task: pid " in log.read_text()


def test_other_commands_run_the_real_interpreter(warm: tuple[str, str, Path],
                                                 tmp_path: Path) -> None:
    client, real, _log = warm
    out = _run(client, ["-c", "import sys; print(sys.executable)"], tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == real


def _started(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("sleeping"):
            return int(line.split()[1])
    raise AssertionError("the task never started")


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_sigterm_to_the_client_ends_the_task_the_same_way(warm: tuple[str, str, Path]) -> None:
    client, _real, _log = warm
    proc = subprocess.Popen([client, "-m", "probe_task", "sleep"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, text=True)
    task = _started(proc)
    assert task != proc.pid  # a process forked from the server, not the client
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == -signal.SIGTERM
    assert _gone(task)


def test_a_killed_client_takes_its_task_with_it(warm: tuple[str, str, Path]) -> None:
    client, _real, log = warm
    proc = subprocess.Popen([client, "-m", "probe_task", "sleep"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, text=True)
    task = _started(proc)
    proc.kill()
    proc.wait(timeout=20)
    assert _gone(task)
    deadline = time.monotonic() + 10
    while f"pid {task}, signal {int(signal.SIGKILL)}" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def test_switched_off_kfp_starts_plain_processes(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURORA_MLOPS_WARM_STEPS", "0")
    before = sys.executable
    with warm_steps(tmp_path / "steps.log") as on:
        assert not on and sys.executable == before
    assert not (tmp_path / "steps.log").exists()
