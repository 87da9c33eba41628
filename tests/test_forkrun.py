"""tests/_forkrun.py, which runs the README's tour: each command is a fresh process that
behaves as the console script or ``python -c`` would, and nothing one sets reaches the next."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from _forkrun import ForkRunner

BIN = Path(sys.executable).parent


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[ForkRunner]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "FORKRUN_GIVEN": "yes"}
    env.pop("FORKRUN_LEAK", None)
    with ForkRunner(tmp_path, env, preload=("decimal",)) as runner:
        yield runner


def test_the_console_script_runs_with_its_exit_code_and_output(runner: ForkRunner) -> None:
    from aurora_mlops._version import __version__

    ok = runner.command(["aurora-mlops", "--version"])
    assert (ok.returncode, ok.stdout.strip()) == (0, f"aurora-mlops {__version__}")
    bad = runner.command(["aurora-mlops", "katib", "check", "missing.yaml"])
    assert bad.returncode == 1 and "missing.yaml" in bad.stderr and bad.stdout == ""
    usage = runner.command(["aurora-mlops", "no-such-command"])
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_python_code_runs_as_python_dash_c_in_the_folder_and_environment_given(
        runner: ForkRunner, tmp_path: Path) -> None:
    done = runner.python("import os, sys; print(__name__, repr(sys.path[0]), os.getcwd(), "
                         "os.environ['FORKRUN_GIVEN'], 'decimal' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["__main__", "''", str(tmp_path), "yes", "True"]
    crash = runner.python("raise ValueError('boom')")
    assert crash.returncode == 1 and "Traceback" in crash.stderr and "boom" in crash.stderr
    killed = runner.python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert killed.returncode == -9


def test_nothing_one_command_sets_reaches_the_next(runner: ForkRunner) -> None:
    first = runner.python("import atexit, decimal, os; os.environ['FORKRUN_LEAK'] = '1'; "
                          "decimal.LEAK = 1; atexit.register(print, 'exit hook ran')")
    assert first.returncode == 0 and first.stdout == "exit hook ran\n"
    second = runner.python("import decimal, os, sys; "
                           "sys.exit(3 if 'FORKRUN_LEAK' in os.environ or "
                           "hasattr(decimal, 'LEAK') else 0)")
    assert second.returncode == 0
